"""Models in and out: Keras files in, ONNX out."""

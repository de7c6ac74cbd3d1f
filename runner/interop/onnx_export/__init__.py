"""ONNX out: a planned, built model as an ONNX graph, checked in onnxruntime against ours.

``layer-runner export-onnx`` (``cli``) plans the model as ``task=validate`` does, writes it
with one emitter per layer type (``registry``; the built-in ones in ``core_layers``,
``merging``, ``composites``, ``lambda_expr``), checks it (``export``) and compares it with our
runtime (``verify``) before writing the file.
"""

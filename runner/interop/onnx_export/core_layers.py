"""Emitters of the single-input layers: Dense, TimeDistributedDense, Activation, the shape
layers, Masking, and the layers that are the identity at inference (Dropout,
ActivityRegularization). The batch axis stays symbolic: shapes keep it with a 0 (copy) or
leave it out."""

from __future__ import annotations

from layers.reshape import resolve_dims
from runner.interop.onnx_export.activations import activation
from runner.interop.onnx_export.graph import OnnxGraph
from runner.interop.onnx_export.registry import onnx_emitter


@onnx_emitter("Dense")
@onnx_emitter("TimeDistributedDense")
def _affine(g: OnnxGraph, layer, x, mask, shape):
    """activation(x @ W + b); MatMul broadcasts W over the time axis of a 3D input."""
    z = g.op("MatMul", x, g.weight("W", layer.params["W"]))
    z = g.op("Add", z, g.weight("b", layer.params["b"]))
    return activation(g, layer.spec.activation, z), mask


@onnx_emitter("Activation")
def _activation(g: OnnxGraph, layer, x, mask, shape):
    return activation(g, layer.spec.activation, x), mask


@onnx_emitter("Dropout")
@onnx_emitter("ActivityRegularization")
def _identity(g: OnnxGraph, layer, x, mask, shape):
    """Inference: Dropout is the identity, and an activity penalty is a training loss only."""
    return x, mask


@onnx_emitter("Reshape")
def _reshape(g: OnnxGraph, layer, x, mask, shape):
    dims = resolve_dims(layer.spec.dims, tuple(shape))
    return g.op("Reshape", x, g.ints(0, *dims)), None  # 0: keep the batch size


@onnx_emitter("Flatten")
def _flatten(g: OnnxGraph, layer, x, mask, shape):
    return g.op("Flatten", x, axis=1), None


@onnx_emitter("Permute")
def _permute(g: OnnxGraph, layer, x, mask, shape):
    return g.op("Transpose", x, perm=[0, *layer.spec.dims]), None


@onnx_emitter("RepeatVector")
def _repeat_vector(g: OnnxGraph, layer, x, mask, shape):
    steps = g.op("Unsqueeze", x, g.ints(1))  # (batch, 1, features)
    return g.op("Tile", steps, g.ints(1, layer.spec.n, 1)), None  # (batch, n, features)


@onnx_emitter("Masking")
def _masking(g: OnnxGraph, layer, x, mask, shape):
    """keep = any(x != mask_value) over the features (NaN never equals: kept); y = x * keep."""
    differs = g.op("Not", g.op("Equal", x, g.const(layer.spec.mask_value)))
    keep = g.any_last(differs)  # (batch, ...steps)
    y = g.op("Mul", x, g.op("Unsqueeze", g.cast(keep), g.ints(-1)))
    return y, keep

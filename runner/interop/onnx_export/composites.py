"""Emitters of the layers that hold layers: Siamese (one shared layer, then a merge) and
AutoEncoder (the encoder, then the decoder when it reconstructs)."""

from __future__ import annotations

from runner.interop.onnx_export.graph import OnnxGraph
from runner.interop.onnx_export.merging import merge, merge_masks
from runner.interop.onnx_export.registry import onnx_emitter


@onnx_emitter("Siamese")
def _siamese(g: OnnxGraph, layer, xs, masks, shapes):
    """The shared layer is written once per input; its weights are one set of initializers
    (``<name>/layer/W``, ...) that every copy reads."""
    (child,) = layer.children()
    shape = tuple(shapes[0])  # identical for every input (checked by the plan)
    heads = [g.emit_child(g.prefix, g.path, child, x, m, shape) for x, m in zip(xs, masks)]
    ys, head_masks = [h[0] for h in heads], [h[1] for h in heads]
    s = layer.spec
    if s.merge_mode == "none":
        return ys, head_masks
    head_shape = [layer.inner.output_shape(shape)] * len(ys)
    y = merge(g, s.merge_mode, ys, head_shape, s.concat_axis, s.dot_axes)
    return y, merge_masks(g, s.merge_mode, ys, head_masks, head_shape, s.concat_axis)


@onnx_emitter("AutoEncoder")
def _autoencoder(g: OnnxGraph, layer, x, mask, shape):
    """The running children in order: encoder, then decoder with output_reconstruction."""
    owner_prefix, owner_path = g.prefix, g.path
    for child in layer.running_children():  # the layer's own rule, as its forward
        out_shape = child[1].output_shape(shape)
        x, mask = g.emit_child(owner_prefix, owner_path, child, x, mask, shape)
        shape = out_shape
    return x, mask

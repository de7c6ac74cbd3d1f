"""Emitters of the layers that merge: Merge, TimeDistributedMerge, and the merge arithmetic
and mask rules Siamese shares (as ``layers.merge_ops`` serves Merge and Siamese).

Masks are bool tensors of the data's shape minus the last axis, as in our runtime:
elementwise modes AND them, concat concatenates them (all-true for unmasked inputs), dot and
cos drop them; TimeDistributedMerge leaves masked steps out (``ave`` divides by the kept
count, at least 1, so a fully masked row gives 0).
"""

from __future__ import annotations

from layers import merge_ops
from layers.merge_ops import (
    NORM_EPS,
    concat_axis_index,
    dot_axes_pairs,
    einsum_subscripts,
    norm_subscripts,
)
from runner.interop.onnx_export.graph import OnnxGraph
from runner.interop.onnx_export.registry import onnx_emitter


def merge(g: OnnxGraph, mode: str, xs: list[str], shapes: list, concat_axis, dot_axes) -> str:
    """The merged tensor, operation for operation as ``merge_ops.forward``."""
    if mode in ("sum", "ave", "mul", "max"):
        op = {"sum": "Add", "ave": "Add", "mul": "Mul", "max": "Max"}[mode]
        y = xs[0]
        for x in xs[1:]:  # left to right, as ours
            y = g.op(op, y, x)
        return g.op("Div", y, g.const(len(xs))) if mode == "ave" else y
    if mode == "concat":
        return g.op("Concat", *xs, axis=concat_axis_index(concat_axis, tuple(shapes[0])))
    return _dot(g, mode, xs, [tuple(s) for s in shapes], dot_axes)


def _dot(g: OnnxGraph, mode: str, xs: list[str], shapes: list, dot_axes) -> str:
    """Einsum with our subscripts; cos divides by each input's norm over its contracted axes
    (squared norm floored at NORM_EPS, so a zero vector gives 0)."""
    (x0, x1), (s0, s1) = xs, shapes
    ax0, ax1 = dot_axes_pairs(dot_axes, s0, s1)
    sub0, sub1, out = einsum_subscripts(len(s0), ax0, len(s1), ax1)
    y = g.op("Einsum", x0, x1, equation=f"{sub0},{sub1}->{out}")
    if mode == "cos":
        n0 = _norm(g, x0, sub0, ax0)  # (batch, *free0)
        n1 = _norm(g, x1, sub1, ax1)  # (batch, *free1)
        k0, k1 = len(s0) - len(ax0), len(s1) - len(ax1)
        if k1:  # n0 gains a unit axis per free axis of x1
            n0 = g.op("Unsqueeze", n0, g.ints(*range(1 + k0, 1 + k0 + k1)))
        if k0:  # n1 gains a unit axis per free axis of x0, after the batch axis
            n1 = g.op("Unsqueeze", n1, g.ints(*range(1, 1 + k0)))
        y = g.op("Div", g.op("Div", y, n0), n1)
    out_shape = merge_ops.output_shape(mode, [s0, s1], -1, dot_axes)
    return g.op("Reshape", y, g.ints(0, *out_shape))  # a full contraction: (batch, 1)


def _norm(g: OnnxGraph, x: str, sub: str, axes: list[int]) -> str:
    sq = g.op("Einsum", x, x, equation=norm_subscripts(sub, axes))
    return g.op("Sqrt", g.op("Max", sq, g.const(NORM_EPS)))


def merge_masks(g: OnnxGraph, mode: str, xs, masks: list, shapes: list, concat_axis) -> str | None:
    """The merged mask, as ``merge_ops.combine_masks``."""
    if mode in merge_ops.PAIRWISE or all(m is None for m in masks):
        return None
    if mode != "concat":
        present = [m for m in masks if m is not None]
        out = present[0]
        for m in present[1:]:
            out = g.op("And", out, m)
        return out if len(present) > 1 else g.op("Identity", out)
    # Keras 2 Concatenate: each mask gains a unit feature axis (all-true for an unmasked
    # input), they are concatenated like the data, then all() over that axis
    axis = concat_axis_index(concat_axis, tuple(shapes[0]))
    parts = []
    for x, m in zip(xs, masks):
        if m is None:  # all-true, of x's shape with a unit last axis: Shape, then Expand
            unit = g.op("Shape", x, start=0, end=-1)
            m = g.op("Expand", g.const(True, bool), unit)
        parts.append(g.op("Unsqueeze", m, g.ints(-1)))
    return g.all_last(g.op("Concat", *parts, axis=axis))


@onnx_emitter("Merge")
def _merge(g: OnnxGraph, layer, xs, masks, shapes):
    s = layer.spec
    y = merge(g, s.mode, xs, shapes, s.concat_axis, s.dot_axes)
    return y, merge_masks(g, s.mode, xs, masks, shapes, s.concat_axis)


@onnx_emitter("TimeDistributedMerge")
def _time_distributed_merge(g: OnnxGraph, layer, x, mask, shape):
    """sum / mul / ave over the time axis (1); masked steps become the neutral element."""
    mode = layer.spec.mode
    if mask is not None:
        keep = g.op("Unsqueeze", mask, g.ints(-1))  # (batch, steps, 1)
        x = g.op("Where", keep, x, g.const(1 if mode == "mul" else 0))
    if mode == "mul":
        return g.op("ReduceProd", x, g.ints(1), keepdims=0), None
    y = g.op("ReduceSum", x, g.ints(1), keepdims=0)
    if mode == "ave":
        if mask is None:
            count = g.const(shape[0])
        else:  # kept steps per row, at least 1: a fully masked row averages to 0
            kept = g.op("ReduceSum", g.cast(mask), g.ints(1), keepdims=1)  # (batch, 1)
            count = g.op("Max", kept, g.const(1))
        y = g.op("Div", y, count)
    return y, None

"""Siamese: one layer, with one set of weights, applied to every input, then merged.

Inputs: two or more names with identical per-sample shapes. Each input (with its own mask)
goes through the *same* inner layer object; ``merge_mode`` then combines the heads exactly as
Merge does (``concat_axis`` defaults to 1 here, as in legacy Keras). ``merge_mode: none``
leaves the heads unmerged: later layers read them as ``<name>.0``, ``<name>.1``, ...

Weights are the inner layer's, keyed ``<name>/layer/<param>`` and stored once. The backward
pass sums the shared weights' gradients over the heads.

    siam:
      type: Siamese
      inputs: [left, right]
      layer: {type: Dense, output_dim: 4}
      merge_mode: cos
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
from pydantic import Field, field_validator

from layers import merge_ops
from layers.base import Context, Layer, PlanError, Shape, SpecBase, SummaryRow, add_penalties
from layers.composite import add_grads, check_children, child_layer, child_rows, in_child, prefixed
from layers.deferred import DeferredConcat
from layers.merge import arity_message
from layers.merge_ops import DotAxes
from layers.registry import AnyLayerSpec, register

PREFIX = "layer/"


class SiameseSpec(SpecBase):
    """A shared ``layer`` over ``inputs``, merged by ``merge_mode``."""

    nested_layers: ClassVar[bool] = True
    type: Literal["Siamese"] = "Siamese"
    layer: AnyLayerSpec = Field(description="The shared layer (its weights serve every input).")
    merge_mode: Literal["sum", "mul", "concat", "ave", "dot", "cos", "max", "none"] = Field(
        default="concat",
        description="How the heads are merged (as Merge.mode); none (or null) "
        "keeps one output per input, read as <name>.0, <name>.1, ...",
    )
    concat_axis: int = Field(
        default=1,
        description="Full-tensor concat axis (legacy default 1: the first non-batch axis).",
    )
    dot_axes: DotAxes = Field(default=-1, description="As Merge.dot_axes (normalized here too).")

    @field_validator("merge_mode", mode="before")
    @classmethod
    def _none(cls, value):
        return "none" if value is None else value

    @field_validator("dot_axes", mode="before")
    @classmethod
    def _dot_axes_form(cls, value):
        return merge_ops.check_dot_axes(value)

    @field_validator("layer")
    @classmethod
    def _inner(cls, value):
        return check_children("a Siamese layer", {"layer": value})["layer"]


class SiameseCache(NamedTuple):
    heads: list[Any]  # the shared layer's cache of each input's pass
    in_shapes: list[Shape]  # each input's full shape (batch included)
    merge: Any  # merge_ops.forward's cache (None with merge_mode none or in predict)
    penalties: dict[str, float]  # the shared layer's activity penalties, summed over inputs


@register
class Siamese(Layer):
    Spec = SiameseSpec
    multi_input = True

    def __init__(self, spec: SiameseSpec, name: str) -> None:
        super().__init__(spec, name)
        self.inner = child_layer(spec.layer, f"{name}/layer")
        self.differentiable = self.inner.differentiable

    @property
    def heads(self) -> int:
        """Number of separate outputs (0: one merged output)."""
        return len(self.spec.inputs or []) if self.spec.merge_mode == "none" else 0

    def children(self) -> list[tuple[str, Layer, str]]:
        return [(PREFIX, self.inner, "layer")]

    def arity_error(self, n_inputs: int) -> str | None:
        mode = self.spec.merge_mode
        return arity_message("Siamese", None if mode == "none" else mode, n_inputs)

    def _shared_input(self, shapes: list[Shape]) -> Shape:
        if len({tuple(s) for s in shapes}) != 1:
            raise PlanError(
                f"Siamese inputs must have identical per-sample shapes (one shared "
                f"layer, one set of weights); got {[tuple(s) for s in shapes]}"
            )
        return tuple(shapes[0])

    def output_shape(self, input_shape: list[Shape]) -> Shape:
        shape = self._shared_input(input_shape)
        head = tuple(in_child("layer", self.inner, self.inner.output_shape, shape))
        if self.spec.merge_mode == "none":
            return head
        s = self.spec
        return merge_ops.output_shape(
            s.merge_mode, [head] * len(input_shape), s.concat_axis, s.dot_axes
        )

    def output_mask(self, input_shape: list[Shape], has_mask: list[bool]):
        """Each input's mask goes to the shared layer; the heads' masks merge as in Merge.

        With ``merge_mode: none`` this is a list: one flag per head."""
        shape = self._shared_input(input_shape)
        heads = [
            bool(in_child("layer", self.inner, self.inner.output_mask, shape, m)) for m in has_mask
        ]
        if self.spec.merge_mode == "none":
            return heads
        return merge_ops.output_mask(self.spec.merge_mode, heads)

    def inner_elements(self, input_shape: list[Shape]) -> int:
        """Per sample: each input's pass through the shared layer (its output, unless the
        heads are this layer's outputs, and what it holds inside itself)."""
        shape = self._shared_input(input_shape)
        inner = in_child("layer", self.inner, self.inner.inner_elements, shape)
        head = (
            0
            if self.spec.merge_mode == "none"
            else math.prod(in_child("layer", self.inner, self.inner.output_shape, shape))
        )
        return len(input_shape) * (head + inner)

    def param_shapes(self, input_shape: list[Shape]) -> dict[str, Shape]:
        shape = self._shared_input(input_shape)
        return prefixed(PREFIX, in_child("layer", self.inner, self.inner.param_shapes, shape))

    def summary_rows(self, input_shape: list[Shape]) -> list[SummaryRow]:
        shape = self._shared_input(input_shape)
        out = self.inner.output_shape(shape)
        return child_rows(
            "layer", self.inner, f"each input (shared x{len(input_shape)})", shape, out
        )

    def init_params(self, input_shape, rng, dtype) -> None:
        self.inner.init_params(self._shared_input(input_shape), rng, dtype)
        self.params = {}

    def named_params(self) -> dict[str, np.ndarray]:
        return prefixed(PREFIX, self.inner.named_params())  # the inner layer's own arrays

    def _heads(self, x, mask, ctx: Context):
        """Each input through the shared layer: outputs, masks, caches and penalties."""
        ys, masks, caches = [], [], []
        penalties: dict[str, float] = {}
        for xi, mi in zip(x, mask):
            yi, mo, ci = self.inner.forward(xi, mi, ctx)
            add_penalties(penalties, self.inner.activity_penalties(yi, ci))
            ys.append(yi)
            masks.append(mo)
            caches.append(ci)
        return ys, masks, caches, penalties

    def forward(self, x, mask, ctx: Context):
        ys, masks, caches, penalties = self._heads(x, mask, ctx)
        s = self.spec
        in_shapes = [xi.shape for xi in x]
        if s.merge_mode == "none":
            return ys, masks, SiameseCache(caches, in_shapes, None, penalties)
        y, merge_cache = merge_ops.forward(
            s.merge_mode, ys, s.concat_axis, s.dot_axes, ctx.keep_cache
        )
        out_mask = merge_ops.combine_masks(s.merge_mode, ys, masks, s.concat_axis)
        return y, out_mask, SiameseCache(caches, in_shapes, merge_cache, penalties)

    def defers(self, input_shape: list[Shape]) -> str | None:
        """A concat along the last axis can stay as its heads for a Dense reader."""
        head = self.inner.output_shape(self._shared_input(input_shape))
        axis = self.spec.concat_axis
        last = axis == -1 or axis == len(head)
        return "concat" if self.spec.merge_mode == "concat" and last else None

    def forward_deferred(self, x, mask, ctx: Context):
        ys, masks, caches, penalties = self._heads(x, mask, ctx)
        out_mask = merge_ops.combine_masks("concat", ys, masks, self.spec.concat_axis)
        cache = SiameseCache(caches, [xi.shape for xi in x], None, penalties)
        return DeferredConcat(ys), out_mask, cache

    def activity_penalties(self, y, cache: SiameseCache) -> dict[str, float]:
        return cache.penalties

    def backward(self, dy, cache: SiameseCache, ctx: Context):
        """``dy``: the merged output's gradient, or (merge_mode none) a list, one per head
        (None for a head nothing reads). The shared weights' gradient is the sum over the
        heads (their penalty's gradient is added once, by the trainer)."""
        caches, in_shapes = cache.heads, cache.in_shapes
        if self.spec.merge_mode == "none":
            dys = list(dy)
        else:
            dys = merge_ops.backward(self.spec.merge_mode, dy, cache.merge, len(caches))
        dxs: list[np.ndarray] = []
        grads: dict[str, np.ndarray] = {}
        for dyi, ci, shape in zip(dys, caches, in_shapes):
            if dyi is None:
                dxs.append(np.zeros(shape, dtype=ctx.dtype))
                continue
            dxi, gi = self.inner.backward(dyi, ci, ctx)
            dxs.append(dxi)
            add_grads(grads, prefixed(PREFIX, gi))  # shared weights: sum over heads
        for key, value in self.named_params().items():
            grads.setdefault(key, np.zeros_like(value))
        return dxs, grads

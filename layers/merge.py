"""Merge: combines the outputs of two or more layers (or model inputs) by ``mode``.

Input: a list of per-sample shapes (the ``inputs`` of the layer, in order). Output by mode:
sum / mul / ave / max (identical shapes) -> that shape; concat -> sizes along ``concat_axis``
added; dot / cos (exactly two inputs) -> the free axes of both, or (1,) for a full contraction.

Masks (as later Keras): sum, mul, ave and max AND the input masks; concat concatenates them
(all-true for unmasked inputs); dot and cos give no mask.

    m: {type: Merge, inputs: [left, right], mode: concat, concat_axis: -1}
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pydantic import Field, field_validator

from layers import merge_ops
from layers.base import Context, Layer, Shape, SpecBase
from layers.merge_ops import DotAxes, MergeMode
from layers.registry import register


class MergeSpec(SpecBase):
    """Merges its ``inputs`` (two or more names) by ``mode``."""

    type: Literal["Merge"] = "Merge"
    mode: MergeMode = Field(
        default="sum",
        description="sum | mul | concat | ave | dot | cos | "
        "max (max: elementwise, a modern addition).",
    )
    concat_axis: int = Field(
        default=-1,
        description="Full-tensor axis of concat (0 is the "
        "batch axis, so -1 = last axis, 1 = first non-batch axis).",
    )
    dot_axes: DotAxes = Field(
        default=-1,
        description="Axes contracted by dot and cos: -k (last "
        "k axes of each), k (last k of the first vs first k of the "
        "second), [a, b], or [[a1, ...], [b1, ...]] (full-tensor axes).",
    )

    @field_validator("dot_axes", mode="before")
    @classmethod
    def _dot_axes_form(cls, value):
        return merge_ops.check_dot_axes(value)


def arity_message(kind: str, mode: str | None, n: int) -> str | None:
    """Why ``n`` inputs do not fit (None when they do); shared with Siamese."""
    if mode in merge_ops.PAIRWISE and n != 2:
        return f"{kind} mode {mode!r} takes exactly 2 inputs, got {n}"
    if n < 2:
        return f"{kind} needs at least 2 inputs, got {n}: list them, e.g. inputs: [left, right]"
    return None


class MergeCache(NamedTuple):
    merge: Any  # merge_ops.forward's cache for this mode
    n_inputs: int


@register
class Merge(Layer):
    Spec = MergeSpec
    multi_input = True

    def arity_error(self, n_inputs: int) -> str | None:
        return arity_message("Merge", self.spec.mode, n_inputs)

    def output_shape(self, input_shape: list[Shape]) -> Shape:
        s = self.spec
        return merge_ops.output_shape(s.mode, input_shape, s.concat_axis, s.dot_axes)

    def output_mask(self, input_shape: list[Shape], has_mask: list[bool]) -> bool:
        return merge_ops.output_mask(self.spec.mode, has_mask)

    def forward(self, x, mask, ctx: Context):
        s = self.spec
        y, cache = merge_ops.forward(s.mode, x, s.concat_axis, s.dot_axes, ctx.keep_cache)
        out_mask = merge_ops.combine_masks(s.mode, x, mask, s.concat_axis)
        return y, out_mask, (MergeCache(cache, len(x)) if ctx.keep_cache else None)

    def backward(self, dy, cache: MergeCache, ctx: Context):
        return merge_ops.backward(self.spec.mode, dy, cache.merge, cache.n_inputs), {}

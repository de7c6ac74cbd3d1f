"""Flatten: each sample becomes one row (C order)."""

from __future__ import annotations

import math
from typing import Literal

from layers.base import Context, Layer, Shape, SpecBase
from layers.registry import register


class FlattenSpec(SpecBase):
    """Any input shape; output shape (prod(input),)."""

    type: Literal["Flatten"] = "Flatten"


@register
class Flatten(Layer):
    Spec = FlattenSpec

    def output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, x, mask, ctx: Context):
        return x.reshape(x.shape[0], -1), None, (x.shape if ctx.keep_cache else None)

    def backward(self, dy, in_shape, ctx):
        return dy.reshape(in_shape), {}

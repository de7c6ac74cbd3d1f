"""Dropout: inverted dropout in the train phase, the identity in the test phase."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from layers.base import Context, Layer, Shape, SpecBase
from layers.registry import register


class DropoutSpec(SpecBase):
    """Any input shape; output the same. Passes masks through."""

    type: Literal["Dropout"] = "Dropout"
    p: float = Field(ge=0.0, lt=1.0, description="Fraction of units dropped, in [0, 1).")


@register
class Dropout(Layer):
    Spec = DropoutSpec
    passes_mask = True

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x, mask, ctx: Context):
        p = self.spec.p
        if not ctx.training or p == 0.0:
            return x, mask, None
        # Keep with probability 1 - p; scale by float32(1/(1-p)) (the order of the reference).
        scale = x.dtype.type(1.0 / (1.0 - p))
        keep = ctx.rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64)
        scaled_keep = (keep >= p).astype(x.dtype)
        scaled_keep *= scale
        return x * scaled_keep, mask, (scaled_keep if ctx.keep_cache else None)

    def backward(self, dy, scaled_keep, ctx):
        return (dy if scaled_keep is None else dy * scaled_keep), {}

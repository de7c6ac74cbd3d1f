"""Permute: reorders the non-batch axes; ``dims`` is 1-based, as in Keras."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from layers.base import Context, Layer, PlanError, Shape, SpecBase
from layers.registry import register


class PermuteSpec(SpecBase):
    """Output axis i+1 is input axis dims[i]; the batch axis stays first."""

    type: Literal["Permute"] = "Permute"
    dims: list[int] = Field(min_length=1, description="A permutation of 1..n (1-based).")

    @field_validator("dims")
    @classmethod
    def _is_permutation(cls, dims: list[int]) -> list[int]:
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(
                f"dims must be a permutation of 1..{len(dims)} (1-based, batch axis excluded), "
                f"got {dims}"
            )
        return dims


@register
class Permute(Layer):
    Spec = PermuteSpec

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(self.spec.dims) != len(input_shape):
            raise PlanError(
                f"dims {self.spec.dims} permute {len(self.spec.dims)} axes, but the per-sample "
                f"input shape {input_shape} has {len(input_shape)}"
            )
        return tuple(input_shape[d - 1] for d in self.spec.dims)

    def forward(self, x, mask, ctx: Context):
        return np.transpose(x, (0, *self.spec.dims)), None, None

    def backward(self, dy, cache, ctx):
        inverse = np.argsort((0, *self.spec.dims))
        return np.transpose(dy, inverse), {}

"""Reshape: C-order reshape of each sample to ``dims`` (one entry may be -1)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from layers.base import Context, Layer, PlanError, Shape, SpecBase
from layers.registry import register


class ReshapeSpec(SpecBase):
    """Input: any shape of the same size; output shape ``dims`` (batch axis excluded)."""

    type: Literal["Reshape"] = "Reshape"
    dims: list[int] = Field(min_length=1, description="Target per-sample shape; one -1 allowed.")

    @field_validator("dims")
    @classmethod
    def _one_unknown(cls, dims: list[int]) -> list[int]:
        if sum(d < 0 for d in dims) > 1:
            raise ValueError(f"at most one entry may be -1 (inferred), got {dims}")
        if any(d == 0 or d < -1 for d in dims):
            raise ValueError(f"entries must be positive or -1, got {dims}")
        return dims


def resolve_dims(dims: list[int], input_shape: Shape) -> Shape:
    size = math.prod(input_shape)
    known = math.prod(d for d in dims if d > 0)
    if -1 in dims:
        if size % known:
            raise PlanError(
                f"cannot reshape per-sample shape {input_shape} (size {size}) into {tuple(dims)}: "
                f"{size} is not divisible by {known}"
            )
        return tuple(size // known if d == -1 else d for d in dims)
    if known != size:
        raise PlanError(
            f"cannot reshape per-sample shape {input_shape} into {tuple(dims)}: sizes {size} and "
            f"{known} differ. Use -1 for one inferred dimension"
        )
    return tuple(dims)


@register
class Reshape(Layer):
    Spec = ReshapeSpec

    def output_shape(self, input_shape: Shape) -> Shape:
        return resolve_dims(self.spec.dims, input_shape)

    def forward(self, x, mask, ctx: Context):
        out = resolve_dims(self.spec.dims, x.shape[1:])
        return x.reshape((x.shape[0], *out)), None, (x.shape if ctx.keep_cache else None)

    def backward(self, dy, in_shape, ctx):
        return dy.reshape(in_shape), {}

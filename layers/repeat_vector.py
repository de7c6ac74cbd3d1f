"""RepeatVector: (batch, features) -> (batch, n, features)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, PositiveInt

from layers.base import Context, Layer, PlanError, Shape, SpecBase
from layers.registry import register


class RepeatVectorSpec(SpecBase):
    """Input shape (features,); output shape (n, features)."""

    type: Literal["RepeatVector"] = "RepeatVector"
    n: PositiveInt = Field(description="Number of repetitions (the new time axis).")


@register
class RepeatVector(Layer):
    Spec = RepeatVectorSpec

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise PlanError(
                f"RepeatVector expects 2D input (batch, features), got per-sample "
                f"shape {input_shape}: Flatten first"
            )
        return (self.spec.n, input_shape[0])

    def forward(self, x, mask, ctx: Context):
        y = np.broadcast_to(x[:, None, :], (x.shape[0], self.spec.n, x.shape[1]))
        return np.ascontiguousarray(y), None, None

    def backward(self, dy, cache, ctx):
        return dy.sum(axis=1), {}  # each input feeds n steps: gradients add up

"""TimeDistributedDense: the same Dense applied at every timestep of (batch, steps, features)."""

from __future__ import annotations

from typing import Literal

from layers.base import PlanError, Shape
from layers.dense import AffineLayer, DenseSpec
from layers.registry import register


class TimeDistributedDenseSpec(DenseSpec):
    """Input shape (steps, input_dim); output shape (steps, output_dim). Passes masks through."""

    type: Literal["TimeDistributedDense"] = "TimeDistributedDense"  # type: ignore[assignment]


@register
class TimeDistributedDense(AffineLayer):
    Spec = TimeDistributedDenseSpec
    passes_mask = True  # masked steps are still computed (legacy), the mask travels on

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 2:
            raise PlanError(
                "TimeDistributedDense expects 3D input (batch, steps, features), got per-sample "
                f"shape {input_shape}: use Dense for 2D input, or RepeatVector to make steps"
            )
        return (input_shape[0], self.spec.output_dim)

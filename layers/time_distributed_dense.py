"""TimeDistributedDense: the same Dense applied at every timestep of (batch, steps, features)."""

from __future__ import annotations

from typing import Literal

from layers.base import Context, PlanError, Shape
from layers.dense import AffineLayer, DenseSpec
from layers.registry import register
from layers.steps import Affine, DeferredSteps


class TimeDistributedDenseSpec(DenseSpec):
    """Input shape (steps, input_dim); output shape (steps, output_dim). Passes masks through."""

    type: Literal["TimeDistributedDense"] = "TimeDistributedDense"  # type: ignore[assignment]


@register
class TimeDistributedDense(AffineLayer):
    Spec = TimeDistributedDenseSpec
    # Masked steps are computed (legacy) and the mask travels on, unless the plan defers the
    # steps to a reader that skips them (forward_deferred).
    passes_mask = True

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 2:
            raise PlanError(
                "TimeDistributedDense expects 3D input (batch, steps, features), got per-sample "
                f"shape {input_shape}: use Dense for 2D input, or RepeatVector to make steps"
            )
        return (input_shape[0], self.spec.output_dim)

    def defers(self, input_shape) -> str | None:
        # an activity penalty would need every output
        return "steps" if self.spec.activity_regularizer is None else None

    def forward_deferred(self, x, mask, ctx: Context):
        """Each step's ``activation(x @ W + b)``, computed later by the reader, block by block
        and only at kept steps (``layers.steps``)."""
        steps = x if isinstance(x, DeferredSteps) else DeferredSteps(x, mask)
        affine = Affine(self.params["W"], self.params["b"], self.spec.activation)
        return steps.then(self._rows, self.spec.output_dim, affine), mask, None

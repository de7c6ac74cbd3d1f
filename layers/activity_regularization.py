"""ActivityRegularization: the identity, plus an l1/l2 penalty on its output."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from layers import regularizers
from layers.base import Context, Layer, Shape, SpecBase
from layers.registry import register
from layers.regularizers import Regularizer


class ActivityRegularizationSpec(SpecBase):
    """Any input shape; output the same. Penalty = (l1*sum|y| + l2*sum y^2) / batch size."""

    type: Literal["ActivityRegularization"] = "ActivityRegularization"
    l1: float = Field(default=0.0, ge=0, description="L1 coefficient.")
    l2: float = Field(default=0.0, ge=0, description="L2 coefficient.")


@register
class ActivityRegularization(Layer):
    Spec = ActivityRegularizationSpec
    passes_mask = True  # identity: as Keras 1.0+, a mask goes through unchanged

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def _reg(self) -> Regularizer:
        return Regularizer(l1=self.spec.l1, l2=self.spec.l2)

    def forward(self, x, mask, ctx: Context):
        return x, mask, (x if ctx.keep_cache else None)

    def activity_penalties(self, y, cache) -> dict[str, float]:
        return {f"{self.name}/activity": regularizers.activity_penalty(self._reg(), y)}

    def backward(self, dy, x, ctx):
        return dy + regularizers.activity_penalty_grad(self._reg(), x), {}

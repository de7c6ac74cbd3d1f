"""Masking: a timestep whose features all equal ``mask_value`` is masked and zeroed."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from layers import kernels
from layers.base import Context, Layer, PlanError, Shape, SpecBase
from layers.registry import register


class MaskingSpec(SpecBase):
    """Input shape (steps, features) or any rank >= 1; output the same, plus a mask of
    shape input[:-1] (True = keep)."""

    type: Literal["Masking"] = "Masking"
    mask_value: float = Field(default=0.0, description="Feature value that marks padding.")


@register
class Masking(Layer):
    Spec = MaskingSpec

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 1:
            raise PlanError("Masking needs at least one feature axis")
        return input_shape

    def output_mask(self, input_shape, has_mask) -> bool:
        return True  # replaces any incoming mask

    def _keep(self, x: np.ndarray) -> np.ndarray:
        # Exact comparison in x's dtype; NaN never equals, so NaN steps are kept (legacy).
        keep = kernels.any_not_equal(x, self.spec.mask_value)  # one early-exit pass
        if keep is None:
            keep = np.any(x != x.dtype.type(self.spec.mask_value), axis=-1)
        return keep

    def forward(self, x, mask, ctx: Context):
        keep = self._keep(x)
        y = x * keep[..., None]
        return y, keep, (keep if ctx.keep_cache else None)

    def defers(self, input_shape) -> str | None:
        return "steps"

    def forward_deferred(self, x, mask, ctx: Context):
        """The mask alone: every reader reads only the kept steps, so the masked ones are
        left as they are instead of zeroed (runner.graph.fusion)."""
        return x, self._keep(x), None

    def backward(self, dy, keep, ctx):
        return dy * keep[..., None], {}

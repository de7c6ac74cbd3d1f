"""Activation: applies a named activation elementwise (softmax: over the last axis)."""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field

from layers import activations
from layers.activations import ActivationName
from layers.base import Context, Layer, PlanError, Shape, SpecBase
from layers.registry import register


class ActivationSpec(SpecBase):
    """Any input shape; output the same. Passes masks through."""

    type: Literal["Activation"] = "Activation"
    activation: ActivationName = Field(description="Name of the activation function.")


class ActivationCache(NamedTuple):
    x: np.ndarray  # the input
    y: np.ndarray  # the output


@register
class Activation(Layer):
    Spec = ActivationSpec
    passes_mask = True

    def output_shape(self, input_shape: Shape) -> Shape:
        if self.spec.activation == "softmax" and len(input_shape) not in (1, 2):
            raise PlanError(
                f"softmax needs 2D or 3D input (batch, [steps,] features), got per-sample "
                f"shape {input_shape}"
            )
        return input_shape

    def forward(self, x, mask, ctx: Context):
        y = activations.get(self.spec.activation).forward(x)
        return y, mask, (ActivationCache(x, y) if ctx.keep_cache else None)

    def backward(self, dy, cache: ActivationCache, ctx):
        return activations.get(self.spec.activation).backward(cache.x, cache.y, dy), {}

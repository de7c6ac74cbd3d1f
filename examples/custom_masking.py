"""CustomMasking: the reference custom layer, a worked example of a layer plugin.

A timestep is masked when **every** feature is ``>= mask_value``; it is kept as soon as any
feature is below it (the built-in Masking needs every feature to *equal* the value). Masked
steps are zeroed and the mask travels on, so a TimeDistributedMerge later leaves them out. The
reference cases, both with ``mask_value: 5``:

- ``[[[3, 4, 5], [5, 6, 7], [5, 5, 5]]]`` gives ``[[[3, 4, 5], [0, 0, 0], [0, 0, 0]]]`` with
  mask ``[[1, 0, 0]]`` (only the first step has a feature below 5);
- ``[[[6, 7, 8], [5, 1, 2], [1, 2, 3]]]`` gives ``[[[0, 0, 0], [5, 1, 2], [1, 2, 3]]]`` with
  mask ``[[0, 1, 1]]``.

The gradient follows the data: ``dy`` on kept steps, 0 on masked ones (the mask is a constant
of the input, as in Masking).

Use it from a config::

    plugins: [examples.custom_masking]
    layers:
      cm: {type: CustomMasking, mask_value: 5}

Writing your own layer is the same four steps as here: a spec (a pydantic model with a
``type`` literal equal to the class name, strict like every spec), a Layer subclass with
``output_shape`` (and ``output_mask`` if it makes or passes masks), ``forward`` returning
``(y, mask, cache)`` with the cache only when ``ctx.keep_cache``, a ``backward`` returning
``(dx, grads)``, and ``@register`` on the class.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from layers.base import Context, Layer, PlanError, Shape, SpecBase
from layers.registry import register


class CustomMaskingSpec(SpecBase):
    """Input shape (steps, features) or any rank >= 1; output the same, plus a mask."""

    type: Literal["CustomMasking"] = "CustomMasking"
    mask_value: float = Field(
        default=0.0,
        description="A step is masked when every feature is >= this value "
        "(kept when any feature is below it).",
    )


@register
class CustomMasking(Layer):
    Spec = CustomMaskingSpec

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 1:
            raise PlanError("CustomMasking needs at least one feature axis")
        return input_shape

    def output_mask(self, input_shape: Shape, has_mask: bool) -> bool:
        return True  # makes a mask (any incoming one is replaced, as Masking does)

    def forward(self, x, mask, ctx: Context):
        # kept when any feature is below mask_value; masked when every feature is >= it
        keep = np.any(x < x.dtype.type(self.spec.mask_value), axis=-1)  # (batch, steps)
        y = x * keep[..., None]
        return y, keep, (keep if ctx.keep_cache else None)

    def backward(self, dy, keep, ctx: Context):
        # y = x * keep with keep constant almost everywhere: dx = dy on kept steps, 0 on masked
        return dy * keep[..., None], {}


# Its ONNX form, for `layer-runner export-onnx` (registering imports neither onnx nor a model).
from runner.interop.onnx_export.registry import onnx_emitter  # noqa: E402


@onnx_emitter("CustomMasking")
def _to_onnx(g, layer: CustomMasking, x: str, mask: str | None, shape: Shape):
    """keep = any(x < mask_value) over the features; y = x * keep (as forward above)."""
    keep = g.any_last(g.op("Less", x, g.const(layer.spec.mask_value)))  # (batch, steps)
    y = g.op("Mul", x, g.op("Unsqueeze", g.cast(keep), g.ints(-1)))
    return y, keep

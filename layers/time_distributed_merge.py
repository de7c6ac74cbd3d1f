"""TimeDistributedMerge: sum, mul or ave over the time axis; masked steps are left out.

Extension of the legacy layer (as modern Keras pooling): with a mask, masked steps do not
contribute, and ``ave`` divides by the number of kept steps (0 when none is kept).
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field

from layers import parallel
from layers.base import Context, Layer, PlanError, Shape, SpecBase
from layers.registry import register
from layers.steps import DeferredSteps, segment_sums


class TimeDistributedMergeSpec(SpecBase):
    """Input shape (steps, features); output shape (features,). Consumes a mask."""

    type: Literal["TimeDistributedMerge"] = "TimeDistributedMerge"
    mode: Literal["sum", "mul", "ave"] = Field(default="sum", description="Reduction over time.")


class TimeDistributedMergeCache(NamedTuple):
    x: np.ndarray  # the input, masked steps already set to the neutral element
    mask: np.ndarray | None


@register
class TimeDistributedMerge(Layer):
    Spec = TimeDistributedMergeSpec

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 2:
            raise PlanError(
                f"TimeDistributedMerge expects 3D input (batch, steps, features), "
                f"got per-sample shape {input_shape}"
            )
        return (input_shape[1],)

    def output_mask(self, input_shape, has_mask) -> bool:
        return False  # consumes the mask

    def reads_deferred(self, kind: str) -> bool:
        return kind == "steps"  # every mode reduces over the kept steps only

    def forward(self, x, mask, ctx: Context):
        mode = self.spec.mode
        if isinstance(x, DeferredSteps):
            return self._reduce_deferred(x), None, None
        if mask is not None and (mode == "mul" or ctx.keep_cache):
            keep = mask[..., None]  # (batch, steps, 1)
            # Masked steps become the neutral element of the reduction.
            x = np.where(keep, x, x.dtype.type(1 if mode == "mul" else 0))
        if mode == "mul":
            y = x.prod(axis=1)
        elif mask is not None and not ctx.keep_cache:
            # Masked sum as a batched (1, steps) @ (steps, features) product: no masked copy
            # of x is made (np.where over all of x costs more than the reduction itself).
            y = (mask[:, None, :].astype(x.dtype) @ x)[:, 0]  # (batch, features)
        else:
            y = x.sum(axis=1)
        if mode == "ave":
            count = x.shape[1] if mask is None else mask.sum(axis=1, keepdims=True)
            y = y / np.maximum(count, 1).astype(x.dtype)
        return y, None, (TimeDistributedMergeCache(x, mask) if ctx.keep_cache else None)

    def _reduce_deferred(self, x: DeferredSteps) -> np.ndarray:
        """The reduction of a DeferredSteps, block by block while each block is in cache,
        the blocks shared between two threads (layers.parallel)."""
        n, steps, features = x.shape
        dtype = x.dtype
        y = np.empty((n, features), dtype=dtype)
        mode = self.spec.mode
        local = threading.local()  # each thread's buffers, reused by its blocks

        def reduce(lo: int, hi: int) -> None:
            if not hasattr(local, "buffers"):
                local.buffers = x.buffers()
            rows, counts = x.block(lo, hi, local.buffers)
            out = y[lo:hi]
            if counts is None:  # every step: rows are (samples * steps, features)
                r3 = rows.reshape(hi - lo, steps, features)
                (np.multiply if mode == "mul" else np.add).reduce(r3, axis=1, out=out)
                if mode == "ave":
                    np.divide(out, dtype.type(steps), out=out)
            elif mode == "mul":
                starts = np.cumsum(counts) - counts
                for i, (start, count) in enumerate(zip(starts, counts)):
                    np.multiply.reduce(rows[start : start + count], axis=0, out=out[i])
            else:  # sum (or mean) of each sample's kept rows
                segment_sums(rows, counts, out)
                if mode == "ave":
                    np.divide(out, np.maximum(counts, 1).astype(dtype)[:, None], out=out)

        if x.mask is not None:
            x.kept_rows()  # once, before the threads share it
        parallel.run([partial(reduce, lo, hi) for lo, hi in x.block_ranges()])
        return y

    def backward(self, dy, cache: TimeDistributedMergeCache, ctx):
        x, mask = cache.x, cache.mask
        mode = self.spec.mode
        steps = x.shape[1]
        if mode == "sum":
            dx = np.repeat(dy[:, None, :], steps, axis=1)
        elif mode == "ave":
            count = steps if mask is None else mask.sum(axis=1, keepdims=True)
            dx = np.repeat((dy / np.maximum(count, 1).astype(dy.dtype))[:, None, :], steps, axis=1)
        else:  # product rule, without dividing (zeros in x are fine)
            dx = np.empty_like(x)
            for t in range(steps):
                others = np.delete(x, t, axis=1).prod(axis=1)
                dx[:, t] = dy * others
        if mask is not None:
            dx = dx * mask[..., None]
        return dx, {}

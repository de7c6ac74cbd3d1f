"""Deferred timesteps: a per-step layer whose every reader only reduces over the steps.

When the plan finds a TimeDistributedDense (a *producer*) whose output is read only by layers
that reduce over the steps and skip masked ones (TimeDistributedMerge, a *consumer*), the
producer does not compute its output up front: it hands on a ``DeferredSteps``, and the consumer
runs the chain block by block over the samples (``blocks``), so that:

- masked steps never go through the GEMM (only the kept rows are gathered: issue 15, W3);
- when the chain starts with an affine layer (``Affine``), the gather appends a column of ones
  to the kept rows and the GEMM multiplies by W with b as its last row: the bias is added
  inside the GEMM (K + 1 costs what K does) instead of by a pass over its output;
- each block's GEMM output gets its bias, activation and the reduction while it is still in
  the cache, and the full ``(batch, steps, features)`` output is never written (W2).

The plan takes this decision (``runner.graph.fusion``) only on the predict path: training keeps
every layer's output for the backward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from layers import activations, kernels
from layers.deferred import Deferred

#: Values per block of the widest layer in the chain: 256 Ki float32 = 1 MB, which stays in
#: the L2 cache while bias, activation and reduction run over it.
BLOCK_ELEMENTS = 1 << 18

RowsFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rows, out buffer) -> rows out


@dataclass(frozen=True)
class Affine:
    """A per-step function that is ``activation(rows @ weight + bias)``."""

    weight: np.ndarray  # (d, width)
    bias: np.ndarray  # (width,)
    activation: str

    def with_bias_row(self) -> RowsFn:
        """The same function for rows that end in a column of ones."""
        weight = np.concatenate([self.weight, self.bias[None]])  # (d + 1, width)

        def rows_fn(rows: np.ndarray, out: np.ndarray) -> np.ndarray:
            return activations.apply_(self.activation, np.matmul(rows, weight, out=out))

        return rows_fn


@dataclass
class DeferredSteps(Deferred):
    """The output of a chain of per-step layers, computed only when read by blocks."""

    kind = "steps"

    x: np.ndarray  # (batch, steps, features in): what the first layer of the chain reads
    mask: np.ndarray | None  # (batch, steps), True = kept; None: every step counts
    fns: list[RowsFn] = field(default_factory=list)  # each maps rows (r, d_in) to (r, d_out)
    widths: list[int] = field(default_factory=list)  # d_out of each function
    first: Affine | None = None  # what fns[0] computes, when it is affine
    _kept: tuple | None = field(default=None, repr=False)  # see kept_rows

    @property
    def shape(self) -> tuple[int, ...]:
        """The full shape the chain's output would have."""
        return (*self.x.shape[:2], self.widths[-1] if self.widths else self.x.shape[2])

    @property
    def dtype(self) -> np.dtype:
        return self.x.dtype

    def then(self, fn: RowsFn, width: int, affine: Affine | None = None) -> DeferredSteps:
        """This chain followed by one more per-step function of output width ``width``
        (``affine``: what ``fn`` computes, when it is ``activation(rows @ W + b)``)."""
        first = self.first if self.fns else affine
        return DeferredSteps(self.x, self.mask, [*self.fns, fn], [*self.widths, width], first)

    def materialize(self) -> np.ndarray:
        """The whole output, every step computed (masked ones too, as the layers would)."""
        n, steps, d = self.x.shape
        rows = self.x.reshape(-1, d)  # (batch * steps, d)
        for fn, width in zip(self.fns, self.widths):
            rows = fn(rows, np.empty((rows.shape[0], width), dtype=self.x.dtype))
        return rows.reshape(n, steps, -1)

    def block_ranges(self) -> list[tuple[int, int]]:
        """``[lo, hi)`` sample ranges whose widest layer output is about ``BLOCK_ELEMENTS``."""
        n, steps, d = self.x.shape
        per_block = max(1, BLOCK_ELEMENTS // (steps * max([d, *self.widths])))
        return [(lo, min(n, lo + per_block)) for lo in range(0, n, per_block)]

    def buffers(self) -> list[np.ndarray]:
        """One output buffer per function, for the blocks of one thread (reused by each), and
        one for the input rows with a column of ones when the chain starts with an Affine."""
        lo, hi = self.block_ranges()[0]
        rows = (hi - lo) * self.x.shape[1]
        buffers = [np.empty((rows, w), dtype=self.x.dtype) for w in self.widths]
        if self.first is not None and self.mask is None:  # the input rows with a ones column
            with_ones = np.empty((rows, self.x.shape[2] + 1), dtype=self.x.dtype)
            with_ones[:, -1] = 1
            buffers.append(with_ones)
        return buffers

    def block(
        self, lo: int, hi: int, buffers: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The chain's output at the kept steps of samples ``[lo, hi)``, in sample order
        (``(kept, features)``; ``(hi - lo) * steps`` rows without a mask), and how many steps
        each sample kept (None without a mask)."""
        fns = self.fns
        if self.mask is None:
            rows, counts = self.x[lo:hi].reshape(-1, self.x.shape[2]), None  # (samples*steps, d)
            if self.first is not None:  # copied next to the ones column: no bias pass
                with_ones = buffers[-1][: rows.shape[0]]
                with_ones[:, :-1] = rows
                rows, fns = with_ones, self.fns_with_bias_row
        else:
            kept, counts_all, ends = self.kept_rows()
            counts = counts_all[lo:hi]
            rows = kept[ends[lo] - counts_all[lo] : ends[hi - 1]]
            if rows.shape[1] > self.x.shape[2]:  # gathered with a ones column
                fns = self.fns_with_bias_row
        for fn, buffer in zip(fns, buffers):
            rows = fn(rows, buffer[: rows.shape[0]])
        return rows, counts

    def kept_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kept steps of every sample, gathered once in sample order (with a column of
        ones appended when the chain starts with an ``Affine``), their counts per sample and
        the cumulative counts (where each sample's rows end). Needs a mask. A
        consumer calls it once before threads share this chain, so none gathers twice."""
        if self._kept is None:
            counts = self.mask.sum(axis=1)
            kept = None
            if self.first is not None:  # (kept, d + 1) in one pass, when numba is there
                x2 = self.x.reshape(-1, self.x.shape[2])
                kept = kernels.kept_rows_with_ones(x2, self.mask.reshape(-1))
            if kept is None:
                kept = self.x[self.mask]  # (kept, d)
            self._kept = (kept, counts, np.cumsum(counts))  # (kept, d or d + 1), (n,), (n,)
        return self._kept

    @cached_property
    def fns_with_bias_row(self) -> list[RowsFn]:
        """``fns`` for rows that end in a column of ones (the chain starts with an Affine)."""
        return [self.first.with_bias_row(), *self.fns[1:]]

    def blocks(self) -> Iterator[tuple[int, int, np.ndarray, np.ndarray | None]]:
        """``(lo, hi, rows, counts)`` of every block in turn, on this thread."""
        buffers = self.buffers()
        for lo, hi in self.block_ranges():
            yield (lo, hi, *self.block(lo, hi, buffers))


def segment_sums(rows: np.ndarray, counts: np.ndarray, out: np.ndarray) -> None:
    """``out[i]`` = the sum of sample i's rows (``counts[i]`` consecutive rows; 0 if none)."""
    end = 0
    for i, count in enumerate(counts.tolist()):
        np.add.reduce(rows[end : end + count], axis=0, out=out[i])
        end += count

"""Batches of rows for training and evaluation, cut from arrays in memory or from
memory-mapped files (a ``.npy`` or a glob of shards) that stream from disk.

**The epoch order** (``fit.shuffle``, ``fit.shuffle_block``; ``rng`` is the run's shuffle
stream, ``runner.streams.shuffle_rng``, one Generator for every epoch in turn):

- ``shuffle: false``: rows ``0 .. n-1`` in order.
- ``shuffle: true`` without a block: ``rng.permutation(n)``, every row anywhere (reads from a
  mapped file jump around it).
- ``shuffle: true``, ``shuffle_block: B``: the rows are cut into blocks of ``B`` consecutive
  rows ``[0, B), [B, 2B), ...`` (the last may be shorter). The epoch first draws the order of
  the blocks, ``rng.permutation(n_blocks)``, then, for each block in that order, the order of
  its rows, ``start + rng.permutation(rows_in_block)``. The epoch's order is these blocks one
  after another, so a file is read one block at a time, each block from one region of it.

Batches are consecutive slices of ``batch_size`` rows of the epoch's order (a batch may span
two blocks; the last batch may be shorter). The order depends only on the seed, the row count
and these settings: it is the same whether the rows are in memory or mapped from disk.

**Memory.** Rows of a mapped array are copied batch by batch (cast to the run's dtype); the
kernel is asked to read the next block ahead, and the pages of rows already read are dropped
from this process after every ``WINDOW_BYTES`` read (and at the end of each block), so the
resident memory of a stream stays below about ``WINDOW_BYTES`` plus one batch. Mapped rows
are checked for NaN/Inf as they stream, during the first pass over them.
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from runner.data.mapped import is_streamed, prefetch_rows, release_rows
from runner.data.shards import ShardedArray
from runner.errors import DataError

#: Bytes of a mapped array's pages read before they are dropped from this process.
WINDOW_BYTES = 32 * 2**20
#: A block larger than this is not read ahead whole (a row shuffle is one block of every row).
PREFETCH_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Column:
    """One array batches are cut from: in memory (cast and checked already) or streamed."""

    array: Any  # np.ndarray, np.memmap or ShardedArray; rows first
    dtype: np.dtype  # each batch is cast to it
    path: str  # config path, for the NaN/Inf message
    file: str | None = None

    @property
    def rows(self) -> int:
        return int(self.array.shape[0])

    @property
    def streamed(self) -> bool:
        return is_streamed(self.array)

    @property
    def row_bytes(self) -> int:
        return math.prod(self.array.shape[1:]) * self.array.dtype.itemsize

    def part(self, lo: int, hi: int) -> Column:
        """Rows ``[lo, hi)``, without reading them (a view of the array or of its shards)."""
        a = self.array
        return replace(self, array=a.rows(lo, hi) if isinstance(a, ShardedArray) else a[lo:hi])

    def mean(self) -> np.ndarray:
        """The per-sample mean over every row, in float64, read batch by batch."""
        total = np.zeros(self.array.shape[1:], np.float64)
        step = max(WINDOW_BYTES // max(self.row_bytes, 1), 1) if self.streamed else self.rows
        for lo in range(0, self.rows, max(step, 1)):
            hi = min(self.rows, lo + step)
            total += np.asarray(self.array[lo:hi], dtype=self.dtype).sum(axis=0, dtype=np.float64)
            release_rows(self.array, lo, hi)
        return total / max(self.rows, 1)


class Segment(NamedTuple):
    """Rows ``lo .. hi-1`` taken in the order ``lo + perm`` (``perm`` None: in order)."""

    lo: int
    hi: int
    perm: np.ndarray | None


def epoch_segments(
    rows: int, shuffle: bool, block: int | None, rng: np.random.Generator | None
) -> list[Segment]:
    """One epoch's order of rows as segments (see the module docstring)."""
    if not shuffle or rng is None:
        return [Segment(0, rows, None)]
    if block is None or block >= rows:
        if block is None:
            return [Segment(0, rows, rng.permutation(rows))]
        block = rows
    n_blocks = math.ceil(rows / block)
    segments = []
    for k in rng.permutation(n_blocks):
        lo = int(k) * block
        hi = min(rows, lo + block)
        segments.append(Segment(lo, hi, rng.permutation(hi - lo)))
    return segments


class Feeder:
    """Cuts batches of ``batch_size`` rows from input and target columns of equal rows."""

    def __init__(
        self, inputs: dict[Any, Column], targets: dict[Any, Column], batch_size: int
    ) -> None:
        self.inputs, self.targets, self.batch = inputs, targets, batch_size
        self.columns = [*inputs.values(), *targets.values()]
        self.rows = self.columns[0].rows
        self.streams = [c for c in self.columns if c.streamed]
        self.checked = False  # streamed rows are checked for NaN/Inf in the first pass

    def batches(
        self, segments: list[Segment]
    ) -> Iterator[tuple[int, dict[Any, np.ndarray], dict[Any, np.ndarray]]]:
        """(rows, input batch, target batch) for each batch of the epoch ``segments``."""
        touched = [0] * len(segments)  # page bytes read per segment since its last release
        pending: list[tuple[int, int, int]] = []  # (segment, start, stop) of the next batch
        need = self.batch
        for s, seg in enumerate(segments):
            self._prefetch(segments, s)
            start = 0
            while start < seg.hi - seg.lo:
                stop = min(seg.hi - seg.lo, start + need)
                pending.append((s, start, stop))
                need -= stop - start
                start = stop
                if need == 0:
                    yield self._batch(segments, pending, touched)
                    pending, need = [], self.batch
        if pending:
            yield self._batch(segments, pending, touched)
        self.checked = True

    def _batch(self, segments, pieces, touched):
        rows = sum(stop - start for _, start, stop in pieces)
        feeds = {k: self._take(c, segments, pieces) for k, c in self.inputs.items()}
        targets = {k: self._take(c, segments, pieces) for k, c in self.targets.items()}
        if self.streams:
            self._release(segments, pieces, touched)
        return rows, feeds, targets

    def _take(self, column: Column, segments, pieces) -> np.ndarray:
        parts = []
        for s, start, stop in pieces:
            seg = segments[s]
            if seg.perm is None:
                parts.append(column.array[seg.lo + start : seg.lo + stop])
            else:
                parts.append(column.array[seg.lo + seg.perm[start:stop]])
        x = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if not column.streamed:
            return x  # cast and checked when it was loaded
        with np.errstate(over="ignore", invalid="ignore"):  # overflow to Inf is reported below
            x = np.asarray(x, dtype=column.dtype)
        if not self.checked and x.dtype.kind == "f" and not np.isfinite(x).all():
            raise DataError.one(
                column.path,
                "contains NaN or Inf values (found while streaming the rows); clean the data",
                column.file,
            )
        return x

    def _prefetch(self, segments: list[Segment], s: int) -> None:
        """Ask for this block and the next ahead, when they are small enough to hold."""
        for seg in segments[s : s + 2]:
            for c in self.streams:
                if (seg.hi - seg.lo) * c.row_bytes <= PREFETCH_BYTES:
                    prefetch_rows(c.array, seg.lo, seg.hi)

    def _release(self, segments, pieces, touched) -> None:
        row_pages = max(c.row_bytes for c in self.streams) + mmap.PAGESIZE  # pages a row spans
        for s, start, stop in pieces:
            seg = segments[s]
            if seg.perm is None:  # in order: drop exactly the rows read
                for c in self.streams:
                    release_rows(c.array, seg.lo + start, seg.lo + stop)
                continue
            touched[s] += (stop - start) * row_pages
            if touched[s] >= WINDOW_BYTES or stop == seg.hi - seg.lo:
                for c in self.streams:
                    release_rows(c.array, seg.lo, seg.hi)
                touched[s] = 0


def stream_bytes(columns: list[Column], batch: int) -> int:
    """Memory a Feeder over ``columns`` adds for its streamed ones: the pages it keeps mapped
    between releases, and each batch's copy in the run's dtype (counted by the plan's
    activations only for inputs, so counted here for targets too)."""
    streamed = [c for c in columns if c.streamed]
    if not streamed:
        return 0
    return WINDOW_BYTES + sum(
        batch * math.prod(c.array.shape[1:]) * c.dtype.itemsize for c in streamed
    )

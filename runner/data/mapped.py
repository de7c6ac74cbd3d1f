"""Memory-mapped data arrays (a ``.npy`` file, or a ``ShardedArray`` of several): which arrays
stream, and how their pages are fetched ahead and dropped from this process once read.

A mapped file's pages that this process has read count in its resident memory until it
unmaps them or tells the kernel it no longer needs them. Streaming code reads rows in order,
asks for the next rows ahead (``prefetch_rows``, MADV_WILLNEED: the kernel reads them while
we compute) and drops rows it is done with (``release_rows``, MADV_DONTNEED: the page cache
keeps them), so resident memory stays flat however large the files are.
"""

from __future__ import annotations

import mmap

import numpy as np

from runner.data.shards import ShardedArray


def is_streamed(a: object) -> bool:
    """Whether ``a`` is read from disk as it is used (never held whole in memory)."""
    return isinstance(a, (np.memmap, ShardedArray))


def release_rows(a: object, lo: int, hi: int) -> None:
    """Drop rows ``[lo, hi)`` of a memory-mapped array from this process's resident memory.

    Only for read-only or shared (written-back) maps: the kernel keeps their pages in the page
    cache (dirty ones are still written to the file), so nothing is lost, while a map read
    from end to end no longer counts fully in the process's RSS. Anything else: no-op.
    """
    _advise(a, lo, hi, mmap.MADV_DONTNEED, inner=True)


def prefetch_rows(a: object, lo: int, hi: int) -> None:
    """Ask the kernel to read rows ``[lo, hi)`` of a memory-mapped array ahead (no-op else)."""
    _advise(a, lo, hi, mmap.MADV_WILLNEED, inner=False)


def _advise(a: object, lo: int, hi: int, advice: int, inner: bool) -> None:
    if isinstance(a, ShardedArray):
        for part, p_lo, p_hi in a.parts(lo, hi):
            _advise(part, p_lo, p_hi, advice, inner)
        return
    mm = getattr(a, "_mmap", None)
    if (
        not isinstance(a, np.memmap)
        or mm is None
        or a.mode not in ("r", "r+", "w+")  # not copy-on-write: its pages hold changes
        or not hasattr(mm, "madvise")
        or not a.flags.c_contiguous
        or a.ndim == 0
        or hi <= lo
    ):
        return
    row_bytes = a.nbytes // max(a.shape[0], 1)
    offset = a.ctypes.data - np.frombuffer(mm, dtype=np.uint8).ctypes.data  # a's place in map
    start = offset + lo * row_bytes
    end = min(offset + hi * row_bytes, len(mm))
    start -= start % mmap.PAGESIZE
    if inner:  # whole pages only: a partial last page goes with the next rows
        end -= end % mmap.PAGESIZE
    if end > start:
        mm.madvise(advice, start, end - start)

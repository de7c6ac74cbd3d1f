"""Row blocks on two threads, each running the BLAS on one thread (the predict hot path).

NumPy's element-wise work (bias, activation, reductions) runs on the calling thread alone,
while the BLAS spreads each GEMM over the cores: between GEMMs, one core idles. Handing row
blocks to two threads that each run a block from end to end (its GEMM on a one-thread BLAS,
then its epilogue while the block is in cache) keeps both cores busy all the time; a GEMM
split by rows runs as fast as one GEMM on two BLAS threads.

As many threads run as the BLAS is set to use (OPENBLAS_NUM_THREADS, threadpoolctl): a
process limited to one BLAS thread stays on one thread. The BLAS's thread count is
process-wide, so it is set to 1 (through threadpoolctl, when installed) only for the length of
``run``, which one caller at a time may enter; without threadpoolctl, with one BLAS thread,
inside a worker, or while another caller is in ``run``, the tasks run one after the other on
the calling thread. NumPy's error state (``np.errstate``) is per thread: each task
runs under the caller's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

#: Below this many output values a layer runs on the calling thread: handing work to another
#: thread costs tens of microseconds.
MIN_ELEMENTS = 1 << 18

# Off unless LAYERS_ROW_BLOCKS=1. On a quiet 2-core machine (2026-11-30, benchmarks/run.py
# --ab-split) row blocks on two one-thread BLAS calls were 1.4-1.8x slower than one GEMM on a
# two-thread BLAS for W1-W5; they only gained while other processes held the cores.
ENABLED = os.environ.get("LAYERS_ROW_BLOCKS") == "1"
_busy = threading.Lock()  # one caller in ``run`` at a time (it changes the BLAS threads)
_local = threading.local()  # .inside: this thread runs a task of ``run``
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0  # a forked child inherits the pool object but not its threads: make a new one
_blas: Any = None  # threadpoolctl's BLAS controllers, False when unavailable


def _blas_controllers() -> Any:
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _blas = False
        else:
            _blas = ThreadpoolController().select(user_api="blas") or False
    return _blas


def threads() -> int:
    """How many threads ``run`` uses here and now (1: the calling thread alone)."""
    if not ENABLED or getattr(_local, "inside", False) or not _blas_controllers():
        return 1
    blas = max(c.get_num_threads() or 1 for c in _blas_controllers().lib_controllers)
    return max(1, min(blas, os.cpu_count() or 1))


def blocks(rows: int, parts: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` row ranges: ``parts`` nearly equal ones."""
    bounds = np.linspace(0, rows, min(parts, rows) + 1).astype(int)
    return [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def run(tasks: Sequence[Callable[[], None]]) -> None:
    """Run independent tasks (each writes its own rows) on ``threads()`` threads, taking them
    in order from a shared queue; the first exception is raised here."""
    n = threads() if len(tasks) > 1 else 1
    if n < 2 or not _busy.acquire(blocking=False):
        for task in tasks:
            task()
        return
    global _pool, _pool_size, _pool_pid
    try:
        if _pool is None or _pool_size < n - 1 or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(n - 1, thread_name_prefix="layers-parallel")
            _pool_size, _pool_pid = n - 1, os.getpid()
        queue = iter(tasks)
        taking = threading.Lock()
        errors = np.geterr()

        def worker() -> None:
            _local.inside = True
            try:
                with np.errstate(**errors):
                    while True:
                        with taking:
                            task = next(queue, None)
                        if task is None:
                            return
                        task()
            finally:
                _local.inside = False

        with _blas_controllers().limit(limits=1):
            futures = [_pool.submit(worker) for _ in range(n - 1)]
            worker()
            for future in futures:
                future.result()
    finally:
        _busy.release()


def split_rows(rows: int, width: int, task: Callable[[int, int], None]) -> None:
    """``task(lo, hi)`` over row blocks of ``rows``, on two threads when the output
    (``rows * width`` values) is large enough to gain from it."""
    n = threads() if rows * width >= MIN_ELEMENTS else 1
    if n < 2:
        task(0, rows)
        return
    # one block per thread: each GEMM call packs W again, so fewer, larger calls
    run([lambda lo=lo, hi=hi: task(lo, hi) for lo, hi in blocks(rows, n)])

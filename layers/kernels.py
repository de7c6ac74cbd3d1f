"""Fused element-wise kernels: one pass over memory where NumPy needs two.

NumPy runs every operation as its own pass: relu(z + b) is a bias pass and a relu pass,
relu's derivative ``dy * (y > 0)`` and Masking's ``any(x != value, axis=-1)`` build a bool
array first (and the latter reads every feature of every step, where the first one that
differs settles it). On arrays larger than the cache
each pass costs a full trip to memory, and that is most of a layer's time besides its GEMM.
With numba installed (the ``speed`` extra) these kernels do the same float operations in one
pass, on the calling thread (a second thread would share its core with the BLAS's spinning
worker, see docs/performance.md). The numbers are NumPy's, bit for bit, special values
included (``tests/test_kernels.py``); without numba, or with ``LAYERS_KERNELS=0``, or on small
arrays, every function declines (False or None) and the caller does the NumPy passes.

numba is imported and the kernels compiled on the first large call only (a plain run never
pays for it); the compiled code is cached on disk (numba's ``cache=True``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import numpy as np

#: Below this many values a kernel call is not worth it: NumPy's passes stay in cache.
MIN_ELEMENTS = 1 << 14

ENABLED = os.environ.get("LAYERS_KERNELS", "1") != "0"
_compiled: Any = None  # the kernels, or False when numba is not installed
_warm: set[tuple] = set()  # (kernel, argument types) already compiled: no need to hold Ctrl-C


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold Ctrl-C back until the block ends, then raise it as usual.

    numba compiles a kernel on its first call for a type, partly through LLVM callbacks: a
    KeyboardInterrupt raised in there is swallowed or surfaces as a traceback, and the run goes
    on. Python handlers run on the main thread only, so there the handler is swapped for one
    that notes the signal; on any other thread there is nothing to hold.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(signal.SIGINT, None)  # Python's default raises KeyboardInterrupt here
    elif caught and previous == signal.SIG_DFL:
        os.kill(os.getpid(), signal.SIGINT)


def _run(kernel: str, *args: Any) -> bool:
    """Run one kernel; False: numba is not installed. Its first call for some argument types
    (the one that compiles it, 10 us of handler swaps) runs with Ctrl-C held back."""
    key = (kernel, *(_numba_type(a) for a in args))
    if key in _warm:
        getattr(_compiled, kernel)(*args)
        return True
    with _ctrl_c_held():
        kernels = _kernels()
        if kernels:
            getattr(kernels, kernel)(*args)
            _warm.add(key)
    return bool(kernels)


def _numba_type(a: Any) -> Any:
    """What numba compiles a specialization for (dimensions and layout are fixed per kernel)."""
    if isinstance(a, np.ndarray):
        return a.dtype.char, a.flags.writeable, a.flags.aligned
    return type(a)


def _kernels() -> Any:
    global _compiled
    if _compiled is None:
        try:
            import numba
        except ImportError:
            _compiled = False
        else:
            _compiled = _compile(numba)
    return _compiled


def _compile(numba: Any) -> SimpleNamespace:
    jit = numba.njit(cache=True, nogil=True, boundscheck=False)

    @jit
    def bias_relu(z, b):  # z = np.maximum(z + b, 0): maximum keeps v when v >= 0 or v is NaN
        zero = z.dtype.type(0)
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                v = z[i, j] + b[j]
                z[i, j] = v if (v >= zero or v != v) else zero

    @jit
    def relu_grad(dy, y, out):  # out = dy * (y > 0): the product itself, so inf * 0 is NaN
        one, zero = dy.dtype.type(1), dy.dtype.type(0)
        for i in range(dy.shape[0]):
            for j in range(dy.shape[1]):
                out[i, j] = dy[i, j] * (one if y[i, j] > zero else zero)

    @jit
    def any_not_equal(x, value, keep):  # keep = np.any(x != value, axis=-1), stopping early
        for i in range(x.shape[0]):
            found = False
            for j in range(x.shape[1]):
                if x[i, j] != value:  # NaN != value: kept, as NumPy says
                    found = True
                    break
            keep[i] = found

    @jit
    def gather_with_ones(x, keep, out):  # out = [x[keep], 1]: the kept rows and a ones column
        width = x.shape[1]
        k = 0
        for i in range(x.shape[0]):
            if keep[i]:
                for j in range(width):
                    out[k, j] = x[i, j]
                out[k, width] = 1
                k += 1

    return SimpleNamespace(
        bias_relu=bias_relu,
        relu_grad=relu_grad,
        any_not_equal=any_not_equal,
        gather_with_ones=gather_with_ones,
    )


def _fits(*arrays: np.ndarray) -> bool:
    """Large enough, the same float dtype, C-contiguous: what the kernels are compiled for."""
    first = arrays[0]
    return (
        ENABLED
        and first.size >= MIN_ELEMENTS
        and first.dtype in (np.float32, np.float64)
        and all(a.dtype == first.dtype and a.flags.c_contiguous for a in arrays)
    )


def bias_relu_(z: np.ndarray, bias: np.ndarray) -> bool:
    """``z = max(z + bias, 0)`` in place, in one pass; False: not done (use NumPy)."""
    if not (_fits(z, bias) and bias.ndim == 1 and z.shape[-1] == bias.shape[0]):
        return False
    return _run("bias_relu", z.reshape(-1, z.shape[-1]), bias)


def relu_grad_into(dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> bool:
    """``out = dy * (y > 0)`` in one pass; False: not done (use NumPy)."""
    if not (_fits(dy, y, out) and dy.shape == y.shape == out.shape and dy.ndim >= 1):
        return False
    width = dy.shape[-1]
    return _run("relu_grad", dy.reshape(-1, width), y.reshape(-1, width), out.reshape(-1, width))


def any_not_equal(x: np.ndarray, value: float) -> np.ndarray | None:
    """``np.any(x != value, axis=-1)`` (Masking's keep mask) in one pass that stops at each
    row's first differing value; None: not done (use NumPy)."""
    if not (_fits(x) and x.ndim >= 2 and x.shape[-1] > 0):
        return None
    keep = np.empty(x.shape[:-1], dtype=bool)
    done = _run("any_not_equal", x.reshape(-1, x.shape[-1]), x.dtype.type(value), keep.reshape(-1))
    return keep if done else None


def kept_rows_with_ones(x2: np.ndarray, keep: np.ndarray) -> np.ndarray | None:
    """``np.concatenate([x2[keep], ones], axis=1)``, the kept rows in order with a column of
    ones appended, in one pass (NumPy needs a gather and a strided copy, 60% slower than the
    gather alone); None: not done."""
    if not (_fits(x2) and x2.ndim == 2 and keep.shape == x2.shape[:1] and keep.dtype == bool):
        return None
    out = np.empty((int(np.count_nonzero(keep)), x2.shape[1] + 1), dtype=x2.dtype)
    return out if _run("gather_with_ones", x2, np.ascontiguousarray(keep), out) else None

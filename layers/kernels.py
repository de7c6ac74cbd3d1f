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
from types import SimpleNamespace
from typing import Any

import numpy as np

#: Below this many values a kernel call is not worth it: NumPy's passes stay in cache.
MIN_ELEMENTS = 1 << 14

ENABLED = os.environ.get("LAYERS_KERNELS", "1") != "0"
_compiled: Any = None  # the kernels, or False when numba is not installed


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

    return SimpleNamespace(bias_relu=bias_relu, relu_grad=relu_grad, any_not_equal=any_not_equal)


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
    kernels = _kernels()
    if not kernels:
        return False
    kernels.bias_relu(z.reshape(-1, z.shape[-1]), bias)
    return True


def relu_grad_into(dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> bool:
    """``out = dy * (y > 0)`` in one pass; False: not done (use NumPy)."""
    if not (_fits(dy, y, out) and dy.shape == y.shape == out.shape and dy.ndim >= 1):
        return False
    kernels = _kernels()
    if not kernels:
        return False
    width = dy.shape[-1]
    kernels.relu_grad(dy.reshape(-1, width), y.reshape(-1, width), out.reshape(-1, width))
    return True


def any_not_equal(x: np.ndarray, value: float) -> np.ndarray | None:
    """``np.any(x != value, axis=-1)`` (Masking's keep mask) in one pass that stops at each
    row's first differing value; None: not done (use NumPy)."""
    if not (_fits(x) and x.ndim >= 2 and x.shape[-1] > 0):
        return None
    kernels = _kernels()
    if not kernels:
        return None
    keep = np.empty(x.shape[:-1], dtype=bool)
    kernels.any_not_equal(x.reshape(-1, x.shape[-1]), x.dtype.type(value), keep.reshape(-1))
    return keep

"""The workloads written by hand in NumPy: the reference of every ratio in benchmarks/run.py.

``HAND`` is the graph written for speed, as issue 15 describes it: one 2D GEMM per layer,
bias and activation in place on the GEMM's fresh output, masked steps gathered before the GEMM
(W3), the Siamese inputs stacked into one GEMM and the concat folded into the next GEMM (two
GEMMs on the halves of its W, W4). It is a fixed, simple reference: it does not preallocate
across calls, split work over threads or block for the cache; that is what the runtime may do.

``gemm_floor`` replays only the GEMM calls one run of a hand-written function made (same
operands, same order): the time no implementation on this BLAS can go below without doing
fewer multiply-adds, which is what "within what the BLAS allows" means in benchmarks/run.py.

``PLAIN`` is the idiomatic one-liner form of the same math (``np.maximum(x @ W + b, 0)``,
``(h * keep).sum(1) / count``): an independent formulation that every other column is
checked against before anything is timed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_recorded: list[tuple[np.ndarray, np.ndarray]] | None = None  # set while gemm_floor records


def gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b``, every GEMM of the hand-written code goes through here (see ``gemm_floor``)."""
    if _recorded is not None:
        _recorded.append((a, b))
    return a @ b


def gemm_floor(fn: Callable[..., Any], *args: Any) -> Callable[[], None]:
    """A function that makes only the GEMM calls one ``fn(*args)`` made, with its operands."""
    global _recorded
    _recorded = []
    try:
        fn(*args)
        calls = _recorded
    finally:
        _recorded = None
    if not calls:
        raise AssertionError(f"{getattr(fn, '__name__', fn)} made no GEMM through hand_numpy.gemm")

    def replay() -> None:
        for a, b in calls:
            a @ b  # a fresh output, as the hand-written code has

    return replay


def param_key(weights: dict[str, np.ndarray], layer: str, name: str) -> str:
    """The key of parameter ``name`` of the layer called ``layer`` (composites nest keys)."""
    found = [k for k in weights if k.split("/")[-1] == name and layer in k.split("/")[:-1]]
    if len(found) != 1:
        raise KeyError(f"expected one weight {layer}/.../{name}, found {found} in {list(weights)}")
    return found[0]


def param(weights: dict[str, np.ndarray], layer: str, name: str) -> np.ndarray:
    """The parameter ``name`` of the layer called ``layer``."""
    return weights[param_key(weights, layer, name)]


# ---- the fast hand-written form (the reference) ------------------------------------------------


def dense_(x2: np.ndarray, w: np.ndarray, b: np.ndarray, act: str = "linear") -> np.ndarray:
    """One 2D GEMM, then bias and activation in place on its output."""
    z = gemm(x2, w)
    z += b
    if act == "relu":
        np.maximum(z, 0, out=z)
    elif act == "tanh":
        np.tanh(z, out=z)
    elif act == "sigmoid":
        sigmoid_(z)
    elif act == "softmax":
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
    return z


def sigmoid_(z: np.ndarray) -> None:
    """sigmoid(z) = 0.5 * tanh(z / 2) + 0.5 in place: one transcendental, no overflow."""
    z *= np.float32(0.5)
    np.tanh(z, out=z)
    z *= np.float32(0.5)
    z += np.float32(0.5)


def hand_w1(w, x):
    h = dense_(x, param(w, "fc1", "W"), param(w, "fc1", "b"), "relu")
    h = dense_(h, param(w, "fc2", "W"), param(w, "fc2", "b"), "relu")
    return dense_(h, param(w, "out", "W"), param(w, "out", "b"), "softmax")


def hand_w2(w, x):
    n, steps, d = x.shape
    h = dense_(x.reshape(n * steps, d), param(w, "tdd", "W"), param(w, "tdd", "b"), "tanh")
    pooled = h.reshape(n, steps, -1).sum(axis=1)  # (n, features)
    pooled *= np.float32(1 / steps)
    return dense_(pooled, param(w, "out", "W"), param(w, "out", "b"))


def hand_w3(w, x):
    keep = x.any(axis=-1)  # (n, steps): a step is padding when all its features are 0
    kept = x[keep]  # (kept steps, d): only these go through the GEMM, in sample order
    h = dense_(kept, param(w, "tdd", "W"), param(w, "tdd", "b"), "tanh")
    counts = keep.sum(axis=1)
    ends = np.cumsum(counts)
    pooled = np.empty((x.shape[0], h.shape[1]), dtype=x.dtype)
    for i, (start, end) in enumerate(zip(ends - counts, ends)):  # each sample's kept rows
        np.add.reduce(h[start:end], axis=0, out=pooled[i])  # (np.add.reduceat: 6x slower)
    pooled /= np.maximum(counts, 1).astype(x.dtype)[:, None]
    return dense_(pooled, param(w, "out", "W"), param(w, "out", "b"))


def hand_w4(w, a, b):
    h = dense_(np.concatenate([a, b]), param(w, "shared", "W"), param(w, "shared", "b"), "relu")
    n = a.shape[0]
    out_w = param(w, "out", "W")
    half = out_w.shape[0] // 2
    z = gemm(h[:n], out_w[:half])  # concat([ha, hb], 1) @ W == ha @ W[:half] + hb @ W[half:]
    z += gemm(h[n:], out_w[half:])
    z += param(w, "out", "b")
    return z


def hand_w5(w, x):
    h = x
    for name in ("enc1", "enc2", "dec1"):
        h = dense_(h, param(w, name, "W"), param(w, name, "b"), "relu")
    return dense_(h, param(w, "dec2", "W"), param(w, "dec2", "b"), "sigmoid")


HAND = {"W1": hand_w1, "W2": hand_w2, "W3": hand_w3, "W4": hand_w4, "W5": hand_w5}


# ---- the idiomatic form (an independent check, never timed) -----------------------------------


def _relu(z):
    return np.maximum(z, 0)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def plain_w1(w, x):
    h = _relu(x @ param(w, "fc1", "W") + param(w, "fc1", "b"))
    h = _relu(h @ param(w, "fc2", "W") + param(w, "fc2", "b"))
    return _softmax(h @ param(w, "out", "W") + param(w, "out", "b"))


def plain_w2(w, x):
    h = np.tanh(x @ param(w, "tdd", "W") + param(w, "tdd", "b"))
    return h.mean(axis=1) @ param(w, "out", "W") + param(w, "out", "b")


def plain_w3(w, x):
    keep = (x != 0).any(axis=-1)
    h = np.tanh(x @ param(w, "tdd", "W") + param(w, "tdd", "b"))
    count = np.maximum(keep.sum(axis=1, keepdims=True), 1)
    pooled = (h * keep[..., None]).sum(axis=1) / count
    return pooled @ param(w, "out", "W") + param(w, "out", "b")


def plain_w4(w, a, b):
    shared_w, shared_b = param(w, "shared", "W"), param(w, "shared", "b")
    ha = _relu(a @ shared_w + shared_b)
    hb = _relu(b @ shared_w + shared_b)
    return np.concatenate([ha, hb], axis=1) @ param(w, "out", "W") + param(w, "out", "b")


def plain_w5(w, x):
    h = x
    for name in ("enc1", "enc2", "dec1"):
        h = _relu(h @ param(w, name, "W") + param(w, name, "b"))
    with np.errstate(over="ignore"):  # exp(-z) overflows to inf for z << 0: sigmoid is then 0
        return 1 / (1 + np.exp(-(h @ param(w, "dec2", "W") + param(w, "dec2", "b"))))


PLAIN = {"W1": plain_w1, "W2": plain_w2, "W3": plain_w3, "W4": plain_w4, "W5": plain_w5}

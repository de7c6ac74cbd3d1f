"""Optimizers, with the legacy Keras (0.3) update rules and defaults.

This is the only code that changes weights: ``step(params, grads)`` updates each parameter
array in place from its gradient (backward passes only compute gradients). Parameters and
gradients are keyed ``layer/param``; a parameter without a gradient is left alone.

Update rules (``g`` the gradient, ``t`` the 1-based step):
- sgd:     lr_t = lr / (1 + decay * (t - 1)); v = momentum * v - lr_t * g;
           p += v, or with nesterov p += momentum * v - lr_t * g
- rmsprop: a = rho * a + (1 - rho) * g^2;  p -= lr * g / sqrt(a + epsilon)
- adagrad: a = a + g^2;                     p -= lr * g / sqrt(a + epsilon)
- adam:    m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g^2;
           p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)
Before the update, ``clipnorm`` rescales every gradient by clipnorm / (global L2 norm of all
gradients) when that norm exceeds it, and ``clipvalue`` clips each element to +-clipvalue.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Legacy Keras defaults per optimizer (the settings each one accepts).
DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.01, "momentum": 0.0, "decay": 0.0, "nesterov": False},
    "rmsprop": {"lr": 0.001, "rho": 0.9, "epsilon": 1e-6},
    "adagrad": {"lr": 0.01, "epsilon": 1e-6},
    "adam": {"lr": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8},
}
COMMON = ("clipnorm", "clipvalue")


def settings(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The full settings of optimizer ``name``: ``given`` (None = default) over the defaults."""
    out = dict(DEFAULTS[name])
    for key, value in given.items():
        if value is not None and (key in out or key in COMMON):
            out[key] = value
    return out


class Optimizer:
    """One optimizer's state (slots per parameter) and its in-place update."""

    def __init__(self, name: str, **options: Any) -> None:
        self.name = name
        self.options = settings(name, options)
        self.iterations = 0
        self._slots: dict[str, tuple[np.ndarray, ...]] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        grads = self._clipped({k: g for k, g in grads.items() if k in params})
        self.iterations += 1
        update = getattr(self, f"_{self.name}")
        for key, g in grads.items():
            update(key, params[key], g)

    # ---- gradient clipping ------------------------------------------------------------
    def _clipped(self, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        clipnorm = self.options.get("clipnorm")
        clipvalue = self.options.get("clipvalue")
        if clipnorm:
            norm = math.sqrt(
                sum(float(np.square(g, dtype=np.float64).sum()) for g in grads.values())
            )
            if norm >= clipnorm:
                grads = {k: g * g.dtype.type(clipnorm / norm) for k, g in grads.items()}
        if clipvalue:
            grads = {
                k: np.clip(g, -g.dtype.type(clipvalue), g.dtype.type(clipvalue))
                for k, g in grads.items()
            }
        return grads

    def _slot(self, key: str, p: np.ndarray, count: int) -> tuple[np.ndarray, ...]:
        slots = self._slots.get(key)
        if slots is None:  # zeros, plus one scratch buffer so updates allocate nothing
            slots = self._slots[key] = tuple(np.zeros_like(p) for _ in range(count + 1))
        return slots

    # ---- update rules (each changes p in place) ----------------------------------------
    def _sgd(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        o, t = self.options, p.dtype.type
        lr = t(o["lr"] / (1.0 + o["decay"] * (self.iterations - 1)))
        momentum = t(o["momentum"])
        if momentum == 0:
            p -= lr * g  # v = -lr * g, and nesterov adds momentum * v = 0
            return
        v, tmp = self._slot(key, p, 1)
        v *= momentum
        np.multiply(g, lr, out=tmp)
        v -= tmp  # v = momentum * v - lr * g
        if o["nesterov"]:
            p += momentum * v
            p -= tmp
        else:
            p += v

    def _rmsprop(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        o, t = self.options, p.dtype.type
        a, tmp = self._slot(key, p, 1)
        a *= t(o["rho"])
        np.square(g, out=tmp)
        tmp *= t(1.0 - o["rho"])
        a += tmp
        self._scaled_step(p, g, a, tmp)

    def _adagrad(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        a, tmp = self._slot(key, p, 1)
        np.square(g, out=tmp)
        a += tmp
        self._scaled_step(p, g, a, tmp)

    def _scaled_step(self, p, g, a, tmp) -> None:
        """p -= lr * g / sqrt(a + epsilon) (legacy: epsilon inside the square root)."""
        t = p.dtype.type
        np.add(a, t(self.options["epsilon"]), out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        tmp *= t(self.options["lr"])
        p -= tmp

    def _adam(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        o, t = self.options, p.dtype.type
        b1, b2, n = o["beta_1"], o["beta_2"], self.iterations
        lr_t = t(o["lr"] * math.sqrt(1.0 - b2**n) / (1.0 - b1**n))
        m, v, tmp = self._slot(key, p, 2)
        m *= t(b1)
        np.multiply(g, t(1.0 - b1), out=tmp)
        m += tmp  # m = b1 * m + (1 - b1) * g
        v *= t(b2)
        np.square(g, out=tmp)
        tmp *= t(1.0 - b2)
        v += tmp  # v = b2 * v + (1 - b2) * g^2
        np.sqrt(v, out=tmp)
        tmp += t(o["epsilon"])
        np.divide(m, tmp, out=tmp)
        tmp *= lr_t
        p -= tmp


def assign(params: dict[str, np.ndarray], values: dict[str, np.ndarray]) -> None:
    """Set parameters to saved values in place (fit's restore-best)."""
    for key, value in values.items():
        params[key][...] = value

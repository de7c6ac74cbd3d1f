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
    """One optimizer's state and its in-place update.

    Every buffer an update needs is allocated once per parameter, on its first step: the
    optimizer's own state (``slot_names``: sgd's velocity ``v``, the accumulator ``a`` of
    rmsprop and adagrad, Adam's moments ``m`` and ``v``) and scratch buffers, so a step
    allocates no array. ``lr`` is the base learning rate, changed between
    steps by a schedule (``runner.train.schedules``); sgd's ``decay`` and Adam's bias
    correction apply on top of it, as in legacy Keras.
    """

    def __init__(self, name: str, **options: Any) -> None:
        self.name = name
        self.options = settings(name, options)
        self.lr = float(self.options["lr"])
        self.iterations = 0
        self.slot_names, self._scratch_count = _buffers(name, self.options)
        self._state: dict[str, tuple[np.ndarray, ...]] = {}  # slot arrays, by parameter
        self._scratch: dict[str, tuple[np.ndarray, ...]] = {}
        self._clip: dict[str, np.ndarray] = {}  # clipped gradients, when clipping is on
        self._squares: dict[str, np.ndarray] = {}  # float64 g^2 for clipnorm's global norm
        self._update = getattr(self, f"_{name}")

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        grads = self._clipped({k: g for k, g in grads.items() if k in params})
        self.iterations += 1
        for key, g in grads.items():
            p = params[key]
            self._update(p, g, self._slots(key, p), self._scratch_for(key, p))

    # ---- state ------------------------------------------------------------------------
    def _slots(self, key: str, p: np.ndarray) -> tuple[np.ndarray, ...]:
        slots = self._state.get(key)
        if slots is None:
            slots = self._state[key] = tuple(np.zeros_like(p) for _ in self.slot_names)
        return slots

    def _scratch_for(self, key: str, p: np.ndarray) -> tuple[np.ndarray, ...]:
        scratch = self._scratch.get(key)
        if scratch is None:
            count = self._scratch_count
            scratch = self._scratch[key] = tuple(np.empty_like(p) for _ in range(count))
        return scratch

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The optimizer's arrays keyed ``slot/layer/param`` (for a checkpoint)."""
        return {
            f"{slot}/{key}": array
            for key, arrays in self._state.items()
            for slot, array in zip(self.slot_names, arrays)
        }

    def state_scalars(self) -> dict[str, Any]:
        return {"name": self.name, "iterations": self.iterations, "lr": self.lr}

    def load_state(
        self, scalars: dict[str, Any], arrays: dict[str, np.ndarray], params: dict[str, np.ndarray]
    ) -> None:
        """Continue from a checkpoint: counters, learning rate and slot arrays (copied into
        buffers of each parameter's dtype)."""
        self.iterations = int(scalars["iterations"])
        self.lr = float(scalars["lr"])
        self._state = {}
        for key, p in params.items():
            names = [f"{slot}/{key}" for slot in self.slot_names]
            if all(n in arrays for n in names):
                self._state[key] = tuple(np.array(arrays[n], dtype=p.dtype) for n in names)

    # ---- gradient clipping ------------------------------------------------------------
    def _clipped(self, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        clipnorm = self.options.get("clipnorm")
        clipvalue = self.options.get("clipvalue")
        if not (clipnorm or clipvalue):
            return grads
        scale = None
        if clipnorm:
            norm = math.sqrt(sum(self._square_sum(k, g) for k, g in grads.items()))
            if norm >= clipnorm:
                scale = clipnorm / norm
        out: dict[str, np.ndarray] = {}
        for key, g in grads.items():
            t = g.dtype.type
            buffer = self._clip.get(key)
            if buffer is None or buffer.shape != g.shape or buffer.dtype != g.dtype:
                buffer = self._clip[key] = np.empty_like(g)
            source = g
            if scale is not None:
                np.multiply(g, t(scale), out=buffer)
                source = buffer
            if clipvalue:
                np.clip(source, -t(clipvalue), t(clipvalue), out=buffer)
                source = buffer
            out[key] = source
        return out

    def _square_sum(self, key: str, g: np.ndarray) -> float:
        """sum(g^2) computed in float64 (into a buffer kept for the next step)."""
        buffer = self._squares.get(key)
        if buffer is None or buffer.shape != g.shape:
            buffer = self._squares[key] = np.empty(g.shape, np.float64)
        np.square(g, out=buffer, dtype=np.float64)
        return float(buffer.sum())

    # ---- update rules (each changes p in place, allocating nothing) --------------------
    def _sgd(self, p, g, slots, scratch) -> None:
        o, t = self.options, p.dtype.type
        lr = t(self.lr / (1.0 + o["decay"] * (self.iterations - 1)))
        momentum = t(o["momentum"])
        step = scratch[0]
        np.multiply(g, lr, out=step)
        if momentum == 0:
            p -= step  # v = -lr * g, and nesterov adds momentum * v = 0
            return
        (v,) = slots
        v *= momentum
        v -= step  # v = momentum * v - lr * g
        if o["nesterov"]:
            shifted = scratch[1]
            np.multiply(v, momentum, out=shifted)
            p += shifted
            p -= step
        else:
            p += v

    def _rmsprop(self, p, g, slots, scratch) -> None:
        t = p.dtype.type
        rho = self.options["rho"]
        (a,), (tmp,) = slots, scratch
        a *= t(rho)
        np.square(g, out=tmp)
        tmp *= t(1.0 - rho)
        a += tmp
        self._scaled_step(p, g, a, tmp)

    def _adagrad(self, p, g, slots, scratch) -> None:
        (a,), (tmp,) = slots, scratch
        np.square(g, out=tmp)
        a += tmp
        self._scaled_step(p, g, a, tmp)

    def _scaled_step(self, p, g, a, tmp) -> None:
        """p -= lr * g / sqrt(a + epsilon) (legacy: epsilon inside the square root)."""
        t = p.dtype.type
        np.add(a, t(self.options["epsilon"]), out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        tmp *= t(self.lr)
        p -= tmp

    def _adam(self, p, g, slots, scratch) -> None:
        o, t = self.options, p.dtype.type
        b1, b2, n = o["beta_1"], o["beta_2"], self.iterations
        lr_t = t(self.lr * math.sqrt(1.0 - b2**n) / (1.0 - b1**n))
        (m, v), (tmp,) = slots, scratch
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


def _buffers(name: str, options: dict[str, Any]) -> tuple[tuple[str, ...], int]:
    """The persistent state arrays (slot names) and scratch buffers a rule needs per parameter;
    a checkpoint saves the slots, never the scratch."""
    if name == "sgd":
        if not options["momentum"]:
            return (), 1
        return ("v",), 2 if options["nesterov"] else 1
    return {"rmsprop": ("a",), "adagrad": ("a",), "adam": ("m", "v")}[name], 1


def assign(params: dict[str, np.ndarray], values: dict[str, np.ndarray]) -> None:
    """Set parameters to saved values in place (fit's restore-best)."""
    for key, value in values.items():
        params[key][...] = value

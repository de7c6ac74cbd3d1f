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
from collections import Counter
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

    A step allocates no array. The optimizer's own state (``slot_names``: sgd's velocity
    ``v``, the accumulator ``a`` of rmsprop and adagrad, Adam's moments ``m`` and ``v``) is
    allocated once per parameter on its first step. Scratch space (a rule's intermediate
    results, clipped gradients, clipnorm's float64 squares) is shared by all parameters: one
    buffer per role, as large as the largest parameter, viewed in each parameter's shape. The
    parameters are updated one after the other, so the same few buffers stay in cache, as a
    temporary that NumPy frees and the allocator hands out again would. ``lr`` is the base
    learning rate, changed between steps by a schedule (``runner.train.schedules``); sgd's
    ``decay`` and Adam's bias correction apply on top of it, as in legacy Keras.
    """

    def __init__(self, name: str, **options: Any) -> None:
        self.name = name
        self.options = settings(name, options)
        self.lr = float(self.options["lr"])
        self.iterations = 0
        self.slot_names, self._scratch_count = _buffers(name, self.options)
        self._state: dict[str, tuple[np.ndarray, ...]] = {}  # slot arrays, by parameter
        self._pools: dict[tuple[str, str], np.ndarray] = {}  # shared flat scratch, by role
        self._views: dict[tuple[str, str], np.ndarray] = {}  # (role, parameter) -> view
        self._ready: dict[str, tuple[tuple, tuple]] = {}  # parameter -> (slots, scratch)
        self._update = getattr(self, f"_{name}")

    def step(
        self,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        grads_are_spare: bool = False,
    ) -> None:
        """Update ``params`` in place. ``grads_are_spare``: the caller is done with the
        gradient arrays, so a rule may write into one (sgd scales it in place, keeping its
        step in the cache lines just written) when it owns its memory and no other key
        shares it."""
        grads = {k: g for k, g in grads.items() if k in params}
        if not self._pools:
            self._size_pools(params, grads)
        clipnorm, clipvalue = self.options.get("clipnorm"), self.options.get("clipvalue")
        scale = None
        if clipnorm:  # the global norm needs every gradient before any update
            norm = math.sqrt(sum(self._square_sum(k, g) for k, g in grads.items()))
            if norm >= clipnorm:
                scale = clipnorm / norm
        self.iterations += 1
        clipping = scale is not None or bool(clipvalue)
        ready, update = self._ready, self._update
        # an array under two keys, or under a view of it, is read more than once: not spare
        given = Counter(id(g) for g in grads.values())
        given.update(id(g.base) for g in grads.values() if g.base is not None)
        for key, g in grads.items():
            p = params[key]
            spare = grads_are_spare and g.flags.owndata and g.flags.writeable and given[id(g)] == 1
            if clipping:
                g = self._clipped(key, g, scale, clipvalue)
                spare = False  # the shared clip buffer
            buffers = ready.get(key)
            if buffers is None:
                buffers = ready[key] = self._buffers_for(key, p)
            update(p, g, *buffers, spare)

    def _buffers_for(self, key: str, p: np.ndarray) -> tuple[tuple, tuple]:
        """(the parameter's slots, created at zero when new; its views of the scratch)."""
        slots = self._state.get(key)
        if slots is None:
            slots = self._state[key] = tuple(np.zeros_like(p) for _ in self.slot_names)
        return slots, tuple(self._view(role, key, p) for role in self._scratch_roles)

    # ---- scratch space ----------------------------------------------------------------
    @property
    def _scratch_roles(self) -> tuple[str, ...]:
        return tuple(f"scratch{i}" for i in range(self._scratch_count))

    def _size_pools(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Allocate each shared buffer once, for the largest parameter of the first step."""
        for key in grads:
            p = params[key]
            for role in (*self._scratch_roles, "clip"):
                self._pool(role, p.dtype, p.size)
            self._pool("square", np.dtype(np.float64), p.size)

    def _pool(self, role: str, dtype: np.dtype, size: int) -> np.ndarray:
        key = (role, np.dtype(dtype).str)
        pool = self._pools.get(key)
        if pool is None or pool.size < size:
            pool = self._pools[key] = np.empty(size, dtype)
            self._views = {k: v for k, v in self._views.items() if k[0] != role}
            self._ready.clear()
        return pool

    def _view(self, role: str, key: str, like: np.ndarray, dtype: Any = None) -> np.ndarray:
        """The shared ``role`` buffer in the shape of ``like`` (cached per parameter)."""
        view = self._views.get((role, key))
        dtype = like.dtype if dtype is None else np.dtype(dtype)
        if view is None or view.shape != like.shape or view.dtype != dtype:
            pool = self._pool(role, dtype, like.size)
            view = self._views[(role, key)] = pool[: like.size].reshape(like.shape)
        return view

    # ---- checkpoints ------------------------------------------------------------------
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
        self._ready.clear()
        for key, p in params.items():
            names = [f"{slot}/{key}" for slot in self.slot_names]
            if all(n in arrays for n in names):
                self._state[key] = tuple(np.array(arrays[n], dtype=p.dtype) for n in names)

    # ---- gradient clipping ------------------------------------------------------------
    def _clipped(self, key: str, g: np.ndarray, scale: float | None, clipvalue: Any) -> np.ndarray:
        """g * clipnorm / norm (when the norm exceeds clipnorm), then clipped to
        +-clipvalue, in the shared clip buffer: the caller's gradient is left as it is."""
        t = g.dtype.type
        out = self._view("clip", key, g)
        source = g
        if scale is not None:
            np.multiply(g, t(scale), out=out)
            source = out
        if clipvalue:
            np.clip(source, -t(clipvalue), t(clipvalue), out=out)
            source = out
        return source

    def _square_sum(self, key: str, g: np.ndarray) -> float:
        """sum(g^2) computed in float64, as it always was (in the shared float64 buffer)."""
        squares = self._view("square", key, g, np.float64)
        np.square(g, out=squares, dtype=np.float64)
        return float(squares.sum())

    # ---- update rules (each changes p in place, allocating nothing) --------------------
    def _sgd(self, p, g, slots, scratch, spare) -> None:
        o, t = self.options, p.dtype.type
        lr = t(self.lr / (1.0 + o["decay"] * (self.iterations - 1)))
        momentum = t(o["momentum"])
        step = g if spare else scratch[0]
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

    def _rmsprop(self, p, g, slots, scratch, spare) -> None:
        t = p.dtype.type
        rho = self.options["rho"]
        (a,), (tmp,) = slots, scratch
        a *= t(rho)
        np.square(g, out=tmp)
        tmp *= t(1.0 - rho)
        a += tmp
        self._scaled_step(p, g, a, tmp)

    def _adagrad(self, p, g, slots, scratch, spare) -> None:
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

    def _adam(self, p, g, slots, scratch, spare) -> None:
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

"""Learning-rate schedules of ``task=fit``, with the Keras semantics of the same name.

Each schedule sets ``Optimizer.lr``, the base learning rate (sgd's ``decay`` and Adam's bias
correction still apply on top of it). Rates are computed in float64 and cast to the run's
dtype by the update. ``epoch`` counts from 0, as in Keras callbacks; ``step`` is the number
of updates done before this one (Keras' ``optimizer.iterations``). With ``lr0`` the
schedule's starting rate:

- step (per epoch, a LearningRateScheduler function):  lr0 * factor ** floor(epoch / drop_every)
- exponential (per epoch, as above):                   lr0 * decay_rate ** (epoch / decay_epochs)
- cosine (per update, keras.optimizers.schedules.CosineDecay): with ``peak`` = warmup_target
  (else lr0) and W = warmup_steps: step < W gives lr0 + (peak - lr0) * step / W; later,
  s = min(step - W, decay_steps) gives peak * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps))
  + alpha)
- plateau (at each epoch's end, keras.callbacks.ReduceLROnPlateau): lr * factor (at least
  min_lr) once the monitored value has not improved by min_delta for patience epochs, then
  cooldown epochs without counting.

A schedule's whole state is JSON (``state()``/``load()``), so a checkpoint can resume it.
"""

from __future__ import annotations

import math
from typing import Any


class Schedule:
    """No schedule: the optimizer's learning rate throughout. Subclasses override a hook."""

    per_step = False  # whether before_step must run before every update

    def begin_epoch(self, epoch: int, lr: float) -> float:
        """The learning rate of epoch ``epoch`` (0-based), before its first update."""
        return lr

    def before_step(self, step: int, lr: float) -> float:
        """The learning rate of the update after ``step`` updates (per-step schedules)."""
        return lr

    def end_epoch(self, record: dict[str, float], lr: float) -> float:
        """The learning rate after the epoch whose history row is ``record``."""
        return lr

    def state(self) -> dict[str, Any]:
        return {}

    def load(self, state: dict[str, Any]) -> None:
        """Continue from ``state()`` of an earlier fit."""


class StepDecay(Schedule):
    def __init__(self, lr0: float, factor: float, drop_every: int) -> None:
        self.lr0, self.factor, self.drop_every = lr0, factor, drop_every

    def begin_epoch(self, epoch: int, lr: float) -> float:
        return self.lr0 * self.factor ** (epoch // self.drop_every)


class ExponentialDecay(Schedule):
    def __init__(self, lr0: float, decay_rate: float, decay_epochs: int) -> None:
        self.lr0, self.decay_rate, self.decay_epochs = lr0, decay_rate, decay_epochs

    def begin_epoch(self, epoch: int, lr: float) -> float:
        return self.lr0 * self.decay_rate ** (epoch / self.decay_epochs)


class CosineDecay(Schedule):
    per_step = True

    def __init__(
        self,
        lr0: float,
        decay_steps: int,
        alpha: float,
        warmup_target: float | None,
        warmup_steps: int,
    ) -> None:
        self.lr0, self.decay_steps, self.alpha = lr0, decay_steps, alpha
        self.warmup_target, self.warmup_steps = warmup_target, warmup_steps

    def before_step(self, step: int, lr: float) -> float:
        peak, warmup = self.lr0, 0
        if self.warmup_target is not None:
            peak, warmup = self.warmup_target, self.warmup_steps
            step = min(step, self.decay_steps + warmup)
            if step < warmup:
                return (peak - self.lr0) * (step / warmup) + self.lr0
        done = min(step - warmup, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * done))
        return peak * ((1 - self.alpha) * cosine + self.alpha)


class ReduceOnPlateau(Schedule):
    """Keras' ReduceLROnPlateau, step for step: the best value, the epochs waited and the
    cooldown left are the state."""

    def __init__(
        self,
        monitor: str,
        mode: str,
        factor: float,
        patience: int,
        min_delta: float,
        cooldown: int,
        min_lr: float,
    ) -> None:
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self.maximize = mode == "max" or (mode == "auto" and "acc" in monitor)
        self.best: float | None = None  # None: nothing seen yet (Keras: +-inf)
        self.wait = 0
        self.cooldown_counter = 0

    def _improved(self, current: float) -> bool:
        if self.best is None:
            return not math.isnan(current)
        if self.maximize:
            return current > self.best + self.min_delta
        return current < self.best - self.min_delta

    def end_epoch(self, record: dict[str, float], lr: float) -> float:
        current = record[self.monitor]
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and lr > float(_float32(self.min_lr)):
                lr = max(lr * self.factor, self.min_lr)
                self.cooldown_counter, self.wait = self.cooldown, 0
        return lr

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def load(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])


def _float32(value: float) -> float:
    """Keras compares the rate with float32(min_lr)."""
    import numpy as np

    return float(np.float32(value))


def make_schedule(spec: Any, lr: float, monitor: str) -> Schedule:
    """The schedule a validated ``fit.schedule`` spec describes (None: no schedule); ``lr``
    is the optimizer's learning rate, ``monitor`` the fit's monitored value."""
    if spec is None:
        return Schedule()
    if spec.name == "step":
        return StepDecay(lr, spec.factor, spec.drop_every)
    if spec.name == "exponential":
        return ExponentialDecay(lr, spec.decay_rate, spec.decay_epochs)
    if spec.name == "cosine":
        lr0 = lr if spec.initial_learning_rate is None else spec.initial_learning_rate
        return CosineDecay(lr0, spec.decay_steps, spec.alpha, spec.warmup_target, spec.warmup_steps)
    return ReduceOnPlateau(
        spec.monitor or monitor,
        spec.mode,
        spec.factor,
        spec.patience,
        spec.min_delta,
        spec.cooldown,
        spec.min_lr,
    )

"""``task=fit``: train a planned model on its inputs and targets, scored on validation data.

One epoch = a seeded shuffle of the training rows, then one step per batch: forward in the
train phase (Dropout on) keeping caches, the loss of every output against its target
(masked timesteps left out), ``runner.graph.backprop.backward``, and one optimizer update
(``runner.train.optim``, the only code that changes weights). After each epoch the validation rows
go through in the test phase. The history (loss, penalties, accuracy, val_*, lr) drives early
stopping, restore-best and a plateau schedule, and ends in ``history.csv``, ``history.png``
and ``result.json``. A schedule (``runner.train.schedules``) sets the learning rate per epoch
or per update; epoch callbacks run after every epoch (the checkpoint writer of
``runner.train.checkpoints``, and any tracker), and ``fit.resume_from`` restores a checkpoint
into a fresh loop before it starts.

Randomness comes from Generators seeded by the run's seed only (weight init, dropout and
shuffling each have their own stream, see ``runner.streams``), so the same config and seed give
bit-identical histories and weights.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from runner.errors import Problem, RunFailed
from runner.graph import backprop
from runner.graph.build import build, named_weights
from runner.graph.context import pass_context
from runner.graph.execute import forward
from runner.graph.plan import Plan
from runner.output import artifacts
from runner.streams import shuffle_rng
from runner.train import checkpoints, losses, optim
from runner.train.data import FitData
from runner.train.history import write_history
from runner.train.plan import plan_fit
from runner.train.schedules import make_schedule
from runner.train.settings import FitSettings

log = logging.getLogger("runner")


# ---- training -------------------------------------------------------------------------------
class Trainer:
    """Forward, loss, backward and update for one batch at a time (the fit inner loop)."""

    def __init__(self, plan: Plan, settings: FitSettings) -> None:
        self.plan = plan
        self.settings = settings
        self.params = named_weights(plan)  # the layers' own arrays: updates land in the model
        self.optimizer = optim.Optimizer(settings.optimizer, **settings.optimizer_options)
        self.ctx = pass_context(plan, training=True, keep_cache=True)
        self.keep = set(plan.outputs)
        self.accuracy = "accuracy" in settings.metrics

    def step(
        self, feeds: dict[str, np.ndarray], targets: dict[str, np.ndarray]
    ) -> dict[str, float]:
        """One update on one batch; returns its loss terms (and accuracy counts)."""
        ctx = self.ctx
        penalties: dict[str, float] = {}  # activity penalties of this step's pass
        values, masks, caches = forward(self.plan, feeds, ctx, self.keep, penalties=penalties)
        weight_penalty = sum(n.layer.weight_penalty() for n in self.plan.nodes.values())
        stats = self._score(values, masks, targets, grads := {})
        grads_by_param, _ = backprop.backward(self.plan, caches, grads, ctx)
        # backward is the chain rule; the weight penalties' gradient is added once here
        grads_by_param = backprop.with_weight_penalty_grads(self.plan, grads_by_param)
        self.optimizer.step(self.params, grads_by_param, grads_are_spare=True)
        activity = sum(penalties.values())
        stats["weight_penalty"] = weight_penalty
        stats["activity_penalty"] = activity
        stats["loss"] += weight_penalty + activity
        return stats

    def _score(self, values, masks, targets, grads: dict | None) -> dict[str, float]:
        stats: dict[str, float] = {"loss": 0.0}
        correct = counted = 0.0
        for name in self.plan.outputs:
            loss_name = self.settings.losses[name]
            y, mask = values[name], masks.get(name)
            value, g = losses.loss(loss_name, y, targets[name], mask, grad=grads is not None)
            if grads is not None:
                grads[name] = g
            stats["loss"] += value
            if len(self.plan.outputs) > 1:
                stats[f"{name}_loss"] = value
            if self.accuracy:
                c, k = losses.accuracy_counts(loss_name, y, targets[name], mask)
                correct, counted = correct + c, counted + k
        if self.accuracy:
            stats["correct"], stats["counted"] = correct, counted
        return stats

    def evaluate(self, batches, rows: int) -> dict[str, float]:
        """Test-phase loss (without penalties, as legacy Keras) and accuracy over all rows
        of ``batches`` (``(rows, inputs, targets)``, e.g. ``FitData.epoch(feeder, None)``)."""
        ctx = pass_context(self.plan, training=False)
        totals: dict[str, float] = {}
        for n, feeds, targets in batches:
            values, masks, _ = forward(self.plan, feeds, ctx, self.keep)
            _add(totals, self._score(values, masks, targets, None), n)
        return _epoch_means(totals, rows)


def _add(totals: dict[str, float], stats: dict[str, float], rows: int) -> None:
    for key, value in stats.items():
        weight = 1 if key in ("correct", "counted") else rows
        totals[key] = totals.get(key, 0.0) + value * weight


def _epoch_means(totals: dict[str, float], rows: int) -> dict[str, float]:
    out = {k: v / rows for k, v in totals.items() if k not in ("correct", "counted")}
    if "counted" in totals:
        out["accuracy"] = totals["correct"] / totals["counted"] if totals["counted"] else 0.0
    return out


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_value: float
    objective: float  # the monitored value of the weights kept
    stopped_early: bool
    restored_best: bool
    epoch_seconds: list[float]  # of the epochs this fit ran (a resumed fit: the new ones)


@dataclass
class FitState:
    """What a fit carries from one epoch to the next, besides the weights, the optimizer,
    the schedule and the random streams: all of it goes into a checkpoint."""

    epoch: int = 0  # epochs completed
    history: list[dict[str, float]] = field(default_factory=list)
    best_value: float = math.nan  # early stopping / restore_best: the monitored best so far
    best_epoch: int = 0
    wait: int = 0  # epochs since the best one
    stopped: bool = False  # early stopping ended the fit after ``epoch``
    best_weights: dict[str, np.ndarray] | None = None  # restore_best: a copy of the best epoch's


# Called after every epoch with the fit and the epoch's history row (lr included), once the
# early-stopping and schedule bookkeeping of that epoch is done: checkpoints, trackers. A
# callback with a ``fit_started(loop)`` method is also called once before the first epoch
# (a resumed fit's restored epochs are in ``loop.state.history`` by then).
EpochCallback = Callable[["FitLoop", dict[str, float]], None]


class FitLoop:
    """The epochs of one fit: shuffle, steps, validation, bookkeeping, epoch callbacks."""

    def __init__(
        self,
        plan: Plan,
        settings: FitSettings,
        data: FitData,
        progress: bool = False,
        callbacks: list[EpochCallback] | tuple[EpochCallback, ...] = (),
    ) -> None:
        self.plan, self.settings, self.data, self.progress = plan, settings, data, progress
        self.trainer = Trainer(plan, settings)
        self.shuffle_rng = shuffle_rng(plan.spec.seed)
        self.schedule = make_schedule(
            settings.schedule, self.trainer.optimizer.lr, settings.monitor
        )
        self.state = FitState()
        self.callbacks = list(callbacks)
        self.epoch_seconds: list[float] = []
        batch = settings.batch_size
        self.feeder, self.val_feeder = data.train_feeder(batch), data.val_feeder(batch)

    @property
    def dropout_rng(self) -> np.random.Generator:
        return self.trainer.ctx.rng

    def run(self) -> FitResult:
        settings, state = self.settings, self.state
        for callback in self.callbacks:
            started = getattr(callback, "fit_started", None)
            if started is not None:
                started(self)
        for epoch in range(state.epoch + 1, settings.epochs + 1):
            start = time.perf_counter()
            record = self._epoch(epoch)
            self.epoch_seconds.append(time.perf_counter() - start)
            log.info(
                "epoch %d/%d - %s - %.2fs",
                epoch,
                settings.epochs,
                _metrics_text(record),
                self.epoch_seconds[-1],
            )
            if not math.isfinite(record["loss"]):
                raise RunFailed(
                    [
                        Problem(
                            settings.origin["epochs"],
                            f"training diverged: the loss is "
                            f"{record['loss']} at epoch {epoch}; lower "
                            "fit.optimizer.lr or set fit.optimizer.clipnorm",
                        )
                    ]
                )
            self._early_stopping(epoch, record)
            optimizer = self.trainer.optimizer
            optimizer.lr = self.schedule.end_epoch(record, optimizer.lr)
            for callback in self.callbacks:
                callback(self, record)
            if state.stopped:
                break
        return self._result()

    def _epoch(self, epoch: int) -> dict[str, float]:
        settings, data, trainer = self.settings, self.data, self.trainer
        optimizer = trainer.optimizer
        n, batch = data.rows, settings.batch_size
        n_batches = math.ceil(n / batch)
        optimizer.lr = self.schedule.begin_epoch(epoch - 1, optimizer.lr)
        totals: dict[str, float] = {}
        first_lr = None
        bar = tqdm(
            total=n_batches,
            desc=f"epoch {epoch}/{settings.epochs}",
            unit="batch",
            file=sys.stderr,
            disable=not self.progress,
        )
        # runner.data.feed's order, drawn from the shuffle stream
        for rows, feeds, targets in data.epoch(self.feeder, self.shuffle_rng):
            if self.schedule.per_step:
                optimizer.lr = self.schedule.before_step(optimizer.iterations, optimizer.lr)
            if first_lr is None:
                first_lr = optimizer.lr
            _add(totals, trainer.step(feeds, targets), rows)
            bar.update()
        bar.close()
        record = {"epoch": epoch, **_epoch_means(totals, n)}
        if self.val_feeder is not None:
            val = trainer.evaluate(data.epoch(self.val_feeder, None), data.val_rows)
            record.update({f"val_{k}": v for k, v in val.items()})
        record["lr"] = first_lr  # the rate of the epoch's first update (base rate, see optim)
        self.state.history.append(record)
        self.state.epoch = epoch
        return record

    def _early_stopping(self, epoch: int, record: dict[str, float]) -> None:
        settings, state = self.settings, self.state
        current = record[settings.monitor]
        if epoch == 1 or _better(settings, current, state.best_value):
            state.best_value, state.best_epoch, state.wait = current, epoch, 0
            if settings.restore_best:
                state.best_weights = {k: p.copy() for k, p in self.trainer.params.items()}
            return
        state.wait += 1
        if settings.patience is not None and state.wait >= max(settings.patience, 1):
            log.info(
                "early stopping: %s did not improve for %d epoch(s); best %.6g at epoch %d",
                settings.monitor,
                state.wait,
                state.best_value,
                state.best_epoch,
            )
            state.stopped = True

    def _result(self) -> FitResult:
        settings, state = self.settings, self.state
        restored = bool(
            settings.restore_best
            and state.best_weights is not None
            and state.best_epoch != len(state.history)
        )
        if restored:
            optim.assign(self.trainer.params, state.best_weights)
            log.info(
                "restored the weights of epoch %d (best %s %.6g)",
                state.best_epoch,
                settings.monitor,
                state.best_value,
            )
        objective = (
            state.best_value if settings.restore_best else state.history[-1][settings.monitor]
        )
        stopped_early = state.stopped and state.epoch < settings.epochs
        return FitResult(
            state.history,
            state.best_epoch,
            state.best_value,
            objective,
            stopped_early,
            restored,
            self.epoch_seconds,
        )


def _better(settings: FitSettings, a: float, b: float) -> bool:
    if settings.mode == "max":
        return a > b + settings.min_delta
    return a < b - settings.min_delta


def fit_model(
    plan: Plan,
    settings: FitSettings,
    data: FitData,
    progress: bool = False,
    callbacks: list[EpochCallback] | tuple[EpochCallback, ...] = (),
    resume: checkpoints.Checkpoint | None = None,
) -> FitResult:
    """Train the built ``plan`` in place, continuing from ``resume`` (a checked checkpoint,
    ``FitPlan.resume``) when given; returns the per-epoch history."""
    loop = FitLoop(plan, settings, data, progress, callbacks)
    if resume is not None:
        checkpoints.restore(loop, resume)
        log.info("resuming the fit of %s after epoch %d", resume.shown, resume.epoch)
    return loop.run()


def _metrics_text(record: dict[str, float]) -> str:
    return " - ".join(
        f"{k} {v:.4f}"
        for k, v in record.items()
        if k != "epoch" and not (k.endswith("_penalty") and v == 0)
    )


# ---- the task -------------------------------------------------------------------------------
def fit_task(
    spec: Any,
    plan: Plan,
    output_dir: Path,
    result: dict[str, Any],
    timings: dict[str, float],
    outcome: Any,
    epoch_callbacks: Sequence[EpochCallback] = (),
) -> None:
    """What ``run()`` does for task=fit: train, then write history, weights and scores.

    The settings and data come from the plan (``runner.train.plan``), checked before this."""
    fit_plan = plan.fit if plan.fit is not None else plan_fit(spec, plan)
    settings, data = fit_plan.settings, fit_plan.data
    timings["data"] = fit_plan.seconds
    t = time.perf_counter()
    build(plan)
    timings["build"] = time.perf_counter() - t
    progress = spec.progress if spec.progress is not None else sys.stderr.isatty()
    log.info(
        "fit: %d training rows, %d validation rows, %d epochs of %d batches; loss %s; "
        "optimizer %s; monitor %s",
        data.rows,
        data.val_rows,
        settings.epochs,
        math.ceil(data.rows / settings.batch_size),
        _loss_text(settings.losses),
        settings.optimizer,
        settings.monitor,
    )
    t = time.perf_counter()
    callbacks = fit_callbacks(spec, settings, data, output_dir, epoch_callbacks)
    if fit_plan.resume is not None:
        result["parent"] = fit_plan.resume.parent()
    fitted = fit_model(plan, settings, data, progress, callbacks, fit_plan.resume)
    timings["fit"] = time.perf_counter() - t
    timings["epoch_mean"] = float(np.mean(fitted.epoch_seconds))
    outcome.values = {}
    result["phase"] = "train"
    result["metrics"] = _result_metrics(settings, fitted, data)
    result["fit"] = {
        "monitor": settings.monitor,
        "mode": settings.mode,
        "best_epoch": fitted.best_epoch,
        "epochs_run": len(fitted.history),
        "stopped_early": fitted.stopped_early,
        "restored_best": fitted.restored_best,
        "train_rows": data.rows,
        "val_rows": data.val_rows,
        "batch_size": settings.batch_size,
        "loss": settings.losses,
        "optimizer": {
            "name": settings.optimizer,
            **optim.settings(settings.optimizer, settings.optimizer_options),
        },
        "metrics": settings.metrics,
    }
    result["objective_mode"] = settings.mode  # sweep summaries rank jobs the right way round
    result["history"] = fitted.history
    write_history(output_dir, fitted.history)
    artifacts.write_npz(output_dir / "weights.npz", named_weights(plan))
    log.info(
        "fit done: %s %.6g (best at epoch %d of %d)%s",
        settings.monitor,
        fitted.objective,
        fitted.best_epoch,
        len(fitted.history),
        "; weights of the best epoch restored" if fitted.restored_best else "",
    )


def fit_callbacks(
    spec: Any,
    settings: FitSettings,
    data: FitData,
    output_dir: Path,
    extra: Sequence[EpochCallback] = (),
) -> list[EpochCallback]:
    """The epoch callbacks of a run's fit, in order: checkpoints (when asked for), then the
    run's own (``run(epoch_callbacks=...)``: the MLflow tracker's live metrics, given by the
    CLI, so this module never imports a tracker). Each is called as ``callback(loop, record)``
    after every epoch."""
    callbacks: list[EpochCallback] = []
    if settings.checkpoint_every or settings.checkpoint_best:
        config, digests = checkpoints.config_values(spec), checkpoints.data_digests(data)
        callbacks.append(checkpoints.Checkpointer(output_dir, settings, config, digests))
    return callbacks + list(extra)


def _loss_text(loss_map: dict[str, str]) -> str:
    names = set(loss_map.values())
    return names.pop() if len(names) == 1 else str(loss_map)


def _result_metrics(settings: FitSettings, fitted: FitResult, data: FitData) -> dict[str, Any]:
    last = fitted.history[-1]
    metrics: dict[str, Any] = {
        "objective": fitted.objective,
        "best_epoch": fitted.best_epoch,
        "epochs": len(fitted.history),
    }
    metrics.update({k: v for k, v in last.items() if k != "epoch"})
    for key in ("val_loss", "val_accuracy", "loss", "accuracy"):
        column = [r[key] for r in fitted.history if key in r]
        if column:
            metrics[f"best_{key}"] = max(column) if key.endswith("accuracy") else min(column)
    baseline = data.mean_baseline(settings.losses)
    if baseline is not None:
        metrics["baseline_val_loss"] = baseline
    return metrics

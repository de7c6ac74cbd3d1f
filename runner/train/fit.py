"""``task=fit``: train a planned model on its inputs and targets, scored on validation data.

One epoch = a seeded shuffle of the training rows, then one step per batch: forward in the
train phase (Dropout on) keeping caches, the loss of every output against its target
(masked timesteps left out), ``runner.graph.backprop.backward``, and one optimizer update
(``runner.train.optim``, the only code that changes weights). After each epoch the validation rows
go through in the test phase. The history (loss, penalties, accuracy, val_*) drives early
stopping and restore-best, and ends in ``history.csv``, ``history.png`` and ``result.json``.

Randomness comes from Generators seeded by the run's seed only (weight init, dropout and
shuffling each have their own stream, see ``runner.streams``), so the same config and seed give
bit-identical histories and weights.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass
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
from runner.train import losses, optim
from runner.train.data import FitData
from runner.train.history import write_history
from runner.train.plan import plan_fit
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
        self.optimizer.step(self.params, grads_by_param)
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
    epoch_seconds: list[float]


def fit_model(
    plan: Plan, settings: FitSettings, data: FitData, progress: bool = False
) -> FitResult:
    """Train the built ``plan`` in place; returns the per-epoch history."""
    trainer = Trainer(plan, settings)
    order_rng = shuffle_rng(plan.spec.seed)
    n, batch = data.rows, settings.batch_size
    n_batches = math.ceil(n / batch)
    feeder, val_feeder = data.train_feeder(batch), data.val_feeder(batch)
    history: list[dict[str, float]] = []
    better = (
        (lambda a, b: a > b + settings.min_delta)
        if settings.mode == "max"
        else (lambda a, b: a < b - settings.min_delta)
    )
    best_value, best_epoch, best_weights, wait = math.nan, 0, None, 0
    stopped_early = False
    seconds: list[float] = []
    for epoch in range(1, settings.epochs + 1):
        start = time.perf_counter()
        totals: dict[str, float] = {}
        bar = tqdm(
            total=n_batches,
            desc=f"epoch {epoch}/{settings.epochs}",
            unit="batch",
            file=sys.stderr,
            disable=not progress,
        )
        for rows, feeds, targets in data.epoch(feeder, order_rng):  # runner.data.feed's order
            _add(totals, trainer.step(feeds, targets), rows)
            bar.update()
        bar.close()
        record = {"epoch": epoch, **_epoch_means(totals, n)}
        if val_feeder is not None:
            val = trainer.evaluate(data.epoch(val_feeder, None), data.val_rows)
            record.update({f"val_{k}": v for k, v in val.items()})
        history.append(record)
        seconds.append(time.perf_counter() - start)
        log.info(
            "epoch %d/%d - %s - %.2fs", epoch, settings.epochs, _metrics_text(record), seconds[-1]
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
        current = record[settings.monitor]
        if epoch == 1 or better(current, best_value):
            best_value, best_epoch, wait = current, epoch, 0
            if settings.restore_best:
                best_weights = {k: p.copy() for k, p in trainer.params.items()}
        else:
            wait += 1
            if settings.patience is not None and wait >= max(settings.patience, 1):
                stopped_early = epoch < settings.epochs
                log.info(
                    "early stopping: %s did not improve for %d epoch(s); best %.6g at epoch %d",
                    settings.monitor,
                    wait,
                    best_value,
                    best_epoch,
                )
                break
    restored = bool(
        settings.restore_best and best_weights is not None and best_epoch != len(history)
    )
    if restored:
        optim.assign(trainer.params, best_weights)
        log.info(
            "restored the weights of epoch %d (best %s %.6g)",
            best_epoch,
            settings.monitor,
            best_value,
        )
    objective = best_value if settings.restore_best else history[-1][settings.monitor]
    return FitResult(history, best_epoch, best_value, objective, stopped_early, restored, seconds)


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
    fitted = fit_model(plan, settings, data, progress=progress)
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

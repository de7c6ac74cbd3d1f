"""``task=fit``: train a planned model on its inputs and targets, scored on validation data.

One epoch = a seeded shuffle of the training rows, then one step per batch: forward in the
train phase (Dropout on) keeping caches, the loss of every output against its target
(masked timesteps left out), ``runner.backprop.backward``, and one optimizer update
(``runner.optim``, the only code that changes weights). After each epoch the validation rows
go through in the test phase. The history (loss, penalties, accuracy, val_*) drives early
stopping and restore-best, and ends in ``history.csv``, ``history.png`` and ``result.json``.

Randomness comes from Generators seeded by the run's seed only (init ``[seed, 0]``, dropout
``[seed, 1]``, shuffling ``[seed, 2]``), so the same config and seed give bit-identical
histories and weights.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from layers.base import Context, FileRef
from layers.registry import did_you_mean
from runner import artifacts, backprop, datasets, losses, optim, sources
from runner.build import build, named_weights
from runner.datasets import DatasetSource
from runner.errors import ConfigError, DataError, Problem, RunFailed
from runner.execute import dropout_rng, forward, input_arrays
from runner.plan import Plan
from runner.schema import RandomSource

log = logging.getLogger("runner")

DEFAULTS: dict[str, Any] = {
    "epochs": 10, "batch_size": 32, "shuffle": True, "loss": "mse", "metrics": ["loss"],
    "patience": None, "min_delta": 0.0, "restore_best": False,
}


def shuffle_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 2])


# ---- settings -------------------------------------------------------------------------------
@dataclass
class FitSettings:
    """Fit settings with every inheritance resolved; ``origin`` maps a field to its config path."""

    epochs: int
    batch_size: int
    shuffle: bool
    validation_split: float
    validation_data: Any
    losses: dict[str, str]  # output -> loss name
    optimizer: str
    optimizer_options: dict[str, Any]
    metrics: list[str]
    monitor: str
    patience: int | None
    min_delta: float
    restore_best: bool
    origin: dict[str, str] = field(default_factory=dict)

    @property
    def has_validation(self) -> bool:
        return self.validation_split > 0 or self.validation_data is not None

    @property
    def mode(self) -> str:
        return "max" if self.monitor.endswith("accuracy") else "min"


def resolve(spec: Any, outputs: list[str]) -> FitSettings:
    """Top-level ``fit`` over the model's ``fit`` over the defaults; ConfigError if invalid."""
    top, own = spec.fit, spec.model.fit
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, default in DEFAULTS.items():
        for block, where in ((top, "fit"), (own, "model.fit")):
            value = getattr(block, key, None) if block is not None else None
            if value is not None:
                values[key], origin[key] = value, f"{where}.{key}"
                break
        else:
            values[key], origin[key] = default, f"fit.{key}"
    # Validation is chosen as a unit: a top-level choice replaces the model's.
    split, vdata, where = 0.0, None, "fit"
    for block, path in ((top, "fit"), (own, "model.fit")):
        if block is not None and (block.validation_split is not None
                                  or block.validation_data is not None):
            split, vdata, where = block.validation_split or 0.0, block.validation_data, path
            break
    origin["validation_split"] = f"{where}.validation_split"
    origin["validation_data"] = f"{where}.validation_data"
    problems: list[Problem] = []
    if split > 0 and vdata is not None:
        problems.append(Problem(f"{where}.validation_data", "give validation_split or "
                                "validation_data, not both"))
    name, options, opt_origin = _resolve_optimizer(top, own)
    origin.update(opt_origin)
    for key, value in options.items():
        if value is not None and key not in optim.DEFAULTS[name] and key not in optim.COMMON:
            takes = [*optim.DEFAULTS[name], *optim.COMMON]
            problems.append(Problem(opt_origin.get(key, f"fit.optimizer.{key}"),
                                    f"{key!r} is not a setting of {name} (it takes {takes})"))
    loss_map = _resolve_losses(values["loss"], outputs, origin["loss"], problems)
    metrics = list(dict.fromkeys(["loss", *values["metrics"]]))
    monitor_origin = next((f"{w}.monitor" for b, w in ((top, "fit"), (own, "model.fit"))
                           if b is not None and b.monitor is not None), "fit.monitor")
    monitor = next((b.monitor for b in (top, own) if b is not None and b.monitor is not None),
                   None)
    has_validation = split > 0 or vdata is not None
    if monitor is None:
        monitor = "val_loss" if has_validation else "loss"
    if monitor.startswith("val_") and not has_validation:
        problems.append(Problem(monitor_origin, f"monitor {monitor!r} needs validation data: "
                                "set fit.validation_split (e.g. 0.2) or fit.validation_data, "
                                f"or monitor {monitor[4:]!r}"))
    if monitor.endswith("accuracy") and "accuracy" not in metrics:
        metrics.append("accuracy")  # monitoring accuracy implies computing it
    if "accuracy" in metrics:
        regression = {o: n for o, n in loss_map.items() if n not in losses.CLASSIFICATION}
        if regression:
            problems.append(Problem(origin["metrics"] if "accuracy" in values["metrics"]
                                    else monitor_origin,
                                    f"accuracy needs a classification loss "
                                    f"{list(losses.CLASSIFICATION)}, but {regression} "
                                    "is a regression loss"))
    if problems:
        raise ConfigError(problems)
    return FitSettings(values["epochs"], values["batch_size"], values["shuffle"], split, vdata,
                       loss_map, name, options, metrics, monitor, values["patience"],
                       values["min_delta"], values["restore_best"], origin)


def _resolve_optimizer(top, own) -> tuple[str, dict[str, Any], dict[str, str]]:
    top_opt = top.optimizer if top is not None else None
    own_opt = own.optimizer if own is not None else None
    name = (top_opt and top_opt.name) or (own_opt and own_opt.name) or "adam"
    # The model's settings apply only to the optimizer the model chose.
    blocks = [(top_opt, "fit.optimizer")]
    if own_opt is not None and (own_opt.name or "adam") == name:
        blocks.append((own_opt, "model.fit.optimizer"))
    options: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key in (*{k for d in optim.DEFAULTS.values() for k in d}, *optim.COMMON):
        for block, where in blocks:
            value = getattr(block, key, None) if block is not None else None
            if value is not None:
                options[key], origin[key] = value, f"{where}.{key}"
                break
    return name, options, origin


def _resolve_losses(loss: Any, outputs: list[str], where: str,
                    problems: list[Problem]) -> dict[str, str]:
    if isinstance(loss, str):
        return {o: loss for o in outputs}
    for key in loss:
        if key not in outputs:
            problems.append(Problem(f"{where}.{key}", f"{key!r} is not a model output"
                                    f"{did_you_mean(key, outputs)}; outputs: {outputs}"))
    missing = [o for o in outputs if o not in loss]
    if missing:
        problems.append(Problem(where, f"no loss for output(s) {missing}: name one per output"))
    return {o: loss.get(o, "mse") for o in outputs}


def check_trainable(plan: Plan) -> None:
    """Every layer on a path to an output must have a backward pass."""
    needed = set(plan.outputs)
    problems = []
    for node in reversed(list(plan.nodes.values())):
        if node.name not in needed:
            continue
        needed.update(node.inputs)
        if not getattr(node.layer, "differentiable", True):
            problems.append(Problem(node.path, f"{node.layer.spec.type} is forward-only (it "
                                    "declares differentiable = False), so task=fit cannot "
                                    "train through it: remove it from the path to the "
                                    "outputs, or use task=predict"))
    if problems:
        raise ConfigError(list(reversed(problems)))


# ---- data -----------------------------------------------------------------------------------
@dataclass
class FitData:
    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    val_inputs: dict[str, np.ndarray] | None = None
    val_targets: dict[str, np.ndarray] | None = None

    @property
    def rows(self) -> int:
        return next(iter(self.inputs.values())).shape[0]

    @property
    def val_rows(self) -> int:
        return 0 if self.val_inputs is None else next(iter(self.val_inputs.values())).shape[0]


def load_source(source: Any, path: str, cwd: Path, seed: int,
                shape: tuple[int, ...]) -> np.ndarray:
    """Any data source (inline, file, random, dataset) as an array, batch first."""
    if isinstance(source, RandomSource):
        return sources.random_array(source.random, shape, seed, np.float64)
    if isinstance(source, DatasetSource):
        return datasets.load(source.dataset, path)
    if isinstance(source, FileRef):
        return np.asarray(sources.load_file(source, cwd, path))
    return sources.inline_array(source, path)


def _as_samples(array: np.ndarray, shape: tuple[int, ...], path: str) -> np.ndarray:
    """Reshape flat rows to the per-sample ``shape`` when the sizes agree."""
    if array.ndim >= 1 and tuple(array.shape[1:]) != shape and array.shape[0] and (
            math.prod(shape) * array.shape[0] == array.size):
        return array.reshape((array.shape[0], *shape))
    if array.ndim < 1 or tuple(array.shape[1:]) != shape:
        raise ConfigError.one(path, f"expected per-sample shape {shape}, found data of shape "
                              f"{array.shape} (batch first)")
    return array


def _finite(array: np.ndarray, path: str) -> np.ndarray:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError.one(path, "contains NaN or Inf values")
    return array


def _targets(plan: Plan, settings: FitSettings, given: dict[str, Any], inputs: dict[str, Any],
             where: str, problems: list[Problem]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key in given:
        if key not in plan.outputs:
            problems.append(Problem(f"{where}.{key}", f"{key!r} is not a model output"
                                    f"{did_you_mean(key, plan.outputs)}; outputs: {plan.outputs}"))
    for name in plan.outputs:
        node = plan.nodes.get(name)
        path = f"{where}.{name}"
        if node is None:
            problems.append(Problem("model.outputs", f"cannot fit output {name!r}: it is a model "
                                    "input, not a layer"))
            continue
        loss = settings.losses[name]
        try:
            if name in given:
                array = load_source(given[name], path, plan.cwd, plan.spec.seed, node.shape)
            elif _reconstructs(node) and node.inputs[0] in inputs:
                array = inputs[node.inputs[0]]  # an AutoEncoder is fitted to its input
            else:
                problems.append(Problem(where, f"no target for output {name!r}: add {path} "
                                        "(inline rows, {path: ...}, {random: ...} or "
                                        "{dataset: ...})"))
                continue
            if loss != "sparse_categorical_crossentropy":
                array = _as_samples(array, node.shape, path)
            issue = losses.target_problem(loss, node.shape, array)
            if issue:
                problems.append(Problem(path, f"{issue} (loss {loss})"))
                continue
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if loss == "sparse_categorical_crossentropy":
            out[name] = np.asarray(array).astype(np.int64)
        else:
            out[name] = _finite(np.asarray(array, dtype=plan.dtype), path)
    return out


def _reconstructs(node) -> bool:
    spec = node.layer.spec
    return spec.type == "AutoEncoder" and bool(getattr(spec, "output_reconstruction", True))


def _rows_agree(arrays: dict[str, np.ndarray], where: str, rows: int, what: str,
                problems: list[Problem]) -> None:
    for name, a in arrays.items():
        if a.shape[0] != rows:
            problems.append(Problem(f"{where}.{name}", f"has {a.shape[0]} rows, but the {what} "
                                    f"have {rows}"))


def prepare_data(plan: Plan, settings: FitSettings) -> FitData:
    """Training (and validation) inputs and targets as in-memory arrays of the run's dtype."""
    problems: list[Problem] = []
    inputs = {n: _finite(np.asarray(a, dtype=plan.dtype), f"model.inputs.{n}.data")
              for n, a in input_arrays(plan).items()}
    rows = {a.shape[0] for a in inputs.values()}
    if len(rows) > 1:
        raise DataError.one("model.inputs", "inputs have different numbers of rows: "
                            f"{ {n: a.shape[0] for n, a in inputs.items()} }")
    n = rows.pop()
    targets = _targets(plan, settings, plan.spec.model.targets, inputs, "model.targets", problems)
    _rows_agree(targets, "model.targets", n, "inputs", problems)
    data = FitData(inputs, targets)
    if settings.validation_data is not None:
        vd, where = settings.validation_data, settings.origin["validation_data"]
        val_inputs = {}
        for name, node in plan.inputs.items():
            if name not in vd.inputs:
                problems.append(Problem(f"{where}.inputs", f"no data for model input {name!r}"))
                continue
            path = f"{where}.inputs.{name}"
            try:
                a = load_source(vd.inputs[name], path, plan.cwd, plan.spec.seed, node.shape)
                val_inputs[name] = _finite(np.asarray(_as_samples(a, node.shape, path),
                                                      dtype=plan.dtype), path)
            except ConfigError as exc:
                problems.extend(exc.problems)
        for name in vd.inputs:
            if name not in plan.inputs:
                problems.append(Problem(f"{where}.inputs.{name}", f"{name!r} is not a model "
                                        f"input{did_you_mean(name, plan.inputs)}"))
        if not problems:
            val_rows = {a.shape[0] for a in val_inputs.values()}
            if len(val_rows) > 1:
                problems.append(Problem(f"{where}.inputs", "inputs have different numbers "
                                        "of rows"))
            val_targets = _targets(plan, settings, vd.targets, val_inputs, f"{where}.targets",
                                   problems)
            _rows_agree(val_targets, f"{where}.targets", max(val_rows), "validation inputs",
                        problems)
            data.val_inputs, data.val_targets = val_inputs, val_targets
    if problems:
        raise ConfigError(problems)
    if settings.validation_split > 0:
        split_at = int(n * (1 - settings.validation_split))  # the last rows, as legacy Keras
        if split_at < 1 or split_at >= n:
            raise ConfigError.one(settings.origin["validation_split"], f"validation_split "
                                  f"{settings.validation_split} of {n} rows leaves "
                                  f"{split_at} for training and {n - split_at} for validation;"
                                  " both need at least one row")
        data = FitData({k: a[:split_at] for k, a in inputs.items()},
                       {k: a[:split_at] for k, a in targets.items()},
                       {k: a[split_at:] for k, a in inputs.items()},
                       {k: a[split_at:] for k, a in targets.items()})
    return data


# ---- training -------------------------------------------------------------------------------
class Trainer:
    """Forward, loss, backward and update for one batch at a time (the fit inner loop)."""

    def __init__(self, plan: Plan, settings: FitSettings) -> None:
        self.plan = plan
        self.settings = settings
        self.params = named_weights(plan)  # the layers' own arrays: updates land in the model
        self.optimizer = optim.Optimizer(settings.optimizer, **settings.optimizer_options)
        self.ctx = Context(training=True, rng=dropout_rng(plan.spec.seed), dtype=plan.dtype,
                           keep_cache=True)
        self.keep = set(plan.outputs)
        self.accuracy = "accuracy" in settings.metrics

    def step(self, feeds: dict[str, np.ndarray], targets: dict[str, np.ndarray]
             ) -> dict[str, float]:
        """One update on one batch; returns its loss terms (and accuracy counts)."""
        ctx = self.ctx
        ctx.penalties = {}
        values, masks, caches = forward(self.plan, feeds, ctx, self.keep)
        weight_penalty = sum(n.layer.weight_penalty() for n in self.plan.nodes.values())
        stats = self._score(values, masks, targets, grads := {})
        grads_by_param, _ = backprop.backward(self.plan, caches, grads, ctx)
        self.optimizer.step(self.params, grads_by_param)
        activity = sum(ctx.penalties.values())
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

    def evaluate(self, inputs: dict[str, np.ndarray], targets: dict[str, np.ndarray],
                 batch_size: int) -> dict[str, float]:
        """Test-phase loss (without penalties, as legacy Keras) and accuracy over all rows."""
        rows = next(iter(inputs.values())).shape[0]
        ctx = Context(training=False, rng=dropout_rng(self.plan.spec.seed), dtype=self.plan.dtype)
        totals: dict[str, float] = {}
        for lo in range(0, rows, batch_size):
            hi = min(rows, lo + batch_size)
            values, masks, _ = forward(self.plan, {k: a[lo:hi] for k, a in inputs.items()}, ctx,
                                       self.keep)
            stats = self._score(values, masks, {k: t[lo:hi] for k, t in targets.items()}, None)
            _add(totals, stats, hi - lo)
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


def fit_model(plan: Plan, settings: FitSettings, data: FitData,
              progress: bool = False) -> FitResult:
    """Train the built ``plan`` in place; returns the per-epoch history."""
    trainer = Trainer(plan, settings)
    order_rng = shuffle_rng(plan.spec.seed)
    n, batch = data.rows, settings.batch_size
    n_batches = math.ceil(n / batch)
    history: list[dict[str, float]] = []
    better = (lambda a, b: a > b + settings.min_delta) if settings.mode == "max" else (
        lambda a, b: a < b - settings.min_delta)
    best_value, best_epoch, best_weights, wait = math.nan, 0, None, 0
    stopped_early = False
    seconds: list[float] = []
    for epoch in range(1, settings.epochs + 1):
        start = time.perf_counter()
        order = order_rng.permutation(n) if settings.shuffle else None
        totals: dict[str, float] = {}
        for b in range(n_batches):
            lo, hi = b * batch, min(n, (b + 1) * batch)
            if order is None:
                feeds = {k: a[lo:hi] for k, a in data.inputs.items()}
                targets = {k: t[lo:hi] for k, t in data.targets.items()}
            else:
                rows = order[lo:hi]
                feeds = {k: a[rows] for k, a in data.inputs.items()}
                targets = {k: t[rows] for k, t in data.targets.items()}
            _add(totals, trainer.step(feeds, targets), hi - lo)
            if progress:
                _progress_bar(epoch, settings.epochs, b + 1, n_batches, start)
        record = {"epoch": epoch, **_epoch_means(totals, n)}
        if data.val_inputs is not None:
            val = trainer.evaluate(data.val_inputs, data.val_targets, batch)
            record.update({f"val_{k}": v for k, v in val.items()})
        history.append(record)
        seconds.append(time.perf_counter() - start)
        if progress:
            sys.stderr.write("\n")
        log.info("epoch %d/%d - %s - %.2fs", epoch, settings.epochs, _metrics_text(record),
                 seconds[-1])
        if not math.isfinite(record["loss"]):
            raise RunFailed([Problem(settings.origin["epochs"], f"training diverged: the loss is "
                                     f"{record['loss']} at epoch {epoch}; lower "
                                     "fit.optimizer.lr or set fit.optimizer.clipnorm")])
        current = record[settings.monitor]
        if epoch == 1 or better(current, best_value):
            best_value, best_epoch, wait = current, epoch, 0
            if settings.restore_best:
                best_weights = {k: p.copy() for k, p in trainer.params.items()}
        else:
            wait += 1
            if settings.patience is not None and wait >= max(settings.patience, 1):
                stopped_early = epoch < settings.epochs
                log.info("early stopping: %s did not improve for %d epoch(s); best %.6g at "
                         "epoch %d", settings.monitor, wait, best_value, best_epoch)
                break
    restored = bool(settings.restore_best and best_weights is not None
                    and best_epoch != len(history))
    if restored:
        optim.assign(trainer.params, best_weights)
        log.info("restored the weights of epoch %d (best %s %.6g)", best_epoch,
                 settings.monitor, best_value)
    objective = best_value if settings.restore_best else history[-1][settings.monitor]
    return FitResult(history, best_epoch, best_value, objective, stopped_early, restored,
                     seconds)


def _metrics_text(record: dict[str, float]) -> str:
    return " - ".join(f"{k} {v:.4f}" for k, v in record.items()
                      if k != "epoch" and not (k.endswith("_penalty") and v == 0))


def _progress_bar(epoch: int, epochs: int, done: int, total: int, start: float) -> None:
    width = 30
    filled = int(width * done / total)
    sys.stderr.write(f"\repoch {epoch}/{epochs} [{'#' * filled}{'.' * (width - filled)}] "
                     f"{done}/{total} batches {time.perf_counter() - start:.1f}s")
    sys.stderr.flush()


# ---- the task -------------------------------------------------------------------------------
def fit_task(spec: Any, plan: Plan, output_dir: Path, result: dict[str, Any],
             timings: dict[str, float], outcome: Any) -> None:
    """What ``run()`` does for task=fit: train, then write history, weights and scores."""
    settings = resolve(spec, plan.outputs)
    check_trainable(plan)
    t = time.perf_counter()
    build(plan)
    timings["build"] = time.perf_counter() - t
    t = time.perf_counter()
    data = prepare_data(plan, settings)
    timings["data"] = time.perf_counter() - t
    progress = spec.progress if spec.progress is not None else sys.stderr.isatty()
    log.info("fit: %d training rows, %d validation rows, %d epochs of %d batches; loss %s; "
             "optimizer %s; monitor %s", data.rows, data.val_rows, settings.epochs,
             math.ceil(data.rows / settings.batch_size), _loss_text(settings.losses),
             settings.optimizer, settings.monitor)
    t = time.perf_counter()
    fitted = fit_model(plan, settings, data, progress=progress)
    timings["fit"] = time.perf_counter() - t
    timings["epoch_mean"] = float(np.mean(fitted.epoch_seconds))
    outcome.values = {}
    result["phase"] = "train"
    result["metrics"] = _result_metrics(settings, fitted, data)
    result["fit"] = {
        "monitor": settings.monitor, "mode": settings.mode, "best_epoch": fitted.best_epoch,
        "epochs_run": len(fitted.history), "stopped_early": fitted.stopped_early,
        "restored_best": fitted.restored_best, "train_rows": data.rows,
        "val_rows": data.val_rows, "batch_size": settings.batch_size, "loss": settings.losses,
        "optimizer": {"name": settings.optimizer,
                      **optim.settings(settings.optimizer, settings.optimizer_options)},
        "metrics": settings.metrics,
    }
    result["objective_mode"] = settings.mode  # sweep summaries rank jobs the right way round
    result["history"] = fitted.history
    write_history(output_dir, fitted.history)
    artifacts.write_npz(output_dir / "weights.npz", named_weights(plan))
    log.info("fit done: %s %.6g (best at epoch %d of %d)%s", settings.monitor,
             fitted.objective, fitted.best_epoch, len(fitted.history),
             "; weights of the best epoch restored" if fitted.restored_best else "")


def _loss_text(loss_map: dict[str, str]) -> str:
    names = set(loss_map.values())
    return names.pop() if len(names) == 1 else str(loss_map)


def _result_metrics(settings: FitSettings, fitted: FitResult, data: FitData) -> dict[str, Any]:
    last = fitted.history[-1]
    metrics: dict[str, Any] = {"objective": fitted.objective, "best_epoch": fitted.best_epoch,
                               "epochs": len(fitted.history)}
    metrics.update({k: v for k, v in last.items() if k != "epoch"})
    for key in ("val_loss", "val_accuracy", "loss", "accuracy"):
        column = [r[key] for r in fitted.history if key in r]
        if column:
            metrics[f"best_{key}"] = max(column) if key.endswith("accuracy") else min(column)
    baseline = _mean_baseline(settings, data)
    if baseline is not None:
        metrics["baseline_val_loss"] = baseline
    return metrics


def _mean_baseline(settings: FitSettings, data: FitData) -> float | None:
    """Validation loss of predicting the mean training target (mse/mae outputs only)."""
    if data.val_targets is None or any(n not in ("mse", "mae") for n in settings.losses.values()):
        return None
    total = 0.0
    for name, loss_name in settings.losses.items():
        mean = data.targets[name].mean(axis=0, dtype=np.float64)
        target = data.val_targets[name]
        guess = np.broadcast_to(mean.astype(target.dtype), target.shape)
        total += losses.loss(loss_name, np.array(guess), target, grad=False)[0]
    return total


def write_history(output_dir: Path, history: list[dict[str, float]]) -> None:
    """history.csv (exact floats, one row per epoch) and history.png (needs matplotlib)."""
    columns = list(dict.fromkeys(k for r in history for k in r))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in history:
        writer.writerow([repr(record[c]) if c in record else "" for c in columns])
    artifacts.write_text(output_dir / "history.csv", buffer.getvalue())
    try:
        plot_history(history, output_dir / "history.png")
    except ImportError:
        log.warning("history.png skipped: matplotlib is not installed "
                    "(pip install -e \".[plot]\")")


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    """Loss curves (and accuracy curves when recorded) against the epoch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [("loss", ["loss", "val_loss"])]
    if any("accuracy" in r for r in history):
        panels.append(("accuracy", ["accuracy", "val_accuracy"]))
    fig = Figure(figsize=(5.5 * len(panels), 4), layout="constrained")
    FigureCanvasAgg(fig)
    epochs = [r["epoch"] for r in history]
    for i, (title, keys) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), i)
        for key in keys:
            if any(key in r for r in history):
                ax.plot(epochs, [r.get(key, math.nan) for r in history], marker="o",
                        markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.savefig(path, dpi=100)

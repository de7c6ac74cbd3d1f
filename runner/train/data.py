"""Training and validation data for ``task=fit``: inputs, targets (an AutoEncoder's default
to its input), a validation split or validation data, all checked for rows and finite values.

Data in memory (inline, random, datasets, .npz, .csv) is cast to the run's dtype and checked
here. A ``.npy`` file (or a glob of shards) stays memory-mapped and streams: it is read batch
by batch in the order ``runner.data.feed`` documents (``fit.shuffle_block`` reads it in
blocks), cast and checked as it streams, so a file larger than memory trains with flat RSS."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from layers.registry import did_you_mean
from runner.data.feed import Column, Feeder, epoch_segments, stream_bytes
from runner.data.mapped import is_streamed, release_rows
from runner.data.sources import load_source
from runner.errors import ConfigError, DataError, Problem
from runner.graph.execute import input_arrays
from runner.graph.plan import Plan
from runner.train import losses
from runner.train.settings import FitSettings


@dataclass
class FitData:
    """Columns of rows (``runner.data.feed.Column``: in memory or streamed) by input name and
    by output name."""

    inputs: dict[str, Column]
    targets: dict[str, Column]
    val_inputs: dict[str, Column] | None = None
    val_targets: dict[str, Column] | None = None
    shuffle: bool = True
    shuffle_block: int | None = None

    @property
    def rows(self) -> int:
        return next(iter(self.inputs.values())).rows

    @property
    def val_rows(self) -> int:
        return 0 if self.val_inputs is None else next(iter(self.val_inputs.values())).rows

    def columns(self) -> list[Column]:
        return [
            *self.inputs.values(),
            *self.targets.values(),
            *(self.val_inputs or {}).values(),
            *(self.val_targets or {}).values(),
        ]

    def train_feeder(self, batch_size: int) -> Feeder:
        return Feeder(self.inputs, self.targets, batch_size)

    def val_feeder(self, batch_size: int) -> Feeder | None:
        if self.val_inputs is None:
            return None
        return Feeder(self.val_inputs, self.val_targets or {}, batch_size)

    def epoch(self, feeder: Feeder, rng: np.random.Generator | None):
        """The batches of one epoch: ``(rows, inputs, targets)``, in the order the fit
        settings choose (rng None: in order, as for validation)."""
        shuffle = self.shuffle and rng is not None
        return feeder.batches(epoch_segments(feeder.rows, shuffle, self.shuffle_block, rng))

    def stream_bytes(self, batch_size: int) -> int:
        """What streaming the mapped columns adds to the plan's memory estimate."""
        return stream_bytes(self.columns(), batch_size)

    def mean_baseline(self, loss_names: dict[str, str]) -> float | None:
        """Validation loss of predicting the mean training target (mse/mae outputs only)."""
        if self.val_targets is None or any(n not in ("mse", "mae") for n in loss_names.values()):
            return None
        total = 0.0
        for name, loss_name in loss_names.items():
            column, val = self.targets[name], self.val_targets[name]
            mean = column.mean().astype(val.dtype)
            # one pass over rows in memory; streamed rows in windows, weighted by their rows
            step = val.rows if not val.streamed else max(2**25 // max(val.row_bytes, 1), 1)
            for lo in range(0, val.rows, step):
                hi = min(val.rows, lo + step)
                target = np.asarray(val.array[lo:hi], dtype=val.dtype)
                guess = np.array(np.broadcast_to(mean, target.shape))
                value = losses.loss(loss_name, guess, target, grad=False)[0]
                total += value * (hi - lo) / val.rows
                release_rows(val.array, lo, hi)
        return total


def _as_samples(array: np.ndarray, shape: tuple[int, ...], path: str) -> np.ndarray:
    """Reshape flat rows to the per-sample ``shape`` when the sizes agree."""
    if (
        array.ndim >= 1
        and tuple(array.shape[1:]) != shape
        and array.shape[0]
        and (math.prod(shape) * array.shape[0] == array.size)
    ):
        return array.reshape((array.shape[0], *shape))
    if array.ndim < 1 or tuple(array.shape[1:]) != shape:
        raise ConfigError.one(
            path,
            f"expected per-sample shape {shape}, found data of shape {array.shape} (batch first)",
        )
    return array


def _finite(array: np.ndarray, path: str) -> np.ndarray:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError.one(path, "contains NaN or Inf values")
    return array


def _targets(
    plan: Plan,
    settings: FitSettings,
    given: dict[str, Any],
    inputs: dict[str, Any],
    where: str,
    problems: list[Problem],
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key in given:
        if key not in plan.outputs:
            problems.append(
                Problem(
                    f"{where}.{key}",
                    f"{key!r} is not a model output"
                    f"{did_you_mean(key, plan.outputs)}; outputs: {plan.outputs}",
                )
            )
    for name in plan.outputs:  # Refs: given keys match them by their spelling ('siam.0')
        node = plan.nodes.get(name.node)  # 'siam.0' is one output of the node 'siam'
        path = f"{where}.{name}"
        if node is None:
            problems.append(
                Problem(
                    "model.outputs", f"cannot fit output {name!r}: it is a model input, not a layer"
                )
            )
            continue
        loss = settings.losses[name]
        try:
            if name in given:
                array = load_source(
                    given[name],
                    path,
                    plan.cwd,
                    plan.spec.seed,
                    node.shape,
                    max_bytes=plan.spec.max_memory_mb * 2**20,
                    streamed=True,  # a .npy streams; what is read whole is still bounded
                )
            elif _reconstructs(node) and node.inputs[0] in inputs:
                array = inputs[node.inputs[0]]  # an AutoEncoder is fitted to its input
            else:
                problems.append(
                    Problem(
                        where,
                        f"no target for output {name!r}: add {path} "
                        "(inline rows, {path: ...}, {random: ...} or "
                        "{dataset: ...})",
                    )
                )
                continue
            if loss != "sparse_categorical_crossentropy":
                array = _as_samples(array, node.shape, path)
            issue = _target_problem(loss, node.shape, array)
            if issue:
                problems.append(Problem(path, f"{issue} (loss {loss})"))
                continue
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        dtype = np.dtype(np.int64) if loss == "sparse_categorical_crossentropy" else plan.dtype
        out[name] = _column(array, dtype, path, _file(given.get(name)))
    return out


def _target_problem(loss: str, shape: tuple[int, ...], array) -> str | None:
    """losses.target_problem, over a streamed array in windows (never read whole)."""
    if not is_streamed(array):
        return losses.target_problem(loss, shape, array)
    issue = losses.target_problem(loss, shape, array[:0])  # the shape alone
    if issue or loss != "sparse_categorical_crossentropy":
        return issue
    step = max(2**25 // max(array.dtype.itemsize * math.prod(array.shape[1:]), 1), 1)
    for lo in range(0, array.shape[0], step):
        issue = losses.target_problem(loss, shape, np.asarray(array[lo : lo + step]))
        release_rows(array, lo, lo + step)
        if issue:
            return f"{issue} in rows {lo}..{min(lo + step, array.shape[0]) - 1}"
    return None


def _file(source: Any) -> str | None:
    path = getattr(source, "path", None)
    return path if isinstance(path, str) else None


def _column(array: Any, dtype: np.dtype, path: str, file: str | None = None) -> Column:
    """A streamed array as it is (cast and checked batch by batch), else cast and checked now."""
    if is_streamed(array):
        return Column(array, np.dtype(dtype), path, file)
    if np.dtype(dtype).kind == "i":
        return Column(np.asarray(array).astype(dtype), np.dtype(dtype), path, file)
    return Column(_finite(np.asarray(array, dtype=dtype), path), np.dtype(dtype), path, file)


def _reconstructs(node) -> bool:
    spec = node.layer.spec
    return spec.type == "AutoEncoder" and bool(getattr(spec, "output_reconstruction", True))


def _rows_agree(
    columns: dict[str, Column], where: str, rows: int, what: str, problems: list[Problem]
) -> None:
    for name, c in columns.items():
        if c.rows != rows:
            problems.append(
                Problem(f"{where}.{name}", f"has {c.rows} rows, but the {what} have {rows}")
            )


def prepare_data(plan: Plan, settings: FitSettings) -> FitData:
    """Training (and validation) inputs and targets as in-memory arrays of the run's dtype."""
    problems: list[Problem] = []
    arrays = input_arrays(plan)
    inputs = {
        n: _column(a, plan.dtype, f"model.inputs.{n}.data", _file(plan.inputs[n].spec.data))
        for n, a in arrays.items()
    }
    rows = {c.rows for c in inputs.values()}
    if len(rows) > 1:
        raise DataError.one(
            "model.inputs",
            f"inputs have different numbers of rows: { {n: c.rows for n, c in inputs.items()} }",
        )
    n = rows.pop()
    loaded = {k: c.array for k, c in inputs.items()}  # an AutoEncoder's target: its input
    targets = _targets(plan, settings, plan.spec.model.targets, loaded, "model.targets", problems)
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
                a = load_source(
                    vd.inputs[name],
                    path,
                    plan.cwd,
                    plan.spec.seed,
                    node.shape,
                    max_bytes=plan.spec.max_memory_mb * 2**20,
                    streamed=True,
                )
                val_inputs[name] = _column(
                    _as_samples(a, node.shape, path), plan.dtype, path, _file(vd.inputs[name])
                )
            except ConfigError as exc:
                problems.extend(exc.problems)
        for name in vd.inputs:
            if name not in plan.inputs:
                problems.append(
                    Problem(
                        f"{where}.inputs.{name}",
                        f"{name!r} is not a model input{did_you_mean(name, plan.inputs)}",
                    )
                )
        if not problems:
            val_rows = {c.rows for c in val_inputs.values()}
            if len(val_rows) > 1:
                problems.append(Problem(f"{where}.inputs", "inputs have different numbers of rows"))
            val_arrays = {k: c.array for k, c in val_inputs.items()}
            val_targets = _targets(
                plan, settings, vd.targets, val_arrays, f"{where}.targets", problems
            )
            _rows_agree(
                val_targets, f"{where}.targets", max(val_rows), "validation inputs", problems
            )
            data.val_inputs, data.val_targets = val_inputs, val_targets
    if problems:
        raise ConfigError(problems)
    if settings.validation_split > 0:
        split_at = int(n * (1 - settings.validation_split))  # the last rows, as legacy Keras
        if split_at < 1 or split_at >= n:
            raise ConfigError.one(
                settings.origin["validation_split"],
                f"validation_split "
                f"{settings.validation_split} of {n} rows leaves "
                f"{split_at} for training and {n - split_at} for validation;"
                " both need at least one row",
            )
        data = FitData(
            {k: c.part(0, split_at) for k, c in inputs.items()},
            {k: c.part(0, split_at) for k, c in targets.items()},
            {k: c.part(split_at, n) for k, c in inputs.items()},
            {k: c.part(split_at, n) for k, c in targets.items()},
        )
    data.shuffle, data.shuffle_block = settings.shuffle, settings.shuffle_block
    return data

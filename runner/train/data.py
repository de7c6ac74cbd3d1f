"""Training and validation arrays for ``task=fit``: inputs, targets (an AutoEncoder's default
to its input), a validation split or validation data, all checked for rows and finite values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from layers.registry import did_you_mean
from runner.data.sources import load_source
from runner.errors import ConfigError, DataError, Problem
from runner.graph.execute import input_arrays
from runner.graph.plan import Plan
from runner.train import losses
from runner.train.settings import FitSettings


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


def _rows_agree(
    arrays: dict[str, np.ndarray], where: str, rows: int, what: str, problems: list[Problem]
) -> None:
    for name, a in arrays.items():
        if a.shape[0] != rows:
            problems.append(
                Problem(f"{where}.{name}", f"has {a.shape[0]} rows, but the {what} have {rows}")
            )


def prepare_data(plan: Plan, settings: FitSettings) -> FitData:
    """Training (and validation) inputs and targets as in-memory arrays of the run's dtype."""
    problems: list[Problem] = []
    inputs = {
        n: _finite(np.asarray(a, dtype=plan.dtype), f"model.inputs.{n}.data")
        for n, a in input_arrays(plan).items()
    }
    rows = {a.shape[0] for a in inputs.values()}
    if len(rows) > 1:
        raise DataError.one(
            "model.inputs",
            "inputs have different numbers of rows: "
            f"{ {n: a.shape[0] for n, a in inputs.items()} }",
        )
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
                a = load_source(
                    vd.inputs[name],
                    path,
                    plan.cwd,
                    plan.spec.seed,
                    node.shape,
                    max_bytes=plan.spec.max_memory_mb * 2**20,
                )
                val_inputs[name] = _finite(
                    np.asarray(_as_samples(a, node.shape, path), dtype=plan.dtype), path
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
            val_rows = {a.shape[0] for a in val_inputs.values()}
            if len(val_rows) > 1:
                problems.append(Problem(f"{where}.inputs", "inputs have different numbers of rows"))
            val_targets = _targets(
                plan, settings, vd.targets, val_inputs, f"{where}.targets", problems
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
            {k: a[:split_at] for k, a in inputs.items()},
            {k: a[:split_at] for k, a in targets.items()},
            {k: a[split_at:] for k, a in inputs.items()},
            {k: a[split_at:] for k, a in targets.items()},
        )
    return data

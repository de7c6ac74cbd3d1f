"""The evaluate part of the plan: which rows are scored, how each output is scored (its kind
and loss), its targets, the anomaly labels and a reference run's threshold, all checked before
the model is built.

Inputs and targets are read exactly as ``task=fit`` reads them (``runner.train.data``), with
the fit settings' loss and validation rows (``runner.train.settings``): the validation rows a
fit held out are the rows ``split: validation`` scores.

How an output is scored, when ``evaluate.kind`` does not say: a classification loss makes a
classifier, an AutoEncoder that reconstructs its input a reconstruction, any other loss a
regression. Without a loss anywhere, the targets decide: integer class labels (one per sample,
for an output with several units) make a classifier scored with sparse categorical
crossentropy, one-hot rows one scored with categorical crossentropy, anything else a
regression scored with mse.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from layers.base import FileRef
from layers.registry import did_you_mean
from runner.config.run_folders import finished_run
from runner.data.sources import load_file, load_source
from runner.errors import ConfigError, Problem
from runner.graph.nodes import Plan
from runner.train import losses
from runner.train.data import prepare_data
from runner.train.settings import FitSettings, resolve

ERRORS_FILE = "reconstruction_error.npy"


@dataclass
class Scoring:
    """How one output is scored."""

    kind: str  # classifier | regression | reconstruction
    loss: str
    classes: int = 0  # classifier: number of classes (2 for one sigmoid unit)
    class_names: list[str] = field(default_factory=list)
    threshold: float | None = None  # reconstruction: known before scoring (value or reference)
    reference_rows: int = 0  # rows of the reference run the threshold came from


@dataclass
class EvaluatePlan:
    outputs: dict[str, Scoring]
    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    rows: np.ndarray  # of each scored row: its index in the data it comes from
    anomalous: np.ndarray | None = None  # reconstruction: True for rows labelled anomalous
    seconds: float = 0.0


def errors_file(name: str, several: bool) -> str:
    """The run-folder file of an output's reconstruction errors."""
    return f"reconstruction_error.{name}.npy" if several else ERRORS_FILE


def needs_evaluate_plan(spec: Any) -> bool:
    """task=evaluate, or task=validate with evaluate settings to check."""
    return spec.task == "evaluate" or (
        spec.task == "validate" and spec.evaluate != type(spec.evaluate)()
    )


def plan_evaluate(spec: Any, plan: Plan) -> EvaluatePlan:
    """Everything task=evaluate checks before it computes; ConfigError/DataError if any fails."""
    start = time.perf_counter()
    settings = resolve(spec, plan.outputs)
    problems: list[Problem] = []
    outputs = _scorings(spec, plan, settings, problems)
    if problems:
        raise ConfigError(problems)
    losses_by_output = {**settings.losses, **{n: s.loss for n, s in outputs.items()}}
    split = spec.evaluate.split
    has_validation = settings.validation_split > 0 or settings.validation_data is not None
    if split == "validation" and not has_validation:
        raise ConfigError.one(
            "evaluate.split",
            "the fit settings hold out no validation rows: set fit.validation_split or "
            "fit.validation_data, or score split all",
        )
    if split == "all":
        settings = dataclasses.replace(settings, validation_split=0.0, validation_data=None)
    data = prepare_data(plan, dataclasses.replace(settings, losses=losses_by_output))
    if split == "validation":
        inputs, targets = data.val_inputs or {}, data.val_targets or {}
        first = data.rows if settings.validation_data is None else 0
        rows = np.arange(first, first + data.val_rows)
        source_rows = first + data.val_rows
    else:
        inputs, targets = data.inputs, data.targets
        rows = np.arange(data.rows)
        source_rows = data.rows + (data.val_rows if settings.validation_data is None else 0)
    # columns (runner.data.feed): mapped inputs stay mapped, predict reads them in batches;
    # targets are scored whole, in the dtype fit uses
    out = EvaluatePlan(
        outputs,
        {k: c.array for k, c in inputs.items()},
        {k: np.asarray(c.array, dtype=c.dtype) for k, c in targets.items()},
        rows,
    )
    reconstructions = [n for n, s in outputs.items() if s.kind == "reconstruction"]
    _anomaly_settings(spec, reconstructions, problems)
    if not problems and spec.evaluate.anomaly_labels is not None:
        out.anomalous = _anomaly_labels(spec, plan, rows, source_rows, problems)
    if not problems and spec.evaluate.reference is not None:
        for name in reconstructions:
            _reference_threshold(spec, plan, name, outputs[name], len(reconstructions) > 1)
    if problems:
        raise ConfigError(problems)
    for name in reconstructions:
        if spec.evaluate.threshold is not None:
            outputs[name].threshold = float(spec.evaluate.threshold)
    out.seconds = time.perf_counter() - start
    return out


# ---- how each output is scored --------------------------------------------------------------
def _explicit_loss(spec: Any) -> bool:
    return any(block is not None and block.loss is not None for block in (spec.fit, spec.model.fit))


def _reconstructs(node: Any) -> bool:
    layer_spec = node.layer.spec
    return layer_spec.type == "AutoEncoder" and bool(
        getattr(layer_spec, "output_reconstruction", True)
    )


def _target_form(spec: Any, plan: Plan, name: str, node: Any) -> str:
    """labels | onehot | values | none: what the output's target looks like."""
    source = spec.model.targets.get(name)
    if source is None:
        return "none"
    try:
        target = np.asarray(
            load_source(
                source,
                f"model.targets.{name}",
                plan.cwd,
                spec.seed,
                node.shape,
                max_bytes=spec.max_memory_mb * 2**20,
            )
        )
    except ConfigError:
        return "none"  # prepare_data reports it
    per_sample = tuple(target.shape[1:])
    units = node.shape[-1] if node.shape else 1
    whole = target.dtype.kind in "iub" or (
        target.dtype.kind == "f" and bool(np.all(np.mod(target, 1) == 0))
    )
    if units > 1 and whole and per_sample in (tuple(node.shape[:-1]), (*node.shape[:-1], 1)):
        return "labels"
    if (
        units > 1
        and per_sample == tuple(node.shape)
        and bool(np.isin(target, (0, 1)).all())
        and bool(np.all(target.sum(axis=-1) == 1))
    ):
        return "onehot"
    return "values"


def _scorings(
    spec: Any, plan: Plan, settings: FitSettings, problems: list[Problem]
) -> dict[str, Scoring]:
    given = spec.evaluate.kind
    if isinstance(given, dict):
        for key in given:
            if key not in plan.outputs:
                problems.append(
                    Problem(
                        f"evaluate.kind.{key}",
                        f"{key!r} is not a model output"
                        f"{did_you_mean(key, plan.outputs)}; outputs: {plan.outputs}",
                    )
                )
    explicit = _explicit_loss(spec)
    out: dict[str, Scoring] = {}
    for ref in plan.outputs:
        name = str(ref)
        node = plan.nodes.get(ref.node)
        if node is None:
            continue  # an input as an output: prepare_data names it
        kind = given.get(name) if isinstance(given, dict) else given
        kind_path = f"evaluate.kind.{name}" if isinstance(given, dict) else "evaluate.kind"
        loss = settings.losses[name] if explicit else None
        units = node.shape[-1] if node.shape else 1
        if loss is None:
            form = "none" if _reconstructs(node) else _target_form(spec, plan, name, node)
            if kind is None:
                kind = {"labels": "classifier", "onehot": "classifier"}.get(form)
                kind = kind or ("reconstruction" if _reconstructs(node) else "regression")
            if kind == "classifier":
                loss = (
                    "sparse_categorical_crossentropy"
                    if form == "labels"
                    else "binary_crossentropy"
                    if units == 1
                    else "categorical_crossentropy"
                )
            else:
                loss = "mse"
        elif kind is None:
            kind = (
                "classifier"
                if loss in losses.CLASSIFICATION
                else "reconstruction"
                if _reconstructs(node)
                else "regression"
            )
        scoring = Scoring(kind, loss)
        if kind == "classifier":
            if loss == "binary_crossentropy" and units > 1:
                problems.append(
                    Problem(
                        settings.origin["loss"] if explicit else kind_path,
                        f"output {name!r} has {units} sigmoid units under binary_crossentropy: "
                        "that is multi-label, and per-class metrics need one class per sample; "
                        "score it with evaluate.kind=regression",
                    )
                )
                continue
            scoring.classes = 2 if units == 1 else units
            names = spec.evaluate.class_names
            if names is not None and len(names) != scoring.classes:
                problems.append(
                    Problem(
                        "evaluate.class_names",
                        f"output {name!r} has {scoring.classes} classes, found {len(names)} names",
                    )
                )
            scoring.class_names = list(names or (str(i) for i in range(scoring.classes)))
        out[name] = scoring
    return out


# ---- anomaly detection ----------------------------------------------------------------------
def _anomaly_settings(spec: Any, reconstructions: list[str], problems: list[Problem]) -> None:
    if reconstructions:
        return
    evaluate = spec.evaluate
    for key in ("threshold", "threshold_quantile", "reference", "anomaly_labels"):
        if getattr(evaluate, key) is not None:
            problems.append(
                Problem(
                    f"evaluate.{key}",
                    "is for reconstruction outputs (an AutoEncoder, or evaluate.kind="
                    "reconstruction), and no output is scored that way",
                )
            )


def _anomaly_labels(
    spec: Any, plan: Plan, rows: np.ndarray, source_rows: int, problems: list[Problem]
) -> np.ndarray | None:
    """True for each scored row that the labels call anomalous."""
    path = "evaluate.anomaly_labels"
    try:
        labels = np.asarray(
            load_source(
                spec.evaluate.anomaly_labels,
                path,
                plan.cwd,
                spec.seed,
                (),
                max_bytes=spec.max_memory_mb * 2**20,
            )
        )
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != source_rows:
        problems.append(
            Problem(
                path,
                f"expected one label per row of the scored data ({source_rows} rows, before "
                f"evaluate.split), found shape {labels.shape}",
            )
        )
        return None
    if labels.dtype.kind not in "biuf" or (
        labels.dtype.kind == "f" and not np.isfinite(labels).all()
    ):
        problems.append(Problem(path, f"expected numbers, found dtype {labels.dtype}"))
        return None
    labels = labels[rows]
    classes, normal = spec.evaluate.anomaly_classes, spec.evaluate.normal_classes
    if classes is not None:
        anomalous = np.isin(labels, classes)
    elif normal is not None:
        anomalous = ~np.isin(labels, normal)
    elif np.isin(labels, (0, 1)).all():
        anomalous = labels == 1
    else:
        problems.append(
            Problem(
                path,
                "labels are 0 (normal) or 1 (anomaly) unless evaluate.anomaly_classes or "
                f"normal_classes name the classes; found values {np.unique(labels)[:10].tolist()}",
            )
        )
        return None
    if anomalous.all() or not anomalous.any():
        problems.append(
            Problem(
                path,
                f"the {len(labels)} scored rows are all "
                f"{'anomalies' if anomalous.all() else 'normal'}: the AUROC needs both",
            )
        )
        return None
    return anomalous


def _reference_threshold(spec: Any, plan: Plan, name: str, scoring: Scoring, several: bool):
    """threshold_quantile of the errors an earlier evaluate run wrote for this output."""
    path = "evaluate.reference"
    file = errors_file(name, several)
    folder = finished_run(spec.evaluate.reference, path, plan.cwd, [file])
    errors = np.asarray(
        load_file(FileRef(path=str(folder / file)), plan.cwd, path, spec.max_memory_mb * 2**20)
    )
    if errors.ndim != 1 or not len(errors) or errors.dtype.kind != "f":
        raise ConfigError.one(
            path,
            f"{file} should hold one float error per row, found shape {errors.shape} "
            f"{errors.dtype}",
            spec.evaluate.reference,
        )
    if not np.isfinite(errors).all():
        raise ConfigError.one(path, f"{file} holds NaN or Inf", spec.evaluate.reference)
    scoring.threshold = float(
        np.quantile(errors.astype(np.float64), spec.evaluate.threshold_quantile)
    )
    scoring.reference_rows = len(errors)

"""``task=evaluate``: score a model and its weights on data with targets.

The rows, targets and the way each output is scored come from the plan
(``runner.evaluate.plan``); here the model runs over those rows in the run's phase (test,
unless ``training`` says otherwise) and each output gets its numbers (``metrics``), its files
and its lines on the console:

- classifier: loss, accuracy, macro and weighted precision / recall / F1; per class
  ``classes.csv`` and a confusion matrix (``confusion_matrix.csv``, ``confusion_matrix.png``);
- regression: loss, MSE, MAE, R²;
- reconstruction: the error of every row (``reconstruction_error.npy``, summary, histogram
  ``reconstruction_error.png``), rows above a threshold (``anomalies.csv``), the top-k rows,
  and with anomaly labels the AUROC of the error as a detector.

With several outputs, metric names get the output's name in front (``out/accuracy``) and files
get it before the suffix (``confusion_matrix.out.csv``).
"""

from __future__ import annotations

import io
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from runner.evaluate import metrics as m
from runner.evaluate import report
from runner.evaluate.plan import EvaluatePlan, Scoring, errors_file, plan_evaluate
from runner.graph.build import build, named_weights
from runner.graph.context import phase
from runner.graph.execute import predict
from runner.graph.plan import Plan
from runner.output import artifacts
from runner.output.csv_outputs import write_csvs
from runner.train import losses

log = logging.getLogger("runner")


def evaluate_task(
    spec: Any,
    plan: Plan,
    output_dir: Path,
    result: dict[str, Any],
    timings: dict[str, float],
    outcome: Any,
) -> None:
    """What ``run()`` does for task=evaluate: predict the chosen rows, score, write, print."""
    ep: EvaluatePlan = plan.evaluate if plan.evaluate is not None else plan_evaluate(spec, plan)
    timings["data"] = ep.seconds
    t = time.perf_counter()
    build(plan)
    timings["build"] = time.perf_counter() - t
    training = phase(spec)
    progress = spec.progress if spec.progress is not None else sys.stderr.isatty()
    prediction = predict(plan, training, set(plan.outputs), progress=progress, arrays=ep.inputs)
    timings["execute"] = prediction.seconds
    outcome.values = prediction.values
    weights = spec.model.weights.path if spec.model.weights is not None else None
    lines = [
        f"evaluate: {len(ep.rows)} rows (split {spec.evaluate.split}"
        + (f", rows {ep.rows[0]}..{ep.rows[-1]}" if len(ep.rows) else "")
        + f"), weights {weights or 'of the model config'}"
    ]
    several = len(ep.outputs) > 1
    all_metrics: dict[str, Any] = {}
    details: dict[str, Any] = {}
    t = time.perf_counter()
    for name, scoring in ep.outputs.items():
        y, mask = prediction.values[name], prediction.masks.get(name)
        target = ep.targets[name]
        loss_value = losses.loss(scoring.loss, y, target, mask, grad=False)[0]
        scored = _Output(name, scoring, several, output_dir)
        scored.metrics["loss"] = loss_value
        if scoring.kind == "classifier":
            scored.classifier(y, target, mask)
        elif scoring.kind == "regression":
            scored.regression(y, target, mask)
        else:
            scored.reconstruction(y, target, mask, ep, spec.evaluate)
        prefix = f"{name}/" if several else ""
        all_metrics.update({prefix + k: v for k, v in scored.metrics.items()})
        details[name] = {"kind": scoring.kind, "loss": scoring.loss, **scored.details}
        lines += [f"{name}: {scoring.kind}, loss {scoring.loss}", *scored.lines()]
    if several:
        all_metrics["loss"] = sum(v for k, v in all_metrics.items() if k.endswith("/loss"))
    timings["score"] = time.perf_counter() - t
    result["phase"] = "train" if training else "test"
    result["metrics"] = all_metrics
    result["evaluate"] = {
        "split": spec.evaluate.split,
        "rows": len(ep.rows),
        "first_row": int(ep.rows[0]) if len(ep.rows) else None,
        "weights": weights,
        "outputs": details,
    }
    _write_outputs(spec, output_dir, prediction, plan, ep, result)
    for line in lines:
        log.info("%s", line)


class _Output:
    """The numbers, files and console lines of one scored output."""

    def __init__(self, name: str, scoring: Scoring, several: bool, output_dir: Path) -> None:
        self.name, self.scoring, self.several, self.dir = name, scoring, several, output_dir
        self.metrics: dict[str, Any] = {}
        self.details: dict[str, Any] = {}
        self.extra_lines: list[str] = []

    def file(self, base: str, suffix: str) -> Path:
        return self.dir / (f"{base}.{self.name}{suffix}" if self.several else f"{base}{suffix}")

    def lines(self) -> list[str]:
        return [*report.metric_lines(self.metrics), *self.extra_lines]

    def classifier(self, y, target, mask) -> None:
        s = self.scoring
        true, predicted = m.class_pairs(s.loss, y, target, mask)
        counts = m.confusion_matrix(true, predicted, s.classes)
        scores = m.per_class(counts)
        self.metrics.update(m.classifier_scores(counts))
        self.details["classes"] = [
            {
                "class": label,
                "precision": float(scores["precision"][i]),
                "recall": float(scores["recall"][i]),
                "f1": float(scores["f1"][i]),
                "support": int(scores["support"][i]),
            }
            for i, label in enumerate(s.class_names)
        ]
        self.details["confusion_matrix"] = counts.tolist()
        artifacts.write_text(
            self.file("confusion_matrix", ".csv"), report.confusion_csv(counts, s.class_names)
        )
        artifacts.write_text(
            self.file("classes", ".csv"), report.classes_csv(s.class_names, scores)
        )
        title = f"{self.name}: accuracy {self.metrics['accuracy']:.4f} on {counts.sum()} rows"
        _plot(
            "confusion_matrix.png",
            _plots().plot_confusion,
            counts,
            s.class_names,
            title,
            self.file("confusion_matrix", ".png"),
        )
        self.extra_lines = [
            *report.class_lines(s.class_names, scores),
            *report.confusion_lines(counts, s.class_names),
        ]

    def regression(self, y, target, mask) -> None:
        self.metrics.update(m.regression_scores(*m.columns(y, target, mask)))

    def reconstruction(self, y, target, mask, ep: EvaluatePlan, settings: Any) -> None:
        errors = m.row_errors(self.scoring.loss, y, target, mask)
        self.metrics.update({f"error_{k}": v for k, v in m.error_summary(errors).items()})
        errors_path = self.dir / errors_file(self.name, self.several)
        buffer = io.BytesIO()
        np.save(buffer, errors, allow_pickle=False)
        artifacts.write_chunks(errors_path, [buffer.getvalue()])
        threshold = self.scoring.threshold
        source = "value" if settings.threshold is not None else None
        if self.scoring.reference_rows:
            source = f"quantile {settings.threshold_quantile} of {settings.reference}"
        elif settings.threshold_quantile is not None:
            threshold = float(np.quantile(errors.astype(np.float64), settings.threshold_quantile))
            source = f"quantile {settings.threshold_quantile} of these rows"
        anomalous = ep.anomalous
        if threshold is not None:
            flagged = errors > threshold
            self.metrics.update(
                threshold=threshold,
                anomalies=int(flagged.sum()),
                anomaly_fraction=float(flagged.mean()),
            )
            self.details["threshold_from"] = source
            order = np.flatnonzero(flagged)
            order = order[np.argsort(-errors[order], kind="stable")]
            artifacts.write_text(
                self.file("anomalies", ".csv"),
                "row,error\n" + "".join(f"{ep.rows[i]},{float(errors[i])!r}\n" for i in order),
            )
        if anomalous is not None:
            self.metrics["anomaly_auroc"] = m.roc_auc(errors, anomalous)
            self.metrics["labelled_anomalies"] = int(anomalous.sum())
            if threshold is not None:
                self.metrics.update(m.detection_scores(errors > threshold, anomalous))
        top = np.argsort(-errors, kind="stable")[: settings.top_k]
        self.details["top_k"] = [
            {
                "row": int(ep.rows[i]),
                "error": float(errors[i]),
                **(
                    {"label": "anomaly" if anomalous[i] else "normal"}
                    if anomalous is not None
                    else {}
                ),
            }
            for i in top
        ]
        self.details["errors_file"] = errors_path.name
        title = f"{self.name}: {len(errors)} rows, {self.scoring.loss} per row"
        _plot(
            "reconstruction_error.png",
            _plots().plot_errors,
            errors,
            title,
            self.file("reconstruction_error", ".png"),
            threshold,
            anomalous,
        )
        if self.details["top_k"]:
            self.extra_lines = report.top_lines(self.details["top_k"])


def _plots():
    from runner.evaluate import plots

    return plots


def _plot(what: str, draw, *args) -> None:
    try:
        draw(*args)
    except ImportError:
        log.warning('%s skipped: matplotlib is not installed (pip install -e ".[plot]")', what)


def _write_outputs(spec, output_dir: Path, prediction, plan: Plan, ep: EvaluatePlan, result):
    """outputs.npz (predictions and masks by output name), weights.npz, and with save_csv
    outputs/NAME.csv led by each row's index."""
    saved = {str(n): np.asarray(prediction.values[n]) for n in plan.outputs}
    saved.update({f"{n}/mask": prediction.masks[n] for n in plan.outputs if n in prediction.masks})
    artifacts.write_npz(output_dir / "outputs.npz", saved)
    artifacts.write_npz(output_dir / "weights.npz", named_weights(plan))
    result["outputs"] = {
        name: {"shape": list(a.shape), "dtype": str(a.dtype), "sha256": artifacts.array_digest(a)}
        for name, a in saved.items()
    }
    if spec.save_csv:
        values = {str(n): saved[str(n)] for n in plan.outputs}
        write_csvs(output_dir, values, ep.rows, result["outputs"])

"""The numbers ``task=evaluate`` reports, as pure functions of NumPy arrays.

Definitions follow scikit-learn's, so its functions can check ours (tests/test_evaluate.py):
precision, recall and F1 are 0 where their denominator is 0 (``zero_division=0``); R² is the
mean over output columns, 1 for a constant column predicted exactly and 0 otherwise
(``force_finite``); the AUROC counts tied scores as half (average ranks). Sums are taken in
float64 whatever the output's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runner.train import losses

QUANTILES = (0.5, 0.9, 0.95, 0.99)


# ---- classifiers ---------------------------------------------------------------------------
def class_pairs(
    loss: str, y: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(true class, predicted class) of every sample (every kept timestep), flattened.

    The class is the argmax of the last axis; one sigmoid unit predicts 1 above 0.5 (as
    ``losses.accuracy_counts``: legacy Keras rounds, and 0.5 rounds to 0). Targets are class
    labels (sparse_categorical_crossentropy), 0/1 (one unit) or one-hot rows."""
    if y.shape[-1] == 1:
        predicted = y[..., 0] > 0.5
        true = np.asarray(target)[..., 0] > 0.5
    else:
        predicted = y.argmax(axis=-1)
        if loss == "sparse_categorical_crossentropy":
            true = losses.sparse_labels(np.asarray(target), y.shape)
        else:
            true = np.asarray(target).argmax(axis=-1)
    if mask is not None:
        keep = np.asarray(mask, dtype=bool)
        true, predicted = true[keep], predicted[keep]
    return true.reshape(-1).astype(np.int64), predicted.reshape(-1).astype(np.int64)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """counts[i, j]: the samples of true class i predicted as class j."""
    flat = np.bincount(true * classes + predicted, minlength=classes * classes)
    return flat.reshape(classes, classes)


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    out = np.zeros(top.shape, dtype=np.float64)
    np.divide(top, bottom, out=out, where=bottom > 0)
    return out


def per_class(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of every class, from a confusion matrix."""
    hits = np.diag(counts).astype(np.float64)
    predicted = counts.sum(axis=0).astype(np.float64)
    support = counts.sum(axis=1)
    return {
        "precision": _ratio(hits, predicted),
        "recall": _ratio(hits, support.astype(np.float64)),
        "f1": _ratio(2 * hits, predicted + support),  # 2tp / (2tp + fp + fn)
        "support": support,
    }


def classifier_scores(counts: np.ndarray) -> dict[str, float]:
    """Accuracy and the macro (every class alike) and support-weighted averages."""
    table = per_class(counts)
    total = counts.sum()
    weights = table["support"] / total if total else np.zeros(len(counts))
    return {
        "accuracy": float(np.trace(counts) / total) if total else 0.0,
        "precision_macro": float(table["precision"].mean()),
        "recall_macro": float(table["recall"].mean()),
        "f1_macro": float(table["f1"].mean()),
        "f1_weighted": float((table["f1"] * weights).sum()),
    }


# ---- regression ----------------------------------------------------------------------------
def columns(
    y: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Outputs and targets as (samples, columns); a mask keeps its timesteps as samples."""
    if mask is not None:
        keep = np.asarray(mask, dtype=bool)
        return y[keep].reshape(-1, y.shape[-1]), np.asarray(target)[keep].reshape(-1, y.shape[-1])
    return y.reshape(len(y), -1), np.asarray(target).reshape(len(y), -1)


def regression_scores(y: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """MSE and MAE over every element, R² averaged over columns (``y``: samples x columns)."""
    diff = y.astype(np.float64) - target
    t = np.asarray(target, dtype=np.float64)
    residual = np.square(diff).sum(axis=0)
    total = np.square(t - t.mean(axis=0)).sum(axis=0)
    r2 = np.where(residual == 0, 1.0, 0.0)  # a constant column: exact or not
    np.subtract(1.0, residual / np.where(total > 0, total, 1.0), out=r2, where=total > 0)
    return {
        "mse": float(np.square(diff).mean()),
        "mae": float(np.abs(diff).mean()),
        "r2": float(r2.mean()),
    }


# ---- reconstruction ------------------------------------------------------------------------
def row_errors(
    loss: str, y: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """The loss of every row on its own (mse: the mean squared error over the row's values;
    masked timesteps left out, a row with none kept scores 0), in the output's dtype."""
    score, _ = losses.SCORES[loss](y, np.asarray(target, dtype=y.dtype), False, 1.0)
    if score.ndim == 1:
        return score
    axes = tuple(range(1, score.ndim))
    if mask is None:
        return score.mean(axis=axes, dtype=np.float64).astype(y.dtype)
    weights = np.asarray(mask, dtype=np.float64)
    kept = weights.sum(axis=axes)
    total = (score * weights).sum(axis=axes, dtype=np.float64)
    return _ratio(total, kept).astype(y.dtype)


def error_summary(errors: np.ndarray) -> dict[str, float]:
    """Mean, std, min, quantiles (NumPy's linear interpolation) and max of the row errors."""
    e = np.asarray(errors, dtype=np.float64)
    out = {"mean": float(e.mean()), "std": float(e.std()), "min": float(e.min())}
    for q, value in zip(QUANTILES, np.quantile(e, QUANTILES)):
        out[f"q{round(q * 100)}"] = float(value)
    out["max"] = float(e.max())
    return out


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` as a detector of ``positive`` rows: the chance
    that a random positive row scores above a random negative one, ties counted as half
    (the Mann-Whitney U statistic over average ranks). Needs both kinds of rows."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("the AUROC needs positive and negative rows")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # 1-based rank of the last row of each group of equal scores
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def detection_scores(flagged: np.ndarray, positive: np.ndarray) -> dict[str, Any]:
    """How the rows above the threshold match the anomaly labels."""
    flagged = np.asarray(flagged, dtype=bool)
    positive = np.asarray(positive, dtype=bool)
    hits = int((flagged & positive).sum())
    return {
        "anomaly_precision": hits / int(flagged.sum()) if flagged.any() else 0.0,
        "anomaly_recall": hits / int(positive.sum()) if positive.any() else 0.0,
    }

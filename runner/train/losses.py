"""Training losses, as legacy Keras defines them; each returns its value and its gradient.

A loss first scores every sample (every timestep of a sequence output): the mean over the last
axis (mse, mae, binary_crossentropy) or the sum over classes (categorical crossentropies).
Legacy Keras ``weighted_objective`` then multiplies the scores by the output mask and divides
by the mask's mean, so masked timesteps are left out: the value is
``sum(score * mask) / sum(mask)`` (the plain mean without a mask).

Probabilities are clipped to ``[EPSILON, 1 - EPSILON]`` before any log, as the Keras backends
do (``_EPSILON = 10e-8``); the clip passes no gradient outside that range. Categorical
crossentropy first rescales each row to sum to 1, as Keras does for non-logit outputs.
Arithmetic stays in the output's dtype; only the scalar value is summed in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from runner.config.schema import LossName  # noqa: F401 (the names a config may give)

CLASSIFICATION = (
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)
EPSILON = 1e-7

# y, target, grad, scale -> (score per sample/timestep: y.shape[:-1], scale * d score / d y:
# y.shape); the caller's scale (1 / samples) goes into the gradient's own constant, not a pass
ScoreFn = Callable[[np.ndarray, np.ndarray, bool, float], tuple[np.ndarray, np.ndarray | None]]


def _c(y: np.ndarray, value: float) -> np.generic:
    return y.dtype.type(value)


def _mse(y, t, grad, scale):
    diff = y - t
    score = np.square(diff).mean(axis=-1)
    if grad:
        diff *= _c(y, 2.0 / y.shape[-1] * scale)
    return score, (diff if grad else None)


def _mae(y, t, grad, scale):
    diff = y - t
    score = np.abs(diff).mean(axis=-1)
    return score, (np.sign(diff) * _c(y, scale / y.shape[-1]) if grad else None)


def _inside(p: np.ndarray) -> np.ndarray:
    return (p >= _c(p, EPSILON)) & (p <= _c(p, 1 - EPSILON))


def _binary_crossentropy(y, t, grad, scale):
    p = np.clip(y, _c(y, EPSILON), _c(y, 1 - EPSILON))
    one = _c(y, 1)
    score = -(t * np.log(p) + (one - t) * np.log(one - p)).mean(axis=-1)
    if not grad:
        return score, None
    dp = ((one - t) / (one - p) - t / p) * _c(y, scale / y.shape[-1])
    return score, dp * _inside(y)


def _categorical_crossentropy(y, t, grad, scale):
    total = y.sum(axis=-1, keepdims=True)
    q = y / total  # rows rescaled to sum to 1 (a softmax output is unchanged)
    p = np.clip(q, _c(y, EPSILON), _c(y, 1 - EPSILON))
    score = -(t * np.log(p)).sum(axis=-1)
    if not grad:
        return score, None
    dq = -(t / p) * _inside(q)
    # through q = y / sum(y): dy_j = (dq_j - sum_k dq_k q_k) / sum(y)
    dy = (dq - (dq * q).sum(axis=-1, keepdims=True)) / total
    if scale != 1.0:
        dy *= _c(y, scale)
    return score, dy


def one_hot(labels: np.ndarray, classes: int, dtype) -> np.ndarray:
    """Integer labels (any shape) -> one-hot rows with a new last axis of ``classes``."""
    out = np.zeros((*labels.shape, classes), dtype=dtype)
    np.put_along_axis(out, labels[..., None].astype(np.intp), 1, axis=-1)
    return out


def sparse_labels(t: np.ndarray, y_shape: tuple[int, ...]) -> np.ndarray:
    """Labels shaped y.shape[:-1] from (batch, ...) or (batch, ..., 1) integer targets."""
    if t.shape == tuple(y_shape[:-1]) + (1,):
        t = t[..., 0]
    return t


def _sparse_categorical_crossentropy(y, t, grad, scale):
    return _categorical_crossentropy(
        y, one_hot(sparse_labels(t, y.shape), y.shape[-1], y.dtype), grad, scale
    )


SCORES: dict[str, ScoreFn] = {
    "mse": _mse,
    "mae": _mae,
    "binary_crossentropy": _binary_crossentropy,
    "categorical_crossentropy": _categorical_crossentropy,
    "sparse_categorical_crossentropy": _sparse_categorical_crossentropy,
}


def loss(
    name: str, y: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, grad: bool = True
) -> tuple[float, np.ndarray | None]:
    """(value, d value / d y) of loss ``name`` for output ``y`` (batch first).

    ``mask`` (shape ``y.shape[:-1]``, True = keep) leaves masked samples/timesteps out of
    both the value and the gradient.
    """
    # A diverging fit overflows here first: its loss turns inf/nan, which the fit loop
    # reports as one clear error, so NumPy's own warning would only be noise before it.
    with np.errstate(over="ignore", invalid="ignore"):
        if mask is None:  # the mean over samples: its 1 / n goes into the score's gradient
            n = math.prod(y.shape[:-1])
            score, dscore = SCORES[name](y, target, grad, 1.0 / n if n else 1.0)
            return float(score.sum(dtype=np.float64) / score.size), dscore
        score, dscore = SCORES[name](y, target, grad, 1.0)
    weights = mask.astype(y.dtype)
    kept = float(weights.sum(dtype=np.float64))
    if kept == 0:  # every step masked: nothing to learn from this batch
        return 0.0, (np.zeros_like(y) if grad else None)
    value = float((score * weights).sum(dtype=np.float64) / kept)
    if dscore is not None:
        dscore *= (weights * _c(y, 1.0 / kept))[..., None]
    return value, dscore


def accuracy_counts(
    name: str, y: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, float]:
    """(correct, counted) samples/timesteps; masked timesteps are not counted.

    Classes are the argmax of the last axis; a single sigmoid unit (binary crossentropy)
    predicts class ``round(y)``, as legacy Keras' binary accuracy.
    """
    if name == "binary_crossentropy":
        hit = (
            (np.round(y) == target).mean(axis=-1)
            if y.shape[-1] > 1
            else (np.round(y[..., 0]) == target[..., 0])
        )
    elif name == "sparse_categorical_crossentropy":
        hit = y.argmax(axis=-1) == sparse_labels(target, y.shape)
    else:
        hit = y.argmax(axis=-1) == target.argmax(axis=-1)
    hit = np.asarray(hit, dtype=np.float64)
    if mask is None:
        return float(hit.sum()), float(hit.size)
    return float((hit * mask).sum()), float(mask.sum())


def target_problem(name: str, out_shape: tuple[int, ...], target: np.ndarray) -> str | None:
    """Why ``target`` (batch first) cannot be fitted by output ``out_shape`` with this loss."""
    per_sample = tuple(target.shape[1:])
    if name == "sparse_categorical_crossentropy":
        if per_sample not in (tuple(out_shape[:-1]), tuple(out_shape[:-1]) + (1,)):
            return (
                f"sparse_categorical_crossentropy needs one integer class label per sample "
                f"(per-sample shape {tuple(out_shape[:-1]) or '()'} or "
                f"{tuple(out_shape[:-1]) + (1,)}), found {per_sample}; use "
                "categorical_crossentropy for one-hot targets"
            )
        if target.size and (target.dtype.kind == "f" and not np.all(np.mod(target, 1) == 0)):
            return "class labels must be whole numbers"
        if target.size and (target.min() < 0 or target.max() >= out_shape[-1]):
            return (
                f"class labels must lie in 0..{out_shape[-1] - 1} (the output has "
                f"{out_shape[-1]} units), found {target.min():g}..{target.max():g}"
            )
        return None
    if per_sample != tuple(out_shape):
        hint = ""
        if name == "categorical_crossentropy" and per_sample in ((), (1,)):
            hint = "; for integer class labels use sparse_categorical_crossentropy"
        return (
            f"expected per-sample shape {tuple(out_shape)} (the output's), found {per_sample}{hint}"
        )
    return None

"""l1/l2 penalties: weight regularizers (on W, b) and activity regularizers (on outputs).

Legacy Keras semantics: a weight penalty is ``l1*sum|w| + l2*sum w^2``; an activity penalty
is the same on the output divided by the batch size (mean over the batch, sum over the rest).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from layers.base import ConfigModel


class Regularizer(ConfigModel):
    l1: float = Field(default=0.0, ge=0, description="L1 coefficient")
    l2: float = Field(default=0.0, ge=0, description="L2 coefficient")


def weight_penalty(reg: Regularizer | None, w: np.ndarray) -> float:
    if reg is None:
        return 0.0
    return float(
        reg.l1 * np.abs(w).sum(dtype=np.float64) + reg.l2 * np.square(w, dtype=np.float64).sum()
    )


def weight_penalty_grad(reg: Regularizer | None, w: np.ndarray) -> np.ndarray | float:
    if reg is None:
        return 0.0
    t = w.dtype.type
    return t(reg.l1) * np.sign(w) + t(2 * reg.l2) * w


def activity_penalty(reg: Regularizer | None, y: np.ndarray) -> float:
    if reg is None:
        return 0.0
    n = y.shape[0]
    total = reg.l1 * np.abs(y).sum(dtype=np.float64) + reg.l2 * np.square(y, dtype=np.float64).sum()
    return float(total / n)


def activity_penalty_grad(reg: Regularizer | None, y: np.ndarray) -> np.ndarray | float:
    if reg is None:
        return 0.0
    t = y.dtype.type
    n = y.shape[0]
    return t(reg.l1 / n) * np.sign(y) + t(2 * reg.l2 / n) * y

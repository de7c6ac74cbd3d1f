"""Activation functions by name: forward and derivative, stable in float32 and float64.

Each entry maps ``x -> y`` and ``(x, y, dy) -> dx``. Forward functions never leave the input's
dtype (no float64 detour on the hot path) and use overflow-free forms, so extreme inputs such as
±1e4 give the right limits without warnings. ``hard_sigmoid`` is the legacy Keras 0.2x + 0.5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

ActivationName = Literal[
    "linear", "tanh", "sigmoid", "hard_sigmoid", "softplus", "relu", "softmax", "softsign",
    "elu", "selu", "gelu", "swish",
]

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _c(x: np.ndarray, value: float) -> np.generic:
    """A constant in x's dtype, so float32 arithmetic stays float32."""
    return x.dtype.type(value)


def sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-|x|) never overflows; pick the algebraically equal form that avoids cancellation.
    e = np.exp(-np.abs(x))
    one = _c(x, 1)
    return np.where(x >= 0, one / (one + e), e / (one + e))


def softplus(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, _c(x, 0)) + np.log1p(np.exp(-np.abs(x)))


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis: row-wise for 2D, per timestep for 3D."""
    z = x - x.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def _softmax_grad(x, y, dy):
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def _hard_sigmoid(x):
    y = x * _c(x, 0.2) + _c(x, 0.5)
    return np.clip(y, _c(x, 0), _c(x, 1), out=y)


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, _c(x, 0))))


def _selu(x):
    return _c(x, _SELU_SCALE) * np.where(
        x > 0, x, _c(x, _SELU_ALPHA) * np.expm1(np.minimum(x, _c(x, 0)))
    )


def erf(x: np.ndarray) -> np.ndarray:
    """erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32 resolution)."""
    t = _c(x, 1) / (_c(x, 1) + _c(x, 0.3275911) * np.abs(x))
    poly = t * (_c(x, 0.254829592) + t * (_c(x, -0.284496736) + t * (
        _c(x, 1.421413741) + t * (_c(x, -1.453152027) + t * _c(x, 1.061405429)))))
    return np.sign(x) * (_c(x, 1) - poly * np.exp(-x * x))


def _gelu(x):
    """Exact GELU, x * Phi(x) (Keras' default approximate=False)."""
    return _c(x, 0.5) * x * (_c(x, 1) + erf(x * _c(x, 1 / np.sqrt(2))))


def _gelu_grad(x, y, dy):
    pdf = np.exp(_c(x, -0.5) * x * x) * _c(x, 1 / np.sqrt(2 * np.pi))
    cdf = _c(x, 0.5) * (_c(x, 1) + erf(x * _c(x, 1 / np.sqrt(2))))
    return dy * (cdf + x * pdf)


def _swish_grad(x, y, dy):
    s = sigmoid(x)
    return dy * (s + x * s * (_c(x, 1) - s))


@dataclass(frozen=True)
class Activation:
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (x, y, dy) -> dx


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x: x, lambda x, y, dy: dy),
    "tanh": Activation(np.tanh, lambda x, y, dy: dy * (_c(y, 1) - y * y)),
    "sigmoid": Activation(sigmoid, lambda x, y, dy: dy * y * (_c(y, 1) - y)),
    "hard_sigmoid": Activation(
        _hard_sigmoid,
        lambda x, y, dy: dy * np.where((x > -2.5) & (x < 2.5), _c(x, 0.2), _c(x, 0)),
    ),
    "softplus": Activation(softplus, lambda x, y, dy: dy * sigmoid(x)),
    "relu": Activation(lambda x: np.maximum(x, _c(x, 0)), lambda x, y, dy: dy * (x > 0)),
    "softmax": Activation(softmax, _softmax_grad),
    "softsign": Activation(
        lambda x: x / (_c(x, 1) + np.abs(x)),
        lambda x, y, dy: dy / np.square(_c(x, 1) + np.abs(x)),
    ),
    "elu": Activation(_elu, lambda x, y, dy: dy * np.where(x > 0, _c(x, 1), y + _c(x, 1))),
    "selu": Activation(
        _selu,
        lambda x, y, dy: dy * np.where(x > 0, _c(x, _SELU_SCALE), y + _c(x, _SELU_SCALE * _SELU_ALPHA)),
    ),
    "gelu": Activation(_gelu, _gelu_grad),
    "swish": Activation(lambda x: x * sigmoid(x), _swish_grad),
}


def get(name: str) -> Activation:
    return ACTIVATIONS[name]

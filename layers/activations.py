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

from layers import kernels

ActivationName = Literal[
    "linear",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "softplus",
    "relu",
    "softmax",
    "softsign",
    "elu",
    "selu",
    "gelu",
    "swish",
]

# Constants our formulas use; the ONNX exporter writes the same ones (one source of truth).
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
# erf by Abramowitz & Stegun 7.1.26: erf(|x|) = 1 - t P(t) exp(-x^2) with t = 1 / (1 + p|x|)
# and P(t) = a1 + a2 t + a3 t^2 + a4 t^3 + a5 t^4; ERF_A holds (a1, ..., a5).
ERF_P = 0.3275911
ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _c(x: np.ndarray, value: float) -> np.generic:
    """A constant in x's dtype, so float32 arithmetic stays float32."""
    return x.dtype.type(value)


def sigmoid(x: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-x)): where exp(-x) overflows (x < -88 in float32) it is inf and the
    # result the right limit 0; no cancellation anywhere, so the relative error stays a few
    # ulps. Four passes, the same operations as the in-place ``_sigmoid_``.
    with np.errstate(over="ignore"):
        e = np.exp(np.negative(x))
    e += _c(x, 1)
    return np.divide(_c(x, 1), e, out=e)


def _exp_minus_(x: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """x = exp(-(x + bias)) in place, the first passes of ``sigmoid``: -(x + b) is computed
    as (-b) - x, which is exact, so the bias costs no pass of its own; exp's overflow (to
    inf, where sigmoid's limit is 0) is expected."""
    if bias is None:
        np.negative(x, out=x)
    else:
        np.subtract(np.negative(bias), x, out=x)
    with np.errstate(over="ignore"):
        return np.exp(x, out=x)


def _sigmoid_(x: np.ndarray, bias: np.ndarray | None = None) -> None:
    """sigmoid(x + bias) in place, the same operations as ``sigmoid`` (bit-identical)."""
    _exp_minus_(x, bias)
    x += _c(x, 1)
    np.divide(_c(x, 1), x, out=x)


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
    return _c(x, SELU_SCALE) * np.where(
        x > 0, x, _c(x, SELU_ALPHA) * np.expm1(np.minimum(x, _c(x, 0)))
    )


def _erf_t_poly(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """t = 1 / (1 + p|x|) and t P(t) (Horner's rule: t (a1 + t (a2 + t (a3 + t (a4 + t a5)))))."""
    a1, a2, a3, a4, a5 = (_c(x, a) for a in ERF_A)
    t = _c(x, 1) / (_c(x, 1) + _c(x, ERF_P) * np.abs(x))
    return t, t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))))


def erf(x: np.ndarray) -> np.ndarray:
    """erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32 resolution)."""
    _, poly = _erf_t_poly(x)
    a = np.minimum(np.abs(x), _c(x, 10))  # erf(10) is 1 in float64: x * x must not overflow
    return np.sign(x) * (_c(x, 1) - poly * np.exp(-a * a))


def _gelu(x):
    """Exact GELU, x * Phi(x) (Keras' default approximate=False)."""
    return _c(x, 0.5) * x * (_c(x, 1) + erf(x * _c(x, 1 / np.sqrt(2))))


def _erf_grad(x: np.ndarray) -> np.ndarray:
    """The derivative of ``erf`` above (of the approximation itself, so that gelu's gradient
    is exactly the slope of gelu's forward): exp(-x^2) * (2|x| P(t) + p t^2 P'(t))."""
    t, poly = _erf_t_poly(x)
    a1, a2, a3, a4, a5 = ERF_A
    dpoly = _c(x, a1) + t * (  # P'(t)
        _c(x, 2 * a2) + t * (_c(x, 3 * a3) + t * (_c(x, 4 * a4) + t * _c(x, 5 * a5)))
    )
    a = np.minimum(np.abs(x), _c(x, 10))  # as in erf: x * x must not overflow
    return np.exp(-a * a) * (_c(x, 2) * a * poly + _c(x, ERF_P) * t * t * dpoly)


def _gelu_grad(x, y, dy):
    u = x * _c(x, 1 / np.sqrt(2))
    cdf = _c(x, 0.5) * (_c(x, 1) + erf(u))
    return dy * (cdf + x * _c(x, 0.5 / np.sqrt(2)) * _erf_grad(u))


def _sigmoid_grad(x, y, dy):
    # e / (1 + e)^2 with e = exp(-|x|): y * (1 - y) would round to 0 once y rounds to 1.
    e = np.exp(-np.abs(x))
    d = _c(x, 1) + e
    return dy * (e / d / d)


def _tanh_grad(x, y, dy):
    # sech^2 = 4e / (1 + e)^2 with e = exp(-2|x|): 1 - y*y would round to 0 for |x| > 9.
    e = np.exp(_c(x, -2) * np.abs(x))
    d = _c(x, 1) + e
    return dy * (_c(x, 4) * e / d / d)


def _swish_grad(x, y, dy):
    s = sigmoid(x)
    return dy * (s + x * s * (_c(x, 1) - s))


@dataclass(frozen=True)
class Activation:
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (x, y, dy) -> dx


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x: x, lambda x, y, dy: dy),
    "tanh": Activation(np.tanh, _tanh_grad),
    "sigmoid": Activation(sigmoid, _sigmoid_grad),
    "hard_sigmoid": Activation(
        _hard_sigmoid,
        lambda x, y, dy: dy * np.where((x > -2.5) & (x < 2.5), _c(x, 0.2), _c(x, 0)),
    ),
    "softplus": Activation(softplus, lambda x, y, dy: dy * sigmoid(x)),
    "relu": Activation(lambda x: np.maximum(x, _c(x, 0)), lambda x, y, dy: dy * (x > 0)),
    "softmax": Activation(softmax, _softmax_grad),
    "softsign": Activation(
        lambda x: x / (_c(x, 1) + np.abs(x)),
        lambda x, y, dy: dy / (_c(x, 1) + np.abs(x)) / (_c(x, 1) + np.abs(x)),  # no x**2
    ),
    # exp(x) below 0, not y + 1 (which rounds to 0 once expm1(x) rounds to -1)
    "elu": Activation(
        _elu, lambda x, y, dy: dy * np.where(x > 0, _c(x, 1), np.exp(np.minimum(x, _c(x, 0))))
    ),
    "selu": Activation(
        _selu,
        lambda x, y, dy: (
            dy
            * np.where(
                x > 0,
                _c(x, SELU_SCALE),
                _c(x, SELU_SCALE * SELU_ALPHA) * np.exp(np.minimum(x, _c(x, 0))),
            )
        ),
    ),
    "gelu": Activation(_gelu, _gelu_grad),
    "swish": Activation(lambda x: x * sigmoid(x), _swish_grad),
}


def get(name: str) -> Activation:
    return ACTIVATIONS[name]


# ---- the training hot path: forward in place, derivatives into reused buffers ----
#
# A training forward keeps, next to the output y, only what the derivative needs
# (``forward_saving``); ``backward_from`` reads it back. relu and linear need y alone, so their
# forward runs in place in z; sigmoid keeps t = exp(-z), from which its derivative is three
# products instead of seven passes and an exp: sigmoid'(z) = t * y * y, since t * y = 1 - y
# computed without cancellation (the form y * (1 - y) rounds to 0 once y rounds to 1).


def _sigmoid_saving(z: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    t = _exp_minus_(z, bias)
    y = np.add(t, _c(z, 1))  # then the operations of ``sigmoid``: y has the same bits
    np.divide(_c(z, 1), y, out=y)
    # exp(-z) overflows to inf for z < -88 (float32), where y is 0: a finite t keeps
    # t * y * y at 0 instead of inf * 0 = nan
    np.minimum(t, _c(z, np.finfo(z.dtype).max), out=t)
    return y, t


def _sigmoid_from_t(t, y, dy, out, tmp) -> None:
    np.multiply(t, y, out=out)  # 1 - y
    out *= y
    out *= dy


def _tanh_grad_into(x, y, dy, out, tmp) -> None:
    e = np.abs(x, out=out)  # the operations of _tanh_grad, in the same order
    np.multiply(_c(x, -2), e, out=e)
    np.exp(e, out=e)
    d = np.add(e, _c(x, 1), out=tmp)
    np.multiply(_c(x, 4), e, out=e)
    np.divide(e, d, out=e)
    np.divide(e, d, out=e)
    np.multiply(dy, e, out=out)


def forward_saving(
    name: str, z: np.ndarray, bias: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(y, saved)``: the output ``get(name).forward(z + bias)`` (the same numbers, bit for
    bit) and what ``backward_from`` needs besides y. ``z`` is the caller's fresh array and is
    overwritten (relu and linear return it as y)."""
    if name == "sigmoid":
        return _sigmoid_saving(z, bias)
    if name == "relu" and bias is not None and kernels.bias_relu_(z, bias):
        return z, None  # one pass (layers.kernels)
    if bias is not None:
        z += bias
    if name == "linear":
        return z, None
    if name == "relu":
        return np.maximum(z, _c(z, 0), out=z), None  # relu'(z) = y > 0
    return ACTIVATIONS[name].forward(z), z


def backward_from(
    name: str,
    saved: np.ndarray | None,
    y: np.ndarray,
    dy: np.ndarray,
    out: np.ndarray,
    tmp: np.ndarray,
) -> np.ndarray:
    """The gradient through the activation from ``forward_saving``'s ``(y, saved)``, written
    into ``out`` (``tmp``: scratch; both of y's shape, reused by the caller) where there is an
    in-place form: linear returns dy itself, activations without one a new array."""
    if name == "linear":
        return dy
    if name == "relu":
        if not kernels.relu_grad_into(dy, y, out):
            np.multiply(dy, y > 0, out=out)
    elif name == "sigmoid":
        _sigmoid_from_t(saved, y, dy, out, tmp)
    elif name == "tanh":
        _tanh_grad_into(saved, y, dy, out, tmp)
    else:
        return ACTIVATIONS[name].backward(saved, y, dy)
    return out


# ---- the predict hot path: bias + activation in place, in cache-sized blocks ----


def _softmax_(x: np.ndarray) -> None:
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)


_IN_PLACE: dict[str, Callable[[np.ndarray], object]] = {
    "linear": lambda x: None,
    "relu": lambda x: np.maximum(x, _c(x, 0), out=x),
    "tanh": lambda x: np.tanh(x, out=x),
    "sigmoid": _sigmoid_,
    "softmax": _softmax_,
}
_BLOCK = 1 << 18  # elements per block (1 MB of float32): measured best here for multi-pass sigmoid


def apply_(name: str, z: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``activation(z + bias)``, computed in place in ``z``, which the caller owns.

    Rows of the last axis go in blocks that stay in cache (bias add and every pass of the
    activation touch memory once). Element-wise results do not depend on the blocks
    (bit-identical to ``get(name).forward(z + bias)``); softmax works on whole rows.
    """
    z2 = z.reshape(-1, z.shape[-1]) if z.ndim != 2 else z  # a view: z is contiguous
    if name == "linear" and bias is None:
        return z
    if name == "relu" and bias is not None and kernels.bias_relu_(z2, bias):
        return z  # one pass (layers.kernels)
    in_place = _IN_PLACE.get(name)
    forward = ACTIVATIONS[name].forward

    step = max(1, _BLOCK // max(1, z2.shape[1]))
    for i in range(0, z2.shape[0], step):
        block = z2[i : i + step]
        if name == "sigmoid":  # takes the bias into its first pass
            _sigmoid_(block, bias)
            continue
        if bias is not None:
            block += bias
        if in_place is not None:
            in_place(block)
        else:
            block[...] = forward(block)
    return z2 if z2 is z else z2.reshape(z.shape)

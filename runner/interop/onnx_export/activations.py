"""Every activation of ``layers.activations`` as ONNX ops, formula for formula.

Each is written the way our NumPy code computes it (the overflow-free forms, legacy
hard_sigmoid, gelu with our erf polynomial), so the exported model gives our numbers rather
than those of a neighbouring definition (ONNX ``Erf``, ``Elu``'s ``exp(x) - 1``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from layers.activations import ERF_A, ERF_P, SELU_ALPHA, SELU_SCALE
from runner.interop.onnx_export.graph import OnnxGraph


def sigmoid(g: OnnxGraph, x: str) -> str:
    """1 / (1 + exp(-x)), as ``layers.activations.sigmoid``: where exp(-x) overflows to inf
    the result is the right limit 0; no cancellation anywhere."""
    return g.op("Div", g.const(1), g.op("Add", g.const(1), g.op("Exp", g.op("Neg", x))))


def softplus(g: OnnxGraph, x: str) -> str:
    """max(x, 0) + log1p(exp(-|x|))."""
    e = g.op("Exp", g.op("Neg", g.op("Abs", x)))
    return g.op("Add", g.op("Max", x, g.const(0)), g.log1p(e))


def _expm1_below_zero(g: OnnxGraph, x: str) -> str:
    return g.expm1(g.op("Min", x, g.const(0)))


def _elu(g: OnnxGraph, x: str) -> str:
    return g.op("Where", g.op("Greater", x, g.const(0)), x, _expm1_below_zero(g, x))


def _selu(g: OnnxGraph, x: str) -> str:
    negative = g.op("Mul", g.const(SELU_ALPHA), _expm1_below_zero(g, x))
    inner = g.op("Where", g.op("Greater", x, g.const(0)), x, negative)
    return g.op("Mul", g.const(SELU_SCALE), inner)


def erf(g: OnnxGraph, x: str) -> str:
    """sign(x) * (1 - t * P(t) * exp(-a * a)), t = 1 / (1 + p|x|), a = min(|x|, 10): the
    constants and the order of operations of ``layers.activations.erf``."""
    absx = g.op("Abs", x)
    t = g.op("Div", g.const(1), g.op("Add", g.const(1), g.op("Mul", g.const(ERF_P), absx)))
    poly = g.const(ERF_A[-1])
    for coefficient in reversed(ERF_A[:-1]):  # Horner: a1 + t*(a2 + t*(a3 + ...))
        poly = g.op("Add", g.const(coefficient), g.op("Mul", t, poly))
    poly = g.op("Mul", t, poly)
    a = g.op("Min", absx, g.const(10))
    decay = g.op("Exp", g.op("Neg", g.op("Mul", a, a)))
    one_minus = g.op("Sub", g.const(1), g.op("Mul", poly, decay))
    return g.op("Mul", g.op("Sign", x), one_minus)


def _gelu(g: OnnxGraph, x: str) -> str:
    """0.5 * x * (1 + erf(x / sqrt(2)))."""
    inner = erf(g, g.op("Mul", x, g.const(1 / np.sqrt(2))))
    half_x = g.op("Mul", g.const(0.5), x)
    return g.op("Mul", half_x, g.op("Add", g.const(1), inner))


def _hard_sigmoid(g: OnnxGraph, x: str) -> str:
    y = g.op("Add", g.op("Mul", x, g.const(0.2)), g.const(0.5))
    return g.op("Clip", y, g.const(0), g.const(1))


ACTIVATIONS: dict[str, Callable[[OnnxGraph, str], str]] = {
    "linear": lambda g, x: x,
    "tanh": lambda g, x: g.op("Tanh", x),
    "sigmoid": sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "softplus": softplus,
    "relu": lambda g, x: g.op("Relu", x),
    "softmax": lambda g, x: g.op("Softmax", x, axis=-1),  # max-subtracted, as ours
    "softsign": lambda g, x: g.op("Div", x, g.op("Add", g.const(1), g.op("Abs", x))),
    "elu": _elu,
    "selu": _selu,
    "gelu": _gelu,
    "swish": lambda g, x: g.op("Mul", x, sigmoid(g, x)),
}


def activation(g: OnnxGraph, name: str, x: str) -> str:
    return ACTIVATIONS[name](g, x)

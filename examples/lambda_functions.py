"""A plugin adding named functions to the Lambda expression language.

    plugins: [examples.lambda_functions]
    layers:
      act: {type: Lambda, function: "swish(x) + hard_tanh(2 * x)"}

Each function is elementwise (NumPy broadcasting); ``grad(g, *args)`` returns the gradient of
``sum(g * f(args))`` with respect to each argument, which the Lambda's backward pass uses.
"""

from __future__ import annotations

import numpy as np

from layers.lambda_layer import register_function


def _sigmoid(a: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _swish(a: np.ndarray) -> np.ndarray:
    return a * _sigmoid(a)


def _swish_grad(g: np.ndarray, a: np.ndarray) -> np.ndarray:
    s = _sigmoid(a)
    return g * (s + a * s * (1 - s))


register_function("swish", _swish, _swish_grad)
register_function("hard_tanh", lambda a: np.clip(a, -1, 1), lambda g, a: g * ((a >= -1) & (a <= 1)))

"""Legacy Keras 0.3 weight initializers, drawn from an explicit Generator.

They draw in float64 (as Keras did) and cast to the run's float dtype once. Biases are
always zeros, whatever ``init`` says.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

InitName = Literal[
    "uniform",
    "normal",
    "lecun_uniform",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "orthogonal",
    "identity",
    "zero",
    "one",
]


def fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """fan_in, fan_out as Keras 0.3.3 ``get_fans``: 2D kernels only; else sqrt(prod)."""
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    root = float(np.sqrt(np.prod(shape)))
    return root, root


def _uniform(rng, shape, limit):
    return rng.uniform(-limit, limit, size=shape)


def _normal(rng, shape, std):
    return rng.normal(0.0, std, size=shape)


def _orthogonal(rng, shape, scale=1.1):
    flat = (shape[0], int(np.prod(shape[1:])))
    a = rng.normal(0.0, 1.0, size=flat)
    u, _, vh = np.linalg.svd(a, full_matrices=False)
    q = u if u.shape == flat else vh
    return scale * q.reshape(shape)


def _identity(rng, shape):
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(
            f"init 'identity' needs a square 2D weight, got shape {shape}: "
            "make output_dim equal the input size, or choose another init"
        )
    return np.eye(shape[0])


def initialize(name: str, shape: tuple[int, ...], rng: np.random.Generator, dtype) -> np.ndarray:
    fan_in, fan_out = fans(shape)
    draw = {
        "uniform": lambda: _uniform(rng, shape, 0.05),
        "normal": lambda: _normal(rng, shape, 0.05),
        "lecun_uniform": lambda: _uniform(rng, shape, np.sqrt(3.0 / fan_in)),
        "glorot_normal": lambda: _normal(rng, shape, np.sqrt(2.0 / (fan_in + fan_out))),
        "glorot_uniform": lambda: _uniform(rng, shape, np.sqrt(6.0 / (fan_in + fan_out))),
        "he_normal": lambda: _normal(rng, shape, np.sqrt(2.0 / fan_in)),
        "he_uniform": lambda: _uniform(rng, shape, np.sqrt(6.0 / fan_in)),
        "orthogonal": lambda: _orthogonal(rng, shape),
        "identity": lambda: _identity(rng, shape),
        "zero": lambda: np.zeros(shape),
        "one": lambda: np.ones(shape),
    }[name]
    return np.asarray(draw(), dtype=dtype)


def check_init(name: str, shape: tuple[int, ...]) -> str | None:
    """A plan-time problem with using ``name`` for ``shape``, or None."""
    if name == "identity" and (len(shape) != 2 or shape[0] != shape[1]):
        return f"init 'identity' needs a square weight, but W would be {shape}"
    return None

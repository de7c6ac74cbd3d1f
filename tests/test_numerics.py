"""Activations and losses at extreme inputs: finite where the math is, no overflow warnings,
equal to a float64 reference written here independently (Python's ``math``, element by element).

Inputs cover ±1e4, tiny (1e-30, subnormal) and huge (1e30; 1e300 in float64) magnitudes in
float32 and float64. NumPy floating-point errors raise inside these tests (np.errstate), on top
of pytest's warnings-as-errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from layers import activations

EXTREMES = {
    np.float32: [
        -1e30,
        -1e4,
        -100.0,
        -20.0,
        -2.5,
        -1.0,
        -1e-3,
        -1e-30,
        -1e-40,
        0.0,
        1e-40,
        1e-30,
        1e-3,
        1.0,
        2.5,
        20.0,
        100.0,
        1e4,
        1e30,
    ],
    np.float64: [
        -1e300,
        -1e30,
        -1e4,
        -100.0,
        -40.0,
        -1.0,
        -1e-30,
        -1e-300,
        0.0,
        1e-300,
        1e-30,
        1.0,
        40.0,
        100.0,
        1e4,
        1e30,
        1e300,
    ],
}
TOL = {np.float32: (2e-6, 1e-37), np.float64: (1e-12, 1e-300)}  # rtol, atol
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
SQRT2, SQRT2PI = math.sqrt(2.0), math.sqrt(2.0 * math.pi)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _exp_neg_half_sq(x: float) -> float:
    return 0.0 if abs(x) > 40 else math.exp(-0.5 * x * x)


# name -> (f(x), f'(x)) in float64, each written from the textbook definition
REFERENCE = {
    "linear": (lambda x: x, lambda x: 1.0),
    "tanh": (math.tanh, lambda x: 0.0 if abs(x) > 350 else 1.0 / math.cosh(x) ** 2),
    "sigmoid": (_sig, lambda x: _sig(x) * _sig(-x)),
    "hard_sigmoid": (
        lambda x: min(1.0, max(0.0, 0.2 * x + 0.5)),
        lambda x: 0.2 if -2.5 < x < 2.5 else 0.0,
    ),
    "softplus": (lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))), _sig),
    "relu": (lambda x: max(x, 0.0), lambda x: 1.0 if x > 0 else 0.0),
    "softsign": (lambda x: x / (1.0 + abs(x)), lambda x: 1.0 / (1.0 + abs(x)) / (1.0 + abs(x))),
    "elu": (lambda x: x if x > 0 else math.expm1(x), lambda x: 1.0 if x > 0 else math.exp(x)),
    "selu": (
        lambda x: SELU_SCALE * (x if x > 0 else SELU_ALPHA * math.expm1(x)),
        lambda x: SELU_SCALE if x > 0 else SELU_SCALE * SELU_ALPHA * math.exp(x),
    ),
    # x * Phi(x) with Phi through erfc: exact in the far negative tail too
    "gelu": (
        lambda x: x * 0.5 * math.erfc(-x / SQRT2),
        lambda x: 0.5 * math.erfc(-x / SQRT2) + x * _exp_neg_half_sq(x) / SQRT2PI,
    ),
    "swish": (lambda x: x * _sig(x), lambda x: _sig(x) + x * _sig(x) * _sig(-x)),
}
# gelu uses the Abramowitz-Stegun erf (|error| < 1.5e-7) and its gradient is the slope of that
# approximation, so both get an absolute tolerance.
EXTRA_ATOL = {"gelu": 2e-7, "gelu'": 1e-6}


def _reference(fn, x: np.ndarray) -> np.ndarray:
    return np.array([fn(float(v)) for v in x.ravel()], dtype=np.float64).reshape(x.shape)


def _close(got: np.ndarray, ref: np.ndarray, dtype, name: str) -> None:
    rtol, atol = TOL[dtype]
    atol = np.maximum(atol, EXTRA_ATOL.get(name, 0.0) * (1.0 + np.abs(ref)))
    # compare against the reference rounded to the dtype: the best the dtype can hold
    best = ref.astype(dtype).astype(np.float64)
    err = np.abs(got.astype(np.float64) - best)
    bad = err > atol + rtol * np.abs(best)
    assert not bad.any(), f"{name}: x={np.flatnonzero(bad)} got {got[bad]} want {best[bad]}"


def test_reference_table_covers_every_elementwise_activation():
    names = set(activations.ACTIVATIONS) - {"softmax"}
    assert names == set(REFERENCE), names ^ set(REFERENCE)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_forward_and_backward_at_extremes(name, dtype):
    x = np.array(EXTREMES[dtype], dtype=dtype)
    f, df = REFERENCE[name]
    act = activations.get(name)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = act.forward(x.copy())
        dx = act.backward(x, y, np.ones_like(x))
        fused = activations.apply_(name, x.copy()[None, :])[0]  # the predict hot path
    assert y.dtype == dtype and dx.dtype == dtype and fused.dtype == dtype
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    _close(y, _reference(f, x), dtype, name)
    _close(dx, _reference(df, x), dtype, f"{name}'")
    assert np.array_equal(fused, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_softmax_at_extremes(dtype):
    big = 1e30 if dtype is np.float32 else 1e300
    x = np.array(
        [
            [1e4, -1e4, 0.0],
            [-1e4, -1e4, -1e4],
            [big, big, -big],
            [1e-30, 0.0, -1e-30],
            [big, 1e4, 1.0],
        ],
        dtype=dtype,
    )
    dy = np.array([[1.0, -2.0, 0.5]] * len(x), dtype=dtype)
    act = activations.get("softmax")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = act.forward(x.copy())
        dx = act.backward(x, y, dy)
        fused = activations.apply_("softmax", x.copy())
    ref = np.empty_like(x, dtype=np.float64)
    ref_dx = np.empty_like(ref)
    for i, row in enumerate(x.astype(np.float64)):
        m = max(row)
        e = [math.exp(v - m) if v - m > -800 else 0.0 for v in row]  # row - m in float64
        s = sum(e)
        p = [v / s for v in e]
        ref[i] = p
        jac = [[p[a] * ((a == b) - p[b]) for b in range(3)] for a in range(3)]
        ref_dx[i] = [sum(jac[b][a] * float(dy[i, b]) for b in range(3)) for a in range(3)]
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    _close(y, ref, dtype, "softmax")
    _close(dx, ref_dx, dtype, "softmax'") if dtype is np.float64 else np.testing.assert_allclose(
        dx, ref_dx, atol=2e-6
    )
    assert np.array_equal(fused, y)
    np.testing.assert_allclose(y.sum(axis=-1, dtype=np.float64), 1.0, rtol=1e-6)


# ---- losses (runner/train/losses.py) -------------------------------------------------------------
losses = pytest.importorskip("runner.train.losses")


def _clip_bounds(dtype) -> tuple[float, float]:
    """The clip range as the dtype holds it (1 - 1e-7 rounds in float32)."""
    return float(dtype(losses.EPSILON)), float(dtype(1 - losses.EPSILON))


def _ref_loss(name: str, y: np.ndarray, t: np.ndarray, dtype) -> tuple[float, np.ndarray]:
    """Value and gradient in float64, sample by sample, from the definitions."""
    lo, hi = _clip_bounds(dtype)
    y = y.astype(np.float64)
    t = t.astype(np.float64)
    n, f = y.shape
    value, grad = 0.0, np.zeros_like(y)
    for i in range(n):
        if name == "mse":
            value += sum((y[i, j] - t[i, j]) ** 2 for j in range(f)) / f
            grad[i] = [2 * (y[i, j] - t[i, j]) / f for j in range(f)]
        elif name == "mae":
            value += sum(abs(y[i, j] - t[i, j]) for j in range(f)) / f
            grad[i] = [
                math.copysign(1.0, y[i, j] - t[i, j]) / f if y[i, j] != t[i, j] else 0.0
                for j in range(f)
            ]
        elif name == "binary_crossentropy":
            for j in range(f):
                p = min(hi, max(lo, y[i, j]))
                value -= (t[i, j] * math.log(p) + (1 - t[i, j]) * math.log(1 - p)) / f
                inside = lo <= y[i, j] <= hi
                grad[i, j] = ((1 - t[i, j]) / (1 - p) - t[i, j] / p) / f if inside else 0.0
        else:  # categorical: rows rescaled to sum to 1, then clipped
            total = sum(y[i])
            q = [v / total for v in y[i]]
            p = [min(hi, max(lo, v)) for v in q]
            value -= sum(t[i, j] * math.log(p[j]) for j in range(f))
            dq = [-(t[i, j] / p[j]) if lo <= q[j] <= hi else 0.0 for j in range(f)]
            inner = sum(dq[k] * q[k] for k in range(f))
            grad[i] = [(dq[j] - inner) / total for j in range(f)]
    return value / n, grad / n


def _loss_cases(dtype):
    big = 1e18 if dtype is np.float32 else 1e150
    bce_y = [[0.0, 1.0, 0.5], [1e-30, 1 - 1e-10, 1e-4], [-1e4, 1e4, 1e-40]]
    bce_t = [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]
    cce_y = [[1e-30, 1.0, 0.0], [1e4, 1e-4, 1.0], [big, big, 1.0], [1e-30, 1e-30, 1e-30]]
    cce_t = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    reg_y = [[1e4, -1e4, 0.0], [big, -big, 1e-30], [1e-40, 0.0, -1e-30]]
    reg_t = [[-1e4, 1e4, 0.0], [-big, big, 0.0], [0.0, 1e-40, 1e-30]]
    return {
        "mse": (reg_y, reg_t),
        "mae": (reg_y, reg_t),
        "binary_crossentropy": (bce_y, bce_t),
        "categorical_crossentropy": (cce_y, cce_t),
    }


def test_every_loss_is_covered():
    assert set(losses.SCORES) == {
        "mse",
        "mae",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["mse", "mae", "binary_crossentropy", "categorical_crossentropy"])
def test_loss_at_extremes(name, dtype):
    y_list, t_list = _loss_cases(dtype)[name]
    y = np.array(y_list, dtype=dtype)
    t = np.array(t_list, dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grad = losses.loss(name, y.copy(), t)
    ref_value, ref_grad = _ref_loss(name, y, t, dtype)
    assert math.isfinite(value) and np.isfinite(grad).all() and grad.dtype == dtype
    rtol = 1e-6 if dtype is np.float32 else 1e-12
    assert value == pytest.approx(ref_value, rel=rtol, abs=1e-30)
    scale = np.abs(ref_grad).max()
    np.testing.assert_allclose(grad, ref_grad, rtol=rtol * 4, atol=scale * rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_sparse_categorical_equals_one_hot_categorical(dtype):
    y = np.array([[1e-30, 1.0, 0.0], [1e4, 1e-4, 1.0], [0.2, 0.3, 0.5]], dtype=dtype)
    labels = np.array([0, 1, 2], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grad = losses.loss("sparse_categorical_crossentropy", y.copy(), labels)
    ref_value, ref_grad = _ref_loss("categorical_crossentropy", y, np.eye(3), dtype)
    assert value == pytest.approx(ref_value, rel=1e-6)
    np.testing.assert_allclose(grad, ref_grad, rtol=4e-6, atol=1e-6 * np.abs(ref_grad).max())
    # the largest loss the clip allows: -log(eps) for the class given probability 1e-30
    assert value >= -math.log(_clip_bounds(dtype)[0]) / 3 - 1e-5


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_masked_loss_at_extremes_ignores_masked_steps(dtype):
    """A masked timestep holding extreme values changes neither value nor gradient."""
    y = np.array([[[0.5, 0.5], [1e30, -1e30]]], dtype=dtype)  # (batch, steps, features)
    t = np.array([[[1.0, 0.0], [-1e30, 1e30]]], dtype=dtype)
    mask = np.array([[True, False]])
    for name in ("mae", "binary_crossentropy"):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            value, grad = losses.loss(name, y.copy(), t, mask)
            ref_value, ref_grad = losses.loss(name, y[:, :1].copy(), t[:, :1])
        assert value == pytest.approx(ref_value, rel=1e-6)
        np.testing.assert_array_equal(grad[:, 1], 0)
        np.testing.assert_allclose(grad[:, :1], ref_grad, rtol=1e-6)

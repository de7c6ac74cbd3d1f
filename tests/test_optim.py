"""Optimizers: update steps computed by hand with the legacy Keras rules and defaults."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runner.train import optim


def _steps(name, grads, **options):
    p = {"w": np.array([1.0])}
    opt = optim.Optimizer(name, **options)
    out = []
    for g in grads:
        opt.step(p, {"w": np.array([g])})
        out.append(float(p["w"][0]))
    return out


def test_legacy_defaults():
    assert optim.settings("sgd", {}) == {
        "lr": 0.01,
        "momentum": 0.0,
        "decay": 0.0,
        "nesterov": False,
    }
    assert optim.settings("rmsprop", {}) == {"lr": 0.001, "rho": 0.9, "epsilon": 1e-6}
    assert optim.settings("adagrad", {}) == {"lr": 0.01, "epsilon": 1e-6}
    assert optim.settings("adam", {"lr": None}) == {
        "lr": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-8,
    }


def test_sgd_plain():
    assert _steps("sgd", [0.5, 0.5], lr=0.1) == pytest.approx([0.95, 0.90])


def test_sgd_momentum():
    # v1 = -0.05 -> 0.95; v2 = 0.9 * -0.05 - 0.05 = -0.095 -> 0.855
    assert _steps("sgd", [0.5, 0.5], lr=0.1, momentum=0.9) == pytest.approx([0.95, 0.855])


def test_sgd_nesterov():
    # p += momentum * v - lr * g: 1 - 0.045 - 0.05 = 0.905; 0.905 - 0.0855 - 0.05 = 0.7695
    assert _steps("sgd", [0.5, 0.5], lr=0.1, momentum=0.9, nesterov=True) == pytest.approx(
        [0.905, 0.7695]
    )


def test_sgd_decay():
    # lr_t = lr / (1 + decay * updates so far): 0.1, then 0.1 / 1.5
    assert _steps("sgd", [0.5, 0.5], lr=0.1, decay=0.5) == pytest.approx(
        [0.95, 0.95 - 0.5 * 0.1 / 1.5]
    )


def test_rmsprop():
    a1 = 0.1 * 0.25
    p1 = 1 - 0.001 * 0.5 / math.sqrt(a1 + 1e-6)
    a2 = 0.9 * a1 + 0.1 * 0.04
    p2 = p1 - 0.001 * 0.2 / math.sqrt(a2 + 1e-6)
    assert _steps("rmsprop", [0.5, 0.2]) == pytest.approx([p1, p2], rel=1e-12)


def test_adagrad():
    p1 = 1 - 0.01 * 0.5 / math.sqrt(0.25 + 1e-6)
    p2 = p1 - 0.01 * 0.2 / math.sqrt(0.25 + 0.04 + 1e-6)
    assert _steps("adagrad", [0.5, 0.2]) == pytest.approx([p1, p2], rel=1e-12)


def test_adam():
    m1, v1 = 0.1 * 0.5, 0.001 * 0.25
    p1 = 1 - 0.001 * math.sqrt(1 - 0.999) / (1 - 0.9) * m1 / (math.sqrt(v1) + 1e-8)
    m2, v2 = 0.9 * m1 + 0.1 * 0.2, 0.999 * v1 + 0.001 * 0.04
    p2 = p1 - 0.001 * math.sqrt(1 - 0.999**2) / (1 - 0.9**2) * m2 / (math.sqrt(v2) + 1e-8)
    assert _steps("adam", [0.5, 0.2]) == pytest.approx([p1, p2], rel=1e-12)
    assert p1 == pytest.approx(1 - 0.001, rel=1e-6)  # Adam's first step is about lr * sign(g)


def test_clipnorm_uses_the_global_norm():
    p = {"a": np.array([0.0]), "b": np.array([0.0])}
    opt = optim.Optimizer("sgd", lr=1.0, clipnorm=1.0)
    opt.step(p, {"a": np.array([3.0]), "b": np.array([4.0])})  # norm 5 -> scaled by 1/5
    np.testing.assert_allclose([p["a"][0], p["b"][0]], [-0.6, -0.8])


def test_clipvalue():
    p = {"a": np.array([0.0, 0.0])}
    optim.Optimizer("sgd", lr=1.0, clipvalue=0.5).step(p, {"a": np.array([3.0, -0.1])})
    np.testing.assert_allclose(p["a"], [-0.5, 0.1])


def test_updates_in_place_keep_dtype_and_skip_params_without_gradients():
    w = np.ones((2, 2), np.float32)
    frozen = np.ones(3, np.float32)
    params = {"l/W": w, "l/frozen": frozen}
    for name in ("sgd", "rmsprop", "adagrad", "adam"):
        optim.Optimizer(name, momentum=0.9 if name == "sgd" else None).step(
            params, {"l/W": np.full((2, 2), 0.5, np.float32)}
        )
    assert params["l/W"] is w and w.dtype == np.float32 and (w < 1).all()
    np.testing.assert_array_equal(frozen, np.ones(3, np.float32))


def test_assign_restores_in_place():
    w = np.zeros(2)
    optim.assign({"w": w}, {"w": np.array([1.0, 2.0])})
    np.testing.assert_array_equal(w, [1.0, 2.0])

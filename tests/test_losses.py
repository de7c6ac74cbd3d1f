"""Losses: hand-computed values and gradients, Keras clipping, masks, finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runner.train import losses


def test_mse_by_hand():
    y = np.array([[1.0, 2.0], [3.0, 5.0]])
    t = np.array([[0.0, 2.0], [3.0, 3.0]])
    value, grad = losses.loss("mse", y, t)
    assert value == pytest.approx((0.5 + 2.0) / 2)  # per-sample means 0.5 and 2
    np.testing.assert_allclose(grad, [[0.5, 0.0], [0.0, 1.0]])  # 2 (y - t) / (2 * 2)


def test_mae_by_hand():
    y = np.array([[1.0, 2.0], [3.0, 5.0]])
    t = np.array([[0.0, 2.0], [3.0, 3.0]])
    value, grad = losses.loss("mae", y, t)
    assert value == pytest.approx(0.75)
    np.testing.assert_allclose(grad, [[0.25, 0.0], [0.0, 0.25]])


def test_binary_crossentropy_by_hand():
    y = np.array([[0.8], [0.3]])
    t = np.array([[1.0], [0.0]])
    value, grad = losses.loss("binary_crossentropy", y, t)
    assert value == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
    np.testing.assert_allclose(grad, [[-1 / 0.8 / 2], [1 / 0.7 / 2]])


def test_binary_crossentropy_is_clipped_as_keras():
    y = np.array([[1.0, 0.0]])
    t = np.array([[0.0, 1.0]])
    value, grad = losses.loss("binary_crossentropy", y, t)
    assert value == pytest.approx(-math.log(1e-7), rel=1e-6)  # both terms -log(eps), mean
    np.testing.assert_array_equal(grad, [[0.0, 0.0]])  # the clip passes no gradient


def test_categorical_crossentropy_by_hand():
    y = np.array([[0.2, 0.3, 0.5]])
    t = np.array([[0.0, 0.0, 1.0]])
    value, grad = losses.loss("categorical_crossentropy", y, t)
    assert value == pytest.approx(-math.log(0.5))
    # dq = -t/q = [0, 0, -2]; through q = y/sum(y) (sum 1): dy = dq - sum(dq * q) = dq + 1
    np.testing.assert_allclose(grad, [[1.0, 1.0, -1.0]])


def test_categorical_crossentropy_rescales_rows_first():
    value, _ = losses.loss(
        "categorical_crossentropy", np.array([[1.0, 1.0, 2.0]]), np.array([[0.0, 0.0, 1.0]])
    )
    assert value == pytest.approx(-math.log(0.5))


def test_categorical_crossentropy_clips_zero_probabilities():
    value, grad = losses.loss(
        "categorical_crossentropy", np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    )
    assert value == pytest.approx(-math.log(1e-7), rel=1e-6)
    assert np.isfinite(grad).all()


def test_sparse_equals_categorical_with_one_hot():
    rng = np.random.default_rng(0)
    y = rng.uniform(0.05, 1.0, (4, 3))
    labels = np.array([2, 0, 1, 2])
    onehot = np.eye(3)[labels]
    for shaped in (labels, labels[:, None]):
        v1, g1 = losses.loss("sparse_categorical_crossentropy", y, shaped)
        v2, g2 = losses.loss("categorical_crossentropy", y, onehot)
        assert v1 == v2
        np.testing.assert_array_equal(g1, g2)


def test_mask_leaves_masked_timesteps_out():
    y = np.array([[[1.0, 1.0], [9.0, 9.0], [3.0, 3.0]]])  # (batch 1, steps 3, features 2)
    t = np.zeros_like(y)
    mask = np.array([[True, False, True]])
    value, grad = losses.loss("mse", y, t, mask)
    assert value == pytest.approx((1.0 + 9.0) / 2)  # Keras: sum(score * mask) / sum(mask)
    np.testing.assert_allclose(grad[0, 1], [0.0, 0.0])
    np.testing.assert_allclose(grad[0, 0], [2 * 1.0 / 2 / 2] * 2)  # 2y/D, over 2 kept steps
    value_all_masked, grad_all = losses.loss("mse", y, t, np.zeros((1, 3), bool))
    assert value_all_masked == 0.0 and not grad_all.any()


@pytest.mark.parametrize(
    "name",
    [
        "mse",
        "mae",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
    ],
)
@pytest.mark.parametrize("masked", [False, True])
def test_gradient_matches_finite_differences(name, masked):
    rng = np.random.default_rng(1)
    y = rng.uniform(0.1, 0.9, (3, 4, 5))
    if name == "sparse_categorical_crossentropy":
        t = rng.integers(0, 5, (3, 4))
    elif "crossentropy" in name:
        t = (
            np.eye(5)[rng.integers(0, 5, (3, 4))]
            if name.startswith("cat")
            else (rng.random((3, 4, 5)) < 0.5).astype(float)
        )
    else:
        t = y + rng.choice([-1, 1], y.shape) * rng.uniform(0.1, 0.5, y.shape)  # no |y-t| kink
    mask = rng.random((3, 4)) < 0.6 if masked else None
    _, grad = losses.loss(name, y, t, mask)
    numeric = np.zeros_like(y)
    eps = 1e-6
    for idx in np.ndindex(y.shape):
        keep = y[idx]
        y[idx] = keep + eps
        plus = losses.loss(name, y, t, mask, grad=False)[0]
        y[idx] = keep - eps
        minus = losses.loss(name, y, t, mask, grad=False)[0]
        y[idx] = keep
        numeric[idx] = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_float32_in_float32_out():
    y = np.full((2, 3), 0.5, np.float32)
    for name in ("mse", "mae", "binary_crossentropy", "categorical_crossentropy"):
        _, grad = losses.loss(name, y, np.eye(3, dtype=np.float32)[:2])
        assert grad.dtype == np.float32


def test_accuracy_counts():
    y = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert losses.accuracy_counts("categorical_crossentropy", y, np.eye(2)[[1, 1, 1]]) == (2, 3)
    assert losses.accuracy_counts("sparse_categorical_crossentropy", y, np.array([1, 0, 0])) == (
        2,
        3,
    )
    p = np.array([[0.7], [0.4], [0.2]])
    assert losses.accuracy_counts("binary_crossentropy", p, np.array([[1.0], [1.0], [0.0]])) == (
        2,
        3,
    )
    masked = losses.accuracy_counts(
        "sparse_categorical_crossentropy",
        y[None],
        np.array([[1, 1, 0]]),
        np.array([[True, False, True]]),
    )
    assert masked == (1, 2)


def test_target_problems_name_what_is_wrong():
    assert losses.target_problem("mse", (3,), np.zeros((5, 3))) is None
    assert "expected per-sample shape (3,)" in losses.target_problem("mse", (3,), np.zeros((5, 4)))
    assert "sparse_categorical_crossentropy" in losses.target_problem(
        "categorical_crossentropy", (10,), np.zeros((5,))
    )
    assert "0..9" in losses.target_problem(
        "sparse_categorical_crossentropy", (10,), np.array([0, 10])
    )
    assert "whole numbers" in losses.target_problem(
        "sparse_categorical_crossentropy", (10,), np.array([0.5, 1.0])
    )


def test_the_loss_names_a_config_may_give_are_the_losses_implemented():
    from typing import get_args

    from runner.config.schema import LossName
    from runner.train.losses import SCORES

    assert set(get_args(LossName)) == set(SCORES)

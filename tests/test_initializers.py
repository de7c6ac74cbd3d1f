"""Initializers: legacy Keras limits and spreads, seeded draws, float32 casts."""

from __future__ import annotations

import numpy as np
import pytest

from layers.initializers import fans, initialize


def draw(name, shape, seed=0):
    return initialize(name, shape, np.random.default_rng(seed), np.float32)


@pytest.mark.parametrize(
    "name, shape, limit",
    [
        ("glorot_uniform", (3, 3), 1.0),  # sqrt(6 / (fan_in + fan_out)) = sqrt(6 / 6)
        ("glorot_uniform", (784, 50), 0.0848189),
        ("uniform", (100, 100), 0.05),
        ("lecun_uniform", (300, 10), np.sqrt(3 / 300)),
        ("he_uniform", (300, 10), np.sqrt(6 / 300)),
    ],
)
def test_uniform_limits(name, shape, limit):
    w = draw(name, shape)
    assert w.dtype == np.float32 and w.shape == shape
    assert np.abs(w).max() <= limit * (1 + 1e-6)
    assert np.abs(w).max() > 0.9 * limit  # the draws fill the interval
    assert abs(float(w.mean())) < limit / 10


@pytest.mark.parametrize(
    "name, shape, std",
    [
        ("normal", (300, 300), 0.05),
        ("glorot_normal", (784, 50), 0.0489702),
        ("he_normal", (784, 50), 0.0505076),
    ],
)
def test_normal_spreads(name, shape, std):
    w = draw(name, shape)
    assert float(w.std()) == pytest.approx(std, rel=0.03)


def test_orthogonal_is_orthogonal_times_1_1():
    w = draw("orthogonal", (20, 20)).astype(np.float64)
    np.testing.assert_allclose(w @ w.T, 1.21 * np.eye(20), atol=1e-5)
    tall = draw("orthogonal", (30, 10)).astype(np.float64)
    np.testing.assert_allclose(tall.T @ tall, 1.21 * np.eye(10), atol=1e-5)


def test_identity_zero_one():
    np.testing.assert_array_equal(draw("identity", (3, 3)), np.eye(3))
    np.testing.assert_array_equal(draw("zero", (2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(draw("one", (2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="square"):
        draw("identity", (2, 3))


def test_same_seed_same_weights():
    np.testing.assert_array_equal(
        draw("glorot_uniform", (5, 4), 1), draw("glorot_uniform", (5, 4), 1)
    )
    assert not np.array_equal(draw("glorot_uniform", (5, 4), 1), draw("glorot_uniform", (5, 4), 2))


def test_fans_follow_keras_0_3_3():
    assert fans((7, 5)) == (7.0, 5.0)
    assert fans((4, 9)) == (4.0, 9.0)
    assert fans((2, 3, 6)) == (6.0, 6.0)  # non-2D: sqrt(prod)

"""Per-layer values, checked against reference numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from layers import Context
from layers.activation import Activation, ActivationSpec
from layers.activity_regularization import ActivityRegularization, ActivityRegularizationSpec
from layers.dense import Dense, DenseSpec
from layers.dropout import Dropout, DropoutSpec
from layers.flatten import Flatten, FlattenSpec
from layers.masking import Masking, MaskingSpec
from layers.permute import Permute, PermuteSpec
from layers.repeat_vector import RepeatVector, RepeatVectorSpec
from layers.reshape import Reshape, ReshapeSpec
from layers.time_distributed_dense import TimeDistributedDense, TimeDistributedDenseSpec
from layers.time_distributed_merge import TimeDistributedMerge, TimeDistributedMergeSpec

F32 = np.float32
X4 = np.array([[0.5, 1, 2, 3]], F32)


def fwd(layer, x, mask=None, training=False, seed=0):
    ctx = Context(training=training, rng=np.random.default_rng(seed))
    y, m, cache = layer.forward(np.asarray(x, F32), mask, ctx)
    return y, m, layer.activity_penalties(y, cache)


def reference_dense(cls, spec_cls, x):
    layer = cls(spec_cls(output_dim=3), "d")
    layer.params = {"W": np.array([[0.1, 0.2, 0.5]] * 3, F32), "b": np.zeros(3, F32)}
    return fwd(layer, x)[0]


def test_dense_reference_is_exact():
    y = reference_dense(Dense, DenseSpec, [[10, 20, 30]])
    np.testing.assert_array_equal(y, np.array([[6, 12, 30]], F32))
    assert y.dtype == F32


def test_time_distributed_dense_reference_is_exact():
    y = reference_dense(TimeDistributedDense, TimeDistributedDenseSpec, [[[10, 20, 30]]])
    np.testing.assert_array_equal(y, np.array([[[6, 12, 30]]], F32))


def test_dense_matches_einsum_with_bias_and_activation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 5)).astype(F32)
    w = rng.normal(size=(5, 3)).astype(F32)
    b = rng.normal(size=3).astype(F32)
    layer = Dense(DenseSpec(output_dim=3, activation="tanh"), "d")
    layer.params = {"W": w, "b": b}
    expected = np.tanh(np.einsum("ni,io->no", x.astype(np.float64), w) + b)
    np.testing.assert_allclose(fwd(layer, x)[0], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name, expected, rtol",
    [
        ("tanh", [0.46211714, 0.76159418, 0.96402758, 0.99505478], 1e-6),
        ("softplus", [0.97407699, 1.31326163, 2.12692809, 3.04858732], 1e-6),
        ("sigmoid", [0.62245935, 0.7310586, 0.88079709, 0.95257413], 1e-6),
        ("hard_sigmoid", [0.60000002, 0.69999999, 0.89999998, 1.0], 0),
        ("relu", [0.5, 1, 2, 3], 0),
        ("linear", [0.5, 1, 2, 3], 0),
    ],
)
def test_activation_reference_values(name, expected, rtol):
    y = fwd(Activation(ActivationSpec(activation=name), "a"), X4)[0]
    want = np.array([expected], np.float64).astype(F32)
    np.testing.assert_allclose(y, want, rtol=rtol, atol=0)
    assert y.dtype == F32


@pytest.mark.parametrize(
    "name, formula",
    [
        ("softsign", lambda x: x / (1 + abs(x))),
        ("elu", lambda x: np.where(x > 0, x, np.exp(x) - 1)),
        (
            "selu",
            lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1)),
        ),
        ("swish", lambda x: x / (1 + np.exp(-x))),
        ("gelu", lambda x: 0.5 * x * (1 + np.vectorize(__import__("math").erf)(x / np.sqrt(2)))),
    ],
)
def test_modern_activations_match_float64_formulas(name, formula):
    x = np.linspace(-6, 6, 49).astype(F32)[None, :]
    y = fwd(Activation(ActivationSpec(activation=name), "a"), x)[0]
    np.testing.assert_allclose(y, formula(x.astype(np.float64)), rtol=2e-6, atol=3e-7)


def test_softmax_rows_and_per_timestep():
    x2 = np.array([[1, 2, 3], [0, 0, 0]], F32)
    y2 = fwd(Activation(ActivationSpec(activation="softmax"), "s"), x2)[0]
    e = np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum()
    np.testing.assert_allclose(y2, [e, [1 / 3] * 3], rtol=1e-6)
    x3 = np.stack([x2, x2[::-1]])[None][0]  # (2 samples, 2 steps, 3 features)
    y3 = fwd(Activation(ActivationSpec(activation="softmax"), "s"), x3)[0]
    np.testing.assert_allclose(y3.sum(axis=-1), np.ones((2, 2)), rtol=1e-6)
    np.testing.assert_allclose(y3[0, 0], e, rtol=1e-6)


def test_masking_reference_and_mask():
    y, mask, _ = fwd(Masking(MaskingSpec(mask_value=1), "m"), [[[1, 1, 0], [1, 1, 1]]])
    np.testing.assert_array_equal(y, [[[1, 1, 0], [0, 0, 0]]])
    np.testing.assert_array_equal(mask, [[True, False]])


def test_masking_keras_test_case():
    x = [[[1, 1], [2, 1], [3, 1], [5, 5]], [[1, 5], [5, 0], [0, 0], [0, 0]]]
    y, mask, _ = fwd(Masking(MaskingSpec(mask_value=5), "m"), x)
    np.testing.assert_array_equal(mask, [[1, 1, 1, 0], [1, 1, 1, 1]])
    expected = np.array(x, F32)
    expected[0, 3] = 0
    np.testing.assert_array_equal(y, expected)


def test_dropout_test_phase_is_identity_and_train_phase_scales():
    x = np.arange(1, 6, dtype=F32)[None]
    layer = Dropout(DropoutSpec(p=0.3), "d")
    np.testing.assert_array_equal(fwd(layer, x)[0], x)
    y = fwd(layer, x, training=True, seed=3)[0]
    kept = y != 0
    # Kept units are scaled by float32(1/0.7): the blog's 5.71428585 and 7.14285755.
    np.testing.assert_array_equal(y[kept], (x * F32(1 / 0.7))[kept])
    assert F32(5) * F32(1 / 0.7) == F32(7.14285755)


def test_dropout_statistics():
    x = np.ones((400, 500), F32)
    y = fwd(Dropout(DropoutSpec(p=0.3), "d"), x, training=True)[0]
    zero_fraction = float(np.mean(y == 0))
    assert abs(zero_fraction - 0.3) < 0.005  # 200,000 draws: std 0.001
    assert abs(float(y.mean()) - 1.0) < 0.01  # inverted dropout keeps the expectation


def test_dropout_same_seed_same_mask():
    x = np.ones((10, 10), F32)
    layer = Dropout(DropoutSpec(p=0.5), "d")
    a = fwd(layer, x, training=True, seed=7)[0]
    b = fwd(layer, x, training=True, seed=7)[0]
    c = fwd(layer, x, training=True, seed=8)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_reshape_reference_cases():
    x = [[1, 2, 3, 4, 5, 6]]
    y = fwd(Reshape(ReshapeSpec(dims=[2, -1]), "r"), x)[0]
    np.testing.assert_array_equal(y, [[[1, 2, 3], [4, 5, 6]]])
    y = fwd(Reshape(ReshapeSpec(dims=[3, -1]), "r"), x)[0]
    np.testing.assert_array_equal(y, [[[1, 2], [3, 4], [5, 6]]])


def test_permute_reference_and_against_transpose():
    y = fwd(Permute(PermuteSpec(dims=[2, 1]), "p"), [[[1, 2, 3], [4, 5, 6]]])[0]
    np.testing.assert_array_equal(y, [[[1, 4], [2, 5], [3, 6]]])
    x = np.arange(2 * 3 * 4 * 5, dtype=F32).reshape(2, 3, 4, 5)
    layer = Permute(PermuteSpec(dims=[3, 1, 2]), "p")
    np.testing.assert_array_equal(fwd(layer, x)[0], np.transpose(x, (0, 3, 1, 2)))
    assert layer.output_shape((3, 4, 5)) == (5, 3, 4)


def test_flatten_reference():
    y = fwd(Flatten(FlattenSpec(), "f"), [[[1, 2, 3], [4, 5, 6]]])[0]
    np.testing.assert_array_equal(y, [[1, 2, 3, 4, 5, 6]])


def test_repeat_vector_reference_and_against_np_repeat():
    y = fwd(RepeatVector(RepeatVectorSpec(n=2), "r"), [[1, 2, 3]])[0]
    np.testing.assert_array_equal(y, [[[1, 2, 3], [1, 2, 3]]])
    x = np.arange(6, dtype=F32).reshape(2, 3)
    np.testing.assert_array_equal(
        fwd(RepeatVector(RepeatVectorSpec(n=4), "r"), x)[0], np.repeat(x[:, None, :], 4, axis=1)
    )


@pytest.mark.parametrize(
    "mode, expected", [("sum", [[2, 4, 6]]), ("mul", [[1, 4, 9]]), ("ave", [[1, 2, 3]])]
)
def test_time_distributed_merge_reference(mode, expected):
    y = fwd(
        TimeDistributedMerge(TimeDistributedMergeSpec(mode=mode), "t"), [[[1, 2, 3], [1, 2, 3]]]
    )[0]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize(
    "mode, expected",
    [
        # steps [1,2], [3,4], [5,6]; the middle one masked
        ("sum", [[6, 8]]),
        ("mul", [[5, 12]]),
        ("ave", [[3, 4]]),
    ],
)
def test_time_distributed_merge_leaves_masked_steps_out(mode, expected):
    x = [[[1, 2], [3, 4], [5, 6]]]
    mask = np.array([[True, False, True]])
    y = fwd(TimeDistributedMerge(TimeDistributedMergeSpec(mode=mode), "t"), x, mask)[0]
    np.testing.assert_array_equal(y, expected)


def test_time_distributed_merge_ave_of_fully_masked_sample_is_zero():
    y = fwd(
        TimeDistributedMerge(TimeDistributedMergeSpec(mode="ave"), "t"),
        [[[1, 2], [3, 4]]],
        np.array([[False, False]]),
    )[0]
    np.testing.assert_array_equal(y, [[0, 0]])


@pytest.mark.parametrize("l1, l2, expected", [(0.01, 0, 0.03), (0, 0.01, 0.11), (0.01, 0.01, 0.14)])
def test_activity_regularization_reference_penalties(l1, l2, expected):
    x = np.array([[1], [2], [3], [4], [5]], F32)
    y, _, penalties = fwd(ActivityRegularization(ActivityRegularizationSpec(l1=l1, l2=l2), "r"), x)
    np.testing.assert_array_equal(y, x)
    assert penalties["r/activity"] == pytest.approx(expected, rel=1e-6)


def test_activity_penalty_of_a_row_is_not_divided():
    # (1, 5): the batch mean is the identity, so the legacy penalty is 0.15 / 0.55 / 0.70.
    x = np.array([[1, 2, 3, 4, 5]], F32)
    _, _, penalties = fwd(
        ActivityRegularization(ActivityRegularizationSpec(l1=0.01, l2=0.01), "r"), x
    )
    assert penalties["r/activity"] == pytest.approx(0.70, rel=1e-6)


def test_dense_weight_and_activity_regularizers():
    layer = Dense(
        DenseSpec(
            output_dim=2,
            W_regularizer={"l1": 0.1, "l2": 0.5},
            b_regularizer={"l2": 1.0},
            activity_regularizer={"l1": 0.5},
        ),
        "d",
    )
    layer.params = {"W": np.array([[1, -2], [3, 0]], F32), "b": np.array([1, -1], F32)}
    # W: 0.1 * 6 + 0.5 * 14 = 7.6; b: 1.0 * 2 = 2.0
    assert layer.weight_penalty() == pytest.approx(9.6)
    y, _, penalties = fwd(layer, [[1, 1], [0, 1]])
    # y = [[5, -3], [4, -1]]; activity = 0.5 * (5+3+4+1) / 2 = 3.25
    np.testing.assert_array_equal(y, [[5, -3], [4, -1]])
    assert penalties["d/activity"] == pytest.approx(3.25)

"""Merge: every mode and dot_axes form against hand values and independent NumPy formulas,
plan-time shape rules, mask combination, no in-place accumulation, and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

import layers  # noqa: F401  (registers the built-ins)
from layers.base import Context, PlanError
from layers.merge import Merge, MergeSpec

A = np.array([[1, 2], [3, 4]], dtype=np.float32)
B = np.array([[5, 6], [7, 8]], dtype=np.float32)
RNG = np.random.default_rng(7)


def merge(**fields) -> Merge:
    return Merge(MergeSpec.model_validate({"type": "Merge", **fields}), "m")


def run(layer: Merge, xs, masks=None, keep=False):
    ctx = Context(keep_cache=keep, dtype=xs[0].dtype)
    return layer.forward(xs, masks or [None] * len(xs), ctx)


# ---- reference values ----------------------------------------------------------------------
def test_reference_dot():
    y, mask, _ = run(merge(mode="dot"), [A, B])
    np.testing.assert_array_equal(y, [[17], [53]])
    assert y.dtype == np.float32 and mask is None


@pytest.mark.parametrize("dot_axes", [-1, 1, [1, 1], [[1], [1]], [[-1], [-1]]])
def test_reference_cos_every_axes_form(dot_axes):
    # Legacy Keras only worked with explicit pairs for cos; every form is normalized here.
    y, _, _ = run(merge(mode="cos", dot_axes=dot_axes), [A, B])
    np.testing.assert_allclose(y, [[0.97341722], [0.99716413]], rtol=1e-6)


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("sum", [[6, 8], [10, 12]]),
        ("mul", [[5, 12], [21, 32]]),
        ("ave", [[3, 4], [5, 6]]),
        ("max", [[5, 6], [7, 8]]),
        ("concat", [[1, 2, 5, 6], [3, 4, 7, 8]]),
    ],
)
def test_hand_values_elementwise_and_concat(mode, expected):
    y, _, _ = run(merge(mode=mode), [A, B])
    np.testing.assert_array_equal(y, expected)


def test_three_inputs_left_to_right():
    c = np.array([[-1, 0.5], [2, -3]], dtype=np.float32)
    np.testing.assert_array_equal(run(merge(mode="sum"), [A, B, c])[0], [[5, 8.5], [12, 9]])
    np.testing.assert_array_equal(run(merge(mode="mul"), [A, B, c])[0], [[-5, 6], [42, -96]])
    np.testing.assert_allclose(run(merge(mode="ave"), [A, B, c])[0], [[5 / 3, 8.5 / 3], [4, 3]])
    np.testing.assert_array_equal(run(merge(mode="max"), [A, B, c])[0], [[5, 6], [7, 8]])


# ---- dot_axes forms against a per-sample tensordot loop --------------------------------------
def per_sample_tensordot(x, y, ax_x, ax_y):
    """Independent formula: loop over the batch, np.tensordot on each sample."""
    out = [np.tensordot(x[b], y[b], axes=(ax_x, ax_y)) for b in range(x.shape[0])]
    out = np.array(out)
    return out.reshape(x.shape[0], -1) if out.ndim == 1 else out


@pytest.mark.parametrize(
    "s0, s1, dot_axes, ax0, ax1, out_shape",
    [
        ((4,), (4,), -1, [0], [0], (1,)),
        ((3, 4), (5, 4), -1, [1], [1], (3, 5)),  # last axis of each
        ((3, 4), (3, 4), -2, [0, 1], [0, 1], (1,)),  # last two axes: full contraction
        ((3, 4), (4, 5), 1, [1], [0], (3, 5)),  # count 1: batched matmul
        ((3, 4), (3, 4), 2, [0, 1], [0, 1], (1,)),  # count 2: full contraction
        ((2, 3, 4), (3, 4, 5), 2, [1, 2], [0, 1], (2, 5)),  # count 2 on 3D
        ((3, 4), (5, 3), [1, 2], [0], [1], (4, 5)),  # Keras 1 pair of ints
        ((3, 4), (4, 3), [[1, 2], [2, 1]], [0, 1], [1, 0], (1,)),  # explicit multi-axis pairs
        ((3, 4), (5, 4), [[-1], [2]], [1], [1], (3, 5)),  # negative explicit index
    ],
)
def test_dot_axes_forms(s0, s1, dot_axes, ax0, ax1, out_shape):
    x = RNG.normal(size=(3, *s0))
    y = RNG.normal(size=(3, *s1))
    layer = merge(mode="dot", dot_axes=dot_axes)
    assert layer.output_shape([s0, s1]) == out_shape
    got, _, _ = run(layer, [x, y])
    want = per_sample_tensordot(x, y, ax0, ax1)
    assert got.shape == (3, *out_shape)
    np.testing.assert_allclose(got, want.reshape(got.shape), rtol=1e-12)


def test_cos_on_3d_is_cosine_between_rows():
    x = RNG.normal(size=(2, 3, 4))
    y = RNG.normal(size=(2, 5, 4))
    got, _, _ = run(merge(mode="cos"), [x, y])
    want = np.empty((2, 3, 5))
    for b in range(2):
        for i in range(3):
            for j in range(5):
                u, v = x[b, i], y[b, j]
                want[b, i, j] = u @ v / np.sqrt((u @ u) * (v @ v))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_cos_of_a_zero_vector_is_zero_not_nan():
    z = np.zeros((1, 3), np.float32)
    y, _, _ = run(merge(mode="cos"), [z, np.ones((1, 3), np.float32)])
    np.testing.assert_array_equal(y, [[0]])


# ---- concat axes ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "axis, np_axis, out", [(-1, 2, (3, 7)), (2, 2, (3, 7)), (1, 1, None), (-2, 1, None)]
)
def test_concat_axes_3d(axis, np_axis, out):
    s0, s1 = ((3, 4), (3, 3)) if np_axis == 2 else ((3, 4), (2, 4))
    x, y = RNG.normal(size=(2, *s0)), RNG.normal(size=(2, *s1))
    layer = merge(mode="concat", concat_axis=axis)
    assert layer.output_shape([s0, s1]) == (out or (5, 4))
    np.testing.assert_array_equal(run(layer, [x, y])[0], np.concatenate([x, y], axis=np_axis))


# ---- plan-time shape rules ----------------------------------------------------------------
@pytest.mark.parametrize(
    "fields, shapes, message",
    [
        (
            {"mode": "sum"},
            [(2,), (3,)],
            r"only inputs of the same shape can be merged with mode "
            r"'sum'; per-sample shapes: \[\(2,\), \(3,\)\]",
        ),
        ({"mode": "ave"}, [(2, 3), (3, 2)], "same shape"),
        ({"mode": "concat"}, [(2, 3), (3, 3)], r"matching shapes except on concat_axis=-1"),
        ({"mode": "concat"}, [(2, 3), (3,)], "same rank"),
        ({"mode": "concat", "concat_axis": 0}, [(2,), (2,)], "concat_axis=0 is the batch axis"),
        ({"mode": "concat", "concat_axis": 3}, [(2,), (2,)], r"out of range.*use 1..1 or -1..-1"),
        (
            {"mode": "dot"},
            [(3,), (4,)],
            r"dimension mismatch in 'dot' mode: axis 1 of input 1 has "
            r"size 3, axis 1 of input 2 has size 4",
        ),
        (
            {"mode": "cos", "dot_axes": [[1], [2]]},
            [(3, 4), (3, 4)],
            r"axis 1 of input 1 has size 3, "
            r"axis 2 of input 2 has size 4",
        ),
        ({"mode": "dot", "dot_axes": -3}, [(3, 4), (3, 4)], "needs at least 3 non-batch axes"),
        ({"mode": "dot", "dot_axes": 2}, [(3,), (3,)], "needs at least 2 non-batch axes"),
        ({"mode": "dot", "dot_axes": [[3], [1]]}, [(3, 4), (3, 4)], "names axis 3 of input 1"),
        ({"mode": "dot", "dot_axes": [[1, -2], [1, 2]]}, [(3, 3), (3, 3)], "same axis of input 1"),
    ],
)
def test_shape_errors(fields, shapes, message):
    with pytest.raises(PlanError, match=message):
        merge(**fields).output_shape(shapes)


@pytest.mark.parametrize(
    "dot_axes, message",
    [
        (0, "dot_axes=0 contracts no axis"),
        (True, r"must be an int, a pair of ints .* found true \(a boolean\)"),
        ("last", "must be an int, a pair of ints"),
        ([1, 2, 3], "must be an int, a pair of ints"),
        ([1, [1]], "both ints or both lists"),
        ([[1], [1, 2]], "non-empty and of equal length"),
        ([[], []], "non-empty"),
        ([[0], [1]], "names axis 0, the batch axis"),
        ([[1, 1], [1, 2]], "repeats an axis"),
        ([[1.5], [1]], "must be integers"),
    ],
)
def test_dot_axes_form_errors(dot_axes, message):
    with pytest.raises(ValidationError, match=message) as info:
        MergeSpec.model_validate({"type": "Merge", "mode": "dot", "dot_axes": dot_axes})
    assert info.value.errors()[0]["loc"][0] == "dot_axes"


def test_unknown_mode_is_a_validation_error():
    with pytest.raises(ValidationError, match="'sum', 'mul', 'concat', 'ave', 'dot', 'cos'"):
        MergeSpec.model_validate({"type": "Merge", "mode": "join"})


@pytest.mark.parametrize(
    "mode, n, message",
    [
        ("sum", 1, "Merge needs at least 2 inputs, got 1: list them, e.g. inputs: [left, right]"),
        ("dot", 3, "Merge mode 'dot' takes exactly 2 inputs, got 3"),
        ("cos", 1, "Merge mode 'cos' takes exactly 2 inputs, got 1"),
    ],
)
def test_arity(mode, n, message):
    assert merge(mode=mode).arity_error(n) == message
    assert merge(mode=mode).arity_error(2) is None


# ---- never in place -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sum", "mul", "ave", "max", "concat", "dot", "cos"])
def test_branch_outputs_are_never_modified(mode):
    xs = [A.copy(), B.copy(), A.copy()] if mode not in ("dot", "cos") else [A.copy(), B.copy()]
    before = [x.copy() for x in xs]
    y, _, _ = run(merge(mode=mode), xs, keep=True)
    for x, b in zip(xs, before):
        np.testing.assert_array_equal(x, b)
        assert not np.shares_memory(x, y)


# ---- masks ----------------------------------------------------------------------------------
M0 = np.array([[True, True, False]])
M1 = np.array([[True, False, True]])


@pytest.mark.parametrize(
    "mode, masks, expected",
    [
        ("sum", [M0, M1], [[1, 0, 0]]),
        ("mul", [M0, None], [[1, 1, 0]]),
        ("ave", [None, M1], [[1, 0, 1]]),
        ("max", [M0, M1], [[1, 0, 0]]),
        ("concat", [M0, M1], [[1, 0, 0]]),  # along the feature axis: a step is kept by both
        ("dot", [M0, M1], None),
        ("cos", [M0, None], None),
        ("sum", [None, None], None),
    ],
)
def test_mask_combination(mode, masks, expected):
    x = RNG.normal(size=(1, 3, 2)).astype(np.float32)
    layer = merge(mode=mode)
    y, mask, _ = run(layer, [x, x.copy()], masks)
    assert layer.output_mask([(3, 2), (3, 2)], [m is not None for m in masks]) == (
        expected is not None
    )
    if expected is None:
        assert mask is None
    else:
        np.testing.assert_array_equal(mask, np.array(expected, dtype=bool))


def test_concat_along_time_concatenates_masks_all_true_for_unmasked():
    x = RNG.normal(size=(1, 3, 2)).astype(np.float32)
    y, mask, _ = run(merge(mode="concat", concat_axis=1), [x, x], [M0, None])
    assert y.shape == (1, 6, 2)
    np.testing.assert_array_equal(mask, [[True, True, False, True, True, True]])


# ---- gradients ------------------------------------------------------------------------------
def numeric_check(layer, xs, eps=1e-6):
    """Central differences of sum(r * y) against backward, in float64."""
    ctx = Context(keep_cache=True, dtype=np.dtype(np.float64))
    y, _, cache = layer.forward(xs, [None] * len(xs), ctx)
    r = np.random.default_rng(3).normal(size=y.shape)
    dxs, grads = layer.backward(r, cache, ctx)
    assert grads == {} and len(dxs) == len(xs)
    for x, dx in zip(xs, dxs):
        num = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            keep = x[i]
            x[i] = keep + eps
            up = np.sum(r * layer.forward(xs, [None] * len(xs), Context(dtype=x.dtype))[0])
            x[i] = keep - eps
            down = np.sum(r * layer.forward(xs, [None] * len(xs), Context(dtype=x.dtype))[0])
            x[i] = keep
            num[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "fields, shapes",
    [
        ({"mode": "sum"}, [(3,), (3,), (3,)]),
        ({"mode": "mul"}, [(2, 3), (2, 3), (2, 3)]),
        ({"mode": "ave"}, [(3,), (3,)]),
        ({"mode": "max"}, [(4,), (4,), (4,)]),
        ({"mode": "concat", "concat_axis": 1}, [(2, 3), (1, 3)]),
        ({"mode": "concat"}, [(2, 3), (2, 1)]),
        ({"mode": "dot"}, [(3,), (3,)]),
        ({"mode": "dot", "dot_axes": 1}, [(2, 3), (3, 4)]),
        ({"mode": "dot", "dot_axes": [[1, 2], [2, 1]]}, [(2, 3), (3, 2)]),
        ({"mode": "cos"}, [(3,), (3,)]),
        ({"mode": "cos"}, [(2, 3), (4, 3)]),
        ({"mode": "cos", "dot_axes": -2}, [(2, 3), (2, 3)]),
    ],
)
def test_backward_matches_finite_differences(fields, shapes):
    xs = [np.random.default_rng(i).normal(size=(2, *s)) for i, s in enumerate(shapes)]
    numeric_check(merge(**fields), xs)

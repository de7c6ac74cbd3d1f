"""Gradient checks: analytic backward vs central finite differences, in float64.

One table covers every registered layer type (a type without a row fails the suite, so a
layer added later must add one), every activation, every Merge mode and every Siamese merge
mode, masks, and the regularizer penalties. The checked objective is
``sum(y * R) + activity penalties + weight penalties`` for a fixed random ``R``, so the
penalty gradients are checked too. Never skipped.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

import layers  # noqa: F401  (registers the built-ins)
from layers import Context, registry
from layers.activations import ACTIVATIONS
from tests.helpers import numeric_gradient

EPS = 1e-6
RTOL, ATOL = 1e-6, 1e-8
REG = {"l1": 0.01, "l2": 0.02}


@dataclass
class Case:
    fields: dict
    shape: object  # per-sample input shape; a list of shapes for multi-input layers
    mask: object = None  # (rows, *shape[:-1]) bool, or a list for multi-input layers
    training: bool = False
    low: float = 0.2  # |x| drawn in [low, high], random sign: away from kinks at 0
    high: float = 1.5
    positive: bool = False
    extra: dict = field(default_factory=dict)


ROWS = 3
STEP_MASK = np.array(
    [[True, False, True, True], [True, True, True, False], [False, True, True, True]]
)


def merge_cases() -> dict[str, Case]:
    shapes = {"concat": [(3,), (2,)], "dot": [(4,), (4,)], "cos": [(4,), (4,)]}
    cases = {}
    for mode in merge_modes():
        cases[f"Merge-{mode}"] = Case(
            {"mode": mode},
            shapes.get(
                mode, [(3, 2), (3, 2), (3, 2)] if mode not in ("dot", "cos") else [(4,), (4,)]
            ),
        )
    cases["Merge-concat-axis1"] = Case({"mode": "concat", "concat_axis": 1}, [(2, 3), (4, 3)])
    cases["Merge-dot-axes"] = Case({"mode": "dot", "dot_axes": [[2], [1]]}, [(3, 2), (2, 4)])
    return cases


def merge_modes() -> tuple[str, ...]:
    if "Merge" not in registry.registered():
        return ()
    return typing.get_args(registry.layer_class("Merge").Spec.model_fields["mode"].annotation)


def siamese_modes() -> tuple[str, ...]:
    if "Siamese" not in registry.registered():
        return ()
    return typing.get_args(
        registry.layer_class("Siamese").Spec.model_fields["merge_mode"].annotation
    )


def siamese_cases() -> dict[str, Case]:
    dense = {"type": "Dense", "output_dim": 3, "activation": "tanh", "W_regularizer": REG}
    return {
        f"Siamese-{mode}": Case({"layer": dense, "merge_mode": mode}, [(4,), (4,)])
        for mode in siamese_modes()
    }


TABLE: dict[str, dict[str, Case]] = {
    "Masking": {"Masking": Case({"mask_value": 0.0}, (4, 3))},
    "CustomMasking": {  # examples/ plugin: a step is masked when every feature is >= mask_value
        "CustomMasking": Case({"mask_value": 0.0}, (4, 3)),
        "CustomMasking-positive": Case({"mask_value": 0.6}, (4, 2), positive=True),
    },
    "Dropout": {
        "Dropout-train": Case({"p": 0.4}, (6,), training=True),
        "Dropout-test": Case({"p": 0.4}, (6,)),
        "Dropout-masked": Case({"p": 0.3}, (4, 2), mask=STEP_MASK, training=True),
    },
    "Activation": {
        **{
            f"Activation-{name}": Case({"activation": name}, (3, 5) if name == "softmax" else (5,))
            for name in ACTIVATIONS
        },
        "Activation-softmax-2d": Case({"activation": "softmax"}, (5,)),
        "Activation-masked": Case({"activation": "sigmoid"}, (4, 2), mask=STEP_MASK),
    },
    "Reshape": {"Reshape": Case({"dims": [3, -1]}, (2, 6))},
    "Permute": {"Permute": Case({"dims": [2, 3, 1]}, (2, 3, 4))},
    "Flatten": {"Flatten": Case({}, (2, 3, 2))},
    "RepeatVector": {"RepeatVector": Case({"n": 3}, (4,))},
    "Dense": {
        "Dense-tanh": Case({"output_dim": 3, "activation": "tanh"}, (4,)),
        "Dense-relu": Case({"output_dim": 3, "activation": "relu"}, (4,)),
        "Dense-softmax": Case({"output_dim": 4, "activation": "softmax"}, (3,)),
        "Dense-regularized": Case(
            {
                "output_dim": 3,
                "activation": "sigmoid",
                "W_regularizer": REG,
                "b_regularizer": REG,
                "activity_regularizer": REG,
            },
            (4,),
        ),
    },
    "TimeDistributedDense": {
        "TimeDistributedDense": Case({"output_dim": 3, "activation": "softmax"}, (4, 2)),
        "TimeDistributedDense-masked-regularized": Case(
            {
                "output_dim": 2,
                "activation": "tanh",
                "W_regularizer": REG,
                "activity_regularizer": REG,
            },
            (4, 3),
            mask=STEP_MASK,
        ),
    },
    "TimeDistributedMerge": {
        **{f"TimeDistributedMerge-{m}": Case({"mode": m}, (4, 3)) for m in ("sum", "mul", "ave")},
        **{
            f"TimeDistributedMerge-{m}-masked": Case({"mode": m}, (4, 3), mask=STEP_MASK)
            for m in ("sum", "mul", "ave")
        },
    },
    "ActivityRegularization": {
        "ActivityRegularization": Case({"l1": 0.1, "l2": 0.2}, (3, 2)),
        "ActivityRegularization-masked": Case({"l1": 0.1, "l2": 0.2}, (4, 2), mask=STEP_MASK),
    },
    "Merge": merge_cases(),
    "Siamese": siamese_cases(),
    "AutoEncoder": {
        "AutoEncoder": Case(
            {
                "encoder": {
                    "e": {
                        "type": "Dense",
                        "output_dim": 3,
                        "activation": "tanh",
                        "W_regularizer": REG,
                    },
                    "e2": {"type": "Dropout", "p": 0.3},
                },
                "decoder": {
                    "d": {
                        "type": "Dense",
                        "output_dim": 4,
                        "activation": "sigmoid",
                        "activity_regularizer": REG,
                    }
                },
            },
            (4,),
            training=True,
        ),
        "AutoEncoder-code": Case(
            {
                "output_reconstruction": False,
                "encoder": {"e": {"type": "Dense", "output_dim": 2}},
                "decoder": {"d": {"type": "Dense", "output_dim": 4}},
            },
            (4,),
        ),
    },
    "Lambda": {
        "Lambda-tanh": Case({"function": "tanh(x) * 2"}, (3, 2)),
        "Lambda-poly": Case({"function": "x * x - 3 * x / (1 + square(x))"}, (4,)),
        "Lambda-funcs": Case(
            {"function": "exp(x) + log(x) + sqrt(x) + sigmoid(x) + softplus(x)"},
            (4,),
            positive=True,
        ),
        "Lambda-minmax": Case(
            {"function": "maximum(x, 0.5) + minimum(x, -0.5) + abs(x)"}, (5,), low=0.6
        ),
        "Lambda-trig": Case({"function": "sin(x) * cos(x) + clip(x, -1, 1)"}, (4,), low=1.1),
        "Lambda-sum": Case({"function": "sum(x * x, axis=-1)"}, (3, 4)),
        "Lambda-mean-max": Case(
            {"function": "mean(x, axis=-1) * max(x, axis=-1) + min(x, axis=2)"}, (3, 4)
        ),
    },
}

CASES = [(tag, name) for tag in sorted(registry.registered()) for name in TABLE.get(tag, {})]


def test_every_registered_type_has_a_row():
    """Built-ins and plugins alike; only a type that declares itself forward-only
    (``differentiable = False``, which task=fit refuses) has no backward to check."""
    missing = sorted(
        t
        for t, cls in registry.registered().items()
        if not TABLE.get(t) and cls.__dict__.get("differentiable", True)
    )
    assert not missing, f"add gradient-check rows to TABLE for {missing}"


def test_every_merge_mode_is_checked():
    checked = {c.fields.get("mode") for c in TABLE["Merge"].values()}
    assert set(merge_modes()) <= checked
    assert set(siamese_modes()) == {c.fields["merge_mode"] for c in TABLE["Siamese"].values()}
    assert "Merge" not in registry.registered() or len(merge_modes()) >= 6


def _make(tag: str, fields: dict, shape):
    cls = registry.layer_class(tag)
    layer = cls(cls.Spec.model_validate({"type": tag, **fields}), tag.lower())
    layer.init_params(shape, np.random.default_rng(11), np.dtype(np.float64))
    return layer


def _sample(case: Case, rng: np.random.Generator):
    def one(s):
        v = rng.uniform(case.low, case.high, (ROWS, *s))
        return v if case.positive else v * rng.choice([-1.0, 1.0], v.shape)

    return [one(s) for s in case.shape] if isinstance(case.shape, list) else one(case.shape)


def _mask(case: Case, x):
    if case.mask is None:
        return [None] * len(x) if isinstance(x, list) else None
    return case.mask


def _run(layer, x, mask, case: Case, r):
    ctx = Context(
        training=case.training,
        rng=np.random.default_rng(5),
        dtype=np.dtype(np.float64),
        keep_cache=True,
    )
    y, _, cache = layer.forward(x, mask, ctx)
    ys, rs = (y, r) if isinstance(y, list) else ([y], [r])
    total = sum(float(np.sum(a * b)) for a, b in zip(ys, rs))
    total += sum(layer.activity_penalties(y, cache).values()) + layer.weight_penalty()
    return total, y, cache, ctx


@pytest.mark.parametrize(("tag", "name"), CASES, ids=[n for _, n in CASES])
def test_backward_matches_finite_differences(tag, name):
    case = TABLE[tag][name]
    layer = _make(tag, case.fields, case.shape)
    rng = np.random.default_rng(3)
    x = _sample(case, rng)
    mask = _mask(case, x)
    ctx0 = Context(
        training=case.training,
        rng=np.random.default_rng(5),
        dtype=np.dtype(np.float64),
        keep_cache=True,
    )
    y, _, _ = layer.forward(x, mask, ctx0)
    r = [rng.normal(size=a.shape) for a in y] if isinstance(y, list) else rng.normal(size=y.shape)

    _, y, cache, ctx = _run(layer, x, mask, case, r)
    dx, grads = layer.backward(r, cache, ctx)  # the chain rule ...
    for key, g in layer.weight_penalty_grads().items():  # ... + the penalty, as a fit step
        grads[key] = grads[key] + g

    params = layer.named_params()
    assert set(grads) <= set(params), f"gradients for unknown parameters {set(grads) - set(params)}"
    xs, dxs = (x, dx) if isinstance(x, list) else ([x], [dx])
    for i, (xi, dxi) in enumerate(zip(xs, dxs)):
        numeric = numeric_gradient(lambda: _run(layer, x, mask, case, r)[0], xi, EPS)
        assert dxi.shape == xi.shape
        np.testing.assert_allclose(dxi, numeric, rtol=RTOL, atol=ATOL, err_msg=f"{name}: input {i}")
    for key, p in params.items():
        numeric = numeric_gradient(lambda: _run(layer, x, mask, case, r)[0], p, EPS)
        analytic = grads.get(key, np.zeros_like(p))
        assert np.shape(analytic) == p.shape
        np.testing.assert_allclose(
            analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=f"{name}: parameter {key}"
        )


def test_backward_does_not_change_parameters():
    case = TABLE["Dense"]["Dense-regularized"]
    layer = _make("Dense", case.fields, case.shape)
    before = {k: v.copy() for k, v in layer.named_params().items()}
    x = _sample(case, np.random.default_rng(0))
    ctx = Context(dtype=np.dtype(np.float64), keep_cache=True)
    y, _, cache = layer.forward(x, None, ctx)
    layer.backward(np.ones_like(y), cache, ctx)
    for k, v in layer.named_params().items():
        np.testing.assert_array_equal(v, before[k])


def test_masking_passes_no_gradient_to_masked_steps():
    """Legacy convention: the keep indicator is a constant, so a masked step (all features equal
    mask_value) gets gradient 0 and the others get dy unchanged."""
    layer = _make("Masking", {"mask_value": 2.0}, (3, 2))
    x = np.array([[[1.0, 2.0], [2.0, 2.0], [0.5, -1.0]]])
    ctx = Context(dtype=np.dtype(np.float64), keep_cache=True)
    _, mask, cache = layer.forward(x, None, ctx)
    dy = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    dx, grads = layer.backward(dy, cache, ctx)
    np.testing.assert_array_equal(mask, [[True, False, True]])
    np.testing.assert_array_equal(dx, [[[1.0, 2.0], [0.0, 0.0], [5.0, 6.0]]])
    assert grads == {}


def test_dense_skips_the_input_gradient_only_when_asked():
    layer = _make("Dense", {"output_dim": 2}, (3,))
    x = np.ones((2, 3))
    ctx = Context(dtype=np.dtype(np.float64), keep_cache=True)
    y, _, cache = layer.forward(x, None, ctx)
    dx, _ = layer.backward(np.ones_like(y), cache, ctx)
    np.testing.assert_allclose(dx, np.ones((2, 2)) @ layer.params["W"].T)
    dx, grads = layer.backward(np.ones_like(y), cache, replace(ctx, need_input_grad=False))
    assert dx is None
    np.testing.assert_allclose(grads["W"], x.T @ np.ones((2, 2)))

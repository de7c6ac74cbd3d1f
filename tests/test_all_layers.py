"""Table over every registered layer type: planned shape = computed shape, test phase
deterministic, float32 in and out. A new layer type must add a row here."""

from __future__ import annotations

import numpy as np
import pytest

import layers  # noqa: F401  (registers the built-ins)
from layers import Context, registry
from layers.base import PlanError

# type -> (spec fields, per-sample input shape(s)); multi-input layers list several shapes.
TABLE: dict[str, tuple[dict, object]] = {
    "Masking": ({"mask_value": 0.0}, (4, 3)),
    "Dropout": ({"p": 0.4}, (6,)),
    "Activation": ({"activation": "softmax"}, (3, 5)),
    "Reshape": ({"dims": [3, -1]}, (2, 6)),
    "Permute": ({"dims": [2, 3, 1]}, (2, 3, 4)),
    "Flatten": ({}, (2, 3, 4)),
    "RepeatVector": ({"n": 3}, (5,)),
    "Dense": ({"output_dim": 4, "activation": "tanh"}, (6,)),
    "TimeDistributedDense": ({"output_dim": 4, "activation": "softmax"}, (3, 6)),
    "TimeDistributedMerge": ({"mode": "ave"}, (4, 5)),
    "ActivityRegularization": ({"l1": 0.1, "l2": 0.2}, (3, 2)),
    "Merge": ({"mode": "concat"}, [(3,), (2,)]),
    "Siamese": ({"layer": {"type": "Dense", "output_dim": 2}, "merge_mode": "sum"}, [(3,), (3,)]),
    "AutoEncoder": (
        {
            "encoder": {"e": {"type": "Dense", "output_dim": 2}},
            "decoder": {"d": {"type": "Dense", "output_dim": 5}},
        },
        (5,),
    ),
    "Lambda": ({"function": "tanh(x) * 2"}, (3, 2)),
}


# Built-in types only: plugin layers that other test modules register during collection
# (examples.custom_masking) have their own tests, and would make this table order-dependent.
BUILT_INS = sorted(
    tag for tag, cls in registry.registered().items() if cls.__module__.startswith("layers.")
)


def make(tag, fields, shape, seed=0):
    cls = registry.layer_class(tag)
    layer = cls(cls.Spec.model_validate({"type": tag, **fields}), tag.lower())
    layer.init_params(shape, np.random.default_rng(seed), np.dtype(np.float32))
    return layer


def sample(shape, rows=5, seed=0):
    rng = np.random.default_rng(seed)
    if isinstance(shape, list):
        return [rng.normal(size=(rows, *s)).astype(np.float32) for s in shape]
    return rng.normal(size=(rows, *shape)).astype(np.float32)


def test_every_registered_type_has_a_row():
    missing = set(BUILT_INS) - set(TABLE)
    assert not missing, f"add rows to TABLE for {sorted(missing)}"


@pytest.mark.parametrize("tag", BUILT_INS)
def test_planned_shape_equals_computed_and_test_phase_is_deterministic(tag):
    fields, shape = TABLE[tag]
    layer = make(tag, fields, shape)
    planned = layer.output_shape(shape)
    x = sample(shape)
    mask = [None] * len(x) if isinstance(x, list) else None
    y1, _, _ = layer.forward(x, mask, Context(rng=np.random.default_rng(1)))
    y2, _, _ = layer.forward(x, mask, Context(rng=np.random.default_rng(2)))
    assert y1.shape == (5, *planned)
    assert y1.dtype == np.float32
    np.testing.assert_array_equal(y1, y2)
    params = layer.named_params()
    assert {k: v.shape for k, v in params.items()} == {
        k: tuple(s) for k, s in layer.param_shapes(shape).items()
    }


@pytest.mark.parametrize("tag", BUILT_INS)
def test_same_seed_same_weights_and_train_outputs(tag):
    fields, shape = TABLE[tag]
    x = sample(shape)
    mask = [None] * len(x) if isinstance(x, list) else None
    outs = []
    for _ in range(2):
        layer = make(tag, fields, shape, seed=3)
        outs.append(layer.forward(x, mask, Context(training=True, rng=np.random.default_rng(4)))[0])
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize(
    "tag, fields, shape",
    [
        ("Dense", {"output_dim": 2}, (3, 4)),
        ("TimeDistributedDense", {"output_dim": 2}, (4,)),
        ("TimeDistributedMerge", {}, (4,)),
        ("RepeatVector", {"n": 2}, (2, 2)),
        ("Reshape", {"dims": [5, -1]}, (12,)),
        ("Reshape", {"dims": [5, 3]}, (12,)),
        ("Permute", {"dims": [2, 1]}, (2, 3, 4)),
    ],
)
def test_plan_rejects_shapes(tag, fields, shape):
    cls = registry.layer_class(tag)
    with pytest.raises(PlanError):
        cls(cls.Spec.model_validate({"type": tag, **fields}), "l").output_shape(shape)

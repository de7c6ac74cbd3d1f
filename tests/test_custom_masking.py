"""CustomMasking (examples/custom_masking.py) follows the seed post's rule: a timestep is masked
when every feature is >= mask_value, kept when any feature is below it."""

from __future__ import annotations

import numpy as np
import pytest

from layers import Context, registry
from tests.helpers import numeric_gradient

# The two examples of the post, both with mask_value 5: (input, output, mask).
REFERENCE = [
    (
        [[3, 4, 5], [5, 6, 7], [5, 5, 5]],
        [[3, 4, 5], [0, 0, 0], [0, 0, 0]],
        [1, 0, 0],
    ),
    (
        [[6, 7, 8], [5, 1, 2], [1, 2, 3]],
        [[0, 0, 0], [5, 1, 2], [1, 2, 3]],
        [0, 1, 1],
    ),
]


def _layer(mask_value: float):
    # imported here, not at collection: registering a plugin then would change what other
    # test modules see as the registered types when they are collected
    import examples.custom_masking  # noqa: F401

    cls = registry.layer_class("CustomMasking")
    layer = cls(cls.Spec.model_validate({"type": "CustomMasking", "mask_value": mask_value}), "cm")
    layer.init_params((3, 3), np.random.default_rng(0), np.dtype(np.float64))
    return layer


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("x", "y", "mask"), REFERENCE, ids=["post-example-1", "post-example-2"])
def test_reference_examples(x, y, mask, dtype):
    layer = _layer(5)
    ctx = Context(dtype=np.dtype(dtype), keep_cache=False)
    out, out_mask, cache = layer.forward(np.array([x], dtype=dtype), None, ctx)
    np.testing.assert_array_equal(out, [y])
    np.testing.assert_array_equal(out_mask, [np.array(mask, dtype=bool)])
    assert out.dtype == dtype and cache is None


def test_both_examples_in_one_batch_and_the_boundary():
    layer = _layer(5)
    x = np.array([ex[0] for ex in REFERENCE], dtype=np.float64)
    out, mask, _ = layer.forward(x, None, Context(dtype=np.dtype(np.float64)))
    np.testing.assert_array_equal(out, [ex[1] for ex in REFERENCE])
    np.testing.assert_array_equal(mask, [[True, False, False], [False, True, True]])
    # equal to the value counts as >=: masked; one feature just below keeps the step
    edge = np.array([[[5.0, 5.0], [5.0, 4.999], [-1.0, 9.0]]])
    _, mask, _ = _layer(5).forward(edge, None, Context(dtype=np.dtype(np.float64)))
    np.testing.assert_array_equal(mask, [[False, True, True]])


def test_an_incoming_mask_is_replaced():
    layer = _layer(5)
    x = np.array([REFERENCE[1][0]], dtype=np.float64)
    _, mask, _ = layer.forward(x, np.ones((1, 3), bool), Context(dtype=np.dtype(np.float64)))
    np.testing.assert_array_equal(mask, [[False, True, True]])


def test_gradient_matches_finite_differences():
    """Both kinds of step in one batch (away from the >= boundary, where the mask flips)."""
    layer = _layer(5)
    x = np.array([ex[0] for ex in REFERENCE], dtype=np.float64) + 0.25
    r = np.random.default_rng(1).normal(size=x.shape)
    ctx = Context(dtype=np.dtype(np.float64), keep_cache=True)

    def objective() -> float:
        y, _, _ = layer.forward(x, None, ctx)
        return float(np.sum(y * r))

    _, mask, cache = layer.forward(x, None, ctx)
    np.testing.assert_array_equal(mask, [[True, False, False], [False, True, True]])
    dx, grads = layer.backward(r, cache, ctx)
    assert grads == {}
    np.testing.assert_allclose(dx, numeric_gradient(objective, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(dx, r * mask[..., None])  # dy on kept steps, 0 on masked


def test_shipped_example_model(run_config):
    """conf/model/custom_masking_example.yaml carries both examples and its expect passes."""
    from runner.api import compose

    outcome, result = run_config(compose("custom_masking_example"))
    assert result["status"] == "ok", result

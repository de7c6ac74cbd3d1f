"""Graph-level backward against finite differences, including multi-output (Siamese heads)."""

from __future__ import annotations

import numpy as np
import pytest

from layers.base import Context
from runner.api import Model
from runner.graph.backprop import backward
from runner.graph.execute import forward
from tests.conftest import model_config
from tests.helpers import numeric_gradient

GRAPHS = {
    "siamese heads into merge": (
        {
            "siam": {
                "type": "Siamese",
                "inputs": ["a", "b"],
                "merge_mode": "none",
                "layer": {"type": "Dense", "output_dim": 2, "activation": "tanh"},
            },
            "m": {"type": "Merge", "mode": "mul", "inputs": ["siam.0", "siam.1"]},
        },
        ["m"],
    ),
    "one value feeding two branches": (
        {
            "d": {"type": "Dense", "output_dim": 3, "inputs": ["a"]},
            "t": {"type": "Activation", "activation": "tanh", "inputs": ["d"]},
            "s": {"type": "Activation", "activation": "sigmoid", "inputs": ["d"]},
            "m": {"type": "Merge", "mode": "concat", "inputs": ["t", "s", "b"]},
        },
        ["m"],
    ),
}


def build(layers, outputs):
    inputs = {
        "a": {"shape": [2], "data": [[0.3, -0.7], [1.1, 0.4]]},
        "b": {"shape": [2], "data": [[0.5, 0.9], [-0.2, 0.8]]},
    }
    config = model_config(layers, inputs, outputs=outputs)
    config["floatx"] = "float64"
    return Model.from_config(config)


def loss_and_grads(model, seed_grad):
    plan = model.plan
    feeds = {n: np.asarray(plan.inputs[n].array, np.float64) for n in plan.inputs}
    ctx = Context(keep_cache=True, dtype=np.dtype(np.float64))
    values, _, caches = forward(plan, feeds, ctx, set(plan.outputs))
    y = values[plan.outputs[0]]
    grads, _ = backward(plan, caches, {plan.outputs[0]: seed_grad(y)}, ctx)
    return float((y * seed_grad(y)).sum()), grads


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_graph_gradients_match_finite_differences(graph):
    model = build(*GRAPHS[graph])
    rng = np.random.default_rng(0)
    probe = {}

    def seed_grad(y):  # a fixed random direction: loss = sum(y * g)
        if "g" not in probe:
            probe["g"] = rng.normal(size=y.shape)
        return probe["g"]

    _, grads = loss_and_grads(model, seed_grad)
    weights = model.weights
    assert set(grads) == set(weights) and grads
    for key, w in weights.items():
        numeric = numeric_gradient(lambda: loss_and_grads(model, seed_grad)[0], w)
        np.testing.assert_allclose(grads[key], numeric, rtol=1e-6, atol=1e-8, err_msg=key)

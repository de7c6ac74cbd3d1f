"""The layer contract: declared once on ``layers.base.Layer``, called directly by the runner.

Backward is the chain rule alone; the weight penalties' gradient is added once per training
step by the trainer, and activity penalties travel through ``Layer.activity_penalties``.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

import layers  # noqa: F401  (registers the built-ins)
from layers.base import Context, Layer, SpecBase
from layers.dense import Dense, DenseSpec
from runner.config.validate import validate
from runner.graph import backprop
from runner.graph.build import build
from runner.graph.execute import forward
from runner.graph.plan import make_plan
from runner.train.fit import Trainer
from runner.train.settings import resolve
from tests.helpers import numeric_gradient

ROOT = Path(__file__).resolve().parents[1]

#: Every member the runner may use on a layer: what ``Layer`` declares, plus its fields.
CONTRACT = {n for n in vars(Layer) if not n.startswith("_")} | {"spec", "name", "params"}

#: Expressions that hold a layer where the runner and the layers reach for one.
LAYERISH = {"layer", "child", "inner", "Layer"}

#: getattr/hasattr calls on layer-like objects that are about something else, by
#: (file, source of the call). Empty: every one of them is a contract member called directly.
ALLOWED: set[tuple[str, str]] = set()


def _introspections() -> list[tuple[str, str, ast.Call]]:
    found = []
    for folder in ("runner", "layers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr")
                    and len(node.args) >= 2
                ):
                    found.append((path.relative_to(ROOT).as_posix(), ast.unparse(node), node))
    return found


def test_the_hooks_the_runner_uses_are_declared_on_layer():
    for member in (
        "arity_error",
        "heads",
        "children",
        "summary_rows",
        "inner_elements",
        "differentiable",
        "multi_input",
        "weight_penalty",
        "weight_penalty_grads",
        "activity_penalties",
        "defers",
        "forward_deferred",
        "reads_deferred",
    ):
        assert member in vars(Layer), member


def test_no_getattr_or_hasattr_on_a_layer_for_a_contract_member():
    """The runner and the layers call contract members directly: a getattr/hasattr naming
    one, or reaching into an object that holds a layer, is a hidden contract."""
    offending = []
    for file, source, call in _introspections():
        target, name = call.args[0], call.args[1]
        attr = name.value if isinstance(name, ast.Constant) else None
        holder = ast.unparse(target).rsplit(".", 1)[-1]
        if (attr in CONTRACT or holder in LAYERISH) and (file, source) not in ALLOWED:
            offending.append(f"{file}: {source}")
    assert not offending, "\n".join(offending)
    present = {(file, source) for file, source, _ in _introspections()}
    assert ALLOWED <= present, f"stale allowlist entries: {ALLOWED - present}"


class MinimalSpec(SpecBase):
    type: Literal["Minimal"] = "Minimal"


class Minimal(Layer):
    """A layer declaring only what it must: everything else has the documented default."""

    Spec = MinimalSpec

    def output_shape(self, input_shape):
        return input_shape

    def forward(self, x, mask, ctx):
        return x, mask, None


def test_defaults_of_the_optional_hooks():
    layer = Minimal(MinimalSpec(), "m")
    assert layer.arity_error(3) is None
    assert layer.heads == 0
    assert layer.children() == []
    assert layer.summary_rows((4,)) == []
    assert layer.inner_elements((4,)) == 0
    assert layer.differentiable and not layer.multi_input
    assert layer.weight_penalty() == 0
    assert layer.weight_penalty_grads() == {}
    assert layer.activity_penalties(np.ones((2, 4)), None) == {}


def test_context_is_immutable_and_holds_no_per_pass_state():
    ctx = Context()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.need_input_grad = False  # type: ignore[misc]
    assert not hasattr(ctx, "penalties")
    assert dataclasses.replace(ctx, need_input_grad=False).need_input_grad is False
    assert ctx.need_input_grad is True


REGULARIZED = {
    "W_regularizer": {"l1": 0.05, "l2": 0.3},
    "b_regularizer": {"l2": 0.7},
}


def test_dense_backward_is_the_chain_rule_alone():
    layer = Dense(DenseSpec(output_dim=2, **REGULARIZED), "d")
    w = np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]])
    b = np.array([0.5, -1.0])
    layer.params = {"W": w.copy(), "b": b.copy()}
    x = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 2.0]])
    dy = np.array([[1.0, -1.0], [2.0, 0.5]])
    ctx = Context(dtype=np.dtype(np.float64), keep_cache=True)
    _, _, cache = layer.forward(x, None, ctx)
    dx, grads = layer.backward(dy, cache, ctx)
    np.testing.assert_array_equal(grads["W"], x.T @ dy)  # linear: no penalty term at all
    np.testing.assert_array_equal(grads["b"], dy.sum(axis=0))
    np.testing.assert_array_equal(dx, dy @ w.T)
    # The penalty's gradient is declared separately: l1 sign(W) + 2 l2 W, and 2 l2 b.
    pen = layer.weight_penalty_grads()
    np.testing.assert_allclose(pen["W"], 0.05 * np.sign(w) + 2 * 0.3 * w, rtol=1e-15)
    np.testing.assert_allclose(pen["b"], 2 * 0.7 * b, rtol=1e-15)


def _trainer(layer_specs: dict, inputs: dict, outputs: list[str], targets: dict):
    config = {
        "task": "fit",
        "floatx": "float64",
        "progress": False,
        "fit": {"epochs": 1, "batch_size": 4, "shuffle": False, "loss": "mse"},
        "model": {
            "inputs": {k: {"data": v.tolist()} for k, v in inputs.items()},
            "layers": layer_specs,
            "outputs": outputs,
            "targets": {k: v.tolist() for k, v in targets.items()},
        },
    }
    spec = validate(config)
    plan = build(make_plan(spec))
    trainer = Trainer(plan, resolve(spec, plan.outputs))
    applied: dict[str, np.ndarray] = {}
    trainer.optimizer.step = lambda params, grads, **_: applied.update(grads)  # capture only
    return plan, trainer, applied


def _check_step_gradients(trainer, applied, feeds, targets, rtol=1e-6):
    """The gradient a step hands the optimizer is that of the step's whole loss (outputs'
    loss + weight penalties + activity penalties), by finite differences."""
    stats = trainer.step(feeds, targets)
    assert stats["weight_penalty"] > 0
    grads = dict(applied)
    assert set(grads) == set(trainer.params)

    def loss():
        return trainer.step(feeds, targets)["loss"]

    for key, array in trainer.params.items():
        numeric = numeric_gradient(loss, array)
        np.testing.assert_allclose(grads[key], numeric, rtol=rtol, atol=1e-8, err_msg=key)
    return grads


def test_a_training_step_adds_the_penalty_gradient_once():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3))
    t = rng.normal(size=(4, 2))
    plan, trainer, applied = _trainer(
        {"d": {"type": "Dense", "output_dim": 2, "activation": "tanh", **REGULARIZED}},
        {"x": x},
        ["d"],
        {"d": t},
    )
    grads = _check_step_gradients(trainer, applied, {"x": x}, {"d": t})
    # ... and it is exactly backward's chain rule plus the layer's penalty gradient.
    ctx = Context(dtype=np.dtype(np.float64), keep_cache=True)
    values, _, caches = forward(plan, {"x": x}, ctx, {"d"})
    dy = 2 / t.size * (values["d"] - t)  # d mean((y - t)^2) / dy
    chain, _ = backprop.backward(plan, caches, {"d": dy}, ctx)
    pen = plan.nodes["d"].layer.weight_penalty_grads()
    for key in ("W", "b"):
        np.testing.assert_allclose(grads[f"d/{key}"], chain[f"d/{key}"] + pen[key], rtol=1e-12)


@pytest.mark.parametrize("merge_mode", ["none", "sum"])
def test_siamese_sharing_with_l2_counts_the_penalty_once(merge_mode):
    """Two heads through one regularized Dense: the gradient is the finite difference of the
    loss plus one l2 penalty (a penalty per head would double it)."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    heads = ["s.0", "s.1"] if merge_mode == "none" else ["s"]
    targets = {h: rng.normal(size=(4, 2)) for h in heads}
    siamese = {
        "type": "Siamese",
        "inputs": ["a", "b"],
        "merge_mode": merge_mode,
        "layer": {
            "type": "Dense",
            "output_dim": 2,
            "activation": "tanh",
            "W_regularizer": {"l2": 0.4},
            "b_regularizer": {"l2": 0.2},
            "activity_regularizer": {"l2": 0.1},
        },
    }
    plan, trainer, applied = _trainer({"s": siamese}, {"a": a, "b": b}, heads, targets)
    stats = trainer.step({"a": a, "b": b}, targets)
    w = plan.nodes["s"].layer.named_params()["layer/W"]
    bias = plan.nodes["s"].layer.named_params()["layer/b"]
    assert stats["weight_penalty"] == pytest.approx(0.4 * np.sum(w**2) + 0.2 * np.sum(bias**2))
    assert stats["activity_penalty"] > 0  # one per head, summed
    _check_step_gradients(trainer, applied, {"a": a, "b": b}, targets)

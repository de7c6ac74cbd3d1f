"""Lambda: the reference x*x, expressions against NumPy through configs, expressions rejected
at validation (path and fragment, nothing executed), output_shape, masks, plugin functions and
finite-difference gradients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, model_config

import layers  # noqa: F401
from layers.base import Context
from layers.expressions import ExpressionError
from layers.lambda_layer import Lambda, LambdaSpec, lambda_functions, register_function
from runner.api import Model
from runner.errors import ConfigError

RNG = np.random.default_rng(2)
X = RNG.uniform(0.2, 2.0, size=(4, 3)).round(3)


def lam(function: str, data=None, shape=None, **extra):
    data = X if data is None else np.asarray(data, dtype=np.float64)
    inputs = {"x": {"shape": list(shape or data.shape[1:]), "data": data.tolist()}}
    return model_config({"f": {"type": "Lambda", "function": function, **extra}}, inputs)


def test_reference_square():
    out = Model.from_config(lam("x * x", [[1, 2, 3]])).predict()["f"]
    np.testing.assert_array_equal(out, [[1, 4, 9]])
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    "function, formula",
    [
        ("tanh(x) + 1", lambda v: (np.exp(2 * v) - 1) / (np.exp(2 * v) + 1) + 1),
        ("maximum(x, 0.5)", lambda v: np.where(v > 0.5, v, 0.5)),
        ("-x ** 2 / 2", lambda v: -(v * v) / 2),
        ("where(x > 1, log(x), sqrt(x))", lambda v: np.where(v > 1, np.log(v), v**0.5)),
        ("sum(x, axis=-1)", lambda v: v[:, 0] + v[:, 1] + v[:, 2]),
        ("mean(abs(x - 1), axis=1)", lambda v: np.abs(v - 1).sum(axis=1) / 3),
        ("x[:, 1:] * 2", lambda v: v[:, 1:] * 2),
        ("clip(exp(x), 2, 4)", lambda v: np.minimum(np.maximum(np.e**v, 2), 4)),
    ],
)
def test_expressions_against_numpy(function, formula):
    model = Model.from_config(lam(function))
    np.testing.assert_allclose(model.predict()["f"], formula(X), rtol=1e-6)
    assert model.plan.nodes["f"].shape == formula(X).shape[1:]


REJECTED = [  # (expression, fragment the message must quote)
    ("x.__class__", "'x.__class__': attribute access is not allowed"),
    ("__import__('os').system('touch {marker}')", "attribute access is not allowed"),
    ("open('{marker}', 'w')", "'open' is not an allowed function"),
    ("eval('x')", "'eval' is not an allowed function"),
    ("getattr(x, 'shape')", "'getattr' is not an allowed function"),
    ("np.exp(x)", "'np.exp': attribute access"),
    ("lambda: x", "'lambda: x': lambda is not allowed"),
    ("[v for v in x]", "comprehensions and generators are not allowed"),
    ("y + 1", "unknown name 'y'; the only variable is x"),
    ("exp(x, x)", "exp() takes 1 positional argument(s), got 2"),
    ("x[0]", "the first index must be ':'"),
    ("x ** x", "the exponent of ** must be a number literal"),
    ("x ** 1e9", "|exponent| <= 16"),
    ("x // 2", "floor division // is not allowed"),
    ("x if x else 1", "conditional expressions are not allowed; use where(cond, a, b)"),
    ("x and x", "boolean operators and/or are not allowed"),
    ("(x := 1)", "assignment expressions (:=) are not allowed"),
    ("f'{{x}}'", "strings and f-strings are not allowed"),
    ("x @ x", "matrix multiply @ is not allowed"),
    ("sum(x, axis=0)", "axis 0 is the batch axis"),
    ("x < 1 < 2", "chained comparisons are not allowed"),
    ("{{x: 1}}", "list, tuple, dict and set literals are not allowed"),
    ("exp(" * 40 + "x" + ")" * 40, "nested deeper than"),
    ("x +", "invalid syntax"),
    ("mish(x)", "'mish' is not an allowed function"),
]


@pytest.mark.parametrize("expression, fragment", REJECTED, ids=range(len(REJECTED)))
def test_rejected_at_validation_with_path_and_fragment(expression, fragment, tmp_path):
    marker = tmp_path / "executed"
    text = expression.format(marker=marker)
    with pytest.raises(ConfigError) as info:
        Model.from_config(lam(text))
    (problem,) = info.value.problems
    assert problem.path == "model.layers.f.function"
    assert fragment in problem.message
    assert not marker.exists()  # nothing ran


def test_rejected_expression_inside_a_composite():
    cfg = model_config(
        {
            "ae": {
                "type": "AutoEncoder",
                "encoder": {"e": {"type": "Lambda", "function": "x.real"}},
                "decoder": {"d": {"type": "Lambda", "function": "x"}},
            }
        }
    )
    with pytest.raises(
        ConfigError,
        match=r"model.layers.ae.encoder.e.function: 'x.real': "
        r"attribute access is not allowed",
    ):
        Model.from_config(cfg)


def test_output_shape_given_inferred_and_wrong():
    model = Model.from_config(lam("sum(x, axis=-1)", output_shape=[]))
    assert model.plan.nodes["f"].shape == ()
    np.testing.assert_allclose(model.predict()["f"], X.sum(axis=1), rtol=1e-6)
    with pytest.raises(
        ConfigError,
        match=r"model.layers.f: output_shape \[3\] is given, but "
        r"'x\[:, 1:\]' gives per-sample shape \[2\] for input \[3\]",
    ):
        Model.from_config(lam("x[:, 1:]", output_shape=[3]))
    with pytest.raises(
        ConfigError,
        match=r"model.layers.f: function 'x\[:, 5\]': index 5 is out "
        r"of range for size 3",
    ):
        Model.from_config(lam("x[:, 5]"))


def test_a_masked_input_is_a_plan_error_naming_the_fix():
    inputs = {"x": {"shape": [2, 3], "data": [[[1, 2, 3], [0, 0, 0]]]}}
    cfg = model_config(
        {"m": {"type": "Masking"}, "f": {"type": "Lambda", "function": "x * 2"}}, inputs
    )
    with pytest.raises(
        ConfigError,
        match=r"model.layers.f: Lambda cannot take a masked input.*"
        r"insert a TimeDistributedMerge before this layer, or remove the Masking",
    ):
        Model.from_config(cfg)


def test_plugin_functions_loaded_from_the_config(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    cfg = lam("swish(x) + hard_tanh(2 * x - 3)")
    cfg["model"]["plugins"] = ["examples.lambda_functions"]
    out = Model.from_config(cfg).predict()["f"]
    swish = X / (1 + np.exp(-X))
    np.testing.assert_allclose(out, swish + np.clip(2 * X - 3, -1, 1), rtol=1e-6)
    assert {"swish", "hard_tanh"} <= set(lambda_functions())


def test_register_function_checks_names():
    register_function("test_cube", lambda a: a**3, lambda g, a: 3 * g * a * a)
    assert (
        register_function("test_cube", lambda_functions()["test_cube"])
        is lambda_functions()["test_cube"]
    )  # re-registering the same entry is fine (a module imported twice)
    with pytest.raises(ValueError, match="'test_cube' is already registered"):
        register_function("test_cube", lambda a: a)
    with pytest.raises(ExpressionError, match="'exp' is invalid or taken"):
        register_function("exp", lambda a: a)
    with pytest.raises(ExpressionError, match="'2x' is invalid or taken"):
        register_function("2x", lambda a: a)
    layer = Lambda(LambdaSpec(function="test_cube(x) - x"), "f")
    np.testing.assert_allclose(layer.forward(X, None, Context())[0], X**3 - X)
    register_function("test_no_grad", np.floor)
    assert Lambda(LambdaSpec(function="test_no_grad(x)"), "g").differentiable is False
    assert layer.differentiable is True


@pytest.mark.parametrize(
    "function",
    [
        "x * x",
        "tanh(x) * 2 - x ** 3",
        "where(x > 1, log(x), sqrt(x))",
        "sum(exp(-x), axis=-1)",
        "maximum(x, 1) / (1 + x)",
        "x[:, 1:] * x[:, :2]",
        "test_cube(x)",
    ],
)
def test_backward_matches_finite_differences(function):
    if "test_cube" in function and "test_cube" not in lambda_functions():
        register_function("test_cube", lambda a: a**3, lambda g, a: 3 * g * a * a)
    layer = Lambda(LambdaSpec(function=function), "f")
    x = X.copy()
    ctx = Context(keep_cache=True, dtype=np.dtype(np.float64))
    y, mask, cache = layer.forward(x, None, ctx)
    assert mask is None
    r = np.random.default_rng(4).normal(size=y.shape)
    dx, grads = layer.backward(r, cache, ctx)
    assert grads == {}
    eps, num = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        keep = x[i]
        x[i] = keep + eps
        up = np.sum(r * layer.forward(x, None, Context())[0])
        x[i] = keep - eps
        down = np.sum(r * layer.forward(x, None, Context())[0])
        x[i] = keep
        num[i] = (up - down) / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-5, atol=1e-8)


def test_validated_config_keeps_the_text(run_config):
    outcome, result = run_config(lam("x * x", [[1, 2, 3]]))
    assert result["status"] == "ok"
    written = Path(outcome.result["output_dir"], "config.yaml").read_text()
    assert "function: x * x" in written


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_lambda_gradient_equals_the_activation_layer_at_12_in_float32(name):
    """Lambda(tanh(x)) and Activation(tanh) share the math: at x=12 in float32 the tanh slope
    is about 1.5e-10 through both (it was 0.0 through Lambda, from 1 - y*y)."""
    from layers.activation import Activation, ActivationSpec

    x = np.array([[12.0, -12.0, 0.5]], np.float32)
    dy = np.ones_like(x)
    ctx = Context(keep_cache=True, dtype=np.dtype(np.float32))
    lam_layer = Lambda(LambdaSpec(type="Lambda", function=f"{name}(x)"), "f")
    act_layer = Activation(ActivationSpec(type="Activation", activation=name), "a")
    y1, _, cache1 = lam_layer.forward(x, None, ctx)
    y2, _, cache2 = act_layer.forward(x, None, ctx)
    np.testing.assert_array_equal(y1, y2)
    g1, g2 = lam_layer.backward(dy, cache1, ctx)[0], act_layer.backward(dy, cache2, ctx)[0]
    np.testing.assert_array_equal(g1, g2)
    assert g1.dtype == np.float32 and g1[0, 0] > 0

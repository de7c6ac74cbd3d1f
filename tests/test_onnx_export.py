"""ONNX export: every shipped model, every layer type, activation and Lambda function, masks,
Siamese sharing, dynamic batch, random graphs; onnxruntime must give our numbers (and the
hand-computed ones the configs and these tests state)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from layers import activations, expressions, registry
from runner.errors import DataError
from runner.graph.build import build
from runner.graph.context import pass_context
from runner.graph.execute import forward
from runner.interop.onnx_export import registry as onnx_registry
from runner.interop.onnx_export.export import to_onnx
from runner.interop.onnx_export.verify import RTOL, compare, deviation, run_onnx
from runner.run import check_and_plan
from tests.test_fuzz import _load, _next_shape, layer_for, stacks

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [  # the digits models load a real data set: seconds
    pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if "digits" in p.stem else [])
    for p in sorted((ROOT / "conf" / "model").glob("*.yaml"))
]


def _plan(config: dict, cwd: Path = ROOT, model_file: Path | None = None):
    return build(check_and_plan({**config, "task": "validate"}, cwd, model_file))


def _exported(config: dict, cwd: Path = ROOT, model_file: Path | None = None):
    plan = _plan(config, cwd, model_file)
    model = to_onnx(plan)
    return plan, model, model.SerializeToString()


def _ours(plan, feeds: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Our test-phase outputs and masks for ``feeds`` (any number of rows)."""
    values, masks, _ = forward(plan, feeds, pass_context(plan, False), set(plan.outputs))
    return {str(k): v for k, v in values.items()}, {str(k): m for k, m in masks.items()}


def _config(layers: dict, shape: list[int], data, **model) -> dict:
    return {
        "seed": 0,
        "model": {"inputs": {"x": {"shape": shape, "data": data}}, "layers": layers, **model},
    }


# ---- coverage of what we ship ----------------------------------------------------------------
def test_every_built_in_layer_type_has_an_emitter():
    built_in = {
        t for t, cls in registry.registered().items() if cls.__module__.startswith("layers.")
    }
    assert built_in == {
        "Activation", "ActivityRegularization", "AutoEncoder", "Dense", "Dropout", "Flatten",
        "Lambda", "Masking", "Merge", "Permute", "RepeatVector", "Reshape", "Siamese",
        "TimeDistributedDense", "TimeDistributedMerge",
    }  # fmt: skip
    assert built_in <= set(onnx_registry.exportable_types())


@pytest.mark.parametrize("path", SHIPPED)
def test_every_shipped_model_exports_and_agrees(path):
    plan, model, data = _exported({**_load(path), "seed": 0}, model_file=path)
    assert model.opset_import[0].version >= 17
    assert [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim[:1]] == ["batch"]
    agreement = compare(plan, data)
    assert agreement.ok, agreement.deviations
    # and the numbers the config states (hand-computed), for the test-phase models
    if plan.spec.model.training:
        return
    feeds = {n: np.asarray(a, plan.dtype) for n, a in _inputs(plan).items()}
    got = run_onnx(data, feeds)
    checked = 0
    for ref, spec in plan.expect.items():
        if spec.values is not None:  # rounded to the output's dtype first, as `expect` does
            expected = np.asarray(spec.values, got[str(ref)].dtype)
            np.testing.assert_allclose(got[str(ref)], expected, rtol=spec.rtol, atol=spec.atol)
            checked += 1
        if spec.mask is not None:
            np.testing.assert_array_equal(got[f"{ref}/mask"], np.asarray(spec.mask, bool))
    assert checked or not any(s.values is not None for s in plan.expect.values())


def _inputs(plan):
    from runner.graph.execute import input_arrays

    return input_arrays(plan)


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_every_activation_matches_ours_from_tiny_to_huge(name):
    x = np.array(
        [-1e4, -88, -30, -5, -1, -1e-3, -1e-7, 0, 1e-7, 1e-3, 0.5, 1, 5, 30, 88, 1e4], np.float32
    )
    layer = {"act": {"type": "Activation", "activation": name}}
    shape = [2, 8] if name == "softmax" else [16]
    plan, _, data = _exported(_config(layer, shape, x.reshape([1, *shape]).tolist()))
    got = run_onnx(data, {"x": x.reshape([1, *shape])})["act"]
    ours = activations.get(name).forward(x.reshape([1, *shape]))
    assert np.array_equal(np.isnan(got), np.isnan(ours))
    # each value against itself (no scale help): relative 1e-5, or 1e-30 absolute near 0
    np.testing.assert_allclose(got, ours, rtol=RTOL, atol=1e-30)


LAMBDA_CASES = [  # expression, input row, expected (hand-computed, or None: only vs ours)
    ("x * x - x / 2 + 1", [2.0, -4.0], [4.0, 19.0]),
    ("-x ** 3", [2.0, -1.0], [-8.0, 1.0]),
    ("exp(x) + log(x)", [1.0, 2.0], [math.e, math.exp(2) + math.log(2)]),
    ("log1p(x) + expm1(x)", [1e-8, 0.5], [2e-8, math.log1p(0.5) + math.expm1(0.5)]),
    ("tanh(x) + sigmoid(x)", [0.0, -50.0], [0.5, -1.0 + 1.9287498e-22]),
    ("abs(x) + sqrt(square(x))", [-3.0, 2.0], [6.0, 4.0]),
    ("sin(x) * cos(x)", [0.5, 1.0], [math.sin(0.5) * math.cos(0.5), math.sin(1) * math.cos(1)]),
    (
        "relu(x) + softplus(x)",
        [-30.0, 2.0],
        [math.log1p(math.exp(-30)), 2 + math.log1p(math.exp(2))],
    ),
    ("maximum(x, 0.5) + minimum(x, 0.5)", [0.0, 1.0], [0.5, 1.5]),
    ("clip(x, -1, 1)", [-3.0, 0.25], [-1.0, 0.25]),
    ("where(x > 0, x, 0.1 * x)", [2.0, -2.0], [2.0, -0.2]),
    ("(x < 1) + (x <= 1) + (x >= 1) + (x == 1) + (x != 1)", [1.0, 0.0], [3.0, 3.0]),
    ("x[:, 1] * 10", [[1.0, 2.0], [3.0, 4.0]], [30.0, 40.0]),
    ("x[:, 0:1] + x[:, -1]", [[1.0, 2.0], [3.0, 4.0]], [[4.0, 6.0]]),
    ("x[:, :, 1:] * sum(x, axis=-1)", [[1.0, 2.0], [3.0, 4.0]], [[6.0, 14.0], [12.0, 28.0]]),
    ("x * sum(x, axis=1)", [1.0, 2.0], [3.0, 6.0]),  # (batch,) gains its unit axis after batch
    ("mean(x, axis=1) + max(x, axis=-1) - min(x, axis=-1)", [[1.0, 2.0], [3.0, 5.0]], None),
    ("sum(x, axis=2) + x[:, 0]", [[1.0, 2.0], [3.0, 4.0]], [4.0, 9.0]),
    ("2 * 3 + 1", [1.0, 2.0], 7.0),
]


def test_lambda_cases_cover_every_function():
    used = set()
    for text, _, _ in LAMBDA_CASES:
        for node in expressions.walk(expressions.parse(text).root):
            if isinstance(node, (expressions.Call, expressions.Reduce)):
                used.add(node.name)
            elif isinstance(node, expressions.Clip):
                used.add("clip")
    assert used == set(expressions.FUNCTIONS)


@pytest.mark.parametrize("text, row, expected", LAMBDA_CASES, ids=[c[0] for c in LAMBDA_CASES])
def test_lambda_expressions_translate_op_by_op(text, row, expected):
    # two different rows, so that broadcasting against the batch axis would show
    x = np.asarray([row, row], np.float32) * np.reshape([1, 2], [2] + [1] * np.ndim(row))
    x = x.astype(np.float32)
    layer = {"f": {"type": "Lambda", "function": text}}
    plan, _, data = _exported(_config(layer, list(np.shape(row)), x.tolist()))
    got = run_onnx(data, {"x": x})["f"]
    ours = expressions.parse(text).evaluate(x)
    assert got.shape == ours.shape
    np.testing.assert_allclose(got, ours, rtol=RTOL, atol=1e-30)
    if expected is not None:
        np.testing.assert_allclose(got[0], expected, rtol=1e-6)


DOT_AXES = [  # each legacy form, with the per-sample axes NumPy's tensordot contracts
    (1, ([1], [0])),  # a count: the last axis of a against the first of b
    ([2, 1], ([1], [0])),  # a pair of full-tensor axes
    ([[1, 2], [2, 1]], ([0, 1], [1, 0])),  # explicit lists: a full contraction
]


@pytest.mark.parametrize("mode", ["dot", "cos"])
@pytest.mark.parametrize("dot_axes, axes", DOT_AXES, ids=["count", "pair", "lists"])
def test_dot_and_cos_take_every_dot_axes_form(mode, dot_axes, axes):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, 2, 3)), rng.normal(size=(3, 3, 2))
    merge = {"type": "Merge", "inputs": ["a", "b"], "mode": mode, "dot_axes": dot_axes}
    inputs = {"a": {"data": a.tolist()}, "b": {"data": b.tolist()}}
    plan, _, data = _exported({"seed": 0, "model": {"inputs": inputs, "layers": {"m": merge}}})
    feeds = {"a": a.astype(np.float32), "b": b.astype(np.float32)}
    got = run_onnx(data, feeds)["m"]
    assert deviation(got, _ours(plan, feeds)[0]["m"]) <= RTOL
    if mode == "dot":  # independently: NumPy's tensordot, sample by sample
        expected = np.stack([np.tensordot(x, y, axes=axes) for x, y in zip(a, b)])
        np.testing.assert_allclose(got, expected.reshape(got.shape), rtol=1e-5)


# ---- masks -----------------------------------------------------------------------------------
MASKED = {
    "mask": {"type": "Masking", "mask_value": 0},
    "ave": {"type": "TimeDistributedMerge", "mode": "ave", "inputs": ["mask"]},
    "mul": {"type": "TimeDistributedMerge", "mode": "mul", "inputs": ["mask"]},
    "sum": {"type": "TimeDistributedMerge", "mode": "sum", "inputs": ["mask"]},
    "mask2": {"type": "Masking", "mask_value": 2, "inputs": ["x"]},
    "both": {"type": "Merge", "mode": "sum", "inputs": ["mask", "mask2"]},
    "steps": {"type": "Merge", "mode": "concat", "concat_axis": 1, "inputs": ["mask", "x"]},
    "steps_ave": {"type": "TimeDistributedMerge", "mode": "ave", "inputs": ["steps"]},
}
# row 0: step 1 is padding; row 1: every step is padding (fully masked); row 2: a 2-step
MASK_ROWS = [[[1, 3], [0, 0]], [[0, 0], [0, 0]], [[2, 2], [4, 6]]]


def test_masks_follow_our_rules_in_onnx_ops():
    config = _config(MASKED, [2, 2], MASK_ROWS, outputs=list(MASKED))
    plan, _, data = _exported(config)
    got = run_onnx(data, {"x": np.asarray(MASK_ROWS, np.float32)})
    # hand-computed: masked steps are left out; a fully masked row averages to 0, multiplies to 1
    np.testing.assert_array_equal(got["ave"], [[1, 3], [0, 0], [3, 4]])
    np.testing.assert_array_equal(got["mul"], [[1, 3], [1, 1], [8, 12]])
    np.testing.assert_array_equal(got["sum"], [[1, 3], [0, 0], [6, 8]])
    np.testing.assert_array_equal(got["mask/mask"], [[1, 0], [0, 0], [1, 1]])
    np.testing.assert_array_equal(got["both/mask"], [[1, 0], [0, 0], [0, 1]])  # AND
    # concat on the time axis concatenates the masks (x unmasked: all kept)
    np.testing.assert_array_equal(got["steps/mask"], [[1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1]])
    # row 0 keeps [1, 3] of mask and [1, 3], [0, 0] of x: (2/3, 6/3)
    np.testing.assert_allclose(got["steps_ave"], [[2 / 3, 2], [0, 0], [3, 4]], rtol=1e-7)
    assert compare(plan, data).ok


# ---- composites ------------------------------------------------------------------------------
def test_siamese_writes_one_shared_initializer_read_by_every_copy():
    path = ROOT / "conf" / "model" / "siamese_example.yaml"
    _, model, _ = _exported({**_load(path), "seed": 0}, model_file=path)
    names = [t.name for t in model.graph.initializer]
    assert names.count("siam/layer/W") == 1 and names.count("siam/layer/b") == 1
    readers = [n for n in model.graph.node if "siam/layer/W" in n.input]
    assert [n.op_type for n in readers] == ["MatMul", "MatMul"]  # one per input


def test_autoencoder_exports_both_ways_and_only_what_runs():
    path = ROOT / "conf" / "model" / "autoencoder_example.yaml"
    _, model, data = _exported({**_load(path), "seed": 0}, model_file=path)
    names = {t.name for t in model.graph.initializer}
    assert {"ae/encoder/enc/W", "ae/decoder/dec/W", "code/encoder/enc/W"} <= names
    assert "code/decoder/dec/W" not in names  # output_reconstruction false: not run
    got = run_onnx(data, {"x": np.asarray([[1, 2, 3, 4], [0, 1, 0, 1]], np.float32)})
    np.testing.assert_array_equal(got["ae"], [[2, 3, 2, 3], [0, 1, 0, 1]])
    np.testing.assert_array_equal(got["code"], [[4, 6], [0, 2]])


# ---- dynamic batch ---------------------------------------------------------------------------
def test_the_batch_size_is_free():
    layers = {
        "mask": {"type": "Masking"},
        "tdd": {"type": "TimeDistributedDense", "output_dim": 3, "activation": "tanh"},
        "pool": {"type": "TimeDistributedMerge", "mode": "ave"},
        "siam": {
            "type": "Siamese",
            "inputs": ["pool", "pool"],
            "layer": {"type": "Dense", "output_dim": 2},
            "merge_mode": "cos",
        },
        "flat": {"type": "Reshape", "dims": [-1, 1], "inputs": ["pool"]},
        "f": {"type": "Lambda", "function": "sum(x ** 2, axis=1)", "inputs": ["flat"]},
    }
    config = _config(layers, [4, 5], np.ones((2, 4, 5)).tolist(), outputs=["siam", "f", "tdd"])
    plan, _, data = _exported(config)
    rng = np.random.default_rng(1)
    for rows in (1, 7, 33):
        x = rng.normal(size=(rows, 4, 5)).astype(np.float32)
        x[:, -1] = 0  # padding steps, masked
        got = run_onnx(data, {"x": x})
        ours, masks = _ours(plan, {"x": x})
        for name in ("siam", "f", "tdd"):
            assert got[name].shape[0] == rows
            assert deviation(got[name], ours[name]) <= RTOL, name
        np.testing.assert_array_equal(got["tdd/mask"], masks["tdd"])


# ---- random graphs from the fuzzing strategies -------------------------------------------------
EXPORT_FUZZ = settings(
    max_examples=40, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip


def _agrees(config: dict) -> None:
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            plan, _, data = _exported(config)
            agreement = compare(plan, data)
    except DataError:
        assume(False)  # our runtime refuses the numbers (overflow): nothing to compare
    assert agreement.ok, agreement.deviations


@EXPORT_FUZZ
@given(stacks())
def test_random_stacks_export_and_agree(case):
    _agrees(case[0])


@st.composite
def composites(draw):
    """A random stack wrapped in an AutoEncoder, or a random layer shared by a Siamese."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    data = {"random": {"rows": draw(st.integers(1, 4)), "distribution": "normal"}}
    inputs = {name: {"shape": list(shape), "data": data} for name in ("x", "y")}
    config = {"seed": draw(st.integers(0, 100)), "model": {"inputs": inputs, "layers": {}}}
    if draw(st.booleans()):
        stack, s, masked = {}, shape, False
        for i in range(draw(st.integers(2, 4))):
            spec = draw(layer_for(s, masked))
            s, masked = _next_shape(spec, s, masked)
            stack[f"l{i}"] = spec
        keys = list(stack)
        cut = draw(st.integers(1, len(keys) - 1))
        ae = {
            "type": "AutoEncoder",
            "inputs": ["x"],
            "output_reconstruction": draw(st.booleans()),
            "encoder": {k: stack[k] for k in keys[:cut]},
            "decoder": {k: stack[k] for k in keys[cut:]},
        }
        config["model"]["layers"]["ae"] = ae
        config["model"]["outputs"] = ["ae", "y"]
    else:
        inner = draw(layer_for(shape, False))
        out_shape, _ = _next_shape(inner, shape, False)
        modes = ["sum", "mul", "ave", "max", "concat", "dot", "cos", "none"]
        mode = draw(st.sampled_from(modes))
        siam = {"type": "Siamese", "inputs": ["x", "y"], "layer": inner, "merge_mode": mode}
        if mode == "concat":
            siam["concat_axis"] = draw(st.integers(1, len(out_shape)))
        config["model"]["layers"]["siam"] = siam
    return config


@EXPORT_FUZZ
@given(composites())
def test_random_composites_export_and_agree(config):
    _agrees(config)

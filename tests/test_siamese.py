"""Siamese: one inner layer object and one set of weights for every input; merge modes;
heads (merge_mode none); masks to the shared layer; gradients summed over the heads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import model_config

import layers  # noqa: F401
from layers.base import Context, PlanError
from layers.siamese import Siamese, SiameseSpec
from runner.api import Model
from runner.errors import ConfigError
from tests.helpers import numeric_gradient

RNG = np.random.default_rng(11)
W = [[1, 0], [1, 1]]
B = [0, 1]
TWO = {"a": {"shape": [2], "data": [[1, 2], [3, 4]]}, "b": {"shape": [2], "data": [[1, 2], [0, 1]]}}


def siamese(layer: dict, **fields) -> Siamese:
    spec = SiameseSpec.model_validate({"type": "Siamese", "layer": layer, **fields})
    return Siamese(spec, "siam")


def built(layer: dict, shape, n=2, dtype=np.float32, **fields) -> Siamese:
    s = siamese(layer, inputs=[f"i{k}" for k in range(n)], **fields)
    s.init_params([shape] * n, np.random.default_rng(0), np.dtype(dtype))
    return s


def test_one_array_object_serves_every_input():
    s = built({"type": "Dense", "output_dim": 3}, (4,), n=3, merge_mode="none")
    seen = []
    inner_forward = s.inner.forward

    def spy(x, mask, ctx):
        seen.append((id(s.inner.params["W"]), id(s.inner.params["b"])))
        return inner_forward(x, mask, ctx)

    s.inner.forward = spy
    x = RNG.normal(size=(2, 4)).astype(np.float32)
    ys, _, _ = s.forward([x, x.copy(), x[::-1].copy()], [None] * 3, Context())
    assert len(seen) == 3 and len(set(seen)) == 1
    assert s.named_params()["layer/W"] is s.inner.params["W"]
    np.testing.assert_array_equal(ys[0], ys[1])  # identical inputs, identical head outputs
    np.testing.assert_array_equal(ys[2], ys[0][::-1])


def test_summary_counts_once_and_weights_npz_stores_once(run_config):
    layers_ = {
        "siam": {
            "type": "Siamese",
            "inputs": ["a", "b"],
            "merge_mode": "sum",
            "layer": {"type": "Dense", "output_dim": 2, "weights": {"W": W, "b": B}},
        }
    }
    outcome, result = run_config(model_config(layers_, TWO))
    assert result["status"] == "ok"
    assert result["plan"]["params"] == 6  # W (2x2) + b (2), once, not once per input
    folder = outcome.result["output_dir"]
    with np.load(f"{folder}/weights.npz") as npz:
        assert sorted(npz.files) == ["siam/layer/W", "siam/layer/b"]
        np.testing.assert_array_equal(npz["siam/layer/W"], W)
    summary = Path(folder, "summary.txt").read_text()
    assert "siam/layer" in summary and "total params: 6" in summary
    # a -> [[3,3],[7,5]], b -> [[3,3],[1,2]] (y = [x1 + x2, x2 + 1]); summed:
    np.testing.assert_array_equal(outcome.values["siam"], [[6, 6], [8, 7]])


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("concat", [[3, 3, 3, 3], [7, 5, 1, 2]]),  # default concat_axis=1: first non-batch axis
        ("mul", [[9, 9], [7, 10]]),
        ("ave", [[3, 3], [4, 3.5]]),
        ("max", [[3, 3], [7, 5]]),
        ("dot", [[18], [17]]),
        ("cos", [[1.0], [17 / np.sqrt(74 * 5)]]),
    ],
)
def test_merge_modes_by_hand(mode, expected):
    layers_ = {
        "siam": {
            "type": "Siamese",
            "inputs": ["a", "b"],
            "merge_mode": mode,
            "layer": {"type": "Dense", "output_dim": 2, "weights": {"W": W, "b": B}},
        }
    }
    out = Model.from_config(model_config(layers_, TWO)).predict()["siam"]
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_concat_axis_1_on_sequences_is_the_time_axis():
    s = built({"type": "TimeDistributedDense", "output_dim": 2}, (3, 4))
    x0, x1 = RNG.normal(size=(2, 2, 3, 4)).astype(np.float32)
    y, _, _ = s.forward([x0, x1], [None, None], Context())
    w, b = s.inner.params["W"], s.inner.params["b"]
    np.testing.assert_allclose(y, np.concatenate([x0 @ w + b, x1 @ w + b], axis=1), rtol=1e-6)
    assert s.output_shape([(3, 4), (3, 4)]) == (6, 2)


def test_merge_mode_null_means_none_and_heads_are_wired_by_index():
    assert (
        SiameseSpec.model_validate(
            {"type": "Siamese", "layer": {"type": "Dropout", "p": 0.1}, "merge_mode": None}
        ).merge_mode
        == "none"
    )
    layers_ = {
        "h": {
            "type": "Siamese",
            "inputs": ["a", "b"],
            "merge_mode": None,
            "layer": {"type": "Dense", "output_dim": 2, "weights": {"W": W, "b": B}},
        },
        "diff": {"type": "Lambda", "inputs": ["h.1"], "function": "x - 1"},
    }
    model = Model.from_config(model_config(layers_, TWO, outputs=["h", "diff"]))
    assert model.outputs == ["h.0", "h.1", "diff"]
    out = model.predict()
    np.testing.assert_array_equal(out["h.0"], [[3, 3], [7, 5]])
    np.testing.assert_array_equal(out["h.1"], [[3, 3], [1, 2]])
    np.testing.assert_array_equal(out["diff"], [[2, 2], [0, 1]])


@pytest.mark.parametrize(
    "reads, message",
    [
        (
            ["h"],
            r"model.layers.use.inputs: 'h' has 2 outputs \(Siamese with merge_mode none\): "
            r"read one of \['h.0', 'h.1'\]",
        ),
        (
            ["h.2"],
            r"model.layers.use.inputs: 'h' has no output 'h.2'; its outputs are "
            r"\['h.0', 'h.1'\]",
        ),
        (["d.0"], r"model.layers.use.inputs: 'd' has a single output: read it as 'd', not 'd.0'"),
    ],
)
def test_head_wiring_errors(reads, message):
    layers_ = {
        "h": {
            "type": "Siamese",
            "inputs": ["a", "b"],
            "merge_mode": "none",
            "layer": {"type": "Dense", "output_dim": 2},
        },
        "d": {"type": "Dense", "inputs": ["a"], "output_dim": 2},
        "use": {"type": "Dropout", "inputs": reads, "p": 0.1},
    }
    with pytest.raises(ConfigError, match=message):
        Model.from_config(model_config(layers_, TWO))


def test_inputs_must_have_identical_shapes():
    inputs = {"a": {"shape": [2], "data": [[1, 2]]}, "c": {"shape": [3], "data": [[1, 2, 3]]}}
    layers_ = {
        "siam": {
            "type": "Siamese",
            "inputs": ["a", "c"],
            "layer": {"type": "Dense", "output_dim": 2},
        }
    }
    with pytest.raises(
        ConfigError,
        match=r"model.layers.siam: Siamese inputs must have identical "
        r"per-sample shapes \(one shared layer, one set of weights\); got "
        r"\[\(2,\), \(3,\)\] \(fed by model.inputs.a",
    ):
        Model.from_config(model_config(layers_, inputs))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"inputs": ["a"]}, "model.layers.siam.inputs: Siamese needs at least 2 inputs, got 1"),
        (
            {"inputs": ["a", "b", "a"], "merge_mode": "dot"},
            "model.layers.siam.inputs: Siamese mode 'dot' takes exactly 2 inputs, got 3",
        ),
    ],
)
def test_arity(fields, message):
    layers_ = {"siam": {"type": "Siamese", "layer": {"type": "Dense", "output_dim": 2}, **fields}}
    with pytest.raises(ConfigError, match=message):
        Model.from_config(model_config(layers_, TWO))


@pytest.mark.parametrize(
    "layer, message",
    [
        ({"type": "Dense", "output_dim": 2, "inputs": ["a"]}, "inner layer 'layer' sets 'inputs'"),
        ({"type": "Merge", "mode": "sum"}, "inner layer 'layer' is a Merge, which takes several"),
    ],
)
def test_inner_layer_checks(layer, message):
    layers_ = {"siam": {"type": "Siamese", "inputs": ["a", "b"], "layer": layer}}
    with pytest.raises(ConfigError, match=f"model.layers.siam.layer: {message}"):
        Model.from_config(model_config(layers_, TWO))


def test_each_input_mask_goes_to_the_shared_layer():
    s = built({"type": "TimeDistributedDense", "output_dim": 2}, (3, 4), merge_mode="none")
    assert s.output_mask([(3, 4), (3, 4)], [True, False]) == [True, False]
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    m = np.array([[True, False, True], [True, True, False]])
    _, masks, _ = s.forward([x, x], [m, None], Context())
    np.testing.assert_array_equal(masks[0], m)
    assert masks[1] is None
    merged = built({"type": "TimeDistributedDense", "output_dim": 2}, (3, 4), merge_mode="sum")
    assert merged.output_mask([(3, 4), (3, 4)], [True, False]) is True
    _, mask, _ = merged.forward([x, x], [m, m[:, ::-1].copy()], Context())
    np.testing.assert_array_equal(mask, m & m[:, ::-1])
    dense = built({"type": "Dense", "output_dim": 2}, (4,))
    with pytest.raises(PlanError, match=r"in layer \(Dense\): Dense cannot take a masked input"):
        dense.output_mask([(4,), (4,)], [True, False])


def gradients(s: Siamese, xs, dy):
    ctx = Context(keep_cache=True, dtype=np.dtype(np.float64))
    _, _, cache = s.forward(xs, [None] * len(xs), ctx)
    return s.backward(dy, cache, ctx)


def test_shared_gradients_are_the_sum_over_heads():
    s = built(
        {"type": "Dense", "output_dim": 3, "activation": "tanh"},
        (4,),
        dtype=np.float64,
        merge_mode="none",
    )
    xs = [RNG.normal(size=(5, 4)) for _ in range(2)]
    dys = [RNG.normal(size=(5, 3)) for _ in range(2)]
    dxs, grads = gradients(s, xs, dys)
    ctx = Context(keep_cache=True, dtype=np.dtype(np.float64))
    separate = []
    for x, dy in zip(xs, dys):
        _, _, cache = s.inner.forward(x, None, ctx)
        separate.append(s.inner.backward(dy, cache, ctx))
    for key in ("W", "b"):
        np.testing.assert_allclose(
            grads[f"layer/{key}"], separate[0][1][key] + separate[1][1][key], rtol=1e-12
        )
    np.testing.assert_allclose(dxs[1], separate[1][0], rtol=1e-12)
    dxs, grads = gradients(s, xs, [dys[0], None])  # an unread head contributes nothing
    np.testing.assert_array_equal(dxs[1], np.zeros((5, 4)))
    np.testing.assert_allclose(grads["layer/W"], separate[0][1]["W"], rtol=1e-12)


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "dot", "cos", "max"])
def test_backward_matches_finite_differences(mode):
    s = built(
        {"type": "Dense", "output_dim": 3, "activation": "tanh"},
        (4,),
        dtype=np.float64,
        merge_mode=mode,
    )
    xs = [RNG.normal(size=(2, 4)) for _ in range(2)]
    ctx = Context(dtype=np.dtype(np.float64))
    y, _, _ = s.forward(xs, [None, None], ctx)
    r = RNG.normal(size=y.shape)
    dxs, grads = gradients(s, xs, r)

    def loss():
        return float(np.sum(r * s.forward(xs, [None, None], ctx)[0]))

    arrays = [(f"x{i}", x, dxs[i]) for i, x in enumerate(xs)]
    arrays += [(k, v, grads[k]) for k, v in s.named_params().items()]
    for name, a, g in arrays:
        np.testing.assert_allclose(g, numeric_gradient(loss, a), rtol=1e-5, atol=1e-8, err_msg=name)

"""Graph models end to end: wiring errors with their messages, masks across branches, a
plugin layer loaded from a config (also inside a composite), the shipped graph examples through
runner.api against independent NumPy numbers, the summary's inputs and graph.mmd."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, model_config

from runner.api import Model, compose
from runner.errors import ConfigError

TWO = {"a": {"shape": [2], "data": [[1, 2], [3, 4]]}, "b": {"shape": [2], "data": [[5, 6], [7, 8]]}}
DENSE = {"type": "Dense", "output_dim": 2}


def problems(config) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Model.from_config(config)
    return [str(p) for p in info.value.problems]


# ---- wiring errors --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layers_, expected",
    [
        (
            {"d": {**DENSE, "inputs": ["aa"]}},
            "model.layers.d.inputs: unknown name 'aa' (did you mean 'a'?); known: ['a', 'b']",
        ),
        (
            {"d": {**DENSE, "inputs": ["e"]}, "e": {**DENSE, "inputs": ["a"]}},
            "model.layers.d.inputs: 'e' is defined after this layer; layers may only read inputs "
            "and earlier layers (move it up)",
        ),
        (
            {"p": {**DENSE, "inputs": ["q"]}, "q": {**DENSE, "inputs": ["p"]}},  # a cycle
            "model.layers.p.inputs: 'q' is defined after this layer",
        ),
        (
            {"d": {**DENSE, "inputs": ["d"]}},
            "model.layers.d.inputs: a layer cannot read its own output",
        ),
        (
            {"a": {**DENSE, "inputs": ["b"]}},
            "model.layers.a: name 'a' is already a model input; rename one",
        ),
        (
            {"d": DENSE},
            "model.layers.d.inputs: the model has several inputs ['a', 'b']: say which "
            "this layer reads, e.g. inputs: [a]",
        ),
        (
            {"d": {**DENSE, "inputs": ["a", "b"]}},
            "model.layers.d.inputs: Dense takes exactly one "
            "input, got 2: ['a', 'b']; merge them first",
        ),
        (
            {"m": {"type": "Merge", "inputs": ["a"]}},
            "model.layers.m.inputs: Merge needs at least 2 "
            "inputs, got 1: list them, e.g. inputs: [left, "
            "right] (reads ['a'])",
        ),
        (
            {"m": {"type": "Merge", "mode": "dot", "inputs": ["a", "b", "a"]}},
            "model.layers.m.inputs: Merge mode 'dot' takes exactly 2 inputs, got 3 "
            "(reads ['a', 'b', 'a'])",
        ),
        (
            {"m": {"type": "Merge", "mode": "cos", "inputs": ["a"]}},
            "model.layers.m.inputs: Merge mode 'cos' takes exactly 2 inputs, got 1",
        ),
        (
            {
                "d": {**DENSE, "output_dim": 3, "inputs": ["a"]},
                "m": {"type": "Merge", "inputs": ["d", "b"]},
            },
            "model.layers.m: only inputs of the same shape can be merged with mode 'sum'; "
            "per-sample shapes: [(3,), (2,)] (fed by model.layers.d "
            "(Dense, per-sample shape (3,)), model.inputs.b (input, per-sample shape (2,)))",
        ),
    ],
)
def test_wiring_errors(layers_, expected):
    found = problems(model_config(layers_, TWO, outputs=[list(layers_)[-1]]))
    assert any(p.startswith(expected) for p in found), found


def test_independent_wiring_problems_are_reported_together():
    layers_ = {
        "d": {**DENSE, "inputs": ["nope"]},
        "m": {"type": "Merge", "inputs": ["a"]},
        "e": {**DENSE, "inputs": ["d"]},
    }  # e depends on d's failure: not reported again
    found = problems(model_config(layers_, TWO, outputs=["m", "zz"]))
    assert [p.split(":")[0] for p in found] == [
        "model.layers.d.inputs",
        "model.layers.m.inputs",
        "model.outputs",
    ]
    assert "unknown name 'zz'" in found[2]


def test_unused_input_is_a_warning():
    model = Model.from_config(model_config({"d": {**DENSE, "inputs": ["a"]}}, TWO))
    assert model.plan.warnings == ["model.inputs.b: no layer reads this input (it is ignored)"]


def test_duplicate_layer_names_fail_before_anything_runs(cli, tmp_path):
    models = tmp_path / "extra" / "model"
    models.mkdir(parents=True)
    (models / "dup.yaml").write_text(
        "inputs:\n  x: {shape: [1], data: [[1]]}\nlayers:\n"
        "  a: {type: Dropout, p: 0.1}\n  a: {type: Dropout, p: 0.2}\n"
    )
    res = cli("+model=dup", f"hydra.searchpath=[file://{tmp_path / 'extra'}]")
    assert res.returncode == 2
    assert "found duplicate key a" in res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr


# ---- masks across the graph -----------------------------------------------------------------
SEQ = np.array([[[1, 2], [0, 0], [3, 1]], [[2, 2], [4, 1], [0, 0]]], dtype=np.float64)
SEQ_IN = {"x": {"shape": [3, 2], "data": SEQ.tolist()}}
W = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, 1.0]])
BIAS = np.array([0.5, 1.0, -1.0])
TDD = {
    "type": "TimeDistributedDense",
    "output_dim": 3,
    "weights": {"W": W.tolist(), "b": BIAS.tolist()},
}


def test_mask_through_tdd_into_tdm():
    layers_ = {
        "m": {"type": "Masking"},
        "t": TDD,
        "pool": {"type": "TimeDistributedMerge", "mode": "ave"},
    }
    model = Model.from_config(model_config(layers_, SEQ_IN, outputs=["t", "pool"]))
    assert [model.plan.nodes[n].masked for n in ("m", "t", "pool")] == [True, True, False]
    out = model.predict()
    keep = np.array([[1, 0, 1], [1, 1, 0]], dtype=bool)
    steps = SEQ @ W + BIAS  # TDD still computes at masked steps (legacy)
    np.testing.assert_allclose(out["t"], steps, rtol=1e-6)
    want = np.stack([steps[0, [0, 2]].mean(axis=0), steps[1, [0, 1]].mean(axis=0)])
    np.testing.assert_allclose(out["pool"], want, rtol=1e-6)
    assert not np.allclose(out["pool"], steps.mean(axis=1))  # the padding really was left out
    _, masks, _ = _forward(model, {"x": SEQ.astype(np.float32)}, {"t"})
    np.testing.assert_array_equal(masks["t"], keep)


def _forward(model, feeds, keep):
    from layers.base import Context
    from runner.graph.execute import forward

    return forward(model.plan, feeds, Context(), keep)


def test_masks_through_merge_sum_and_concat():
    other = np.array([[[1, 1], [1, 1], [0, 0]], [[0, 0], [5, 5], [1, 0]]], dtype=np.float64)
    inputs = {**SEQ_IN, "y": {"shape": [3, 2], "data": other.tolist()}}
    layers_ = {
        "mx": {"type": "Masking", "inputs": ["x"]},
        "my": {"type": "Masking", "inputs": ["y"]},
        "s": {"type": "Merge", "inputs": ["mx", "my"], "mode": "sum"},
        "c": {"type": "Merge", "inputs": ["mx", "y"], "mode": "concat", "concat_axis": 1},
        "d": {"type": "Merge", "inputs": ["mx", "my"], "mode": "dot"},
        "ps": {"type": "TimeDistributedMerge", "inputs": ["s"], "mode": "ave"},
        "pc": {"type": "TimeDistributedMerge", "inputs": ["c"], "mode": "sum"},
    }
    model = Model.from_config(model_config(layers_, inputs, outputs=["ps", "pc", "d"]))
    assert [model.plan.nodes[n].masked for n in ("s", "c", "d")] == [True, True, False]
    _, masks, _ = _forward(
        model, {"x": SEQ.astype(np.float32), "y": other.astype(np.float32)}, {"s", "c"}
    )
    kx = np.array([[1, 0, 1], [1, 1, 0]], dtype=bool)
    ky = np.array([[1, 1, 0], [0, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(masks["s"], kx & ky)  # AND
    np.testing.assert_array_equal(masks["c"], np.concatenate([kx, np.ones_like(kx)], axis=1))
    out = model.predict()
    total = SEQ + other  # both Masking layers zero only all-zero steps, which are already 0
    np.testing.assert_allclose(out["ps"], [total[0, 0], total[1, 1]])  # one kept step each
    np.testing.assert_allclose(out["pc"], (SEQ * kx[..., None]).sum(1) + other.sum(1))
    np.testing.assert_allclose(out["d"], np.einsum("btf,bsf->bts", SEQ, other))


@pytest.mark.parametrize(
    "consumer, fix",
    [
        (
            {"type": "Dense", "output_dim": 2},
            "insert a TimeDistributedMerge before this layer, or remove the Masking layer",
        ),
        ({"type": "Flatten"}, "Flatten cannot take a masked input"),
    ],
)
def test_a_mask_reaching_a_layer_that_cannot_use_it(consumer, fix):
    layers_ = {"m": {"type": "Masking"}, "t": TDD, "bad": consumer}
    found = problems(model_config(layers_, SEQ_IN))
    assert len(found) == 1 and found[0].startswith("model.layers.bad: ") and fix in found[0]
    fed = "fed by model.layers.t (TimeDistributedDense, per-sample shape (3, 3), masked)"
    assert fed in found[0]


# ---- plugins --------------------------------------------------------------------------------
def test_plugin_layer_from_the_config(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    model = Model.from_config(compose("custom_masking_example"))
    # a step is masked when every feature is >= 5: the two examples of the seed post
    x = np.array(
        [[[3, 4, 5], [5, 6, 7], [5, 5, 5]], [[6, 7, 8], [5, 1, 2], [1, 2, 3]]], dtype=np.float32
    )
    out = model.predict()
    np.testing.assert_array_equal(
        out["cm"], [[[3, 4, 5], [0, 0, 0], [0, 0, 0]], [[0, 0, 0], [5, 1, 2], [1, 2, 3]]]
    )
    np.testing.assert_array_equal(out["pool"], [[3, 4, 5], [3, 1.5, 2.5]])
    _, masks, _ = _forward(model, {"x": x}, {"cm"})
    np.testing.assert_array_equal(masks["cm"], [[True, False, False], [False, True, True]])


def test_plugin_layer_inside_composites(monkeypatch):
    """A plugin registered after start-up is part of the union inside AutoEncoder and Siamese."""
    monkeypatch.syspath_prepend(str(REPO))
    seq = {
        "x": {
            "shape": [3, 3],
            "data": [[[3, 4, 5], [5, 6, 7], [5, 5, 5]], [[5, 0, 0], [1, 1, 1], [2, 0, 2]]],
        }
    }
    layers_ = {
        "ae": {
            "type": "AutoEncoder",
            "encoder": {"cm": {"type": "CustomMasking", "mask_value": 5}},
            "decoder": {"pool": {"type": "TimeDistributedMerge", "mode": "sum"}},
        },
        "s": {
            "type": "Siamese",
            "inputs": ["x", "x"],
            "merge_mode": "concat",
            "layer": {"type": "CustomMasking", "mask_value": 1},
        },
    }
    cfg = model_config(layers_, seq, plugins=["examples.custom_masking"], outputs=["ae", "s"])
    out = Model.from_config(cfg).predict()
    # row 2 of the AutoEncoder: every step has a feature below 5, so all three are summed
    np.testing.assert_array_equal(out["ae"], [[3, 4, 5], [8, 1, 3]])
    keep = np.array([[3, 4, 5], [5, 6, 7], [5, 5, 5], [5, 0, 0], [0, 0, 0], [2, 0, 2]])
    np.testing.assert_array_equal(out["s"][1], np.concatenate([keep[3:], keep[3:]]))


def test_unknown_plugin_layer_type_without_the_plugin():
    cfg = model_config({"cm": {"type": "CustomMaskin"}})
    (found,) = problems(cfg)
    assert found.startswith("model.layers.cm: unknown layer type 'CustomMaskin'")


# ---- the shipped graph examples, through runner.api -------------------------------------------
def test_merge_example():
    out = Model.from_config(compose("merge_example")).predict()
    left = np.array([[1, 2], [3, 4]], dtype=np.float64)
    right = left + 4
    np.testing.assert_array_equal(out["sum"], left + right)
    np.testing.assert_array_equal(out["mul"], left * right)
    np.testing.assert_array_equal(out["ave"], (left + right) / 2)
    np.testing.assert_array_equal(out["max"], np.maximum(left, right))
    np.testing.assert_array_equal(out["concat"], np.hstack([left, right]))
    np.testing.assert_array_equal(out["dot"], (left * right).sum(1, keepdims=True))
    cos = (left * right).sum(1) / np.sqrt((left**2).sum(1) * (right**2).sum(1))
    np.testing.assert_allclose(out["cos"], cos[:, None], rtol=1e-6)


def test_siamese_example():
    model = Model.from_config(compose("siamese_example"))
    out = model.predict()
    w, b = np.array([[1, 0], [1, 1]]), np.array([0, 1])
    a, bb = np.array([[1, 2], [3, 4]]) @ w + b, np.array([[1, 2], [0, 1]]) @ w + b
    np.testing.assert_array_equal(out["heads.0"], a)
    np.testing.assert_array_equal(out["heads.1"], bb)
    np.testing.assert_array_equal(out["joined"], np.hstack([a, bb]))
    cos = (a * bb).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(bb, axis=1)
    np.testing.assert_allclose(out["siam"], cos[:, None], rtol=1e-6)
    assert sum(n.n_params for n in model.plan.nodes.values()) == 12  # 6 per Siamese, once each


def test_autoencoder_example():
    out = Model.from_config(compose("autoencoder_example")).predict()
    x = np.array([[1, 2, 3, 4], [0, 1, 0, 1]], dtype=np.float64)
    code = np.maximum(x @ np.array([[1, 0], [0, 1], [1, 0], [0, 1]]), 0)
    recon = code @ np.array([[0.5, 0, 0.5, 0], [0, 0.5, 0, 0.5]])
    np.testing.assert_array_equal(out["code"], code)
    np.testing.assert_array_equal(out["ae"], recon)


def test_lambda_example():
    out = Model.from_config(compose("lambda_example")).predict()
    x = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(out["square"], x * x)
    np.testing.assert_array_equal(out["shifted_relu"], np.maximum(x - 2, 0))
    np.testing.assert_array_equal(out["total"], (x * x).sum(1))


# ---- summary and picture --------------------------------------------------------------------
def test_summary_lists_inputs_and_graph_mmd_shows_the_wiring(run_config):
    outcome, result = run_config(compose("siamese_example"), cwd=REPO)
    assert result["status"] == "ok"
    folder = Path(outcome.result["output_dir"])
    rows = {line.split()[0]: line for line in (folder / "summary.txt").read_text().splitlines()}
    assert "heads.0, heads.1" in rows["joined"] and "a, b" in rows["siam"]
    assert "2 x (None, 2)" in rows["heads"]
    graph = (folder / "graph.mmd").read_text().splitlines()
    assert graph[0] == "flowchart TD"
    assert '  in0[/"a: Input (None, 2)"/]' in graph
    assert '  subgraph n1["heads: Siamese 2 x (None, 2)"]' in graph
    assert "  n1 -->|.0| n2" in graph and "  n1 -->|.1| n2" in graph
    assert "  in0 --> n0" in graph and "  in1 --> n0" in graph
    assert graph[-1] == "  class n0,n1,n2 output"

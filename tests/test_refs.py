"""Typed references to graph values (runner.graph.refs): parsed once from the config's
spelling ("siam.1", "dense"), used everywhere after as ``ref.node`` / ``ref.head``."""

from __future__ import annotations

import ast
import copy
import json
import pickle
from pathlib import Path

import pytest
from conftest import model_config

from runner.api import Model
from runner.errors import ConfigError
from runner.graph.refs import Ref, parse_ref
from runner.run import run
from runner.train.plan import check_trainable

REPO = Path(__file__).resolve().parent.parent
TWO = {"a": {"shape": [2], "data": [[1, 2], [3, 4]]}, "b": {"shape": [2], "data": [[1, 2], [0, 1]]}}
SIAM = {
    "type": "Siamese",
    "inputs": ["a", "b"],
    "merge_mode": "none",
    "layer": {"type": "Dense", "output_dim": 2, "weights": {"W": [[1, 0], [1, 1]], "b": [0, 1]}},
}


# ---- parsing ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, node, head",
    [
        ("a", "a", None),
        ("dense", "dense", None),
        ("a.0", "a", 0),
        ("siam.1", "siam", 1),
        ("siam.12", "siam", 12),
        # not a head index: the whole text stays a name (then reported as unknown)
        ("a.x", "a.x", None),
        ("a.-1", "a.-1", None),
        ("a.01", "a.01", None),
        ("a.", "a.", None),
        (".0", ".0", None),
        ("a.1e3", "a.1e3", None),
        ("a.\u00b2", "a.\u00b2", None),  # '²'.isdigit() is True, int('²') fails
    ],
)
def test_parse(text, node, head):
    ref = parse_ref(text)
    assert (ref.node, ref.head) == (node, head)
    assert str(ref) == text and ref == text and hash(ref) == hash(text)
    assert repr(ref) == repr(text)  # messages print it as the config spells it


def test_ref_is_its_spelling_and_immutable():
    ref = Ref("siam", 1)
    assert str(ref) == "siam.1" and type(str(ref)) is str
    assert Ref("dense") == "dense" and Ref("dense").head is None
    assert parse_ref(ref) is ref
    assert {"siam.1": 5}[ref] == 5 and {ref: 5}["siam.1"] == 5
    assert json.dumps({ref: 1}) == '{"siam.1": 1}'
    for clone in (pickle.loads(pickle.dumps(ref)), copy.deepcopy(ref), copy.copy(ref)):
        assert type(clone) is Ref and (clone.node, clone.head) == ("siam", 1)
    with pytest.raises(AttributeError):
        ref.head = 2
    with pytest.raises(AttributeError):
        del ref.node


# ---- the plan holds refs and input shapes ---------------------------------------------------
def test_plan_stores_refs_and_input_shapes():
    layers_ = {
        "siam": SIAM,
        "m": {"type": "Merge", "mode": "concat", "inputs": ["siam.0", "siam.1"]},
        "d": {"type": "Dense", "output_dim": 3},
    }
    plan = Model.from_config(model_config(layers_, TWO, outputs=["siam", "d"])).plan
    m = plan.nodes["m"]
    assert [(r.node, r.head) for r in m.inputs] == [("siam", 0), ("siam", 1)]
    assert all(isinstance(r, Ref) for n in plan.nodes.values() for r in n.inputs)
    assert m.input_shapes == [(2,), (2,)] and m.in_shape == [(2,), (2,)]
    assert plan.nodes["d"].input_shapes == [(4,)] and plan.nodes["d"].in_shape == (4,)
    assert plan.nodes["siam"].input_masks == [False, False]
    # a multi-output layer named as an output stands for all its heads
    assert plan.outputs == ["siam.0", "siam.1", "d"]
    assert [(r.node, r.head) for r in plan.outputs] == [("siam", 0), ("siam", 1), ("d", None)]
    assert plan.nodes["siam"].outputs == [Ref("siam", 0), Ref("siam", 1)]
    assert plan.shape_of("siam.1") == (2,) and plan.shape_of("a") == (2,)


@pytest.mark.parametrize("bad", ["h.x", "h.-1", "h.01"])
def test_not_a_head_is_an_unknown_name(bad):
    layers_ = {"h": SIAM, "use": {"type": "Dropout", "inputs": [bad], "p": 0.1}}
    config = model_config(layers_, TWO)
    with pytest.raises(ConfigError, match=f"model.layers.use.inputs: unknown name '{bad}'"):
        Model.from_config(config)


@pytest.mark.parametrize("bad", ["h.x", "h.-1"])
def test_not_a_head_in_outputs_and_expect(bad):
    config = model_config({"h": SIAM}, TWO, outputs=[bad], expect={bad: {"shape": [2, 2]}})
    with pytest.raises(ConfigError) as caught:
        Model.from_config(config)
    text = str(caught.value)
    assert f"model.outputs: unknown name '{bad}'" in text
    assert f"model.expect.{bad}: unknown name '{bad}'" in text


def test_expect_on_the_whole_multi_output_layer_is_refused():
    config = model_config({"h": SIAM}, TWO, expect={"h": {"shape": [2, 2]}})
    with pytest.raises(ConfigError, match=r"'h' has 2 outputs: expect each of \['h.0', 'h.1'\]"):
        Model.from_config(config)


# ---- heads through every consumer ------------------------------------------------------------
def test_head_in_expect_and_outputs(run_config):
    layers_ = {"siam": SIAM, "neg": {"type": "Lambda", "inputs": ["siam.1"], "function": "-x"}}
    config = model_config(
        layers_,
        TWO,
        outputs=["siam.0", "neg"],
        expect={
            "siam.1": {"values": [[3, 3], [1, 2]]},  # not an output: kept for the check
            "siam.0": {"values": [[3, 3], [7, 5]], "shape": [2, 2]},
        },
    )
    outcome, result = run_config(config)
    assert outcome.exit_code == 0, result.get("error")
    assert [c["check"] for c in result["expect"]] == [
        "siam.1.values",
        "siam.0.shape",
        "siam.0.values",
    ]
    assert all(c["ok"] for c in result["expect"])
    assert list(result["outputs"]) == ["siam.0", "neg"]
    assert all(type(k) is str for k in outcome.values)  # noqa: E721


def test_head_as_fit_target_with_its_own_loss(tmp_path):
    """A head is a fit output: its target, its loss key, validation targets and gradients."""
    config = {
        "task": "fit",
        "seed": 0,
        "fit": {
            "epochs": 30,
            "batch_size": 8,
            "optimizer": {"name": "sgd", "lr": 0.1},
            "loss": {"siam.1": "mae", "d": "mse"},
            "validation_split": 0.25,
        },
        "model": {
            "inputs": {
                "a": {"shape": [2], "data": {"random": {"rows": 32, "seed": 1}}},
                "b": {"shape": [2], "data": {"random": {"rows": 32, "seed": 2}}},
            },
            "layers": {
                "siam": {**SIAM, "layer": {"type": "Dense", "output_dim": 2}},
                "d": {"type": "Dense", "inputs": ["siam.0"], "output_dim": 1},
            },
            "outputs": ["siam.1", "d"],
            "targets": {
                "siam.1": {"random": {"rows": 32, "seed": 2}},  # = b: learn identity
                "d": {"random": {"rows": 32, "seed": 3}},
            },
        },
    }
    outcome = run(config, tmp_path / "r", tmp_path)
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert outcome.exit_code == 0, result.get("error")
    assert result["fit"]["loss"] == {"siam.1": "mae", "d": "mse"}
    first, last = result["history"][0], result["history"][-1]
    assert {"siam.1_loss", "d_loss", "val_siam.1_loss", "val_d_loss"} <= set(last)
    assert last["siam.1_loss"] < first["siam.1_loss"]


def test_trainability_is_checked_through_a_head():
    """A forward-only layer feeding a head output is refused (the head names its layer)."""
    config = model_config({"siam": SIAM}, TWO, outputs=["siam.1"])
    plan = Model.from_config(config).plan
    check_trainable(plan)  # differentiable: fine
    plan.nodes["siam"].layer.differentiable = False
    with pytest.raises(ConfigError, match="model.layers.siam: Siamese is forward-only"):
        check_trainable(plan)


def test_diagram_labels_head_edges():
    layers_ = {"siam": SIAM, "m": {"type": "Merge", "mode": "sum", "inputs": ["siam.1", "a"]}}
    model = Model.from_config(model_config(layers_, TWO, outputs=["m", "siam.0"]))
    from runner.output.diagram import mermaid

    text = mermaid(model.plan)
    assert "n0 -->|.1| n1" in text and "in0 --> n1" in text
    assert "class n0,n1 output" in text


# ---- one parser ------------------------------------------------------------------------------
# Splitting strings on '.' elsewhere in runner/, for things that are not graph refs.
ALLOWED = {
    ("runner/config/validate.py", "rsplit"),  # the last key of a config path
    ("runner/config/schema_export.py", "split"),  # a Python module path
    ("runner/sweep/jobs.py", "isdigit"),  # numbered job folders 0, 1, ...
}
SPLITS = {"split", "rsplit", "partition", "rpartition"}


def _head_parsing(tree: ast.AST):
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        first = node.args[0] if node.args else None
        on_dot = (
            isinstance(first, ast.Constant) and isinstance(first.value, str) and "." in first.value
        )
        if (name in SPLITS and on_dot) or name in ("isdigit", "isdecimal", "isnumeric"):
            yield node.lineno, name


def test_only_the_ref_module_parses_head_suffixes():
    found = []
    for path in sorted((REPO / "runner").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel == "runner/graph/refs.py":
            continue
        for line, name in _head_parsing(ast.parse(path.read_text(), rel)):
            if (rel, name) not in ALLOWED:
                found.append(f"{rel}:{line}: .{name}(...)")
    assert not found, "parse graph refs with runner.graph.refs.parse_ref only:\n" + "\n".join(found)
    # the scan does see the parser itself
    refs = REPO / "runner" / "graph" / "refs.py"
    assert list(_head_parsing(ast.parse(refs.read_text())))
    assert "head_base" not in "".join(p.read_text() for p in (REPO / "runner").rglob("*.py"))

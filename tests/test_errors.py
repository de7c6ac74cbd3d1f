"""Error messages for bad configs and bad data: path, expected, found; exit code 2."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import model_config

DENSE = {"dense": {"type": "Dense", "output_dim": 3}}
SEQ = {"x": {"shape": [2, 3], "data": [[[1, 2, 3], [4, 5, 6]]]}}


def cfg(layers=None, inputs=None, **extra):
    return model_config(layers or DENSE, inputs, **extra)


CASES = [
    # (id, config, [fragments that must all appear in one problem's text])
    (
        "wrong type",
        cfg({"dense": {"type": "Dense", "output_dim": "three"}}),
        ["model.layers.dense.output_dim", "valid integer", "'three'"],
    ),
    (
        "negative units",
        cfg({"dense": {"type": "Dense", "output_dim": -3}}),
        ["model.layers.dense.output_dim", "greater than 0", "-3"],
    ),
    (
        "unknown key",
        cfg({"dense": {"type": "Dense", "ouput_dim": 3, "output_dim": 3}}),
        ["model.layers.dense.ouput_dim", "unknown key", "did you mean 'output_dim'"],
    ),
    (
        "unknown layer",
        cfg({"dense": {"type": "Dence", "output_dim": 3}}),
        ["model.layers.dense", "unknown layer type 'Dence'", "did you mean 'Dense'"],
    ),
    ("missing type", cfg({"dense": {"output_dim": 3}}), ["model.layers.dense", "needs a 'type'"]),
    (
        "bad activation",
        cfg({"dense": {"type": "Dense", "output_dim": 3, "activation": "tanhh"}}),
        ["model.layers.dense.activation", "'tanhh'", "did you mean 'tanh'"],
    ),
    (
        "bad init",
        cfg({"dense": {"type": "Dense", "output_dim": 3, "init": "glorot"}}),
        ["model.layers.dense.init", "'glorot'"],
    ),
    (
        "dropout p too big",
        cfg({"drop": {"type": "Dropout", "p": 1.5}}),
        ["model.layers.drop.p", "less than 1", "1.5"],
    ),
    (
        "dropout p negative",
        cfg({"drop": {"type": "Dropout", "p": -0.1}}),
        ["model.layers.drop.p", "greater than or equal to 0", "-0.1"],
    ),
    (
        "reshape size",
        cfg({"r": {"type": "Reshape", "dims": [2, 2]}}),
        ["model.layers.r", "sizes 3 and 4 differ", "model.inputs.x"],
    ),
    (
        "reshape two unknowns",
        cfg({"r": {"type": "Reshape", "dims": [-1, -1]}}),
        ["model.layers.r.dims", "at most one"],
    ),
    (
        "permute not a permutation",
        cfg({"p": {"type": "Permute", "dims": [1, 1]}}, SEQ),
        ["model.layers.p.dims", "permutation of 1..2"],
    ),
    (
        "permute rank",
        cfg({"p": {"type": "Permute", "dims": [2, 1]}}),
        ["model.layers.p", "per-sample input shape (3,)"],
    ),
    (
        "dense on 3D",
        cfg(DENSE, SEQ),
        ["model.layers.dense", "expects 2D input", "TimeDistributedDense", "fed by model.inputs.x"],
    ),
    (
        "tdd on 2D",
        cfg({"t": {"type": "TimeDistributedDense", "output_dim": 2}}),
        ["model.layers.t", "expects 3D input"],
    ),
    (
        "masked into flatten",
        cfg({"m": {"type": "Masking"}, "f": {"type": "Flatten"}}, SEQ),
        [
            "model.layers.f",
            "cannot take a masked input",
            "model.layers.m (Masking",
            "TimeDistributedMerge",
        ],
    ),
    (
        "wrong weight shape",
        cfg({"dense": {"type": "Dense", "output_dim": 3, "weights": {"W": [[1, 2], [3, 4]]}}}),
        ["model.layers.dense.weights.W", "expected shape (3, 3)", "found (2, 2)"],
    ),
    (
        "unknown weight name",
        cfg({"dense": {"type": "Dense", "output_dim": 3, "weights": {"V": [[1]]}}}),
        ["model.layers.dense.weights.V", "no parameter 'V'", "['W', 'b']"],
    ),
    (
        "missing data file",
        cfg(inputs={"x": {"data": {"path": "nowhere.npy"}}}),
        ["model.inputs.x.data", "nowhere.npy", "file not found"],
    ),
    (
        "unknown wiring name",
        cfg({"dense": {"type": "Dense", "output_dim": 3, "inputs": ["xx"]}}),
        ["model.layers.dense.inputs", "unknown name 'xx'", "did you mean 'x'"],
    ),
    (
        "wiring to later layer",
        cfg(
            {
                "a": {"type": "Dense", "output_dim": 3, "inputs": ["b"]},
                "b": {"type": "Dense", "output_dim": 3},
            }
        ),
        ["model.layers.a.inputs", "defined after this layer"],
    ),
    (
        "bad output name",
        cfg(outputs=["dens"]),
        ["model.outputs", "unknown name 'dens'", "did you mean 'dense'"],
    ),
    (
        "ragged inline data",
        cfg(inputs={"x": {"data": [[1, 2], [3]]}}),
        ["model.inputs.x.data", "rectangular"],
    ),
    (
        "shape disagrees",
        cfg(inputs={"x": {"shape": [4], "data": [[1, 2, 3]]}}),
        ["model.inputs.x.shape", "declared per-sample shape (4,)", "(1, 3)"],
    ),
    (
        "empty input",
        cfg(inputs={"x": {"shape": [3], "data": []}}),
        ["model.inputs.x.data", "empty"],
    ),
    (
        "random without shape",
        cfg(inputs={"x": {"data": {"random": {"rows": 3}}}}),
        ["model.inputs.x", "needs a 'shape'"],
    ),
    ("unknown run setting", {**cfg(), "sed": 1}, ["sed", "unknown key", "did you mean 'seed'"]),
    ("bad floatx", {**cfg(), "floatx": "float16"}, ["floatx", "'float16'"]),
    (
        "identity init on non-square",
        cfg({"dense": {"type": "Dense", "output_dim": 2, "init": "identity"}}),
        ["model.layers.dense.init", "square"],
    ),
    (
        "huge model",
        cfg({"dense": {"type": "Dense", "output_dim": 10_000_000_000}}),
        ["max_memory_mb", "MB"],
    ),
    (
        "layer named like input",
        cfg({"x": {"type": "Dense", "output_dim": 3, "inputs": ["x"]}}),
        ["model.layers.x", "already a model input"],
    ),
]


@pytest.mark.parametrize("case_id, config, fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_config_message(run_config, case_id, config, fragments):
    outcome, result = run_config(config)
    assert outcome.exit_code == 2
    assert result["status"] == "error"
    texts = [f"{p['path']}: {p['message']}" for p in result["error"]["problems"]]
    assert any(all(f in t for f in fragments) for t in texts), texts


def test_independent_problems_are_reported_together(run_config):
    config = cfg(
        {
            "a": {"type": "Dense", "output_dim": 0},
            "b": {"type": "Dropout", "p": 2},
            "c": {"type": "Dence"},
        }
    )
    _, result = run_config(config)
    paths = [p["path"] for p in result["error"]["problems"]]
    assert paths == ["model.layers.a.output_dim", "model.layers.b.p", "model.layers.c"]


def test_pickled_npy_is_refused(run_config, tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _, result = run_config(cfg(inputs={"x": {"data": {"path": "obj.npy"}}}))
    (problem,) = result["error"]["problems"]
    assert problem["path"] == "model.inputs.x.data" and problem["file"] == "obj.npy"
    assert "pickled" in problem["message"]


def test_nan_in_input_file(run_config, tmp_path):
    np.save(tmp_path / "x.npy", np.array([[1, np.nan, 3]], np.float32))
    outcome, result = run_config(cfg(inputs={"x": {"data": {"path": "x.npy"}}}))
    assert outcome.exit_code == 2
    (problem,) = result["error"]["problems"]
    assert problem["file"] == "x.npy" and "NaN or Inf" in problem["message"]


def test_weights_file_of_wrong_shape(run_config, tmp_path):
    np.savez(tmp_path / "w.npz", W=np.ones((2, 3)), b=np.zeros(3))
    layers = {"dense": {"type": "Dense", "output_dim": 3, "weights": {"path": "w.npz"}}}
    _, result = run_config(cfg(layers))
    (problem,) = result["error"]["problems"]
    assert problem["file"] == "w.npz"
    assert "expected shape (3, 3)" in problem["message"] and "(2, 3)" in problem["message"]


def test_malformed_csv(run_config, tmp_path):
    (tmp_path / "x.csv").write_text("a,b,c\n1,2,3\n4,five,6\n")
    _, result = run_config(cfg(inputs={"x": {"data": {"path": "x.csv"}}}))
    (problem,) = result["error"]["problems"]
    assert problem["file"] == "x.csv" and "not a number" in problem["message"]


def test_failed_expectation_exits_1(run_config):
    config = cfg(
        {"dense": {"type": "Dense", "output_dim": 1, "init": "one"}},
        expect={"dense": {"values": [[61]]}},
    )
    outcome, result = run_config(config)
    assert outcome.exit_code == 1 and result["status"] == "failed"
    (problem,) = result["error"]["problems"]
    assert problem["path"] == "model.expect.dense.values" and "[[60.0]]" in problem["message"]


def test_did_you_mean_ignores_case(run_config):
    layers = {"dense": {"type": "Dense", "output_dim": 3, "weights": {"w": [[1]]}}}
    _, result = run_config(cfg(layers))
    (problem,) = result["error"]["problems"]
    assert "did you mean 'W'" in problem["message"]


def test_plugin_given_as_file_name_gets_a_hint(run_config):
    config = cfg(plugins=["my_layers.py"])
    config["allow_plugins"] = ["my_layers.py"]
    _, result = run_config(config)
    (problem,) = result["error"]["problems"]
    assert (
        problem["path"] == "model.plugins[0]"
        and "name the module, not the file: 'my_layers'" in problem["message"]
    )


def test_infinite_lambda_literal_is_refused(run_config):
    _, result = run_config(cfg({"f": {"type": "Lambda", "function": "1e309 * x"}}))
    (problem,) = result["error"]["problems"]
    assert problem["path"] == "model.layers.f.function" and "'1e309'" in problem["message"]
    assert "infinite" in problem["message"]


def test_bad_data_is_reported_as_invalid_data(run_config, tmp_path, caplog):
    np.save(tmp_path / "x.npy", np.array([[1, np.inf, 3]], np.float32))
    outcome, _ = run_config(cfg(inputs={"x": {"data": {"path": "x.npy"}}}))
    assert outcome.exit_code == 2
    assert "invalid data: 1 problem" in caplog.text


def test_a_boolean_is_not_read_as_a_number(run_config):
    layers = {
        "dense": {"type": "Dense", "output_dim": True},
        "reg": {"type": "ActivityRegularization", "l1": False},
    }
    _, result = run_config(cfg(layers))
    texts = [f"{p['path']}: {p['message']}" for p in result["error"]["problems"]]
    assert texts == [
        "model.layers.dense.output_dim: expected a valid integer; found true (a boolean)",
        "model.layers.reg.l1: expected a valid number; found false (a boolean)",
    ]

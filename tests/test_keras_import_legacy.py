"""import-keras on Keras 0.3 and 1.x files (written from those versions' source by
tools/make_legacy_keras_fixtures.py): the seed post's models, checked against hand-computed
values (the reference numbers of the seed post, conf/model/*_example.yaml)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from tests.keras_import_helpers import FIXTURES, import_model, run_imported

X = np.array([[10, 20, 30]], np.float32)
DENSE = [[6, 12, 30]]  # 60 * [.1, .2, .5]


@pytest.mark.parametrize("arch", ["k03/dense.json", "k03/dense.yaml"])
def test_keras03_dense_json_and_yaml(tmp_path, monkeypatch, capsys, arch):
    """The seed post's Dense; its YAML has !!python/tuple (0.3's to_yaml), read as a list."""
    monkeypatch.chdir(tmp_path)
    written = import_model(tmp_path, capsys, arch, "k03/dense_weights.h5")
    out, model = run_imported(written, tmp_path, {"input_1": X})
    assert model["layers"]["dense"]["type"] == "Dense"
    np.testing.assert_allclose(out["dense"], DENSE, rtol=1e-6)


def test_keras03_time_distributed_dense(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    written = import_model(tmp_path, capsys, "k03/tdd.json", "k03/tdd_weights.h5")
    out, _ = run_imported(written, tmp_path, {"input_1": X[:, None, :]})
    np.testing.assert_allclose(out["timedistributeddense"], [DENSE], rtol=1e-6)


def test_keras03_shape_layers_chain(tmp_path, monkeypatch, capsys):
    """Dropout (identity at predict) -> Reshape(2, -1) -> Permute(2, 1) -> Flatten ->
    RepeatVector(2) -> ActivityRegularization -> TimeDistributedMerge(sum) -> hard_sigmoid.
    By hand: [.1 .. .6] -> [[.1 .2 .3] [.4 .5 .6]] -> [[.1 .4] [.2 .5] [.3 .6]] ->
    [.1 .4 .2 .5 .3 .6] -> twice, summed: [.2 .8 .4 1 .6 1.2] -> 0.2 v + 0.5."""
    monkeypatch.chdir(tmp_path)
    written = import_model(tmp_path, capsys, "k03/shapes.json")
    model = yaml.safe_load(written.read_text())
    assert [s["type"] for s in model["layers"].values()] == [
        "Dropout",
        "Reshape",
        "Permute",
        "Flatten",
        "RepeatVector",
        "ActivityRegularization",
        "TimeDistributedMerge",
        "Activation",
    ]
    x = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], np.float32)
    out, _ = run_imported(written, tmp_path, {"input_1": x})
    np.testing.assert_allclose(out["activation"], [[0.54, 0.66, 0.58, 0.7, 0.62, 0.74]], rtol=1e-6)


def test_keras03_masking_passes_its_mask(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    written = import_model(tmp_path, capsys, "k03/masking.json")
    out, _ = run_imported(written, tmp_path, {"input_1": np.array([[[1, 1, 0], [1, 1, 1]]])})
    np.testing.assert_array_equal(out["activation"], [[[1, 1, 0], [0, 0, 0]]])
    np.testing.assert_array_equal(out["activation/mask"], [[True, False]])


def test_keras03_graph_of_activations(tmp_path, monkeypatch, capsys):
    """A 0.3 Graph: six nodes reading one input, six outputs (the reference activations)."""
    monkeypatch.chdir(tmp_path)
    written = import_model(tmp_path, capsys, "k03/activations_graph.json")
    out, model = run_imported(written, tmp_path, {"x": np.array([[0.5, 1, 2, 3]])})
    assert model["outputs"] == ["tanh", "softplus", "relu", "sigmoid", "hard_sigmoid", "linear"]
    expected = {
        "tanh": [0.46211714, 0.76159418, 0.96402758, 0.99505478],
        "softplus": [0.97407699, 1.31326163, 2.12692809, 3.04858732],
        "relu": [0.5, 1, 2, 3],
        "sigmoid": [0.62245935, 0.7310586, 0.88079709, 0.95257413],
        "hard_sigmoid": [0.6, 0.7, 0.9, 1.0],
        "linear": [0.5, 1, 2, 3],
    }
    for name, values in expected.items():
        np.testing.assert_allclose(out[name], [values], rtol=1e-6, err_msg=name)


def test_keras03_graph_outputs_merging_nodes(tmp_path, monkeypatch, capsys):
    """Graph outputs with ``inputs`` and ``merge_mode``: left = x, right = x + 4 on
    [[1, 2], [3, 4]] (the seed post's merge pair)."""
    monkeypatch.chdir(tmp_path)
    written = import_model(tmp_path, capsys, "k03/merges_graph.json", "k03/merges_graph_weights.h5")
    out, _ = run_imported(written, tmp_path, {"x": np.array([[1, 2], [3, 4]])})
    np.testing.assert_array_equal(out["sum"], [[6, 8], [10, 12]])
    np.testing.assert_array_equal(out["mul"], [[5, 12], [21, 32]])
    np.testing.assert_array_equal(out["ave"], [[3, 4], [5, 6]])
    np.testing.assert_array_equal(out["concat"], [[1, 2, 5, 6], [3, 4, 7, 8]])
    np.testing.assert_array_equal(out["dot"], [[17], [53]])
    np.testing.assert_allclose(out["cos"], [[0.97341722], [0.99716413]], rtol=1e-6)


def test_keras03_shared_graph_nodes_are_siamese(tmp_path, monkeypatch, capsys):
    """Graph.add_shared_node: W = [[1, 0], [1, 1]], b = [0, 1] on a and b; y = [x1 + x2,
    x2 + 1]: a -> [[3, 3], [7, 5]], b -> [[3, 3], [1, 2]]; cos row 1 = 17 / sqrt(74 * 5)."""
    monkeypatch.chdir(tmp_path)
    written = import_model(
        tmp_path, capsys, "k03/siamese_graph.json", "k03/siamese_graph_weights.h5"
    )
    model = yaml.safe_load(written.read_text())
    assert model["layers"]["siam"]["type"] == "Siamese"
    a = np.array([[1, 2], [3, 4]], np.float32)
    b = np.array([[1, 2], [0, 1]], np.float32)
    out, _ = run_imported(written, tmp_path, {"a": a, "b": b})
    np.testing.assert_allclose(out["siam"], [[1.0], [0.88378792]], rtol=1e-6)
    np.testing.assert_array_equal(out["joined"], [[3, 3, 3, 3], [7, 5, 1, 2]])


def test_keras03_sequential_starting_with_a_merge_of_branches(tmp_path, monkeypatch, capsys):
    """Sequential([Merge([seq(Dense), seq(Dense)], concat), Dense(1)]): one input per branch;
    left = x, right = x + 4, then the sum of the four values + 0.5."""
    monkeypatch.chdir(tmp_path)
    written = import_model(
        tmp_path, capsys, "k03/merge_branches.json", "k03/merge_branches_weights.h5"
    )
    x1 = np.array([[1, 2]], np.float32)
    x2 = np.array([[3, 4]], np.float32)
    out, model = run_imported(written, tmp_path, {"input_1": x1, "input_2": x2})
    assert list(model["inputs"]) == ["input_1", "input_2"]
    np.testing.assert_allclose(out["dense_3"], [[1 + 2 + 7 + 8 + 0.5]], rtol=1e-6)


def test_keras03_autoencoder(tmp_path, monkeypatch, capsys):
    """[1, 2, 3, 4] -> code relu([4, 6]) -> [2, 3, 2, 3]; [0, 1, 0, 1] -> [0, 1, 0, 1]."""
    monkeypatch.chdir(tmp_path)
    written = import_model(tmp_path, capsys, "k03/autoencoder.json", "k03/autoencoder_weights.h5")
    x = np.array([[1, 2, 3, 4], [0, 1, 0, 1]], np.float32)
    out, model = run_imported(written, tmp_path, {"input_1": x})
    assert model["layers"]["autoencoder"]["output_reconstruction"] is True
    np.testing.assert_array_equal(out["autoencoder"], [[2, 3, 2, 3], [0, 1, 0, 1]])


def test_keras1_time_distributed_without_bias_and_hard_sigmoid(tmp_path, monkeypatch, capsys):
    """TimeDistributed(Dense) with the seed post's kernel, then TimeDistributedDense without
    bias (W = [[.1, 0], [0, .1], [0, 0]]) and hard_sigmoid 0.2 v + 0.5 (Keras 1's):
    [10, 20, 30] -> [6, 12, 30] -> [.6, 1.2] -> [.62, .74];
    [1, 1, 1] -> [.3, .6, 1.5] -> [.03, .06] -> [.506, .512]."""
    monkeypatch.chdir(tmp_path)
    written = import_model(tmp_path, capsys, "k1/sequence.json", "k1/sequence_weights.h5")
    x = np.array([[[10, 20, 30], [1, 1, 1]]], np.float32)
    out, _ = run_imported(written, tmp_path, {"timedistributed_1_input": x})
    np.testing.assert_allclose(
        out["timedistributeddense_1"], [[[0.62, 0.74], [0.506, 0.512]]], rtol=1e-6
    )


def test_keras1_functional_shared_layer_and_merges(tmp_path, monkeypatch, capsys):
    """Keras 1 merge(mode='cos', dot_axes=[1, 1]) and merge(mode='concat') over one shared
    Dense: the same numbers as the 0.3 Graph above."""
    monkeypatch.chdir(tmp_path)
    written = import_model(tmp_path, capsys, "k1/siamese.json", "k1/siamese_weights.h5")
    model = yaml.safe_load(written.read_text())
    assert model["layers"]["cos"]["dot_axes"] == [[1], [1]]
    a = np.array([[1, 2], [3, 4]], np.float32)
    b = np.array([[1, 2], [0, 1]], np.float32)
    out, _ = run_imported(written, tmp_path, {"a": a, "b": b})
    np.testing.assert_allclose(out["cos"], [[1.0], [0.88378792]], rtol=1e-6)
    np.testing.assert_array_equal(out["joined"], [[3, 3, 3, 3], [7, 5, 1, 2]])


def test_shared_layer_into_one_merge_is_one_siamese(tmp_path, monkeypatch, capsys):
    """The Keras 1 model above without its concat output: the shared Dense's heads go only
    into the cos merge, which is exactly a legacy Siamese (merge_mode cos)."""
    monkeypatch.chdir(tmp_path)
    config = json.loads((FIXTURES / "k1/siamese.json").read_text())
    config["config"]["layers"] = config["config"]["layers"][:4]  # a, b, shared, cos
    config["config"]["output_layers"] = [["cos", 0, 0]]
    (tmp_path / "cos.json").write_text(json.dumps(config))
    written = import_model(
        tmp_path, capsys, tmp_path / "cos.json", FIXTURES / "k1/siamese_weights.h5"
    )
    model = yaml.safe_load(written.read_text())
    assert model["layers"] == {
        "cos": {
            "type": "Siamese",
            "layer": {"type": "Dense", "output_dim": 2, "activation": "linear"},
            "merge_mode": "cos",
            "concat_axis": -1,
            "dot_axes": [[1], [1]],
            "inputs": ["a", "b"],
        }
    }
    a = np.array([[1, 2], [3, 4]], np.float32)
    b = np.array([[1, 2], [0, 1]], np.float32)
    out, _ = run_imported(written, tmp_path, {"a": a, "b": b})
    np.testing.assert_allclose(out["cos"], [[1.0], [0.88378792]], rtol=1e-6)


def test_keras03_sequential_starting_with_a_siamese(tmp_path, monkeypatch, capsys):
    """Sequential([Siamese(Dense, [seq(Dense), seq(Dense)], merge_mode='sum')]): weights in
    0.3's get_weights order (the shared layer's, then each branch's). Branches: a, b + 1;
    shared y = [x1 + x2, x2 + 1]: [1, 2] -> [3, 3]; [3, 4] + 1 -> [9, 6]; sum [12, 9]."""
    monkeypatch.chdir(tmp_path)
    written = import_model(
        tmp_path, capsys, "k03/siamese_branches.json", "k03/siamese_branches_weights.h5"
    )
    model = yaml.safe_load(written.read_text())
    assert model["layers"]["siamese"]["merge_mode"] == "sum"
    x = {"input_1": np.array([[1, 2]], np.float32), "input_2": np.array([[3, 4]], np.float32)}
    out, _ = run_imported(written, tmp_path, x)
    np.testing.assert_array_equal(out["siamese"], [[12, 9]])


def test_keras1_sequential_starting_with_a_merge_of_branches(tmp_path, monkeypatch, capsys):
    """Keras 1 Merge of two branch Sequentials (weights by name, branches' layers first):
    dense_1 = x1, dense_2 = 2 x2 + 1, summed, then relu(s1 - s2):
    [1, 2] + [3, 1] = [4, 3] -> 1;  [0, 0] + [1, 3] -> relu(-2) = 0."""
    monkeypatch.chdir(tmp_path)
    written = import_model(
        tmp_path, capsys, "k1/merge_branches.json", "k1/merge_branches_weights.h5"
    )
    x = {
        "dense_1_input": np.array([[1, 2], [0, 0]], np.float32),
        "dense_2_input": np.array([[1, 0], [0, 1]], np.float32),
    }
    out, model = run_imported(written, tmp_path, x)
    assert model["layers"]["merge_1"] == {
        "type": "Merge",
        "mode": "sum",
        "concat_axis": -1,
        "inputs": ["dense_1", "dense_2"],
    }
    np.testing.assert_array_equal(out["dense_3"], [[1], [0]])

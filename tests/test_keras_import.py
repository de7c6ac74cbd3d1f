"""import-keras against real Keras: models built and run by Keras 3 and tf-keras (Keras 2)
(tools/make_keras_fixtures.py), imported through the command, run through the run path; the
outputs must equal what Keras computed to rtol 1e-5 in float32."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from tests.keras_import_helpers import FIXTURES, deviation, import_model, run_imported

# (fixture folder, model, files given to the command): every model in at least one source
# format of its version, every source format (JSON, YAML, JSON + save_weights, whole-model
# .h5, .keras, Keras 3 JSON + .weights.h5, Keras 3's legacy .h5) at least once.
CASES = [
    ("k2", "mlp", ["k2/mlp.json", "k2/mlp_weights.h5"]),
    ("k2", "mlp", ["k2/mlp.yaml", "k2/mlp_weights.h5"]),
    ("k2", "mlp", ["k2/mlp.h5"]),
    ("k2", "merges", ["k2/merges.yaml", "k2/merges_weights.h5"]),
    ("k2", "siamese", ["k2/siamese.h5"]),
    ("k2", "siamese", ["k2/siamese.json", "k2/siamese_weights.h5"]),
    ("k2", "sequence", ["k2/sequence.h5"]),
    ("k2", "sequence", ["k2/sequence.yaml", "k2/sequence_weights.h5"]),
    ("k2", "shapes", ["k2/shapes.json", "k2/shapes_weights.h5"]),
    ("k2", "activations", ["k2/activations.json", "k2/activations_weights.h5"]),
    ("k3", "mlp", ["k3/mlp.keras"]),
    ("k3", "mlp", ["k3/mlp.json", "k3/mlp.weights.h5"]),
    ("k3", "merges", ["k3/merges.keras"]),
    ("k3", "siamese", ["k3/siamese.keras"]),
    ("k3", "sequence", ["k3/sequence.keras"]),
    ("k3", "shapes", ["k3/shapes.keras"]),
    ("k3", "shapes", ["k3/shapes.h5"]),
    ("k3", "activations", ["k3/activations.keras"]),
]


# The YAML's comment says how to replace its placeholder data on the command line.
DATA_OVERRIDE = ["~model.inputs.x.data", "+model.inputs.x.data={path:x.npy}"]


def _keras_io(folder: str, model: str):
    with np.load(FIXTURES / folder / f"{model}.io.npz", allow_pickle=False) as f:
        inputs = {k[3:]: f[k] for k in f.files if k.startswith("in/")}
        outputs = {k[4:]: f[k] for k in f.files if k.startswith("out/")}
    return inputs, outputs


@pytest.mark.parametrize(("folder", "model", "files"), CASES, ids=["+".join(c[2]) for c in CASES])
def test_imported_model_gives_keras_outputs(tmp_path, monkeypatch, capsys, folder, model, files):
    monkeypatch.chdir(tmp_path)
    inputs, expected = _keras_io(folder, model)
    written = import_model(tmp_path, capsys, *files)
    ours, config = run_imported(written, tmp_path, inputs)
    # The outputs come in Keras' order; ours keep it, under our names.
    assert len(config["outputs"]) == len(expected)
    for ours_name, (keras_name, keras_value) in zip(config["outputs"], expected.items()):
        got = ours[ours_name]
        assert got.dtype == np.float32
        assert got.shape == keras_value.shape, keras_name
        np.testing.assert_allclose(got, keras_value, rtol=1e-5, atol=1e-6, err_msg=keras_name)
        assert deviation(got, keras_value)[0] < 1e-5


def test_written_files_name_the_source_and_pass_validate(tmp_path, monkeypatch, capsys):
    from runner.check import main as check

    monkeypatch.chdir(tmp_path)
    written = import_model(tmp_path, capsys, "k2/mlp.json", "k2/mlp_weights.h5", name="mlp")
    text = written.read_text()
    assert text.splitlines()[0].startswith("# Imported by layer-runner import-keras from ")
    assert "k2/mlp.json + " in text.splitlines()[0] and "mlp_weights.h5" in text.splitlines()[0]
    assert "(Keras 2.21.0, Sequential 'mlp')" in text
    model = yaml.safe_load(text)
    assert model["weights"] == {"path": "model/mlp.npz"}  # relative to where it ran
    assert list(model["layers"]) == ["hidden", "drop", "nobias", "out"]
    assert model["layers"]["nobias"] == {
        "type": "Dense",
        "output_dim": 4,
        "activation": "tanh",
        "inputs": ["drop"],
    }
    assert model["layers"]["drop"] == {"type": "Dropout", "p": 0.3, "inputs": ["hidden"]}
    with np.load(tmp_path / "model" / "mlp.npz", allow_pickle=False) as f:
        assert sorted(f.files) == [
            "hidden/W",
            "hidden/b",
            "nobias/W",
            "nobias/b",
            "out/W",
            "out/b",
        ]
        np.testing.assert_array_equal(f["nobias/b"], np.zeros(4, np.float32))  # use_bias=False
    assert check(["model/mlp.yaml"]) == 0  # what task=validate checks
    assert "1 model file checked: all valid" in capsys.readouterr().err


def test_keras3_hard_sigmoid_is_its_own_formula_not_ours(tmp_path, monkeypatch, capsys):
    """Keras 3 redefined hard_sigmoid as relu6(x + 3) / 6: imported as a Lambda of that
    formula; Keras 2's (0.2 x + 0.5) stays our activation. Values by hand at x = 0.5."""
    monkeypatch.chdir(tmp_path)
    k3 = yaml.safe_load(
        import_model(tmp_path, capsys, "k3/activations.keras", name="a3").read_text()
    )
    k2 = yaml.safe_load(
        import_model(
            tmp_path, capsys, "k2/activations.json", "k2/activations_weights.h5", name="a2"
        ).read_text()
    )
    assert k3["layers"]["act_hard_sigmoid"]["type"] == "Lambda"
    assert k3["layers"]["dense_hard"]["activation"] == "linear"
    assert k3["layers"]["dense_hard_activation"]["inputs"] == ["dense_hard"]
    assert k2["layers"]["act_hard_sigmoid"] == {
        "type": "Activation",
        "activation": "hard_sigmoid",
        "inputs": ["x"],
    }
    x = {"x": np.array([[0.5, -4, 4, 0, 1, -1]], np.float32)}
    out3, _ = run_imported(tmp_path / "model" / "a3.yaml", tmp_path, x, "r3")
    out2, _ = run_imported(tmp_path / "model" / "a2.yaml", tmp_path, x, "r2")
    # Keras 3: clip(x/6 + 0.5, 0, 1); Keras 2: clip(0.2 x + 0.5, 0, 1)
    np.testing.assert_allclose(
        out3["act_hard_sigmoid"], [[0.5833333, 0, 1, 0.5, 0.6666667, 0.3333333]], rtol=1e-6
    )
    np.testing.assert_allclose(out2["act_hard_sigmoid"], [[0.6, 0, 1, 0.5, 0.7, 0.3]], rtol=1e-6)


def test_shared_layer_becomes_one_siamese(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    model = yaml.safe_load(import_model(tmp_path, capsys, "k3/siamese.keras").read_text())
    assert model["layers"]["shared"] == {
        "type": "Siamese",
        "layer": {"type": "Dense", "output_dim": 4, "activation": "relu"},
        "merge_mode": "none",
        "inputs": ["a", "b"],
    }
    assert model["layers"]["cos"]["inputs"] == ["shared.0", "shared.1"]
    with np.load(tmp_path / "model" / "imported.npz", allow_pickle=False) as f:
        assert sorted(f.files) == ["shared/layer/W", "shared/layer/b"]  # one set of weights


def test_sequence_maps_masks_and_time_distributed(tmp_path, monkeypatch, capsys):
    """Masking -> TimeDistributed(Dense) -> Dense on 3D -> masked GlobalAveragePooling1D: Keras 3
    writes the mask as NotEqual/Any operations; they are Masking's own mask, so ours carries it."""
    monkeypatch.chdir(tmp_path)
    model = yaml.safe_load(import_model(tmp_path, capsys, "k3/sequence.keras").read_text())
    assert [s["type"] for s in model["layers"].values()] == [
        "Masking",
        "TimeDistributedDense",
        "TimeDistributedDense",
        "TimeDistributedMerge",
    ]
    assert model["layers"]["pool"]["mode"] == "ave"


def test_dry_run_checks_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from runner.interop.keras_import.cli import main

    monkeypatch.chdir(tmp_path)
    code = main([str(FIXTURES / "k3/mlp.keras"), "--out", "conf/model/mlp.yaml", "--dry-run"])
    assert code == 0
    out = capsys.readouterr().out
    assert out == (
        "checked, not written (--dry-run): conf/model/mlp.yaml (4 layers) and "
        "conf/model/mlp.npz (6 arrays)\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_command_line_end_to_end(tmp_path, cli):
    """`layer-runner import-keras` then `python -m runner +model=NAME`, as a person would:
    Keras 2's outputs come out of the run (the model's own inputs replaced on the command
    line by Keras' inputs)."""
    src, weights = FIXTURES / "k2/mlp.json", FIXTURES / "k2/mlp_weights.h5"
    imported = cli("import-keras", str(src), str(weights), "--out", "conf/model/mlp.yaml")
    assert imported.returncode == 0, imported.stderr
    text = (tmp_path / "conf/model/mlp.yaml").read_text()
    assert "# ~model.inputs.NAME.data '+model.inputs.NAME.data={path:x.npy}'" in text
    assert imported.stdout.splitlines() == [
        "wrote conf/model/mlp.yaml (4 layers) and conf/model/mlp.npz (6 arrays)",
        "check it: python -m runner --config-dir conf +model=mlp task=validate",
    ]
    with np.load(FIXTURES / "k2/mlp.io.npz") as f:
        np.save(tmp_path / "x.npy", f["in/x"])
        expected = f["out/out"]
    assert cli("--config-dir", "conf", "+model=mlp", "task=validate").returncode == 0
    ran = cli("--config-dir", "conf", "+model=mlp", *DATA_OVERRIDE)
    assert ran.returncode == 0, ran.stderr
    with np.load(ran.folder / "outputs.npz") as f:
        np.testing.assert_allclose(f["out"], expected, rtol=1e-5, atol=1e-6)

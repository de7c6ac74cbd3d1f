"""The command line end to end: run folder contents, validate task, errors, shipped configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO

SHIPPED = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))


def test_dense_example_run_folder(cli):
    res = cli("+model=dense_example")
    assert res.returncode == 0, res.stderr
    assert "[[ 6. 12. 30.]]" in res.stdout
    assert res.folder is not None and res.folder.parent.parent.name == "outputs"
    files = {p.name for p in res.folder.iterdir()}
    assert {
        "config.yaml",
        "summary.txt",
        "outputs.npz",
        "weights.npz",
        "result.json",
        "run.log",
        ".hydra",
    } <= files
    config = yaml.safe_load((res.folder / "config.yaml").read_text())
    dense = config["model"]["layers"]["dense"]
    assert dense["activation"] == "linear" and dense["W_regularizer"] is None  # defaults explicit
    assert config["seed"] == 0 and config["floatx"] == "float32"
    summary = (res.folder / "summary.txt").read_text()
    assert "Dense" in summary and "total params: 12" in summary
    with np.load(res.folder / "outputs.npz", allow_pickle=False) as out:
        np.testing.assert_array_equal(out["dense"], [[6, 12, 30]])
        assert out["dense"].dtype == np.float32
    with np.load(res.folder / "weights.npz", allow_pickle=False) as w:
        np.testing.assert_array_equal(w["dense/W"], np.array([[0.1, 0.2, 0.5]] * 3, np.float32))
        np.testing.assert_array_equal(w["dense/b"], np.zeros(3))
    result = res.result
    assert result["status"] == "ok" and result["seed"] == 0 and result["phase"] == "test"
    assert result["outputs"]["dense"]["values"] == [[6.0, 12.0, 30.0]]
    assert result["expect"] == [
        {"check": "dense.values", "ok": True, "detail": result["expect"][0]["detail"]}
    ]
    assert set(result["versions"]) >= {"python", "numpy", "pydantic", "hydra-core", "omegaconf"}
    assert result["overrides"] == ["+model=dense_example"]
    assert result["timings"]["total"] > 0


def test_saved_config_reruns_to_identical_outputs(cli, tmp_path):
    from runner.run import run

    res = cli("+model=dropout_reference", "seed=5")
    config = yaml.safe_load((res.folder / "config.yaml").read_text())
    outcome = run(config, tmp_path / "again", tmp_path)
    with np.load(res.folder / "outputs.npz") as first:
        np.testing.assert_array_equal(outcome.values["drop"], first["drop"])


def test_validate_task_checks_without_running(cli):
    res = cli("+model=dense_example", "task=validate")
    assert res.returncode == 0, res.stderr
    assert "config is valid" in res.stdout
    assert res.result["status"] == "ok" and res.result["task"] == "validate"
    assert not (res.folder / "outputs.npz").exists()
    assert (res.folder / "summary.txt").exists()


def test_bad_override_exit_2_without_traceback(cli):
    res = cli("+model=dense_example", "model.layers.dense.output_dim=-3")
    assert res.returncode == 2
    assert "model.layers.dense.output_dim: expected greater than 0; found -3" in res.stdout
    assert "Traceback" not in res.stdout + res.stderr
    assert res.result["status"] == "error"


def test_unknown_key_override_exit_2(cli):
    res = cli("+model=dense_example", "model.layers.dense.ouput_dim=3")
    assert res.returncode == 2
    assert "ouput_dim" in res.stderr and "Traceback" not in res.stderr


def test_no_model_lists_shipped_models(cli):
    res = cli()
    assert res.returncode == 2
    assert "+model=NAME" in res.stdout
    for name in ("dense_example", "dropout_example"):
        assert name in res.stdout


def test_failed_expectation_exit_1(cli):
    res = cli("+model=dense_example", "model.layers.dense.weights.b=[1,0,0]")
    assert res.returncode == 1
    assert "model.expect.dense.values" in res.stdout
    assert res.result["status"] == "failed"


def test_every_shipped_config_meets_its_expectations(cli, tmp_path):
    """All shipped models in one multirun through the CLI; each job's expect must pass."""
    res = cli("-m", f"+model={','.join(SHIPPED)}", "hydra.sweep.dir=sweep")
    jobs = {}
    for result_file in sorted((tmp_path / "sweep").glob("*/result.json")):
        result = json.loads(result_file.read_text())
        model = next(o.split("=", 1)[1] for o in result["overrides"] if o.startswith("+model="))
        jobs[model] = result
    assert sorted(jobs) == SHIPPED, res.stdout + res.stderr
    for model, result in jobs.items():
        failed = [c for c in result.get("expect", []) if not c["ok"]]
        assert result["status"] == "ok" and not failed, (model, result.get("error"), failed)
    with_expect = [
        m for m in SHIPPED if "expect:" in (REPO / "conf/model" / f"{m}.yaml").read_text()
    ]
    for model in with_expect:
        assert jobs[model]["expect"], f"{model} declares expectations but none ran"


@pytest.mark.parametrize("seed", [0, 3])
def test_same_seed_bit_identical_outputs(seed, tmp_path):
    from runner.api import compose
    from runner.run import run

    config = compose("dropout_example", [f"seed={seed}"])
    a = run(config, tmp_path / "a", tmp_path).values["drop"]
    b = run(config, tmp_path / "b", tmp_path).values["drop"]
    np.testing.assert_array_equal(a, b)
    other = run(compose("dropout_example", [f"seed={seed + 1}"]), tmp_path / "c", tmp_path)
    assert not np.array_equal(a, other.values["drop"])


def test_run_never_overwrites_a_finished_folder(tmp_path):
    from runner.api import compose
    from runner.run import run

    config = compose("dense_example")
    run(config, tmp_path / "r", tmp_path)
    before = (tmp_path / "r" / "result.json").read_text()
    with pytest.raises(FileExistsError):
        run(config, tmp_path / "r", tmp_path)
    assert (tmp_path / "r" / "result.json").read_text() == before


def test_relative_paths_resolve_against_the_launch_directory(cli, tmp_path):
    np.save(tmp_path / "x.npy", np.array([[1, 2, 3], [4, 5, 6]], np.float32))
    res = cli(
        "+model=dense_example",
        "~model.inputs.x.data",
        "+model.inputs.x.data={path: x.npy}",
        "~model.expect",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    np.testing.assert_allclose(
        res.result["outputs"]["dense"]["values"], [[0.6, 1.2, 3.0], [1.5, 3.0, 7.5]], rtol=1e-6
    )
    assert Path(res.folder).is_relative_to(tmp_path)


def test_rerunning_into_a_finished_folder_is_refused_and_keeps_it(cli, tmp_path):
    first = cli("+model=dense_example", "hydra.run.dir=fixed")
    before = (tmp_path / "fixed" / "result.json").read_bytes()
    again = cli("+model=dense_example", "hydra.run.dir=fixed", "seed=4")
    assert first.returncode == 0 and again.returncode == 2
    assert (
        "already holds a finished run" in again.stdout + again.stderr
    )  # refused before logging starts
    assert "Traceback" not in again.stdout + again.stderr
    assert (tmp_path / "fixed" / "result.json").read_bytes() == before


def test_streamed_outputs_land_in_memory_mapped_files(tmp_path):
    from runner.api import load_model_file
    from runner.run import run

    np.save(tmp_path / "x.npy", np.arange(30, dtype=np.float32).reshape(10, 3))
    config = load_model_file(
        REPO / "conf/model/dense_example.yaml", batch_size=4, outputs_to_disk=True
    )
    config["model"]["inputs"]["x"]["data"] = {"path": "x.npy"}
    del config["model"]["expect"]
    outcome = run(config, tmp_path / "r", tmp_path)
    assert outcome.exit_code == 0
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert result["outputs"]["dense"]["file"] == "outputs/dense.npy"
    streamed = np.load(tmp_path / "r" / "outputs" / "dense.npy", allow_pickle=False)
    x = np.arange(30, dtype=np.float64).reshape(10, 3)
    np.testing.assert_allclose(streamed, x @ np.array([[0.1, 0.2, 0.5]] * 3), rtol=1e-6)
    with np.load(tmp_path / "r" / "outputs.npz") as npz:
        assert "dense" not in npz.files  # not copied a second time

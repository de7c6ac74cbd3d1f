"""tracking=mlflow: runs and sweeps written to a real local MLflow store and read back through
MLflow's own client (MlflowClient), compared with the run folders' files read here with csv and
json. Never skipped: the test extra installs the mlflow extra."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from runner.errors import ConfigError
from runner.tracking import mlflow_runs
from tests.helpers import TINY_FIT_MODEL

REPO = Path(__file__).resolve().parent.parent

MODEL = TINY_FIT_MODEL


@pytest.fixture(autouse=True)
def _local_store_only(monkeypatch):
    """Nothing from the machine's environment decides where runs go."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for the reading client here


def _runner(
    cwd: Path, *overrides: str, flags: tuple[str, ...] = (), pythonpath: str = ""
) -> subprocess.CompletedProcess:
    conf = cwd / "userconf" / "model"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "tiny_fit.yaml").write_text(MODEL)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (pythonpath, str(REPO)) if p)}
    for name in ("HYDRA_FULL_ERROR", "MLFLOW_ALLOW_FILE_STORE"):  # the runner sets it itself
        env.pop(name, None)
    cmd = [sys.executable, "-m", "runner", *flags, f"hydra.searchpath=[file://{conf.parent}]"]
    return subprocess.run(
        [*cmd, *overrides], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _history(folder: Path) -> list[dict[str, str]]:
    with open(folder / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def _steps(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _artifacts(client: MlflowClient, run_id: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id)}


# ---------------------------------------------------------------- small parts


def test_params_are_the_config_flattened_with_long_arrays_named_by_digest():
    rows = [[i, i + 1] for i in range(200)]  # 1,790 chars of JSON
    config = {
        "seed": 3,
        "training": None,
        "allow_plugins": [],
        "model": {"layers": {"drop": {"type": "Dropout", "p": 0.3}}, "expect": {}},
        "inputs": {"x": {"data": rows, "shape": [2]}},
        "vars": {"a:b": 1},  # a key MLflow would refuse
    }
    params = mlflow_runs.flat_params(config)
    text = json.dumps(rows, separators=(",", ":"))
    import hashlib

    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    assert params == {
        "seed": "3",
        "training": "null",
        "allow_plugins": "[]",
        "model.layers.drop.type": "Dropout",
        "model.layers.drop.p": "0.3",
        "model.expect": "{}",
        "inputs.x.data": f"<200 items, sha256 {digest}: see config.yaml>",
        "inputs.x.shape": "[2]",
        "vars.a_b": "1",
    }


def test_the_store_is_the_command_line_s_else_the_environment_s_else_mlruns(tmp_path, monkeypatch):
    assert mlflow_runs.store_uri({}, tmp_path) == (tmp_path / "mlruns").resolve().as_uri()
    relative = {"tracking_uri": "runs/store"}
    assert mlflow_runs.store_uri(relative, tmp_path) == (tmp_path / "runs/store").as_uri()
    assert mlflow_runs.store_uri({"tracking_uri": "file:st"}, tmp_path) == (
        (tmp_path / "st").as_uri()
    )
    server = {"tracking_uri": "http://127.0.0.1:5000"}
    assert mlflow_runs.store_uri(server, tmp_path) == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert mlflow_runs.store_uri({}, tmp_path) == "http://127.0.0.1:5001"
    assert mlflow_runs.store_uri(server, tmp_path) == "http://127.0.0.1:5000"  # command line wins


def test_a_store_mlflow_cannot_use_is_a_config_error_naming_tracking_uri():
    with pytest.raises(ConfigError) as caught:
        mlflow_runs.open_client("foo://nowhere")
    (problem,) = caught.value.problems
    assert problem.path == "tracking_uri"
    assert problem.message.startswith(
        "MLflow cannot use 'foo://nowhere': MLflow has no store for this scheme (it knows "
    )
    assert "file:, " in problem.message and "https:, " in problem.message
    assert "registry" not in problem.message  # MLflow's own first line is about its registry


def test_tracking_is_a_run_setting_a_model_file_cannot_set(tmp_path):
    from runner.api import load_model_file
    from runner.config.guard import ModelFileError

    model = "inputs:\n  x: {data: [[1.0]]}\nlayers:\n  d: {type: Dense, output_dim: 1}\n"
    for line in ("tracking: mlflow", "tracking_uri: http://198.51.100.7:5000"):
        key = line.split(":")[0]
        evil = tmp_path / f"{key}.yaml"
        evil.write_text(model + line + "\n")
        with pytest.raises(ModelFileError, match=rf"{key}.yaml:5:1: '{key}' is a run setting"):
            load_model_file(evil)


def test_an_unknown_tracking_backend_is_refused_at_its_path(tmp_path):
    from runner.run import run

    config = {
        "tracking": "wandb",
        "model": {
            "inputs": {"x": {"data": [[1.0]]}},
            "layers": {"d": {"type": "Dense", "output_dim": 1}},
        },
    }
    outcome = run(config, tmp_path / "run", tmp_path)
    assert outcome.exit_code == 2
    (problem,) = outcome.result["error"]["problems"]
    assert (problem["path"], problem["message"]) == ("tracking", "expected 'mlflow'; found 'wandb'")


def test_where_a_run_is_tracked_does_not_change_its_config_hash():
    from runner.run import config_hash

    plain = {"seed": 0, "model": {"layers": {}}}
    tracked = {**plain, "tracking": "mlflow", "tracking_uri": "http://127.0.0.1:5000"}
    assert config_hash(plain) == config_hash(tracked)
    assert config_hash(plain) != config_hash({**plain, "seed": 1})


# ---------------------------------------------------------------- through the command line


@pytest.mark.slow
def test_a_fit_is_logged_params_epochs_final_metrics_and_its_folder(tmp_path):
    proc = _runner(
        tmp_path,
        "+model=tiny_fit",
        "task=fit",
        "seed=3",
        "tracking=mlflow",
        "tracking_uri=store",
        "hydra.run.dir=run",
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    folder, store = tmp_path / "run", tmp_path / "store"
    assert not (tmp_path / "mlruns").exists()  # the command line's store, not the default
    client = MlflowClient(store.as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "tiny_fit"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "tiny_fit task=fit seed=3"  # hydra.* overrides are not shown
    assert f"tracking: MLflow run {run.info.run_id} in store" in (folder / "run.log").read_text()
    result = json.loads((folder / "result.json").read_text())
    params = run.data.params
    assert params["seed"] == "3" and params["task"] == "fit" and params["tracking"] == "mlflow"
    assert params["model.layers.hidden.output_dim"] == "8"
    assert params["model.layers.drop.p"] == "0.0"
    assert params["model.fit.epochs"] == "3" and params["model.fit.validation_split"] == "0.25"
    assert params["model.layers.hidden.init"] == "glorot_uniform"  # defaults made explicit
    rows = _history(folder)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    for key in ("loss", "val_loss", "weight_penalty"):
        assert _steps(client, run.info.run_id, key) == [
            (int(r["epoch"]), float(r[key])) for r in rows
        ]
    for key in ("objective", "best_epoch", "best_val_loss", "baseline_val_loss"):
        assert _steps(client, run.info.run_id, key) == [(3, float(result["metrics"][key]))]
    assert run.data.tags["runner.status"] == "ok" and run.data.tags["runner.task"] == "fit"
    assert run.data.tags["runner.config_hash"] == result["config_hash"]
    assert run.data.tags["runner.run_folder"] == str(folder)
    assert "mlflow.parentRunId" not in run.data.tags
    logged = _artifacts(client, run.info.run_id)
    assert {"result.json", "history.csv", "weights.npz", "config.yaml", ".hydra"} <= logged
    local = Path(client.download_artifacts(run.info.run_id, "history.csv", str(tmp_path / "dl")))
    assert local.read_bytes() == (folder / "history.csv").read_bytes()


@pytest.mark.slow
def test_the_default_store_is_mlruns_where_the_command_runs(tmp_path):
    proc = _runner(tmp_path, "+model=dense_example", "tracking=mlflow", "hydra.run.dir=run")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "dense_example"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["dense/mean"] == pytest.approx((6 + 12 + 30) / 3, rel=1e-6)
    assert _steps(client, run.info.run_id, "expect_passed") == [(0, 1.0)]  # no epochs: step 0
    assert run.data.params["model.layers.dense.output_dim"] == "3"


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_sweep_is_a_parent_run_with_one_child_per_job(tmp_path, launcher):
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    proc = _runner(
        tmp_path,
        *extra,
        "+model=tiny_fit",
        "task=fit",
        "fit.epochs=2",
        "seed=0,1",
        "model.layers.drop.p=0.0,0.5,1.5",  # 1.5 is invalid: that job fails, so does the sweep
        "tracking=mlflow",
        "hydra.sweep.dir=sweep",
        flags=("-m",),
    )
    assert proc.returncode == 2, proc.stderr + proc.stdout
    sweep = tmp_path / "sweep"
    parent_id = json.loads((sweep / "mlflow_parent.json").read_text())["run_id"]
    assert f"tracking: MLflow parent run {parent_id} in mlruns" in proc.stdout
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    parent = client.get_run(parent_id)
    assert parent.info.status == "FAILED"  # two jobs did not finish ok
    assert parent.info.run_name.startswith("sweep tiny_fit task=fit fit.epochs=2 seed=0,1 ")
    assert {"summary.md", "summary.csv", "summary_groups.csv", "summary.png", "multirun.yaml"} <= (
        _artifacts(client, parent_id)
    )
    with open(sweep / "summary_groups.csv", newline="") as f:
        groups = {r["model.layers.drop.p"]: r for r in csv.DictReader(f)}
    for p, jobs in (("0.0", (0, 3)), ("0.5", (1, 4))):  # replicates, from the job folders
        a, b = (json.loads((sweep / f"{j}/result.json").read_text()) for j in jobs)
        a, b = a["metrics"]["objective"], b["metrics"]["objective"]
        assert float(groups[p]["mean"]) == pytest.approx((a + b) / 2, rel=1e-12)
        assert float(groups[p]["std"]) == pytest.approx(abs(a - b) / 2**0.5, rel=1e-9)  # n=2
    assert (groups["1.5"]["n"], groups["1.5"]["mean"]) == ("0", "")  # both jobs refused
    best = next(r for r in groups.values() if r["best"] == "*")
    assert best is min(groups.values(), key=lambda r: float(r["mean"] or "inf"))  # val_loss
    assert parent.data.metrics["best_group/objective_mean"] == float(best["mean"])
    assert parent.data.metrics["best_group/objective_std"] == float(best["std"])
    assert (parent.data.metrics["jobs_ok"], parent.data.metrics["jobs_error"]) == (4.0, 2.0)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert len(children) == 6
    by_job = {int(c.info.run_name.split(":")[0]): c for c in children}
    assert sorted(by_job) == list(range(6))
    for num, child in by_job.items():
        folder = sweep / str(num)
        result = json.loads((folder / "result.json").read_text())
        seed, p = num // 3, ["0.0", "0.5", "1.5"][num % 3]
        assert child.data.tags["runner.run_folder"] == str(folder)
        assert child.data.tags["runner.overrides"] == " ".join(result["overrides"])
        assert f"seed={seed} model.layers.drop.p={p}" in child.info.run_name
        if p == "1.5":  # refused by the schema: FAILED, with the raw config as params
            assert (child.info.status, result["status"]) == ("FAILED", "error")
            assert child.data.params["model.layers.drop.p"] == "1.5"
            assert "result.json" in _artifacts(client, child.info.run_id)
            continue
        assert child.info.status == "FINISHED"
        assert (child.data.params["seed"], child.data.params["model.layers.drop.p"]) == (
            str(seed),
            p,
        )
        rows = _history(folder)
        assert _steps(client, child.info.run_id, "val_loss") == [
            (int(r["epoch"]), float(r["val_loss"])) for r in rows
        ]
        assert child.data.metrics["objective"] == result["metrics"]["objective"]


@pytest.mark.slow
@pytest.mark.slow
def test_a_password_in_the_store_uri_never_reaches_a_message_or_the_run_folder(
    tmp_path, monkeypatch
):
    """$MLFLOW_TRACKING_URI may hold user:password@: MLflow's own error repeats the URI."""
    password = "pw-S3cr3t%21x"  # (percent-encoded in the URI: pw-S3cr3t!x)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{password}@127.0.0.1:9/")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # nothing listens on port 9
    proc = _runner(tmp_path, "+model=dense_example", "tracking=mlflow", "hydra.run.dir=run")
    shown = proc.stdout + proc.stderr
    assert proc.returncode == 2, shown
    assert "tracking_uri: MLflow cannot use 'http://alice:***@127.0.0.1:9/'" in shown
    written = b"".join(p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file())
    for secret in (password, "pw-S3cr3t!x"):
        assert secret not in shown and secret.encode() not in written


def test_without_mlflow_the_message_names_the_extra_and_exits_2(tmp_path):
    stub = tmp_path / "no_mlflow"
    (stub / "mlflow").mkdir(parents=True)  # an import of mlflow fails, as when not installed
    (stub / "mlflow" / "__init__.py").write_text("raise ImportError('mlflow (stub)')\n")
    want = (
        'tracking: tracking=mlflow needs MLflow, which is not installed: pip install -e ".[mlflow]"'
    )
    proc = _runner(
        tmp_path,
        "+model=dense_example",
        "tracking=mlflow",
        "hydra.run.dir=run",
        pythonpath=str(stub),
    )
    assert proc.returncode == 2
    assert f"invalid config: 1 problem\n  {want}" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    (problem,) = json.loads((tmp_path / "run" / "result.json").read_text())["error"]["problems"]
    assert problem["path"] == "tracking"
    proc = _runner(
        tmp_path,
        "+model=dense_example",
        "tracking=mlflow",
        "seed=0,1",
        "hydra.sweep.dir=sweep",
        flags=("-m",),
        pythonpath=str(stub),
    )
    assert proc.returncode == 2
    assert f"invalid config: 1 problem\n  {want}" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "sweep" / "0").exists()  # refused before any job ran
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_a_model_file_naming_a_tracking_uri_is_refused_before_anything_runs(tmp_path):
    conf = tmp_path / "theirs" / "model"
    conf.mkdir(parents=True)
    (conf / "stranger.yaml").write_text(MODEL + "tracking_uri: http://198.51.100.7:5000\n")
    flags = ("--config-dir", str(conf.parent))
    proc = _runner(tmp_path, "+model=stranger", "tracking=mlflow", flags=flags)
    assert proc.returncode == 2
    assert "stranger.yaml:10:1: 'tracking_uri' is a run setting" in proc.stderr
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "outputs").exists()


# ---------------------------------------------------------------- the end of a tracked run


def _started(tmp_path: Path) -> tuple[mlflow_runs.TrackedRun, dict, Path]:
    config = {"tracking": "mlflow", "tracking_uri": "store"}
    folder = tmp_path / "run"
    folder.mkdir()
    tracked = mlflow_runs.TrackedRun.start(config, tmp_path, folder, "a run", "m")
    assert tracked.client.get_run(tracked.run_id).info.status == "RUNNING"  # seen while it runs
    return tracked, config, folder


def test_an_interrupted_run_is_killed_with_the_epochs_it_finished(tmp_path):
    tracked, config, folder = _started(tmp_path)
    (folder / "history.csv").write_text("epoch,loss\n1,0.5\n2,0.25\n")
    (folder / "result.json").write_text(json.dumps({"status": "interrupted", "task": "fit"}))
    tracked.finish(folder, config)
    run = tracked.client.get_run(tracked.run_id)
    assert (run.info.status, run.data.tags["runner.status"]) == ("KILLED", "interrupted")
    assert _steps(tracked.client, tracked.run_id, "loss") == [(1, 0.5), (2, 0.25)]
    assert run.data.params == {"tracking": "mlflow", "tracking_uri": "store"}  # no config.yaml


def test_a_store_lost_during_the_run_is_reported_with_exit_1(tmp_path, caplog):
    import shutil

    from runner.cli import _finish_tracking

    tracked, config, folder = _started(tmp_path)
    (folder / "result.json").write_text(json.dumps({"status": "ok", "metrics": {"m": 1.0}}))
    shutil.rmtree(tmp_path / "store")
    assert _finish_tracking(tracked, folder, config) == 1
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage().startswith(
        f"tracking: could not log this run to MLflow ({(tmp_path / 'store').as_uri()}): "
    )
    assert record.getMessage().endswith("; the run folder is complete")


def test_history_rows_are_read_back_as_numbers_skipping_empty_and_text_cells(tmp_path):
    from runner.train.history import read_history

    (tmp_path / "history.csv").write_text("epoch,loss,lr,note\n1,0.5,,warm-up\n2,0.25,0.01,x\n")
    assert read_history(tmp_path) == [
        {"epoch": 1.0, "loss": 0.5},
        {"epoch": 2.0, "loss": 0.25, "lr": 0.01},
    ]
    assert read_history(tmp_path / "nowhere") == []

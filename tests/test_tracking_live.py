"""tracking=mlflow logs a fit's epochs as they end: read back from a real local MLflow store
through MlflowClient and compared with history.csv (read here with csv), with an untracked fit
of the same config, or with hand-computed losses. Also: a sweep whose store is refused at start
leaves no claimed sweep folder behind."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from test_fit import classifier

from runner.errors import ConfigError, DataError, Problem
from runner.run import run
from runner.sweep import callbacks
from runner.tracking import mlflow_runs

COLUMNS = ("loss", "weight_penalty", "activity_penalty", "accuracy", "val_loss", "val_accuracy")


@pytest.fixture(autouse=True)
def _local_store_only(monkeypatch):
    """Nothing from the machine's environment decides where runs go; no history.png (a second
    of matplotlib per fit; these tests read history.csv)."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setattr("runner.train.history.plot_history", lambda history, path: None)


def _tracked_fit(tmp_path: Path, config: dict, name: str, before=(), after=()):
    """What runner.cli does for a tracked run: start, run with the live epochs, finish.
    Returns the TrackedRun, the run folder and whether run() re-raised a KeyboardInterrupt."""
    config = {**copy.deepcopy(config), "tracking": "mlflow", "tracking_uri": "store"}
    folder = tmp_path / name
    tracked = mlflow_runs.TrackedRun.start(config, tmp_path, folder, name, "m")
    assert tracked.client.get_run(tracked.run_id).info.status == "RUNNING"
    interrupted = False
    try:
        run(config, folder, tmp_path, epoch_callbacks=[*before, tracked.epochs, *after])
    except KeyboardInterrupt:  # re-raised once result.json says "interrupted"
        interrupted = True
    tracked.finish(folder, config)
    return tracked, folder, interrupted


def _steps(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _history(folder: Path) -> list[dict[str, str]]:
    with open(folder / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def _column(rows: list[dict[str, str]], key: str) -> list[tuple[int, float]]:
    return [(int(r["epoch"]), float(r[key])) for r in rows]


def _untracked(tmp_path: Path, config: dict, name: str) -> list[dict[str, str]]:
    outcome = run(copy.deepcopy(config), tmp_path / name, tmp_path)
    assert outcome.exit_code == 0, outcome.result.get("error")
    return _history(tmp_path / name)


class _StopAt:
    """An epoch callback that raises ERROR when epoch EPOCH ends (before the tracker sees it)."""

    def __init__(self, epoch: int, error: BaseException) -> None:
        self.epoch, self.error = epoch, error

    def __call__(self, loop, record) -> None:
        if record["epoch"] == self.epoch:
            raise self.error


class _Probe:
    """An epoch callback after the tracker's: the steps of KEY the running MLflow run holds
    in the store as each epoch ends, read by a client of its own."""

    def __init__(self, store: Path, key: str = "val_accuracy") -> None:
        self.client, self.key = MlflowClient(store.as_uri()), key
        self.seen: list[list[int]] = []

    def __call__(self, loop, record) -> None:
        experiment = self.client.get_experiment_by_name("m").experiment_id
        (active,) = self.client.search_runs([experiment], "attributes.status = 'RUNNING'")
        self.seen.append([step for step, _ in _steps(self.client, active.info.run_id, self.key)])


def test_each_epoch_is_in_mlflow_as_it_ends_and_equals_history_csv(tmp_path):
    probe = _Probe(tmp_path / "store")
    tracked, folder, _ = _tracked_fit(tmp_path, classifier(epochs=3), "run", after=[probe])
    assert probe.seen == [[1], [1, 2], [1, 2, 3]]  # live, not at the end
    client, run_id = tracked.client, tracked.run_id
    rows = _history(folder)
    assert set(rows[0]) == {"epoch", "lr", *COLUMNS}
    for key in ("lr", *COLUMNS):  # every column, each epoch once, the exact floats
        assert _steps(client, run_id, key) == _column(rows, key), key
    assert client.get_run(run_id).info.status == "FINISHED"
    result = json.loads((folder / "result.json").read_text())
    assert _steps(client, run_id, "objective") == [(3, result["metrics"]["objective"])]


@pytest.mark.parametrize(
    ("error", "status", "runner_status"),
    [
        (KeyboardInterrupt(), "KILLED", "interrupted"),
        (DataError([Problem("model.inputs.x", "a numeric error")]), "FAILED", "error"),
    ],
)
def test_a_fit_stopped_at_epoch_3_keeps_epochs_1_and_2_and_is_ended(
    tmp_path, error, status, runner_status
):
    straight = _untracked(tmp_path, classifier(epochs=2), "straight")  # same seed, same epochs
    tracked, folder, interrupted = _tracked_fit(
        tmp_path, classifier(epochs=5), "stopped", before=[_StopAt(3, error)]
    )
    assert interrupted == isinstance(error, KeyboardInterrupt)
    assert not (folder / "history.csv").exists()  # a failed fit writes none: all came live
    client, run_id = tracked.client, tracked.run_id
    done = client.get_run(run_id)
    assert (done.info.status, done.data.tags["runner.status"]) == (status, runner_status)
    for key in ("lr", *COLUMNS):
        assert _steps(client, run_id, key) == _column(straight, key), key


def test_a_resumed_fit_logs_every_epoch_at_its_own_number(tmp_path):
    config = classifier(epochs=4, checkpoint={"every": 1})
    straight = _untracked(tmp_path, config, "straight")
    first = copy.deepcopy(config)
    first["fit"]["epochs"] = 2
    parent, _, _ = _tracked_fit(tmp_path, first, "first")
    resumed_config = copy.deepcopy(config)
    resumed_config["fit"]["resume_from"] = "first"
    probe = _Probe(tmp_path / "store")
    resumed, folder, _ = _tracked_fit(tmp_path, resumed_config, "resumed", after=[probe])
    assert probe.seen == [[1, 2, 3], [1, 2, 3, 4]]  # the parent's epochs before the new ones
    client = resumed.client
    assert json.loads((folder / "result.json").read_text())["parent"]["epoch"] == 2
    for key in ("lr", *COLUMNS):
        assert _steps(client, parent.run_id, key) == _column(straight[:2], key), key
        # epochs 3 and 4 at steps 3 and 4, after the parent's 1 and 2 (as its history.csv)
        assert _steps(client, resumed.run_id, key) == _column(_history(folder), key), key
        assert _steps(client, resumed.run_id, key) == _column(straight, key), key
    assert client.get_run(resumed.run_id).info.status == "FINISHED"


def test_a_resumed_fit_failing_in_its_first_new_epoch_keeps_its_parents_epochs(tmp_path):
    """The restored epochs are logged before the first new one starts: a fit that fails in it
    (no history.csv) still shows its parent's epochs 1 and 2, at their own numbers."""
    config = classifier(epochs=4, checkpoint={"every": 1})
    first = copy.deepcopy(config)
    first["fit"]["epochs"] = 2
    straight = _untracked(tmp_path, first, "straight")
    _tracked_fit(tmp_path, first, "first")
    resumed_config = copy.deepcopy(config)
    resumed_config["fit"]["resume_from"] = "first"
    error = DataError([Problem("model.inputs.x", "a numeric error")])
    resumed, folder, _ = _tracked_fit(
        tmp_path, resumed_config, "resumed", before=[_StopAt(3, error)]
    )
    assert not (folder / "history.csv").exists()
    client = resumed.client
    for key in ("lr", *COLUMNS):
        assert _steps(client, resumed.run_id, key) == _column(straight, key), key
    assert client.get_run(resumed.run_id).info.status == "FAILED"


def test_a_store_failing_mid_fit_does_not_stop_it_and_the_end_logs_the_epochs(
    tmp_path, monkeypatch, caplog
):
    config = {**classifier(epochs=3), "tracking": "mlflow", "tracking_uri": "store"}
    folder = tmp_path / "run"
    tracked = mlflow_runs.TrackedRun.start(config, tmp_path, folder, "run", "m")
    real = tracked.client.log_batch
    calls = iter(range(100))

    def flaky(*args, **kwargs):  # the store is away for epochs 1 and 2
        if next(calls) < 2:
            raise OSError("store unreachable")
        return real(*args, **kwargs)

    monkeypatch.setattr(tracked.client, "log_batch", flaky)
    assert run(config, folder, tmp_path, epoch_callbacks=[tracked.epochs]).exit_code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "tracking: could not log epoch 1 to MLflow (OSError: store unreachable); the fit goes "
        "on and the end of the run logs it again"
    ]
    tracked.finish(folder, config)
    for key in ("lr", *COLUMNS):  # epochs 1-3 at epoch 3, once each
        assert _steps(tracked.client, tracked.run_id, key) == _column(_history(folder), key)


def test_a_local_store_mlflow_cannot_create_is_a_config_error_naming_tracking_uri(tmp_path):
    (tmp_path / "afile").write_text("not a folder\n")
    uri = (tmp_path / "afile" / "store").as_uri()
    with pytest.raises(ConfigError) as caught:
        mlflow_runs.open_client(uri)
    (problem,) = caught.value.problems
    assert problem.path == "tracking_uri"
    assert problem.message.startswith(f"MLflow cannot use {uri!r}: [Errno 20] Not a directory")


def _claim_sweep(sweep_dir: Path) -> None:
    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}, "callbacks": {}}})
    callbacks.ClaimFolder().on_multirun_start(cfg)


def test_an_unused_sweep_folder_is_unclaimed_with_the_folders_its_claim_made(tmp_path):
    sweep = tmp_path / "multirun" / "day" / "sweep"
    _claim_sweep(sweep)
    assert (sweep / ".runner-claim").is_file()
    callbacks.unclaim_unused_sweep(sweep)
    assert not (tmp_path / "multirun").exists()
    mine = tmp_path / "mine"  # made by the user: it stays, without the marker
    mine.mkdir()
    _claim_sweep(mine)
    callbacks.unclaim_unused_sweep(mine)
    assert mine.is_dir() and list(mine.iterdir()) == []


def test_a_sweep_folder_holding_jobs_keeps_its_claim(tmp_path):
    sweep = tmp_path / "sweep"
    _claim_sweep(sweep)
    (sweep / "0").mkdir()  # a job ran
    callbacks.unclaim_unused_sweep(sweep)
    assert (sweep / ".runner-claim").is_file()


DIVERGES = """\
inputs:
  x: {shape: [1], data: [[1.0]]}
layers:
  out:
    type: Dense
    output_dim: 1
    weights: {W: [[1.0]], b: [0.0]}
targets:
  out: [[0.0]]
fit: {epochs: 15, batch_size: 1, loss: mse, optimizer: {name: sgd, lr: 25.25}}
"""


@pytest.mark.slow
def test_a_fit_that_diverges_at_epoch_11_is_failed_with_epochs_1_to_10(tmp_path, cli):
    """s = w*1 + b starts at 1; mse's gradient is 2s for w and for b, so one sgd update makes
    s - 4 * 25.25 * s = -100 s. Epoch k's loss is s^2 before its update, 1e4^(k-1): 1e36 at
    epoch 10, then 1e40 overflows float32 and the fit fails (training diverged) at epoch 11."""
    conf = tmp_path / "userconf" / "model"
    conf.mkdir(parents=True)
    (conf / "diverges.yaml").write_text(DIVERGES)
    proc = cli(
        f"hydra.searchpath=[file://{conf.parent}]",
        "+model=diverges",
        "task=fit",
        "tracking=mlflow",
        "tracking_uri=store",
        "hydra.run.dir=run",
    )
    assert proc.returncode == 1, proc.stderr + proc.stdout
    assert "training diverged: the loss is inf at epoch 11" in proc.stdout + proc.stderr
    assert "RuntimeWarning" not in proc.stderr  # the one clear message, no NumPy noise
    client = MlflowClient((tmp_path / "store").as_uri())
    (run_,) = client.search_runs([client.get_experiment_by_name("diverges").experiment_id])
    assert (run_.info.status, run_.data.tags["runner.status"]) == ("FAILED", "failed")
    losses = _steps(client, run_.info.run_id, "loss")
    assert [step for step, _ in losses] == list(range(1, 11))
    for step, value in losses:
        assert value == pytest.approx(1e4 ** (step - 1), rel=1e-6)
    assert _steps(client, run_.info.run_id, "lr") == [(k, 25.25) for k in range(1, 11)]


@pytest.mark.slow
def test_a_sweep_refused_by_its_store_leaves_no_sweep_folder_and_runs_again(tmp_path, cli):
    (tmp_path / "afile").write_text("not a folder\n")
    refused = ("foo://nowhere", "'foo://nowhere'"), ("afile/store", "'file://")
    for uri, shown in (refused[0], *refused):  # the same command again: the same error
        proc = cli(
            "-m",
            "+model=dense_example",
            "seed=0,1",
            "tracking=mlflow",
            f"tracking_uri={uri}",
            "hydra.sweep.dir=runs/sweep",
        )
        assert proc.returncode == 2, proc.stderr + proc.stdout
        assert proc.stderr.startswith(
            f"invalid config: 1 problem\n  tracking_uri: MLflow cannot use {shown}"
        ), proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        assert "already holds" not in proc.stderr
        assert not (tmp_path / "runs").exists()

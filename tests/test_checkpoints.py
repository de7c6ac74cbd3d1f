"""Checkpoints and fit.resume_from: a fit stopped after epoch k (or killed with SIGKILL) and
resumed ends bit-identical to the uninterrupted fit; every refusal names fit.resume_from."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from test_fit import BLOBS, classifier

from runner.run import run
from runner.streams import dropout_rng, shuffle_rng


@pytest.fixture(autouse=True)
def _no_history_plot(monkeypatch):
    """history.png takes about a second per fit (matplotlib); these tests read history.csv."""
    monkeypatch.setattr("runner.train.history.plot_history", lambda history, path: None)


def fit(cwd: Path, config: dict, name: str) -> tuple[int, dict, Path]:
    folder = cwd / name
    outcome = run(copy.deepcopy(config), folder, cwd)
    return outcome.exit_code, json.loads((folder / "result.json").read_text()), folder


def ok(cwd: Path, config: dict, name: str) -> tuple[dict, Path]:
    code, result, folder = fit(cwd, config, name)
    assert code == 0, result.get("error")
    return result, folder


def weights(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "weights.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def index(folder: Path) -> dict:
    return json.loads((folder / "checkpoints" / "checkpoints.json").read_text())


def with_epochs(config: dict, epochs: int, resume_from: str | None = None) -> dict:
    out = copy.deepcopy(config)
    out["fit"]["epochs"] = epochs
    if resume_from is not None:
        out["fit"]["resume_from"] = resume_from
    return out


def assert_same_fit(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert wa[key].dtype == wb[key].dtype == np.float32
        assert np.array_equal(wa[key], wb[key]), key
    ha = json.loads((a / "result.json").read_text())["history"]
    hb = json.loads((b / "result.json").read_text())["history"]
    assert ha == hb
    assert (a / "history.csv").read_bytes() == (b / "history.csv").read_bytes()


# Dropout (p 0.3) and shuffling are on in every case: the Generators must resume exactly.
CASES = {
    "sgd-nesterov-step": {
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
        "schedule": {"name": "step", "factor": 0.5, "drop_every": 2},
        "checkpoint": {"every": 1},
    },
    "adam-plateau-restore-best": {
        "optimizer": {"name": "adam", "lr": 0.02},
        "schedule": {
            "name": "plateau",
            "patience": 1,
            "factor": 0.5,
            "min_delta": 0.1,
            "cooldown": 1,
        },
        "checkpoint": {"every": 2, "best": True},
        "restore_best": True,
        "patience": 50,
    },
    "adam-cosine-warmup": {
        "optimizer": {"name": "adam", "lr": 0.001},
        "schedule": {
            "name": "cosine",
            "decay_steps": 20,
            "warmup_target": 0.02,
            "warmup_steps": 8,
            "alpha": 0.1,
        },
        "checkpoint": {"every": 1},
    },
}


@pytest.mark.parametrize("case", list(CASES))
def test_stopped_and_resumed_fit_is_bit_identical(tmp_path, case):
    config = classifier(**CASES[case])
    ok(tmp_path, with_epochs(config, 6), "straight")
    ok(tmp_path, with_epochs(config, 3), "first")  # stopped after epoch 3
    result, _ = ok(tmp_path, with_epochs(config, 6, "first"), "resumed")
    assert_same_fit(tmp_path / "straight", tmp_path / "resumed")
    latest = index(tmp_path / "first")["latest"]
    assert result["parent"] == {
        "run": "first",
        "checkpoint": f"checkpoints/{latest['file']}",
        "sha256": latest["sha256"],
        "epoch": latest["epoch"],
    }
    lrs = [r["lr"] for r in result["history"]]
    assert len(set(lrs)) > 1, lrs  # the schedule did change the rate in these epochs


def test_a_resumed_fit_resumes_again(tmp_path):
    config = classifier(**CASES["sgd-nesterov-step"])
    ok(tmp_path, with_epochs(config, 6), "straight")
    ok(tmp_path, with_epochs(config, 2), "a")
    ok(tmp_path, with_epochs(config, 4, "a"), "b")
    result, _ = ok(tmp_path, with_epochs(config, 6, "b"), "c")
    assert result["parent"]["run"] == "b" and result["parent"]["epoch"] == 4
    assert_same_fit(tmp_path / "straight", tmp_path / "c")


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_killed_with_sigkill_mid_run_resumes_bit_identical(tmp_path, optimizer):
    """A fit of many epochs runs in a child process and is killed (SIGKILL) once it has
    written its second checkpoint; resumed, it equals the uninterrupted fit."""
    config = classifier(
        batch_size=2,
        optimizer={
            "name": optimizer,
            "lr": 0.01,
            **({"momentum": 0.9} if optimizer == "sgd" else {}),
        },
        schedule={"name": "plateau", "patience": 1, "factor": 0.5, "min_delta": 0.01},
        checkpoint={"every": 1},
    )
    config["model"]["inputs"]["x"]["data"] = {"dataset": {**BLOBS["dataset"], "rows": 600}}
    config["model"]["targets"]["out"]["dataset"]["rows"] = 600
    (tmp_path / "config.json").write_text(json.dumps(with_epochs(config, 10_000)))
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, sys; from pathlib import Path; from runner.run import run; "
            "run(json.loads(Path('config.json').read_text()), Path('killed'), Path('.'))",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = tmp_path / "killed" / "checkpoints" / "checkpoints.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and child.poll() is None:
            if marker.exists() and json.loads(marker.read_text())["latest"]["epoch"] >= 2:
                break
            time.sleep(0.005)
        assert child.poll() is None, "the child ended before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "result.json").exists()  # it never finished
    k = index(tmp_path / "killed")["latest"]["epoch"]
    assert k >= 2
    ok(tmp_path, with_epochs(config, k + 2), "straight")
    result, _ = ok(tmp_path, with_epochs(config, k + 2, "killed"), "resumed")
    assert result["parent"]["epoch"] == k
    assert_same_fit(tmp_path / "straight", tmp_path / "resumed")


# ---- what a checkpoint holds ---------------------------------------------------------------
def test_checkpoint_files_every_n_epochs_and_the_best(tmp_path):
    config = classifier(epochs=5, checkpoint={"every": 2, "best": True, "monitor": "val_accuracy"})
    result, folder = ok(tmp_path, config, "run")
    history = result["history"]
    accuracies = [r["val_accuracy"] for r in history]
    best_epoch = 1 + accuracies.index(max(accuracies))  # the first epoch at the maximum
    saved = index(folder)
    latest_epoch = max(4, best_epoch)  # the last write: periodic at 4, or a later best
    assert saved["latest"]["epoch"] == latest_epoch
    assert saved["best"]["epoch"] == best_epoch
    files = sorted(p.name for p in (folder / "checkpoints").iterdir())
    expected = {"checkpoints.json", f"epoch-{latest_epoch:04d}.npz", f"epoch-{best_epoch:04d}.npz"}
    assert set(files) == expected  # older ones deleted, no temporary file left
    assert result["files"][f"checkpoints/epoch-{best_epoch:04d}.npz"] == saved["best"]["sha256"]
    entry = saved["latest"]
    assert entry["history"] == history[: entry["epoch"]]
    with np.load(folder / "checkpoints" / entry["file"], allow_pickle=False) as npz:
        keys = set(npz.files)
        assert {"weights/h/W", "weights/out/b", "optimizer/m/h/W", "optimizer/v/out/b"} <= keys
    # the exact Generator states after `epoch` epochs, drawn again here independently
    rng = shuffle_rng(3)
    for _ in range(entry["epoch"]):
        rng.permutation(90)
    assert entry["streams"]["shuffle"] == json.loads(json.dumps(rng.bit_generator.state))
    assert entry["streams"]["dropout"] != dropout_rng(3).bit_generator.state  # it was used
    assert entry["optimizer"] == {"name": "adam", "iterations": 6 * entry["epoch"], "lr": 0.01}


def test_no_checkpoints_unless_asked(tmp_path):
    _, folder = ok(tmp_path, classifier(epochs=2), "run")
    assert not (folder / "checkpoints").exists()


# ---- refusals ------------------------------------------------------------------------------
def refused(cwd: Path, config: dict, fragment: str, path: str = "fit.resume_from") -> str:
    code, result, _ = fit(cwd, config, f"refused{len(list(cwd.iterdir()))}")
    assert code == 2, result
    problems = result["error"]["problems"]
    assert any(p["path"] == path and fragment in p["message"] for p in problems), problems
    return next(p["message"] for p in problems if p["path"] == path)


@pytest.fixture
def parent(tmp_path):
    config = classifier(checkpoint={"every": 1})
    ok(tmp_path, with_epochs(config, 2), "parent")
    return config


def test_refuses_another_model_or_config(tmp_path, parent):
    config = with_epochs(parent, 4, "parent")
    config["model"]["layers"]["h"]["output_dim"] = 16
    config["fit"]["optimizer"]["lr"] = 0.02
    message = refused(tmp_path, config, "another model or config")
    assert "model.layers.h.output_dim is 16 here, 8 there" in message
    assert "fit.optimizer.lr is 0.02 here, 0.01 there" in message


def test_refuses_other_data(tmp_path, parent):
    config = with_epochs(parent, 4, "parent")
    config["model"]["inputs"]["x"]["data"]["dataset"]["seed"] = 2
    refused(tmp_path, config, "trained on other data: the inputs x, validation inputs x differ")


def test_refuses_a_checkpoint_that_fails_its_sha256(tmp_path, parent):
    npz = tmp_path / "parent" / "checkpoints" / "epoch-0002.npz"
    data = bytearray(npz.read_bytes())
    data[-30] ^= 0xFF
    npz.write_bytes(bytes(data))
    refused(tmp_path, with_epochs(parent, 4, "parent"), "epoch-0002.npz does not match the sha256")


def test_refuses_a_checkpoint_whose_index_changed_after_the_run(tmp_path, parent):
    index_file = tmp_path / "parent" / "checkpoints" / "checkpoints.json"
    saved = json.loads(index_file.read_text())
    saved["config"]["seed"] = 3  # still matches this config, but not the run's result.json
    index_file.write_text(json.dumps(saved))
    refused(
        tmp_path,
        with_epochs(parent, 4, "parent"),
        "checkpoints/checkpoints.json does not match the sha256 recorded in its result.json",
    )


def test_refuses_an_index_or_result_nested_past_the_json_parsers_depth(tmp_path):
    config = classifier()
    ok(tmp_path, with_epochs(config, 2), "plain")
    (tmp_path / "plain" / "result.json").write_text("[" * 100_000)  # read for its file list
    (tmp_path / "plain" / "checkpoints").mkdir()
    (tmp_path / "plain" / "checkpoints" / "checkpoints.json").write_text("[" * 100_000)
    refused(tmp_path, with_epochs(config, 4, "plain"), "cannot be read (maximum recursion depth")


def test_refuses_a_symlinked_checkpoint(tmp_path, parent):
    npz = tmp_path / "parent" / "checkpoints" / "epoch-0002.npz"
    copy_ = tmp_path / "elsewhere.npz"
    copy_.write_bytes(npz.read_bytes())
    npz.unlink()
    npz.symlink_to(copy_)
    refused(tmp_path, with_epochs(parent, 4, "parent"), "is a symlink (never followed)")


def test_refuses_a_run_without_checkpoints(tmp_path):
    config = classifier()
    ok(tmp_path, with_epochs(config, 2), "plain")
    refused(tmp_path, with_epochs(config, 4, "plain"), "holds no checkpoints")
    refused(tmp_path, with_epochs(config, 4, "missing"), "is not a folder")


def test_refuses_a_run_folder_outside_the_allowed_directories(tmp_path, parent):
    cwd = tmp_path / "project"
    cwd.mkdir()
    config = with_epochs(parent, 4, str(tmp_path / "parent"))
    refused(cwd, config, "outside the directories a run may read")


def test_refuses_when_no_epochs_are_left_or_the_fit_stopped_early(tmp_path, parent):
    refused(
        tmp_path,
        with_epochs(parent, 2, "parent"),
        "set fit.epochs above 2",
        path="fit.epochs",
    )
    stopping = classifier(checkpoint={"every": 1}, patience=1, min_delta=100.0)
    ok(tmp_path, stopping, "stopped")  # stops after epoch 2 of 4
    refused(tmp_path, with_epochs(stopping, 8, "stopped"), "stopped early after epoch 2")


def test_resume_from_is_not_a_model_setting(tmp_path, parent):
    config = with_epochs(parent, 4)
    config["model"]["fit"] = {"resume_from": "parent"}
    refused(tmp_path, config, "is a run setting", path="model.fit.resume_from")


def test_validate_checks_the_checkpoint_too(tmp_path, parent):
    config = with_epochs(parent, 4, "parent")
    config["task"] = "validate"
    config["model"]["layers"]["h"]["activation"] = "relu"
    refused(tmp_path, config, 'model.layers.h.activation is "relu" here')


def test_the_python_api_resumes_too(tmp_path):
    from runner.api import Model

    config = classifier(**CASES["adam-cosine-warmup"])
    ok(tmp_path, with_epochs(config, 5), "straight")
    ok(tmp_path, with_epochs(config, 2), "first")
    model = Model.from_config(with_epochs(config, 5, "first"), tmp_path)
    result = model.fit()
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4, 5]
    straight = weights(tmp_path / "straight")
    for key, value in model.weights.items():
        assert np.array_equal(value, straight[key]), key


def test_a_streamed_fit_with_block_shuffle_resumes_bit_identical(tmp_path):
    """Inputs and targets memory-mapped from .npy files (streamed batch by batch), the block
    shuffle drawn from the same shuffle stream: resumed, it equals the uninterrupted fit;
    the streamed columns' digests catch a changed file."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", (x @ rng.normal(size=(4, 2))).astype(np.float32))
    config = {
        "task": "fit",
        "seed": 3,
        "progress": False,
        "fit": {
            "batch_size": 8,
            "shuffle_block": 16,
            "loss": "mse",
            "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.5},
            "schedule": {"name": "exponential", "decay_rate": 0.5},
            "checkpoint": {"every": 1},
        },
        "model": {
            "inputs": {"x": {"data": {"path": "x.npy"}}},
            "layers": {"d": {"type": "Dense", "output_dim": 2}},
            "targets": {"d": {"path": "y.npy"}},
        },
    }
    ok(tmp_path, with_epochs(config, 5), "straight")
    ok(tmp_path, with_epochs(config, 2), "first")
    ok(tmp_path, with_epochs(config, 5, "first"), "resumed")
    assert_same_fit(tmp_path / "straight", tmp_path / "resumed")
    x[0, 0] += 1
    np.save(tmp_path / "x.npy", x)
    refused(tmp_path, with_epochs(config, 5, "first"), "trained on other data: the inputs x")

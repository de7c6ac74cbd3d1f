"""Run folders: claimed before anything is written, never written again, readable by others,
trusted on resume only when their recorded hashes check out, and every failure named."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from runner.output import artifacts
from runner.run import run
from tests.conftest import REPO, model_config

DENSE = model_config({"dense": {"type": "Dense", "output_dim": 3}})


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RUNNER_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def _cli(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# ---- §7 claims -------------------------------------------------------------------------------
def test_second_cli_run_into_a_finished_folder_changes_no_byte(tmp_path):
    first = _cli(tmp_path, "+model=dense_example", "hydra.run.dir=fixed")
    first.communicate(timeout=120)
    assert first.returncode == 0
    before = _hashes(tmp_path / "fixed")
    assert {".hydra/config.yaml", "run.log", "result.json"} <= set(before)
    again = _cli(tmp_path, "+model=dense_example", "hydra.run.dir=fixed", "seed=4")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 2
    assert "already holds a finished run" in err and "Traceback" not in out + err
    assert _hashes(tmp_path / "fixed") == before


def test_two_runs_started_together_into_one_folder_one_is_refused(tmp_path):
    procs = [
        _cli(tmp_path, "+model=dense_example", "hydra.run.dir=shared", f"seed={i}")
        for i in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], outs
    winner = codes.index(0)
    loser_err = outs[1 - winner][1]
    assert "shared" in loser_err and (
        "claimed by another run" in loser_err or "already holds a finished run" in loser_err
    )
    result = json.loads((tmp_path / "shared" / "result.json").read_text())
    assert result["status"] == "ok" and result["seed"] == winner
    assert not (tmp_path / "shared" / artifacts.CLAIM).exists()


def test_second_multirun_into_a_sweep_folder_is_refused_untouched(tmp_path):
    args = ["-m", "+model=dense_example", "seed=0,1", "hydra.sweep.dir=sw"]
    first = _cli(tmp_path, *args)
    first.communicate(timeout=300)
    assert first.returncode == 0
    before = _hashes(tmp_path / "sw")
    again = _cli(tmp_path, *args)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 2 and "already holds a sweep" in err
    assert _hashes(tmp_path / "sw") == before


def test_python_path_claims_the_folder_itself(tmp_path):
    folder = tmp_path / "run"
    artifacts.claim(folder)  # as if another run (here: this process) were using it
    artifacts.keep_claim(folder)  # ... but not through this process's own bookkeeping
    with pytest.raises(FileExistsError, match="claimed by another run"):
        run(DENSE, folder)
    assert sorted(p.name for p in folder.iterdir()) == [artifacts.CLAIM]
    outcome = run(DENSE, tmp_path / "other")
    assert outcome.exit_code == 0
    assert not (tmp_path / "other" / artifacts.CLAIM).exists()  # dropped once finished


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        run(DENSE, tmp_path / "run")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir()}
    assert modes == {
        n: 0o644
        for n in (
            "config.yaml",
            "summary.txt",
            "graph.mmd",
            "outputs.npz",
            "weights.npz",
            "result.json",
        )
    }
    old = os.umask(0o077)
    try:
        artifacts.write_text(tmp_path / "private.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "private.txt").stat().st_mode & 0o777 == 0o600


def test_result_json_records_the_sha256_of_each_file(tmp_path):
    run(DENSE, tmp_path / "run")
    files = json.loads((tmp_path / "run" / "result.json").read_text())["files"]
    assert set(files) == {"config.yaml", "summary.txt", "graph.mmd", "outputs.npz", "weights.npz"}
    for name, sha in files.items():
        assert hashlib.sha256((tmp_path / "run" / name).read_bytes()).hexdigest() == sha


# ---- resume trust ------------------------------------------------------------------------------
def _finished(tmp_path: Path) -> tuple[Path, str]:
    from runner.run import config_hash

    old = tmp_path / "old" / "0"
    assert run(DENSE, old).exit_code == 0
    return old, config_hash(DENSE)


def test_resume_reuses_a_folder_whose_hashes_check_out(tmp_path):
    from runner.sweep.callbacks import reuse_finished

    old, digest = _finished(tmp_path)
    reused = reuse_finished(tmp_path / "old", digest, tmp_path / "new", [])
    assert reused is not None and reused["resumed_from"] == str(old)
    assert (tmp_path / "new" / "outputs.npz").samefile(old / "outputs.npz")
    assert not (tmp_path / "new" / artifacts.CLAIM).exists()


def test_resume_refuses_a_tampered_file(tmp_path):
    from runner.sweep.callbacks import reuse_finished

    old, digest = _finished(tmp_path)
    np.savez(old / "outputs.npz", dense=np.zeros((1, 3), np.float32))  # forged outputs
    assert reuse_finished(tmp_path / "old", digest, tmp_path / "new", []) is None
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


def test_resume_never_follows_a_symlink(tmp_path):
    from runner.sweep.callbacks import reuse_finished

    old, digest = _finished(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_bytes((old / "summary.txt").read_bytes())  # same bytes, outside the folder
    (old / "summary.txt").unlink()
    (old / "summary.txt").symlink_to(secret)
    assert reuse_finished(tmp_path / "old", digest, tmp_path / "new", []) is None
    new = tmp_path / "new"
    assert not new.exists() or not [p for p in new.rglob("*") if p.is_file()]


# ---- §8 named mistakes ------------------------------------------------------------------------
CASES = [
    (
        "400-digit output_dim",
        model_config({"d": {"type": "Dense", "output_dim": int("9" * 400)}}),
        "model.layers.d.output_dim",
        "400 digits",
    ),
    (
        "uniform overflow",
        model_config(
            {"d": {"type": "Dense", "output_dim": 2}},
            {
                "x": {
                    "shape": [3],
                    "data": {
                        "random": {
                            "distribution": "uniform",
                            "low": -1e308,
                            "high": 1e308,
                            "rows": 2,
                        }
                    },
                }
            },
        ),
        "model.inputs.x.data.random.high",
        "overflows a float",
    ),
    (
        "65-dim reshape",
        model_config(
            {"r": {"type": "Reshape", "dims": [1] * 65}}, {"x": {"shape": [1], "data": [[1]]}}
        ),
        "model.layers.r.dims",
        "at most 64",
    ),
    (
        "65-dim input",
        model_config(
            {"f": {"type": "Flatten"}}, {"x": {"shape": [1] * 65, "data": {"random": {"rows": 1}}}}
        ),
        "model.inputs.x.shape",
        "at most 64",
    ),
    (
        "string in expect.values",
        model_config(
            {"d": {"type": "Dense", "output_dim": 3}}, expect={"d": {"values": [[1, "a", 2]]}}
        ),
        "model.expect.d.values[0][1]",
        "expected a number",
    ),
]


@pytest.mark.parametrize("case_id,config,path,fragment", CASES, ids=[c[0] for c in CASES])
def test_machine_limits_are_named_config_errors(run_config, case_id, config, path, fragment):
    outcome, result = run_config(config)
    assert outcome.exit_code == 2 and result["status"] == "error"
    assert result["error"]["kind"] == "ConfigError"
    assert any(
        p["path"] == path and fragment in p["message"] for p in result["error"]["problems"]
    ), result["error"]


def test_a_csv_field_beyond_the_csv_limit_is_named(run_config, tmp_path):
    (tmp_path / "big.csv").write_text("1," + "9" * 140_000 + "\n")
    outcome, result = run_config(
        model_config(
            {"d": {"type": "Dense", "output_dim": 2}}, {"x": {"data": {"path": "big.csv"}}}
        )
    )
    assert outcome.exit_code == 2
    problem = result["error"]["problems"][0]
    assert (
        problem["path"] == "model.inputs.x.data"
        and "field larger than field limit" in problem["message"]
    )


def test_a_full_disk_is_named_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    outcome = run(DENSE, tmp_path / "run")
    assert outcome.exit_code == 1
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "failed" and result["error"]["kind"] == "WriteFailed"
    assert "No space left on device" in result["error"]["message"]
    assert str(tmp_path / "run" / "outputs.npz") in result["error"]["message"]
    assert not [
        p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".") or ".tmp" in p.name
    ]


def test_a_read_only_file_system_is_named(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and Path(path).parent == tmp_path / "run":
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    (tmp_path / "run").mkdir()
    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OSError) as info:
        run(DENSE, tmp_path / "run")
    assert artifacts.machine_error(info.value).startswith("Read-only file system")
    assert list((tmp_path / "run").iterdir()) == []


def test_cli_names_a_full_disk(tmp_path):
    """The whole CLI on a disk that fills while writing outputs.npz: named, exit 1."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import errno, numpy\n"
        "def full(*a, **k):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "numpy.savez = full\n"
    )
    env = {**_env(), "PYTHONPATH": f"{shim}{os.pathsep}{REPO}"}
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "+model=dense_example", "hydra.run.dir=out"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "No space left on device" in proc.stdout and "outputs.npz" in proc.stdout
    assert "invalid config" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not [p.name for p in (tmp_path / "out").iterdir() if ".tmp" in p.name]


def test_report_on_a_malformed_result_json(tmp_path):
    job = tmp_path / "sweep" / "0"
    job.mkdir(parents=True)
    (job / "result.json").write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "runner.sweep.report", str(tmp_path / "sweep")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert f"job 0 error: unreadable {job / 'result.json'}" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    (job / "result.json").write_text('{"status": "ok", "metrics": [1, 2]}')
    proc = subprocess.run(
        [sys.executable, "-m", "runner.sweep.report", str(tmp_path / "sweep")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "'metrics' has the wrong type" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


# ---- plugins that exit or raise KeyboardInterrupt -------------------------------------------
# The person running allows each plugin (allow_plugins); the model names it under plugins.
def _plugin(tmp_path: Path, monkeypatch, name: str, body: str) -> dict:
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return {**DENSE, "allow_plugins": [name], "model": {**DENSE["model"], "plugins": [name]}}


def test_plugin_calling_sys_exit_at_import_is_named(run_config, tmp_path, monkeypatch):
    config = _plugin(tmp_path, monkeypatch, "exit_plugin", "import sys\nsys.exit(3)\n")
    outcome, result = run_config(config)
    assert outcome.exit_code == 2 and result["status"] == "error"
    problem = result["error"]["problems"][0]
    assert problem["path"] == "model.plugins[0]"
    assert "plugin module 'exit_plugin' called sys.exit(3)" in problem["message"]


def test_plugin_raising_keyboardinterrupt_at_import_leaves_an_honest_result(tmp_path, monkeypatch):
    config = _plugin(tmp_path, monkeypatch, "ki_plugin", "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "run")
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "interrupted"
    assert "ki_plugin" in result["error"]["message"]


# ---- Ctrl-C ----------------------------------------------------------------------------------
SLOW = """\
inputs:
  x:
    shape: [64]
    data: {random: {rows: 200000}}
layers:
  rep: {type: RepeatVector, n: 50}
  t: {type: TimeDistributedDense, output_dim: 64, activation: tanh}
  pool: {type: TimeDistributedMerge, mode: ave}
"""


@pytest.mark.slow
def test_ctrl_c_exits_130_without_traceback_or_success(tmp_path):
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "slow.yaml").write_text(SLOW)
    proc = _cli(
        tmp_path,
        "--config-dir",
        str(tmp_path / "conf"),
        "+model=slow",
        "batch_size=10",
        "hydra.run.dir=slow",
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "slow" / "summary.txt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "the model finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in out + err
    result = json.loads((tmp_path / "slow" / "result.json").read_text())
    assert result["status"] == "interrupted"

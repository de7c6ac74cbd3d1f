"""Nothing half-written: result.json is written last and atomically, a killed run leaves none
(and the sweep summary calls that job incomplete), and earlier runs are never touched."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from runner.output import artifacts
from runner.run import run

DENSE = {
    "model": {
        "inputs": {"x": {"shape": [3], "data": [[10, 20, 30]]}},
        "layers": {
            "dense": {
                "type": "Dense",
                "output_dim": 3,
                "weights": {"W": [[0.1, 0.2, 0.5]] * 3, "b": [0, 0, 0]},
            }
        },
    }
}


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: content hash and modification time (ns)."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_result_json_is_the_last_file_written(tmp_path, monkeypatch):
    replaced: list[tuple[str, list[str]]] = []
    real_replace = os.replace

    def spy(src, dst, *args, **kwargs):
        present = sorted(p.name for p in Path(dst).parent.iterdir() if not p.name.startswith("."))
        replaced.append((Path(dst).name, present))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", spy)
    outcome = run(DENSE, tmp_path / "run")
    assert outcome.result["outputs"]["dense"]["values"] == [[6.0, 12.0, 30.0]]
    names = [name for name, _ in replaced]
    assert names[-1] == "result.json" and names.count("result.json") == 1
    last_present = replaced[-1][1]
    assert {"config.yaml", "summary.txt", "outputs.npz", "weights.npz"} <= set(last_present)
    assert "result.json" not in last_present  # it did not exist before its single rename
    # every file of the folder arrived by an atomic rename, and no temporary file is left
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert files - {"run.log"} <= set(names)
    assert not [f for f in files if f.startswith(".") or ".tmp" in f]


def test_a_failed_write_leaves_no_result_and_no_temporary_file(tmp_path, monkeypatch):
    """If writing result.json fails halfway (disk full), there is no result.json at all."""
    real_fsync = os.fsync

    def failing_fsync(fd):
        if any(p.name.startswith(".result.json.") for p in (tmp_path / "run").iterdir()):
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        run(DENSE, tmp_path / "run")
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert "result.json" not in names
    assert not [n for n in names if n.startswith(".result.json")]
    assert {"config.yaml", "outputs.npz"} <= set(names)  # the run itself got that far


def test_a_finished_run_folder_is_never_overwritten(tmp_path):
    first = run(DENSE, tmp_path / "run")
    assert first.exit_code == 0
    before = _snapshot(tmp_path / "run")
    with pytest.raises(FileExistsError, match="never overwritten"):
        run({**DENSE, "seed": 1}, tmp_path / "run")
    assert _snapshot(tmp_path / "run") == before


def test_an_error_result_is_written_atomically_too(tmp_path):
    outcome = run({"model": {**DENSE["model"], "outputs": ["nope"]}}, tmp_path / "run")
    text = (tmp_path / "run" / "result.json").read_text()
    assert outcome.exit_code == 2 and json.loads(text)["status"] == "error"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["result.json"]


# ---- SIGKILL in the middle of a sweep job ---------------------------------------------------
SLOW_MODEL = {
    # RepeatVector n makes the work: with n=1 a job takes milliseconds, with n=3000 minutes.
    "inputs": {"x": {"shape": [64], "data": {"random": {"rows": 4000}}}},
    "layers": {
        "rep": {"type": "RepeatVector", "n": 1},
        **{
            f"t{i}": {"type": "TimeDistributedDense", "output_dim": 64, "activation": "tanh"}
            for i in range(8)
        },
        "pool": {"type": "TimeDistributedMerge", "mode": "ave"},
    },
}


@pytest.mark.slow
def test_sigkill_mid_run_leaves_no_result_and_the_sweep_reports_it_incomplete(tmp_path):
    from runner.sweep import report

    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "slow.yaml").write_text(yaml.safe_dump(SLOW_MODEL, sort_keys=False))
    earlier = tmp_path / "outputs" / "earlier"
    assert run(DENSE, earlier).exit_code == 0
    earlier_files = _snapshot(earlier)

    sweep = tmp_path / "outputs" / "sweep"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}  # this checkout
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "-m",
            "--config-dir",
            str(tmp_path / "conf"),
            "+model=slow",
            "model.layers.rep.n=1,3000",
            "batch_size=20",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120  # a guard against a hung start, not a timing test
        while not (sweep / "1" / "summary.txt").exists():
            assert proc.poll() is None, "the sweep ended before job 1 was planned"
            assert time.monotonic() < deadline, "job 1 never got planned"
            time.sleep(0.05)
        time.sleep(0.5)  # now inside job 1's forward pass
        assert proc.poll() is None, "job 1 finished too fast to be killed: make SLOW_MODEL bigger"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    done = json.loads((sweep / "0" / "result.json").read_text())
    assert done["status"] == "ok" and done["outputs"]["pool"]["shape"] == [4000, 64]
    killed = sorted(p.name for p in (sweep / "1").iterdir())
    assert "result.json" not in killed and "summary.txt" in killed
    assert not [n for n in killed if n.startswith(".result.json")]
    assert {job.name: job.status for job in report.collect(sweep)} == {"0": "ok", "1": "incomplete"}
    assert _snapshot(earlier) == earlier_files


def test_artifacts_write_text_is_atomic(tmp_path, monkeypatch):
    """An interrupted write keeps the previous content, never a prefix of the new one."""
    target = tmp_path / "summary.txt"
    artifacts.write_text(target, "old\n")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        artifacts.write_text(target, "new content that never fully arrives\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.txt"]

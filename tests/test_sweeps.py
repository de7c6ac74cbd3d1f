"""Sweeps: summaries rebuilt from the job folders, launchers, Optuna, resume, unique folders.

Every sweep runs the CLI in a subprocess on a small Dropout model of our own (a config dir added
with hydra.searchpath), so these tests do not depend on the shipped examples. The metric checked
is the fraction of zeros in each job's outputs.npz, recomputed here with NumPy.
"""

from __future__ import annotations

import csv
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from runner.sweep import report

REPO = Path(__file__).resolve().parent.parent

MODEL = """\
inputs:
  x:
    shape: [20]
    data: {random: {distribution: uniform, low: 0, high: 1, rows: 50}}
training: true
layers:
  drop:
    type: Dropout
    p: 0.3
"""

pytestmark = pytest.mark.slow


def _conf_dir(root: Path) -> Path:
    conf = root / "userconf"
    (conf / "model").mkdir(parents=True, exist_ok=True)
    (conf / "model" / "sweep_drop.yaml").write_text(MODEL)
    return conf


def _runner(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("HYDRA_FULL_ERROR", None)
    conf = _conf_dir(cwd)
    flags = [a for a in args if a == "-m"]  # Hydra's flags go before overrides
    overrides = [a for a in args if a != "-m"]
    cmd = [sys.executable, "-m", "runner", *flags, f"hydra.searchpath=[file://{conf}]", *overrides]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _sweep(cwd: Path, name: str, ps: str, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    sweep_dir = cwd / name
    proc = _runner(
        cwd,
        "-m",
        "+model=sweep_drop",
        f"model.layers.drop.p={ps}",
        f"hydra.sweep.dir={sweep_dir}",
        *extra,
    )
    return proc, sweep_dir


def _rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def _outputs(job_dir: Path) -> np.ndarray:
    with np.load(job_dir / "outputs.npz") as z:
        return z["drop"]


def _check_png(path: Path) -> tuple[int, int]:
    """Walk the PNG chunks, checking every CRC; return (width, height)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds, size = 8, [], (0, 0)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind!r}"
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        kinds.append(kind)
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    return size


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """One serial 4-job sweep whose last job (p=1.5) is invalid."""
    cwd = tmp_path_factory.mktemp("serial")
    proc, sweep_dir = _sweep(cwd, "sweep", "0.0,0.2,0.4,1.5")
    return cwd, proc, sweep_dir


def test_sweep_with_a_failing_job_summarizes_and_exits_nonzero(serial):
    cwd, proc, sweep_dir = serial
    assert proc.returncode == 2, proc.stderr
    rows = _rows(sweep_dir)
    assert [r["job"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["model.layers.drop.p"] for r in rows] == ["0.0", "0.2", "0.4", "1.5"]
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "error"]
    assert rows[3]["error"].startswith("model.layers.drop.p:")
    assert "1.5" in rows[3]["error"] and "\n" not in rows[3]["error"]
    zero = [float(np.mean(_outputs(sweep_dir / r["job"]) == 0)) for r in rows[:3]]
    assert zero[0] == 0.0 and 0.1 < zero[1] < 0.3 and 0.3 < zero[2] < 0.5
    assert [float(r["drop/zero_fraction"]) for r in rows[:3]] == zero
    assert [r["best"] for r in rows] == ["", "", "", ""]  # no metric declared: nothing ranked
    assert [Path(r["run_folder"]) for r in rows] == [sweep_dir / str(i) for i in range(4)]
    md = (sweep_dir / "summary.md").read_text()
    assert "Metric:" not in md and "Best job" not in md and "**best**" not in md
    assert "No best job: no metric declared" in md
    assert "declare a metric: hydra.callbacks.sweep.metric=NAME" in md
    bad = "- job 3 (error, `+model=sweep_drop model.layers.drop.p=1.5`): model.layers.drop.p:"
    assert bad in md
    assert not (sweep_dir / "summary.png").exists()  # nothing to plot against
    out = proc.stdout.strip().splitlines()
    at = out.index("sweep: 4 jobs: 3 ok, 1 error")
    assert out[at + 1].startswith("  job 3 error: model.layers.drop.p:")
    head = out[at + 2].split()
    assert head[:3] == ["job", "status", "model.layers.drop.p"]
    column = head.index("drop/zero_fraction")
    table = [line.split() for line in out[at + 3 : at + 7]]
    assert [r[:3] for r in table[:3]] == [
        ["0", "ok", "0.0"],
        ["1", "ok", "0.2"],
        ["2", "ok", "0.4"],
    ]
    assert [float(r[column]) for r in table[:3]] == pytest.approx(zero, rel=1e-5)
    assert table[3][:3] == ["3", "error", "1.5"]
    assert not any(line.startswith("best:") for line in out)
    assert out[at + 7].startswith("no best job: no metric declared and no objective")
    assert out[at + 8].startswith("  to rank the jobs, declare a metric: ")
    assert "hydra.callbacks.sweep.metric=NAME (metrics: " in out[at + 8]
    assert out[-1] == f"summary: {sweep_dir / 'summary.md'} (also summary.csv)"


def test_sweep_with_a_declared_metric_ranks_the_jobs(tmp_path):
    proc, sweep_dir = _sweep(
        tmp_path, "sweep", "0.0,0.2,0.4", "hydra.callbacks.sweep.metric=drop/zero_fraction"
    )
    assert proc.returncode == 0, proc.stderr
    rows = _rows(sweep_dir)
    zero = [float(np.mean(_outputs(sweep_dir / r["job"]) == 0)) for r in rows]
    assert [r["best"] for r in rows] == ["", "", "*"]  # highest zero fraction
    md = (sweep_dir / "summary.md").read_text()
    assert "Metric: `drop/zero_fraction` (maximized; set by hydra.callbacks.sweep.metric)" in md
    assert f"**Best job: 2**, `drop/zero_fraction` = {zero[2]:.6g}" in md
    assert _check_png(sweep_dir / "summary.png") == (640, 420)
    last = proc.stdout.strip().splitlines()[-2:]
    assert last[0].startswith(f"best: job 2 (drop/zero_fraction = {zero[2]:.6g}, max)")
    assert last[1] == f"summary: {sweep_dir / 'summary.md'} (also summary.csv, summary.png)"


def test_joblib_gives_bit_identical_outputs(serial, tmp_path):
    _, _, serial_dir = serial
    proc, sweep_dir = _sweep(
        tmp_path,
        "sweep",
        "0.0,0.2,0.4,1.5",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.callbacks.sweep.metric=drop/zero_fraction",  # read back by the launching process
    )
    assert proc.returncode == 2, proc.stderr  # exit code read from disk: jobs ran elsewhere
    rows = _rows(sweep_dir)
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "error"]
    assert [r["best"] for r in rows] == ["", "", "*", ""]  # highest zero fraction
    for job in range(3):
        a, b = _outputs(serial_dir / str(job)), _outputs(sweep_dir / str(job))
        assert a.dtype == b.dtype == np.float32
        assert a.tobytes() == b.tobytes()
    assert (sweep_dir / "summary.png").is_file()


def test_report_rebuilds_the_summary_from_disk(serial, tmp_path, capsys):
    import shutil

    _, _, serial_dir = serial
    sweep_dir = tmp_path / "copy"
    shutil.copytree(serial_dir, sweep_dir)
    for name in ("summary.csv", "summary.md"):  # no summary.png: no metric was declared
        (sweep_dir / name).unlink()
    (sweep_dir / "1" / "result.json").unlink()  # a job that died before its end
    code = report.main([str(sweep_dir), "--metric", "drop/mean", "--mode", "min"])
    assert code == 2  # job 3 is an invalid config
    rows = _rows(sweep_dir)
    assert [r["status"] for r in rows] == ["ok", "incomplete", "ok", "error"]
    assert rows[1]["error"] == "no result.json: the job did not finish"
    means = {j: float(np.mean(_outputs(sweep_dir / str(j)), dtype=np.float64)) for j in (0, 2)}
    best = min(means, key=means.get)
    assert [r["best"] == "*" for r in rows] == [j == best for j in range(4)]
    for j in (0, 2):
        assert float(rows[j]["drop/mean"]) == pytest.approx(means[j], rel=1e-12)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "sweep: 4 jobs: 2 ok, 1 incomplete, 1 error"
    assert out[-1].startswith(f"summary: {sweep_dir / 'summary.md'}")
    _check_png(sweep_dir / "summary.png")

    assert report.main([str(sweep_dir), "--no-plot"]) == 2  # no metric: the table, no best
    out = capsys.readouterr().out
    assert "\nbest:" not in out and "\nno best job: no metric declared" in out
    assert all(r["best"] == "" for r in _rows(sweep_dir))

    assert report.main([str(sweep_dir), "--metric", "drop/zero_fractoin"]) == 2
    err = capsys.readouterr().err
    assert "unknown metric 'drop/zero_fractoin' (did you mean 'drop/zero_fraction'?)" in err
    assert report.main([str(tmp_path / "nowhere")]) == 2


def test_resume_skips_jobs_that_finished_ok(serial, tmp_path):
    _, _, old = serial
    proc, new = _sweep(
        tmp_path, "resumed", "0.0,0.2,0.4,1.5,0.6", f"hydra.callbacks.sweep.resume_from={old}"
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.count("resumed: an identical config finished ok") == 3
    rows = _rows(new)
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "error", "ok"]
    assert [r["resumed_from"] for r in rows] == [
        str(old / "0"),
        str(old / "1"),
        str(old / "2"),
        "",
        "",
    ]
    for job in range(3):  # same files: hard links, not reruns
        assert (new / str(job) / "outputs.npz").samefile(old / str(job) / "outputs.npz")
        before = json.loads((old / str(job) / "result.json").read_text())
        after = json.loads((new / str(job) / "result.json").read_text())
        assert after["config_hash"] == before["config_hash"]
        assert after["timings"] == before["timings"]
    assert not (new / "3" / "outputs.npz").exists()  # failed before: tried again, fails
    fresh = _outputs(new / "4")
    assert float(rows[4]["drop/zero_fraction"]) == float(np.mean(fresh == 0))
    assert [r["best"] for r in rows] == [""] * 5  # no metric declared


def test_simultaneous_runs_land_in_distinct_folders(tmp_path):
    conf = _conf_dir(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runner",
                f"hydra.searchpath=[file://{conf}]",
                "+model=sweep_drop",
                f"seed={i}",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(8)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0] * 8
    folders = sorted(p.parent for p in (tmp_path / "outputs").rglob("result.json"))
    assert len(folders) == len(set(folders)) == 8
    seeds = []
    for folder in folders:
        overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
        result = json.loads((folder / "result.json").read_text())
        assert overrides == ["+model=sweep_drop", f"seed={result['seed']}"]
        assert result["overrides"] == overrides
        seeds.append(result["seed"])
    assert sorted(seeds) == list(range(8))


def test_optuna_reports_the_best_trial_and_its_folder(tmp_path):
    proc = _runner(
        tmp_path,
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.direction=maximize",
        "hydra.sweeper.sampler.seed=0",
        "model.layers.drop.p=interval(0.05,0.6)",
        "+model=sweep_drop",
        "hydra.callbacks.sweep.metric=drop/zero_fraction",
        f"hydra.sweep.dir={tmp_path / 'opt'}",
    )
    assert proc.returncode == 0, proc.stderr
    sweep_dir = tmp_path / "opt"
    rows = _rows(sweep_dir)
    assert [r["status"] for r in rows] == ["ok"] * 4
    zero = [float(np.mean(_outputs(sweep_dir / r["job"]) == 0)) for r in rows]
    best = int(np.argmax(zero))
    assert [r["best"] for r in rows] == ["*" if i == best else "" for i in range(4)]
    found = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert found["best_value"] == zero[best]
    assert found["best_params"]["model.layers.drop.p"] == float(rows[best]["model.layers.drop.p"])
    md = (sweep_dir / "summary.md").read_text()
    assert f"Optuna best trial: {best} (folder `{sweep_dir / str(best)}`)" in md
    assert f"optuna best trial: {best}  {sweep_dir / str(best)}" in proc.stdout


# Runs a command as a "child subreaper" (Linux prctl): processes the command leaves behind are
# re-parented to this wrapper instead of init, so every process it started can be found. Prints
# {"rc", "peak", "left"}: the command's exit code, the most descendants seen while it ran, and the
# command lines of descendants still alive 30 s after it ended (those are then killed).
SUBREAPER = r"""
import ctypes, json, os, signal, subprocess, sys, time

ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)      # PR_SET_CHILD_SUBREAPER


def descendants():
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parent[int(entry)] = int(fields[1])
    me, found = os.getpid(), []
    for pid in parent:
        p, seen = pid, 0
        while p in parent and seen < 64:
            p, seen = parent[p], seen + 1
            if p == me:
                found.append(pid)
                break
    return found


def reap():
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
peak = 0
while proc.poll() is None:
    peak = max(peak, len(descendants()))
    time.sleep(0.2)
deadline = time.monotonic() + 30
while descendants() and time.monotonic() < deadline:
    reap()
    time.sleep(0.2)
left = []
for pid in descendants():
    try:
        left.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode())
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
reap()
print(json.dumps({"rc": proc.returncode, "peak": peak, "left": left}))
"""


def test_ray_launcher_runs_a_local_cluster_and_stops_it(serial, tmp_path):
    _, _, serial_dir = serial
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths are capped
    sweep_dir = tmp_path / "sweep"
    (tmp_path / "subreaper.py").write_text(SUBREAPER)
    conf = _conf_dir(tmp_path)
    cmd = [
        sys.executable,
        str(tmp_path / "subreaper.py"),
        sys.executable,
        "-m",
        "runner",
        "-m",
        f"hydra.searchpath=[file://{conf}]",
        "+model=sweep_drop",
        "model.layers.drop.p=0.0,0.2,0.4",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra/launcher=ray",
        f"+hydra.launcher.ray.init._temp_dir={ray_tmp}",
        "+hydra.launcher.ray.init.include_dashboard=false",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        proc = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        report_ = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report_["rc"] == 0, proc.stderr[-3000:]
        assert list(Path(ray_tmp).glob("session_*/logs")), "Ray did not use its temp dir"
        assert report_["peak"] >= 5  # the CLI, gcs_server, raylet, workers, ...
        assert report_["left"] == []  # every process the sweep started is gone
        rows = _rows(sweep_dir)
        assert [r["status"] for r in rows] == ["ok"] * 3
        for job in range(3):
            ray_out, serial_out = _outputs(sweep_dir / str(job)), _outputs(serial_dir / str(job))
            assert ray_out.tobytes() == serial_out.tobytes()
    finally:
        import shutil

        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_console_script_completes_model_names(tmp_path):
    script = Path(sys.executable).parent / "layer-runner"
    assert script.is_file(), "pip install -e . installs the layer-runner console script"
    env = {**os.environ, "COMP_LINE": "layer-runner +model="}
    proc = subprocess.run(
        [str(script), "-sc", "query=bash"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    shipped = {p.stem for p in (REPO / "conf" / "model").glob("*.yaml")}
    assert set(proc.stdout.split()) == {f"+model={name}" for name in shipped}
    env["COMP_LINE"] = "layer-runner hydra/launcher="
    proc = subprocess.run(
        [str(script), "-sc", "query=bash"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert {"hydra/launcher=joblib", "hydra/launcher=ray", "hydra/launcher=submitit_slurm"} <= set(
        proc.stdout.split()
    )


def _fake_job(
    sweep_dir: Path, num: int, overrides: list[str], result: dict | None, hydra: dict | None = None
) -> None:
    folder = sweep_dir / str(num)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": hydra or {}}))
    if result is not None:
        (folder / "result.json").write_text(json.dumps(result))


def test_report_grid_of_two_keys_with_objective_mode(tmp_path):
    """A 3x2 grid (p x seed), fit-style objective ranked by the job's own objective_mode."""
    grid = [(p, s) for p in (0.0, 0.25, 0.5) for s in (1, 2)]
    scores = [0.71, 0.70, 0.93, 0.88, 0.52, 0.55]
    for num, ((p, s), score) in enumerate(zip(grid, scores)):
        result = {
            "status": "ok",
            "objective_mode": "max",
            "metrics": {"objective": score, "val_loss": 1 - score},
        }
        if num == 5:
            result = {
                "status": "failed",
                "error": {"kind": "RunFailed", "message": "model.expect.out: off\nmore"},
            }
        _fake_job(tmp_path, num, ["+model=m", f"model.layers.drop.p={p}", f"seed={s}"], result)
    summary = report.summarize(tmp_path)
    assert summary.swept == ["model.layers.drop.p", "seed"]
    assert (summary.metric, summary.mode) == ("objective", "max")
    assert summary.best is not None and summary.best.name == "2"
    assert summary.exit_code == 1
    rows = _rows(tmp_path)
    assert [r["status"] for r in rows] == ["ok"] * 5 + ["failed"]
    assert rows[5]["error"] == "model.expect.out: off"
    assert [r["seed"] for r in rows] == ["1", "2"] * 3
    assert list(rows[0])[:6] == [
        "job",
        "status",
        "best",
        "model.layers.drop.p",
        "seed",
        "objective",
    ]
    _check_png(tmp_path / "summary.png")

    by_loss = report.summarize(tmp_path, metric="val_loss")  # loss-like: lower is better
    assert (by_loss.mode, by_loss.best.name) == ("min", "2")
    assert report.choose_metric(by_loss.jobs) == (
        "objective",
        "the validation score each job reported (objective)",
    )


def test_report_follows_configured_metric_and_optuna_direction(tmp_path):
    hydra = {
        "callbacks": {"sweep": {"metric": "acc", "mode": None}},
        "sweeper": {"direction": "minimize"},
    }
    for num, acc in enumerate([0.3, 0.1, 0.2]):
        _fake_job(
            tmp_path, num, [f"x={num}"], {"status": "ok", "metrics": {"acc": acc, "z": 1}}, hydra
        )
    (tmp_path / "optimization_results.yaml").write_text(
        yaml.safe_dump({"name": "optuna", "best_params": {"x": 1}, "best_value": 0.1})
    )
    _fake_job(tmp_path, 3, ["x=3"], None, hydra)  # still running: no result.json
    summary = report.summarize(tmp_path, plot=False)
    assert (summary.metric, summary.mode, summary.best.name) == ("acc", "min", "1")
    assert summary.optuna == {
        "best_params": {"x": 1},
        "best_value": 0.1,
        "trial": 1,
        "folder": str(tmp_path / "1"),
    }
    assert [j.status for j in summary.jobs] == ["ok", "ok", "ok", "incomplete"]
    assert not (tmp_path / "summary.png").exists()

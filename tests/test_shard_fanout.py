"""Shard fan-out through the CLI: -m shard=0,1,2 on the joblib and Ray launchers, one job per
shard, merged at the end of the sweep; the merged outputs equal one job over every shard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent

MODEL = """\
inputs:
  x: {data: {path: data/part-*.npy}}
layers:
  mask: {type: Masking, mask_value: 0.0}
  d: {type: TimeDistributedDense, output_dim: 3, activation: tanh}
outputs: [d]
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder with a model file, three shards of (steps 4, features 5) and one job over all."""
    cwd = tmp_path_factory.mktemp("fanout")
    (cwd / "conf" / "model").mkdir(parents=True)
    (cwd / "conf" / "model" / "sharded.yaml").write_text(MODEL)
    x = np.random.default_rng(3).normal(size=(50, 4, 5)).astype(np.float32)
    x[x[:, :, 0] > 1.0] = 0.0  # some masked timesteps, so masks are merged too
    (cwd / "data").mkdir()
    for i, (lo, hi) in enumerate([(0, 17), (17, 18), (18, 50)]):
        np.save(cwd / "data" / f"part-{i}.npy", x[lo:hi])
    proc = _runner(cwd, "+model=sharded", "hydra.run.dir=single")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd


def _runner(cwd: Path, *args: str, wrapper: list[str] | None = None):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("HYDRA_FULL_ERROR", None)
    flags = ["-m"] if "-m" in args else []
    overrides = [a for a in args if a != "-m"]
    cmd = [*(wrapper or []), sys.executable, "-m", "runner", *flags, "--config-dir", "conf"]
    return subprocess.run(
        [*cmd, *overrides], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _check_merged(cwd: Path, sweep: str) -> None:
    single = json.loads((cwd / "single" / "result.json").read_text())
    with np.load(cwd / "single" / "outputs.npz") as z:
        values, mask = z["d"], z["d/mask"]
    merged = json.loads((cwd / sweep / "merged" / "merged.json").read_text())
    assert [j["rows"] for j in merged["jobs"]] == [17, 1, 32]
    assert [j["sources"] for j in merged["jobs"]] == [
        {"model.inputs.x.data": f"data/part-{i}.npy"} for i in range(3)
    ]
    assert np.load(cwd / sweep / "merged" / "d.npy").tobytes() == values.tobytes()
    assert np.load(cwd / sweep / "merged" / "d.mask.npy").tobytes() == mask.tobytes()
    assert not mask.all()  # the mask had something to merge
    for name in ("d", "d/mask"):
        assert merged["outputs"][name]["sha256"] == single["outputs"][name]["sha256"]


def test_joblib_fans_shards_out_and_merges_them(project):
    proc = _runner(
        project,
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "+model=sharded",
        "shard=0,1,2",
        "hydra.sweep.dir=joblib_sweep",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-2] == "merged: 3 shards, 50 rows of d, d/mask (jobs 0, 1, 2 in shard order)"
    assert lines[-1] == "merged outputs: joblib_sweep/merged"
    _check_merged(project, "joblib_sweep")


def test_a_sweep_missing_a_shard_ends_naming_it(project):
    proc = _runner(project, "-m", "+model=sharded", "shard=0,2", "hydra.sweep.dir=gap_sweep")
    assert proc.returncode == 2
    assert (
        proc.stdout.strip()
        .splitlines()[-1]
        .startswith("merge: shard 1 of 3 is missing: no job read it (the jobs read shards 0, 2)")
    )
    assert not (project / "gap_sweep" / "merged" / "d.npy").exists()


def test_an_empty_glob_is_a_config_error_on_the_command_line(project):
    proc = _runner(project, "+model=sharded", "model.inputs.x.data.path=data/none-*.npy")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert (
        "model.inputs.x.data (data/none-*.npy): the pattern matches no file (looked in data)"
        in proc.stdout + proc.stderr
    )


def test_ray_fans_shards_out_on_a_local_cluster_and_merges_them(project):
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths are capped
    try:
        proc = _runner(
            project,
            "-m",
            "hydra/launcher=ray",
            f"+hydra.launcher.ray.init._temp_dir={ray_tmp}",
            "+hydra.launcher.ray.init.include_dashboard=false",
            "+model=sharded",
            "shard=0,1,2",
            "hydra.sweep.dir=ray_sweep",
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert list(Path(ray_tmp).glob("session_*/logs")), "Ray did not use its temp dir"
        assert "merged: 3 shards, 50 rows of d, d/mask" in proc.stdout
        _check_merged(project, "ray_sweep")
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

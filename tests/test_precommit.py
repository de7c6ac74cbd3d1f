"""The shipped pre-commit hook, run by the real pre-commit tool on a scratch git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs this project as a git checkout")
def test_hook_fails_on_a_bad_model_file_and_passes_when_fixed(tmp_path):
    scratch = tmp_path / "configs"
    (scratch / "conf" / "model").mkdir(parents=True)
    shutil.copy(REPO / "conf/model/dense_example.yaml", scratch / "conf/model/dense.yaml")
    bad = scratch / "conf/model/bad.yaml"
    bad.write_text("inputs: {x: {data: [[1.0]]}}\nlayers: {d: {type: Dense, output_dim: 0}}\n")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    env.pop("PYTHONPATH", None)

    def hook() -> subprocess.CompletedProcess:
        subprocess.run(["git", "add", "-A"], cwd=scratch, check=True)
        return subprocess.run(
            ["pre-commit", "try-repo", str(REPO), "layer-runner-check", "--all-files"],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    subprocess.run(["git", "init", "-q"], cwd=scratch, check=True)
    proc = hook()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        "conf/model/bad.yaml:2:39: model.layers.d.output_dim: expected greater than 0; found 0"
    ) in proc.stdout
    bad.write_text("inputs: {x: {data: [[1.0]]}}\nlayers: {d: {type: Dense, output_dim: 1}}\n")
    proc = hook()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout

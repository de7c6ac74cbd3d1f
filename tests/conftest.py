"""Shared fixtures: run a config in-process (same path as the CLI) or through the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def model_config(
    layers: dict[str, Any], inputs: dict[str, Any] | None = None, **model_extra: Any
) -> dict[str, Any]:
    """A whole run config around a model; the default input is x = [[10, 20, 30]]."""
    inputs = inputs or {"x": {"shape": [3], "data": [[10, 20, 30]]}}
    return {
        "task": "predict",
        "seed": 0,
        "model": {"inputs": inputs, "layers": layers, **model_extra},
    }


@pytest.fixture
def run_config(tmp_path):
    """run_config(config) -> (Outcome, result.json as dict), run folder in tmp_path."""
    from runner.run import run

    counter = iter(range(10**6))

    def _run(config: dict[str, Any], cwd: Path | None = None):
        folder = tmp_path / f"run{next(counter)}"
        outcome = run(config, folder, cwd or tmp_path)
        return outcome, json.loads((folder / "result.json").read_text())

    return _run


class CliResult:
    def __init__(self, proc: subprocess.CompletedProcess, cwd: Path) -> None:
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        match = re.search(r"run folder: (.+)", proc.stdout)
        self.folder = cwd / match.group(1).strip() if match else None  # relative to cwd

    @property
    def result(self) -> dict[str, Any]:
        return json.loads((self.folder / "result.json").read_text())


@pytest.fixture
def cli(tmp_path):
    """cli(*args, cwd=tmp_path) runs `python -m runner ARGS` and returns a CliResult."""

    def _cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> CliResult:
        cwd = cwd or tmp_path
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        for name in ("HYDRA_FULL_ERROR", "MLFLOW_ALLOW_FILE_STORE"):  # the runner sets these
            full_env.pop(name, None)
        proc = subprocess.run(
            [sys.executable, "-m", "runner", *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return CliResult(proc, cwd)

    return _cli

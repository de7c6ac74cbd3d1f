"""`--help` and `--cfg job` stay light: no NumPy, no Pydantic, no schema (seen by -X importtime)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "pydantic", "runner.config.schema", "layers")


def imported_modules(*args: str) -> tuple[set[str], str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "runner", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            modules.add(line.rsplit("|", 1)[1].strip())
    return modules, proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "args", [("--help",), ("+model=dense_example", "--cfg", "job"), ("--cfg", "job")]
)
def test_help_and_cfg_import_no_numpy_and_no_schema(args):
    modules, stdout = imported_modules(*args)
    assert "hydra" in modules and "omegaconf" in modules  # the parse really was recorded
    assert [m for m in HEAVY if m in modules] == []
    assert not any(m.startswith(("numpy.", "pydantic.", "layers.")) for m in modules)
    if "--cfg" in args:
        assert "floatx: float32" in stdout  # the composed config was printed
    if args == ("--help",):  # the fit defaults are static text: no schema needed
        assert "  fit.epochs: 10\n" in stdout
    if args == ("+model=dense_example", "--cfg", "job"):
        assert "output_dim: 3" in stdout

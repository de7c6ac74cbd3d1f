"""The benchmark scripts run in tiny mode and print complete tables (never timed here).

They are what the README's performance figures come from; running them once in CI keeps them
from rotting. Only the shape of their output is asserted: every row, finite ratios.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def start_script(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's runner, not an installed one
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_script(name: str, *args: str) -> str:
    proc = start_script(name, *args)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def table_rows(text: str) -> list[list[str]]:
    """Body rows of the Markdown tables in text, as cells."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


@pytest.mark.slow
def test_run_tiny_prints_every_workload_with_finite_ratios():
    out = run_script("run.py", "--tiny")
    assert "float32 GEMM rate" in out and "threads: 2 for every library" in out
    rows = table_rows(out)
    header, body = rows[0], rows[1:]
    keys = [r[0].split()[0] for r in body]
    assert keys == ["W1", "W2", "W3", "W4", "W5", "W6", "W6"]
    assert [r[0].split()[-1] for r in body[-2:]] == ["SGD", "Adam"]
    for r in body:
        for column in ("ratio", "ratio of mins"):
            ratio = float(r[header.index(column)])
            assert math.isfinite(ratio) and ratio > 0, r
        assert float(r[header.index("max abs diff")]) <= 1e-4  # ours == hand-written NumPy
    # torch and onnxruntime columns appear exactly when their packages are installed
    for package, column in (("torch", "torch ratio"), ("onnxruntime", "onnxruntime ratio")):
        assert (column in header) == (importlib.util.find_spec(package) is not None)


@pytest.mark.slow
def test_streaming_tiny_writes_a_memory_mapped_output_and_fits_from_the_file():
    out = run_script("streaming.py", "--tiny")
    tables = out.split("## fit")
    rows = {r[0]: r for r in table_rows(tables[0])[1:]}
    assert set(rows) == {"stream, whole file", "stream, interleaved", "in memory, interleaved"}
    whole = rows["stream, whole file"]
    assert whole[6] == "memory-mapped .npy (float32)"
    assert whole[1] == "1,338"  # every row of the 4 MiB file (1,338 rows of 784 float32)
    assert float(whole[7]) <= 1e-5  # spot checks against Model.predict
    assert rows["stream, interleaved"][1] == rows["in memory, interleaved"][1]
    ratio = float(re.search(r"throughput streaming / in memory: ([0-9.]+)", out).group(1))
    assert math.isfinite(ratio) and ratio > 0
    assert float(whole[5]) > 0  # peak RSS was read
    fit = {r[0]: r for r in table_rows(tables[1])[1:]}
    assert set(fit) == {
        "fit stream, whole file",
        "fit stream, interleaved",
        "fit in memory, interleaved",
    }
    assert fit["fit stream, whole file"][1] == "1,338"  # one epoch over every row of the file
    assert fit["fit stream, whole file"][2] == "6"  # batches of 256
    assert float(fit["fit stream, whole file"][5]) > 0
    assert fit["fit stream, interleaved"][1] == fit["fit in memory, interleaved"][1]
    ratio = float(re.search(r"fit throughput streaming / in memory: ([0-9.]+)", out).group(1))
    assert math.isfinite(ratio) and ratio > 0
    assert "the same rows from the file and from RAM trained bit-identical weights" in out


@pytest.mark.slow
def test_startup_tiny_compares_with_the_bare_app():
    out = run_script("startup.py", "--tiny")
    ratio = float(re.search(r"runner / bare app: ([0-9.]+) \(medians\)", out).group(1))
    assert math.isfinite(ratio) and ratio > 0
    assert "`--help` imports none of" in out and "`--cfg job` imports none of" in out


def test_run_refuses_a_negative_pause_with_a_usage_message():
    proc = start_script("run.py", "--tiny", "--settle", "-0.5", timeout=120)
    assert proc.returncode == 2
    assert "--settle must be 0 or more seconds, got -0.5" in proc.stderr
    assert "Traceback" not in proc.stderr

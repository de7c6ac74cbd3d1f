"""Summary numbers of an output (console line, metrics, expect mean/zero_fraction), read by
windows: the same numbers as NumPy's whole-array reductions, without an output-sized temporary."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from runner.output import output_stats as stats_module
from runner.output.output_stats import output_stats
from runner.run import run


@pytest.mark.parametrize("window", [1, 64, 1 << 25])  # 1 row .. all rows at once
def test_stats_by_windows_are_numpys_whole_array_numbers(tmp_path, monkeypatch, window):
    monkeypatch.setattr(stats_module, "WINDOW_BYTES", window)
    a = np.random.default_rng(0).standard_normal((41, 3, 2)).astype(np.float32)
    a[a < 0.3] = 0  # about 62% zeros
    a[5, 1, 0] = -0.0  # a zero too
    np.save(tmp_path / "a.npy", a)
    for x in (a, np.load(tmp_path / "a.npy", mmap_mode="r")):
        s = output_stats(x)
        assert s.minimum == float(a.min()) and s.maximum == float(a.max())
        assert s.mean == pytest.approx(float(np.mean(a, dtype=np.float64)), rel=1e-12)
        assert s.zero_fraction == int(np.sum(a == 0)) / a.size


def test_stats_of_nan_bool_scalar_and_empty_outputs():
    s = output_stats(np.array([[1.0, np.nan], [0.0, 2.0]], dtype=np.float32))
    assert math.isnan(s.minimum) and math.isnan(s.maximum) and math.isnan(s.mean)
    assert s.zero_fraction == 0.25  # NaN is not zero
    assert output_stats(np.array([True, False, False, False])) == (
        stats_module.OutputStats(0.0, 0.25, 1.0, 0.75)
    )
    assert output_stats(np.float32(0.0)) == stats_module.OutputStats(0.0, 0.0, 0.0, 1.0)
    assert all(math.isnan(v) for v in vars(output_stats(np.zeros((0, 3)))).values())


def test_a_streamed_output_is_summarised_without_an_output_sized_array(tmp_path):
    rows, width = 100_000, 100  # the output: 40 MB on disk; a bool copy of it would be 10 MB
    np.save(tmp_path / "x.npy", np.ones((rows, 1), dtype=np.float32))
    config = {
        "batch_size": 1_000,
        "outputs_to_disk": True,
        "max_memory_mb": 100,
        "model": {
            "inputs": {"x": {"shape": [1], "data": {"path": "x.npy"}}},
            "layers": {"d": {"type": "Dense", "output_dim": width, "init": "zero"}},
        },
    }
    tracemalloc.start()
    try:
        outcome = run(config, tmp_path / "run", cwd=tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcome.exit_code == 0, outcome.result.get("error")
    assert outcome.result["metrics"]["d/zero_fraction"] == 1.0  # zero weights: all zeros
    assert outcome.result["metrics"]["d/mean"] == 0.0
    assert (tmp_path / "run" / "outputs" / "d.npy").stat().st_size > rows * width * 4
    # one batch of the output is 0.4 MB; np.mean(y == 0) allocated rows * width bytes (10 MB)
    assert peak < rows * width / 2, peak


def _rss_file_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssFile:"))


def test_a_streamed_output_written_as_csv_leaves_no_pages_resident(tmp_path):
    from runner.output.csv_outputs import write_output_csv

    rows, width = 100_000, 100  # 40 MB on disk
    np.save(tmp_path / "d.npy", np.full((rows, width), 0.5, dtype=np.float32))
    mapped = np.load(tmp_path / "d.npy", mmap_mode="r")
    before = _rss_file_kb()
    tracemalloc.start()
    try:
        path = write_output_csv(tmp_path, "d", mapped, np.arange(rows))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    grown = _rss_file_kb() - before
    text = path.stat().st_size  # 100,001 lines: 'row,' then 100 times '0.5,' (a 40 MB file)
    assert text == len("row," + ",".join(f"d[{j}]" for j in range(width)) + "\n") + sum(
        len(str(i)) + 1 + 4 * width for i in range(rows)
    )
    assert grown * 1024 < rows * width * 4 / 4, grown  # read whole: all 40 MB resident
    assert peak < text / 4, peak  # each block's text was kept until the garbage collector ran

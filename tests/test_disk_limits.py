"""max_disk_mb: what a predict will write (outputs, their CSV, weights) is bounded from the plan
before anything is computed or written; only the command line sets the limit."""

from __future__ import annotations

from runner.config.limits import predict_writes
from runner.run import run


def _config(rows: int, **top) -> dict:
    return {
        **top,
        "model": {
            "inputs": {"x": {"shape": [1], "data": {"random": {"rows": rows}}}},
            "layers": {"d": {"type": "Dense", "output_dim": 100}},
        },
    }


def test_a_predict_that_would_write_above_max_disk_mb_is_refused_unwritten(tmp_path):
    # 100,000 rows x 100 float32 = 40,000,000 bytes of output; 200 parameters = 800 bytes
    outcome = run(_config(100_000, max_disk_mb=30), tmp_path / "run", cwd=tmp_path)
    (problem,) = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and problem["path"] == "model.layers.d"
    assert problem["message"] == (
        "this predict would write about 38 MB, above max_disk_mb (30 MB); the largest is "
        "output d of 100,000 rows of (100,) (38 MB): use fewer rows or smaller outputs, or "
        "raise max_disk_mb on the command line"
    )
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["result.json"]


def test_save_csv_counts_its_longest_lines(tmp_path):
    # 10,000 rows x 100 float32: 4,000,000 bytes of .npy; CSV lines of at most 21 + 100 * 16
    # characters: 16,210,000 bytes
    assert run(_config(10_000, max_disk_mb=10), tmp_path / "a", cwd=tmp_path).exit_code == 0
    outcome = run(_config(10_000, max_disk_mb=10, save_csv=True), tmp_path / "b", cwd=tmp_path)
    (problem,) = outcome.result["error"]["problems"]
    assert "the largest is outputs/d.csv of 10,000 rows (15 MB)" in problem["message"]
    outcome = run(_config(10_000, max_disk_mb=20, save_csv=True), tmp_path / "c", cwd=tmp_path)
    assert outcome.exit_code == 0
    written = sum(
        f.stat().st_size
        for f in [tmp_path / "c" / "outputs.npz", tmp_path / "c" / "weights.npz"]
        + list((tmp_path / "c" / "outputs").iterdir())
    )
    planned = sum(size for _, _, size in predict_writes(outcome.plan))
    assert planned == 4_000_000 + 16_210_000 + 800
    assert written <= planned


def test_validate_writes_nothing_and_is_not_refused(tmp_path):
    outcome = run(_config(100_000, max_disk_mb=1, task="validate"), tmp_path / "v", cwd=tmp_path)
    assert outcome.exit_code == 0

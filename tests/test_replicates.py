"""Replicates over seeds: group statistics checked against values computed by hand, and a real
multirun over seeds through the CLI (the joblib launcher: tests/test_tracking.py)."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runner.sweep import report
from tests.helpers import TINY_FIT_MODEL

REPO = Path(__file__).resolve().parent.parent

# val_accuracy of a 3 (p) x 3 (seed) grid; seed 2 of p=0.3 failed. By hand:
#   p=0.0: 0.90 0.92 0.94 -> mean 0.92, deviations -.02 0 .02, std sqrt(.0008 / 2) = 0.02
#   p=0.3: 0.96 0.98 --   -> n 2, mean 0.97, std sqrt(.0002 / 1) = 0.0141421356...
#   p=0.5: 0.91 0.99 0.95 -> mean 0.95, deviations -.04 .04 0, std sqrt(.0032 / 2) = 0.04
# The best single job (0.99, p=0.5) is not in the best group by mean (p=0.3).
GRID = {"0.0": [0.90, 0.92, 0.94], "0.3": [0.96, 0.98, None], "0.5": [0.91, 0.99, 0.95]}


def _fake_sweep(root: Path, grid=GRID, seeds=(0, 1, 2)) -> Path:
    """Job folders as Hydra's basic sweeper numbers them for -m seed=... model.layers.drop.p=..."""
    num = 0
    for i, seed in enumerate(seeds):
        for p, scores in grid.items():
            folder = root / str(num)
            (folder / ".hydra").mkdir(parents=True)
            overrides = ["+model=m", f"seed={seed}", f"model.layers.drop.p={p}"]
            (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
            acc = scores[i]
            result = (
                {
                    "status": "ok",
                    "objective_mode": "max",
                    "metrics": {"objective": acc, "val_loss": round(1 - acc, 10)},
                }
                if acc is not None
                else {"status": "failed", "error": {"message": "training diverged"}}
            )
            (folder / "result.json").write_text(json.dumps(result))
            num += 1
    return root


def _group_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "summary_groups.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_group_statistics_match_the_hand_computed_values(tmp_path, capsys):
    sweep = _fake_sweep(tmp_path / "sweep")
    assert report.main([str(sweep)]) == 1  # one job failed
    out = capsys.readouterr().out.splitlines()
    rows = _group_rows(sweep)
    assert [r["model.layers.drop.p"] for r in rows] == ["0.0", "0.3", "0.5"]
    assert [(r["jobs"], r["n"]) for r in rows] == [("3", "3"), ("3", "2"), ("3", "3")]
    assert [float(r["mean"]) for r in rows] == pytest.approx([0.92, 0.97, 0.95], abs=1e-12)
    assert [float(r["std"]) for r in rows] == pytest.approx([0.02, math.sqrt(2e-4), 0.04], 1e-9)
    assert [float(r["min"]) for r in rows] == [0.90, 0.96, 0.91]
    assert [float(r["max"]) for r in rows] == [0.94, 0.98, 0.99]
    assert [r["best"] for r in rows] == ["", "*", ""]
    assert {r["metric"] for r in rows} == {"objective"}
    assert "seed" not in rows[0]  # seed is what varies inside a group
    at = out.index(
        "replicates: 3 groups over seed, objective (std: sample, ddof=1)"
    )  # after the per-job lines, which stay
    assert out[at - 1].startswith("best: job 5 (objective = 0.99, max; one seed) ")
    assert out[at + 1].split() == ["model.layers.drop.p", "n", "mean", "std", "min", "max"]
    assert out[at + 3].split() == ["0.3", "2/3", "0.97", "0.0141421", "0.96", "0.98", "<-", "best"]
    assert out[at + 5] == (
        "best group: model.layers.drop.p=0.3 (objective mean 0.97 ± 0.0141421, n=2, max)"
    )
    # 0.97 - 0.95 = 0.02, below the std of p=0.5 (0.04): the seeds do not separate them
    assert out[at + 6] == (
        "  ahead of model.layers.drop.p=0.5 by 0.02, within the larger std of the two (0.04)"
    )
    md = (sweep / "summary.md").read_text()
    assert "sample standard deviation over seeds (ddof=1, n - 1 in the denominator)" in md
    assert (
        "**Best group: model.layers.drop.p=0.3**, mean `objective` = 0.97 ± 0.0141421 (n = 2, "
        "maximized); ahead of model.layers.drop.p=0.5 by 0.02, within the larger std of the two "
        "(0.04)." in md
    )
    assert "| **best** | `0.3` | 2 of 3 | 0.97 | 0.0141421 | 0.96 | 0.98 |" in md
    assert "| 5 | ok | **best** | `1` | `0.5` | 0.99 |" in md  # the per-job table stays
    assert "![mean ± std of each group against the swept value](summary.png)" in md
    assert (sweep / "summary.png").stat().st_size > 10_000


def test_a_lower_is_better_metric_picks_the_lowest_mean(tmp_path):
    sweep = _fake_sweep(tmp_path / "sweep")
    summary = report.summarize(sweep, metric="val_loss", plot=False)
    assert summary.mode == "min"
    means = [g.mean for g in summary.groups]
    assert means == pytest.approx([0.08, 0.03, 0.05], abs=1e-12)
    assert summary.best_group.label == "model.layers.drop.p=0.3"
    assert summary.best.name == "5"  # the single job with the lowest loss, still marked
    flipped = report.summarize(sweep, metric="val_loss", mode="max", plot=False)
    assert flipped.best_group.label == "model.layers.drop.p=0.0"  # mean 0.08 is the highest
    # 0.08 - 0.05 = 0.03, beyond max(std 0.02, std 0.04)? no: 0.03 < 0.04, within
    assert report.replicates.margin_text(flipped) == (
        "ahead of model.layers.drop.p=0.5 by 0.03, within the larger std of the two (0.04)"
    )


def test_seed_alone_is_one_group_with_no_best(tmp_path):
    sweep = _fake_sweep(tmp_path / "sweep", grid={"0.3": [0.5, 0.6, 0.8]})
    summary = report.summarize(sweep, plot=False)
    (group,) = summary.groups
    assert (group.label, group.n, group.key) == ("(all jobs)", 3, ())
    # in units of 1/30: values 15, 18, 24, mean 19, deviations -4 -1 5, squares sum to 42
    assert group.mean == pytest.approx(19 / 30, rel=1e-12)
    assert group.std == pytest.approx(math.sqrt(42 / 2) / 30, rel=1e-12)
    assert summary.best_group is None  # nothing to compare


def test_no_seed_or_no_metric_means_no_groups(tmp_path):
    one_seed = _fake_sweep(tmp_path / "one_seed", seeds=(7,))
    summary = report.summarize(one_seed, plot=False)
    assert summary.swept == ["model.layers.drop.p"] and summary.groups == []
    assert not (one_seed / "summary_groups.csv").exists()
    (tmp_path / "predict").mkdir()
    for num, seed in enumerate((0, 1)):
        folder = tmp_path / "predict" / str(num)
        folder.mkdir()
        result = {"status": "ok", "overrides": [f"seed={seed}"], "metrics": {"out/mean": 0.5}}
        (folder / "result.json").write_text(json.dumps(result))
    unranked = report.summarize(tmp_path / "predict", plot=False)
    assert unranked.metric is None and unranked.groups == []  # a metric is never guessed


def test_a_group_with_one_ok_job_has_no_std(tmp_path):
    grid = {"0.1": [0.5, None], "0.2": [0.4, 0.5]}
    sweep = _fake_sweep(tmp_path / "sweep", grid=grid, seeds=(0, 1))
    summary = report.summarize(sweep, plot=False)
    lonely, pair = summary.groups
    assert (lonely.n, math.isnan(lonely.std), lonely.mean) == (1, True, 0.5)
    assert pair.mean == pytest.approx(0.45, rel=1e-12)
    assert pair.std == pytest.approx(math.sqrt(0.05**2 * 2), rel=1e-12)  # sqrt(2 * .0025 / 1)
    assert _group_rows(sweep)[0]["std"] == ""
    assert summary.best_group is lonely  # ranked by its mean like any group; n says how many


def test_a_margin_beyond_the_seed_spread_is_said_so(tmp_path):
    # means 0.905 and 0.51, margin 0.395; stds sqrt(2 * .005^2) = .00707 and .01414
    grid = {"0.1": [0.9, 0.91], "0.2": [0.5, 0.52]}
    summary = report.summarize(_fake_sweep(tmp_path / "s", grid=grid, seeds=(0, 1)), plot=False)
    assert report.replicates.margin_text(summary) == (
        "ahead of model.layers.drop.p=0.2 by 0.395, beyond the larger std of the two (0.0141421)"
    )


# ---------------------------------------------------------------- a real multirun

MODEL = TINY_FIT_MODEL


def _multirun(cwd: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    conf = cwd / "userconf" / "model"
    conf.mkdir(parents=True)
    (conf / "tiny_fit.yaml").write_text(MODEL)
    sweep = cwd / "sweep"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("HYDRA_FULL_ERROR", None)
    cmd = [
        sys.executable,
        "-m",
        "runner",
        "-m",
        f"hydra.searchpath=[file://{conf.parent}]",
        "+model=tiny_fit",
        "task=fit",
        "seed=0,1,2",
        "model.layers.drop.p=0.0,0.5",
        f"hydra.sweep.dir={sweep}",
        *extra,
    ]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return proc, sweep


def _check_groups_against_job_folders(sweep: Path) -> list[dict[str, str]]:
    """Recompute each group's statistics from the jobs' own result.json, by hand."""
    by_p: dict[str, list[float]] = {}
    for folder in sorted(p for p in sweep.iterdir() if p.name.isdigit()):
        overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
        p = next(o.split("=")[1] for o in overrides if o.startswith("model.layers.drop.p="))
        result = json.loads((folder / "result.json").read_text())
        assert result["status"] == "ok" and result["objective_mode"] == "min"  # val_loss
        by_p.setdefault(p, []).append(result["metrics"]["objective"])
    rows = _group_rows(sweep)
    assert [r["model.layers.drop.p"] for r in rows] == ["0.0", "0.5"]
    for row in rows:
        values = by_p[row["model.layers.drop.p"]]
        mean = sum(values) / 3
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (3 - 1))
        assert (row["jobs"], row["n"]) == ("3", "3")
        assert float(row["mean"]) == pytest.approx(mean, rel=1e-12)
        assert float(row["std"]) == pytest.approx(std, rel=1e-9)
        assert (float(row["min"]), float(row["max"])) == (min(values), max(values))
    best = min(rows, key=lambda r: float(r["mean"]))  # val_loss: lower is better
    assert [r["best"] for r in rows] == ["*" if r is best else "" for r in rows]
    assert len({v for vs in by_p.values() for v in vs}) == 6  # seeds really differ
    return rows


@pytest.mark.slow
def test_a_real_multirun_over_seeds_groups_by_dropout(tmp_path):
    proc, sweep = _multirun(tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = _check_groups_against_job_folders(sweep)
    best = next(r for r in rows if r["best"] == "*")
    assert f"best group: model.layers.drop.p={best['model.layers.drop.p']} (objective mean " in (
        proc.stdout
    )
    # The joblib launcher: tests/test_tracking.py checks the groups of a joblib sweep.

"""Sweep summaries rebuilt from the job folders on disk.

    python -m runner.sweep.report SWEEP_DIR [--metric NAME] [--mode min|max]

writes ``summary.csv``, ``summary.md`` and ``summary.png`` into SWEEP_DIR: one row per job
(overrides, status, metrics, run folder), the best job marked for the chosen metric, failed jobs
with the first line of their error, and a plot of the swept value against the metric. Only the
files matter: it works after a crash, on a partial sweep, and for every launcher. It is also what
the ``on_multirun_end`` callback (``runner.sweep.callbacks``) runs at the end of a sweep.

Exit code: 0 when every job finished ok, 1 when any job failed or is incomplete (like the sweep),
2 when SWEEP_DIR holds no jobs or the metric is unknown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.output.artifacts import write_text
from runner.sweep import replicates
from runner.sweep.files import console_lines, csv_text, markdown_text, write_plot
from runner.sweep.jobs import (  # noqa: F401  (collect, choose_metric: part of this module's API)
    ReportError,
    Summary,
    best_job,
    choose_metric,
    choose_mode,
    collect,
    configured,
    optuna_summary,
    swept_keys,
)

__all__ = [
    "ReportError",
    "Summary",
    "choose_metric",
    "collect",
    "console_lines",
    "main",
    "summarize",
]


def summarize(
    sweep_dir: Path | str,
    metric: str | None = None,
    mode: str | None = None,
    plot: bool = True,
    declared: dict[str, str | None] | None = None,
) -> Summary:
    """Read the job folders and write summary.csv, summary.md and summary.png. ``metric`` and
    ``mode`` are --metric/--mode; ``declared`` the sweep's hydra.callbacks.sweep settings (the
    callback's), used over the ones the jobs saved."""
    sweep_dir = Path(sweep_dir)
    if mode not in (None, "min", "max"):
        raise ReportError(f"mode must be min or max, found {mode!r}")
    if not sweep_dir.is_dir():
        raise ReportError(f"{sweep_dir}: no such folder")
    jobs = collect(sweep_dir)
    if not jobs:
        raise ReportError(
            f"{sweep_dir}: no job folders (a job folder holds .hydra/ or result.json)"
        )
    settings = configured(jobs)
    settings.update({k: v for k, v in (declared or {}).items() if v})
    name, reason = choose_metric(jobs, metric, settings)
    chosen_mode = choose_mode(jobs, name, mode, settings)
    summary = Summary(
        sweep_dir,
        jobs,
        swept_keys(jobs),
        name,
        chosen_mode,
        reason,
        best_job(jobs, name, chosen_mode),
    )
    summary.optuna = optuna_summary(sweep_dir, jobs, name)
    summary.groups = replicates.replicate_groups(summary)
    summary.best_group = replicates.best_group(summary.groups, chosen_mode)
    write_text(sweep_dir / "summary.csv", csv_text(summary))
    summary.files.append(sweep_dir / "summary.csv")
    if summary.groups:
        write_text(sweep_dir / "summary_groups.csv", replicates.csv_text(summary))
        summary.files.append(sweep_dir / "summary_groups.csv")
    if plot:
        draw = replicates.write_plot if summary.groups else write_plot
        summary.plot_note = draw(summary, sweep_dir / "summary.png")
        if (sweep_dir / "summary.png").is_file():
            summary.files.append(sweep_dir / "summary.png")
    write_text(sweep_dir / "summary.md", markdown_text(summary))
    summary.files.insert(0, sweep_dir / "summary.md")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runner.sweep.report",
        description="Rebuild summary.csv, summary.md and summary.png of a sweep from its job "
        "folders.",
    )
    parser.add_argument("sweep_dir", type=Path, help="the sweep folder (holds one folder per job)")
    parser.add_argument(
        "--metric",
        help="metric to rank jobs by (default: hydra.callbacks.sweep."
        "metric, else objective; without either no job is ranked)",
    )
    parser.add_argument("--mode", choices=["min", "max"], help="whether lower or higher is better")
    parser.add_argument("--no-plot", action="store_true", help="skip summary.png")
    args = parser.parse_args(argv)
    try:
        summary = summarize(args.sweep_dir, args.metric, args.mode, plot=not args.no_plot)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(console_lines(summary)))
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())

"""Replicates over seeds: jobs that differ only in ``seed`` form one group, summarized by n, mean,
std, min and max of the sweep's metric; the best group is the best mean.

``-m seed=0,1,2,3,4 model.layers.drop.p=0.0,0.3,0.5`` gives three groups of five jobs. A group's
key is the value of every swept key except ``seed``. Only jobs that finished ok with a finite
value of the metric count (``n``); ``jobs`` is every job of the group. The std is the *sample*
standard deviation (ddof=1: n - 1 in the denominator), the unbiased-variance estimate of the
spread between seeds; with n = 1 it is undefined and left empty.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from runner.sweep import plotting
from runner.sweep.jobs import Job, Summary, is_float, override_value

REPLICATE_KEY = "seed"
STD_NOTE = "std: sample standard deviation over seeds (ddof=1, n - 1 in the denominator)"


@dataclass
class Group:
    key: tuple[tuple[str, str | None], ...]  # (swept key, value) for every swept key but seed
    jobs: list[Job]
    values: list[float]  # the metric of the jobs that count, in job order

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan

    @property
    def min(self) -> float:
        return min(self.values) if self.values else math.nan

    @property
    def max(self) -> float:
        return max(self.values) if self.values else math.nan

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.key) or "(all jobs)"


def replicate_groups(summary: Summary) -> list[Group]:
    """The groups of a sweep over ``seed`` with a metric, in order of first job; [] otherwise."""
    if REPLICATE_KEY not in summary.swept or summary.metric is None:
        return []
    keys = [k for k in summary.swept if k != REPLICATE_KEY]
    groups: dict[tuple[tuple[str, str | None], ...], Group] = {}
    for job in summary.jobs:
        key = tuple((k, override_value(job, k)) for k in keys)
        group = groups.setdefault(key, Group(key, [], []))
        group.jobs.append(job)
        value = job.metrics.get(summary.metric, math.nan)
        if job.status == "ok" and math.isfinite(value):
            group.values.append(value)
    return list(groups.values())


def best_group(groups: list[Group], mode: str) -> Group | None:
    """The group with the best mean (the first on a tie); None with fewer than two groups to
    compare (a sweep over seeds alone) or when no group has a value."""
    scored = [g for g in groups if g.n]
    if len(groups) < 2 or not scored:
        return None
    sign = 1.0 if mode == "min" else -1.0
    return min(scored, key=lambda g: sign * g.mean)


def margin_text(summary: Summary) -> str:
    """How far the best group's mean is ahead of the next group's, against the seeds' spread."""
    best = summary.best_group
    others = [g for g in summary.groups if g.n and g is not best]
    if best is None or not others:
        return ""
    sign = 1.0 if summary.mode == "min" else -1.0
    runner_up = min(others, key=lambda g: sign * g.mean)
    margin = abs(best.mean - runner_up.mean)
    text = f"ahead of {runner_up.label} by {_fmt(margin)}"
    spread = max(best.std, runner_up.std)
    if math.isnan(spread):
        return text
    verdict = "within" if margin < spread else "beyond"
    return f"{text}, {verdict} the larger std of the two ({_fmt(spread)})"


# ---------------------------------------------------------------- rendering


def _fmt(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6g}"


def _num(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def csv_text(summary: Summary) -> str:
    """summary_groups.csv: one row per group, exact floats."""
    groups, best = summary.groups, summary.best_group
    keys = [k for k, _ in groups[0].key] if groups else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["best", *keys, "jobs", "n", "mean", "std", "min", "max", "metric"])
    for g in groups:
        writer.writerow(
            [
                "*" if g is best else "",
                *[v or "" for _, v in g.key],
                len(g.jobs),
                g.n,
                *[_num(x) for x in (g.mean, g.std, g.min, g.max)],
                summary.metric,
            ]
        )
    return out.getvalue()


def markdown_lines(summary: Summary) -> list[str]:
    """The replicates section of summary.md."""
    groups, best = summary.groups, summary.best_group
    keys = [k for k, _ in groups[0].key]
    lines = [
        "## Replicates over seeds",
        "",
        f"Jobs grouped by every swept key except `{REPLICATE_KEY}`; `{summary.metric}` over the "
        f"jobs that finished ok (n of jobs). {STD_NOTE}.",
        "",
    ]
    if best is not None:
        lines += [
            f"**Best group: {best.label}**, mean `{summary.metric}` = {_fmt(best.mean)} "
            f"± {_fmt(best.std)} (n = {best.n}, {summary.mode}imized); {margin_text(summary)}.",
            "",
        ]
    head = ["best", *keys, "n", "mean", "std", "min", "max"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for g in groups:
        row = [
            "**best**" if g is best else "",
            *[f"`{v}`" if v is not None else "" for _, v in g.key],
            f"{g.n} of {len(g.jobs)}",
            *[_fmt(x) for x in (g.mean, g.std, g.min, g.max)],
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    return lines


def console_lines(summary: Summary) -> list[str]:
    """The replicates table for the console, then the best group."""
    groups, best = summary.groups, summary.best_group
    keys = [k for k, _ in groups[0].key]
    head = [*keys, "n", "mean", "std", "min", "max", ""]
    rows = [
        [
            *[v or "" for _, v in g.key],
            f"{g.n}/{len(g.jobs)}",
            *[_fmt(x) for x in (g.mean, g.std, g.min, g.max)],
            "<- best" if g is best else "",
        ]
        for g in groups
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        f"replicates: {len(groups)} group{'s' if len(groups) != 1 else ''} over "
        f"{REPLICATE_KEY}, {summary.metric} (std: sample, ddof=1)"
    ]
    for r in [head, *rows]:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if best is not None:
        lines.append(
            f"best group: {best.label} ({summary.metric} mean {_fmt(best.mean)} ± "
            f"{_fmt(best.std)}, n={best.n}, {summary.mode})"
        )
        lines.append(f"  {margin_text(summary)}")
    return lines


def write_plot(summary: Summary, path: Path) -> str:
    """Mean ± std of each group against the first numeric swept key (one line per value of a
    second key), each seed's job as a faint dot, the best group starred."""
    groups, best = summary.groups, summary.best_group
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return "matplotlib is not installed (pip install '.[plot]')"
    scored = [g for g in groups if g.n]
    if not scored:
        return "no job finished ok"
    keys = [k for k, _ in groups[0].key]
    numeric = [k for k in keys if all(is_float(dict(g.key)[k]) for g in scored)]
    x_key = numeric[0] if numeric else None
    hue_key = next((k for k in keys if k != x_key), None)
    categories = [] if x_key else [g.label for g in scored]

    def x_of(g: Group) -> float:
        return float(dict(g.key)[x_key]) if x_key else float(categories.index(g.label))

    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = [x_of(g) for g in scored]
    shift = 0.02 * ((max(xs) - min(xs)) or 1.0)
    lines: dict[str, list[Group]] = {}
    for g in scored:
        lines.setdefault(dict(g.key)[hue_key] or "" if hue_key else "", []).append(g)
    for label, members in lines.items():
        members.sort(key=x_of)
        bars = ax.errorbar(
            [x_of(g) for g in members],
            [g.mean for g in members],
            yerr=[0.0 if math.isnan(g.std) else g.std for g in members],
            marker="o",
            capsize=4,
            label=f"{hue_key}={label}" if hue_key else "mean ± std",
        )
        color = bars.lines[0].get_color()
        for g in members:  # beside the error bar, so the caps do not hide them
            ax.plot([x_of(g) + shift] * g.n, g.values, ".", color=color, alpha=0.5)
    if best is not None:
        plotting.mark_best(ax, x_of(best), best.mean, f"best: {best.label}")
    plotting.finish(
        fig,
        ax,
        path,
        categories,
        x_key or "group",
        f"{summary.metric} (mean ± std over {REPLICATE_KEY})",
        f"{summary.metric} ({summary.mode} is best); dots: single seeds",
    )
    return ""

"""What a sweep summary looks like: summary.csv, summary.md, summary.png and the console's last
lines, rendered from a ``Summary``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from runner.sweep import plotting, replicates
from runner.sweep.jobs import DECLARE_HINT, Job, Summary, is_float, metric_names, override_value


def _metric_columns(summary: Summary) -> list[str]:
    names = metric_names(summary.jobs)
    if summary.metric in names:
        names.remove(summary.metric)
        names.insert(0, summary.metric)
    return names


def csv_text(summary: Summary) -> str:
    """summary.csv: one row per job, swept values then metrics."""
    metrics = _metric_columns(summary)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "job",
            "status",
            "best",
            *summary.swept,
            *metrics,
            "error",
            "run_folder",
            "resumed_from",
            "overrides",
        ]
    )
    for job in summary.jobs:
        writer.writerow(
            [
                job.name,
                job.status,
                "*" if job is summary.best else "",
                *[override_value(job, k) or "" for k in summary.swept],
                *[_num(job.metrics.get(m)) for m in metrics],
                job.error,
                str(job.folder),
                job.resumed_from,
                " ".join(job.overrides),
            ]
        )
    return out.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def markdown_text(summary: Summary) -> str:
    """summary.md: counts, the best job and a table of every job."""
    counts = summary.counts()
    lines = [f"# Sweep summary: {summary.sweep_dir}", ""]
    lines.append(f"{len(summary.jobs)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    lines.append("")
    if summary.metric:
        lines.append(f"Metric: `{summary.metric}` ({summary.mode}imized; {summary.metric_reason}).")
    if summary.best is not None:
        b = summary.best
        value = _fmt(b.metrics[summary.metric])
        lines.append(
            f"**Best job: {b.name}**, `{summary.metric}` = {value}, "
            f"overrides `{' '.join(b.overrides)}`, folder `{b.run_folder}`."
        )
    elif summary.metric:
        lines.append("No job finished ok with this metric: no best job.")
    else:
        lines.append(f"No best job: {summary.metric_reason}; {DECLARE_HINT}.")
    if summary.optuna:
        o = summary.optuna
        lines.append(
            f"Optuna best trial: {o['trial']} (folder `{o['folder']}`), value "
            f"{o['best_value']}, params {o['best_params']}."
        )
    lines.append("")
    if summary.groups:
        lines += replicates.markdown_lines(summary)
        lines += ["## Jobs", ""]
    metrics = _metric_columns(summary)
    head = ["job", "status", "best", *summary.swept, *metrics, "run folder"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for job in summary.jobs:
        folder = job.run_folder + (" (resumed)" if job.resumed_from else "")
        row = [
            job.name,
            job.status,
            "**best**" if job is summary.best else "",
            *[
                f"`{override_value(job, k)}`" if override_value(job, k) is not None else ""
                for k in summary.swept
            ],
            *[_fmt(job.metrics.get(m)) for m in metrics],
            f"`{folder}`",
        ]
        lines.append("| " + " | ".join(row) + " |")
    bad = [j for j in summary.jobs if j.status != "ok"]
    if bad:
        lines += ["", "## Jobs that did not finish ok", ""]
        for job in bad:
            overrides = " ".join(job.overrides)
            lines.append(f"- job {job.name} ({job.status}, `{overrides}`): {job.error}")
    lines.append("")
    if (summary.sweep_dir / "summary.png").is_file():
        what = "mean ± std of each group" if summary.groups else "metric"
        lines += [f"![{what} against the swept value](summary.png)", ""]
    elif summary.plot_note:
        lines += [f"No plot: {summary.plot_note}", ""]
    return "\n".join(lines)


def write_plot(summary: Summary, path: Path) -> str:
    """Each swept value against the metric, one line per value of a second swept key."""
    if summary.metric is None:
        return "no metric declared (hydra.callbacks.sweep.metric=NAME)"
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return "matplotlib is not installed (pip install '.[plot]')"
    metric = summary.metric
    ok = [j for j in summary.jobs if j.status == "ok" and metric in j.metrics]
    if not ok:
        return "no job finished ok"
    numeric = [k for k in summary.swept if all(is_float(override_value(j, k)) for j in ok)]
    keys = sorted(numeric, key=lambda k: -len({override_value(j, k) for j in ok}))
    x_key = keys[0] if keys else (summary.swept[0] if summary.swept else None)
    hue_key = next(
        (k for k in summary.swept if k != x_key and len({override_value(j, k) for j in ok}) > 1),
        None,
    )
    categories: list[str] = []
    if x_key is None or x_key not in numeric:
        categories = sorted({(override_value(j, x_key) if x_key else j.name) or "" for j in ok})

    def x_of(job: Job) -> float:
        if categories:
            label = override_value(job, x_key) if x_key else job.name
            return float(categories.index(label or ""))
        return float(override_value(job, x_key))  # type: ignore[arg-type]

    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    groups: dict[str, list[Job]] = {}
    for job in ok:
        groups.setdefault(override_value(job, hue_key) or "" if hue_key else "", []).append(job)
    for label, members in sorted(groups.items(), key=lambda kv: _sort_key(kv[0])):
        members.sort(key=x_of)
        ax.plot(
            [x_of(j) for j in members],
            [j.metrics[metric] for j in members],
            marker="o",
            label=f"{hue_key}={label}" if hue_key else None,
        )
    if summary.best is not None and summary.best in ok:
        b = summary.best
        plotting.mark_best(ax, x_of(b), b.metrics[metric], f"best: job {b.name}")
    not_ok = len(summary.jobs) - len(ok)
    title = f"{metric} ({summary.mode} is best)"
    if not_ok:
        title += f"; {not_ok} job{'s' if not_ok != 1 else ''} not shown (not ok)"
    plotting.finish(fig, ax, path, categories, x_key or "job", metric, title)
    return ""


def _sort_key(text: str) -> tuple[int, float, str]:
    return (0, float(text), "") if is_float(text) else (1, 0.0, text)


def console_lines(summary: Summary) -> list[str]:
    """The last lines of a sweep: counts, failures, the best job, where the summary is."""
    counts = summary.counts()
    tally = ", ".join(f"{n} {s}" for s, n in counts.items())
    lines = [f"sweep: {len(summary.jobs)} jobs: {tally}"]
    for job in summary.jobs:
        if job.status != "ok":
            lines.append(f"  job {job.name} {job.status}: {job.error}")
    if summary.metric is None:
        lines += console_table(summary)
        names = ", ".join(metric_names(summary.jobs))
        lines.append(f"no best job: {summary.metric_reason}")
        lines.append(f"  {DECLARE_HINT}" + (f" (metrics: {names})" if names else ""))
    if summary.best is not None:
        b = summary.best
        lines.append(
            f"best: job {b.name} ({summary.metric} = {_fmt(b.metrics[summary.metric])}, "
            f"{summary.mode}{'; one seed' if summary.groups else ''}) "
            f"{' '.join(o for o in b.overrides)}  {b.run_folder}"
        )
    if summary.groups:
        lines += replicates.console_lines(summary)
    if summary.optuna and summary.optuna.get("trial") is not None:
        lines.append(f"optuna best trial: {summary.optuna['trial']}  {summary.optuna['folder']}")
    others = ", ".join(p.name for p in summary.files[1:])
    lines.append(f"summary: {summary.files[0]}" + (f" (also {others})" if others else ""))
    return lines


CONSOLE_METRICS = 6  # metric columns of the console table; summary.md and summary.csv have all


def console_table(summary: Summary) -> list[str]:
    """An unranked sweep's jobs for the console: job, status, swept values, metrics."""
    names = metric_names(summary.jobs)
    shown = names[:CONSOLE_METRICS]
    head = ["job", "status", *summary.swept, *shown]
    rows = [
        [
            job.name,
            job.status,
            *[override_value(job, k) or "" for k in summary.swept],
            *[_fmt(job.metrics.get(m)) for m in shown],
        ]
        for job in summary.jobs
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    out = ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    if len(names) > len(shown):
        out.append(f"  ({len(names) - len(shown)} more metrics in summary.md)")
    return out

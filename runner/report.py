"""Sweep summaries rebuilt from the job folders on disk.

    python -m runner.report SWEEP_DIR [--metric NAME] [--mode min|max]

writes ``summary.csv``, ``summary.md`` and ``summary.png`` into SWEEP_DIR: one row per job
(overrides, status, metrics, run folder), the best job marked for the chosen metric, failed jobs
with the first line of their error, and a plot of the swept value against the metric. Only the
files matter: it works after a crash, on a partial sweep, and for every launcher. It is also what
the ``on_multirun_end`` callback (``runner.callbacks``) runs at the end of a sweep.

Exit code: 0 when every job finished ok, 1 when any job failed or is incomplete (like the sweep),
2 when SWEEP_DIR holds no jobs or the metric is unknown.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STATUS_CODE = {"ok": 0, "failed": 1, "error": 2, "incomplete": 1}
_LOWER_IS_BETTER = re.compile(r"loss|error|mse|mae|rmse|penalty|objective|time|seconds")


@dataclass
class Job:
    name: str                   # the job's subfolder, e.g. "3"
    folder: Path
    status: str                 # ok | failed | error | incomplete
    overrides: list[str]
    metrics: dict[str, float]
    error: str = ""             # first line of the error, for jobs that are not ok
    resumed_from: str = ""      # the folder of the identical finished run this job reused
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def run_folder(self) -> str:
        return self.resumed_from or str(self.folder)

    @property
    def num(self) -> int | None:
        return int(self.name) if self.name.isdigit() else None


@dataclass
class Summary:
    sweep_dir: Path
    jobs: list[Job]
    swept: list[str]                      # keys whose value differs between jobs
    metric: str | None
    mode: str
    metric_reason: str
    best: Job | None
    optuna: dict[str, Any] | None = None  # optimization_results.yaml, with the matching job
    files: list[Path] = field(default_factory=list)
    plot_note: str = ""

    @property
    def exit_code(self) -> int:
        return max((STATUS_CODE[j.status] for j in self.jobs), default=0)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for j in self.jobs:
            out[j.status] = out.get(j.status, 0) + 1
        return out


class ReportError(Exception):
    """The sweep folder cannot be summarized (no jobs, unknown metric)."""


# ---------------------------------------------------------------- reading the job folders

def collect(sweep_dir: Path | str) -> list[Job]:
    """Every job folder under SWEEP_DIR: a folder with ``.hydra/`` or ``result.json``."""
    sweep_dir = Path(sweep_dir)
    folders: set[Path] = set()
    for marker in ("result.json", ".hydra"):
        for hit in sweep_dir.rglob(marker):
            if hit.parent != sweep_dir and ".hydra" not in hit.parent.parts:
                folders.add(hit.parent)
    return sorted((_read_job(sweep_dir, f) for f in folders), key=_job_order)


def _job_order(job: Job) -> tuple[int, str]:
    return (job.num if job.num is not None else sys.maxsize, job.name)


def _read_job(sweep_dir: Path, folder: Path) -> Job:
    name = folder.relative_to(sweep_dir).as_posix()
    result: dict[str, Any] = {}
    path = folder / "result.json"
    if path.is_file():
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            result = {"status": "error", "error": {"message": f"unreadable result.json: {exc}"}}
    overrides = _hydra_overrides(folder)
    if overrides is None:
        overrides = [str(o) for o in result.get("overrides", [])]
    status = result.get("status", "incomplete") if result else "incomplete"
    if status not in STATUS_CODE:          # "running": the process died before the end
        status = "incomplete"
    error = ""
    if status == "incomplete":
        error = "no result.json: the job did not finish" if not result else "the job did not finish"
    elif status != "ok":
        error = _first_line(result.get("error", {}))
    metrics = {k: float(v) for k, v in (result.get("metrics") or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return Job(name, folder, status, overrides, metrics, error,
               str(result.get("resumed_from") or ""), result)


def _hydra_overrides(folder: Path) -> list[str] | None:
    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return None
    return [str(o) for o in data] if isinstance(data, list) else None


def _first_line(error: Any) -> str:
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        problems = error.get("problems") or []
        if not message and problems:
            first = problems[0]
            message = f"{first.get('path', '')}: {first.get('message', '')}"
        kind = error.get("kind")
        line = next((ln.strip() for ln in message.splitlines() if ln.strip()), "")
        return line or str(kind or "unknown error")
    return str(error).splitlines()[0] if str(error) else "unknown error"


def parse_override(text: str) -> tuple[str, str]:
    """``+model.layers.drop.p=0.3`` -> (``model.layers.drop.p``, ``0.3``)."""
    key, _, value = text.partition("=")
    return key.lstrip("+~"), value


def swept_keys(jobs: list[Job]) -> list[str]:
    """Keys whose value is not the same in every job, in order of first appearance."""
    seen: dict[str, set[str | None]] = {}
    for job in jobs:
        pairs = dict(parse_override(o) for o in job.overrides)
        for key in pairs:
            seen.setdefault(key, set())
    for job in jobs:
        pairs = dict(parse_override(o) for o in job.overrides)
        for key in seen:
            seen[key].add(pairs.get(key))
    return [k for k, values in seen.items() if len(values) > 1]


def override_value(job: Job, key: str) -> str | None:
    return dict(parse_override(o) for o in job.overrides).get(key)


# ---------------------------------------------------------------- choosing the metric

def configured(jobs: list[Job]) -> dict[str, Any]:
    """``hydra.callbacks.sweep`` settings as the jobs saw them, and the Optuna direction."""
    for job in jobs:
        path = job.folder / ".hydra" / "hydra.yaml"
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue
        hydra = data.get("hydra") or {}
        settings = dict((hydra.get("callbacks") or {}).get("sweep") or {})
        direction = (hydra.get("sweeper") or {}).get("direction")   # the Optuna sweeper's
        if direction in ("minimize", "maximize"):
            settings["direction"] = direction[:3]
        return settings
    return {}


def choose_metric(jobs: list[Job], metric: str | None = None,
                  settings: dict[str, Any] | None = None) -> tuple[str | None, str]:
    """The metric to rank jobs by, and why it was chosen."""
    known = _metric_names(jobs)
    if metric:
        if known and metric not in known:
            raise ReportError(f"unknown metric {metric!r}{_did_you_mean(metric, known)}; "
                              f"metrics of this sweep: {', '.join(known)}")
        return metric, "chosen with --metric"
    settings = settings or {}
    if settings.get("metric"):
        return str(settings["metric"]), "set by hydra.callbacks.sweep.metric"
    if "objective" in known:
        return "objective", "the validation score each job reported (objective)"
    ok = [j for j in jobs if j.status == "ok"]
    spread: list[tuple[float, int, str]] = []
    for i, name in enumerate(known):
        values = [j.metrics[name] for j in ok if math.isfinite(j.metrics.get(name, math.nan))]
        if len(values) >= 2 and max(values) > min(values):
            mean = abs(sum(values) / len(values))
            sd = math.sqrt(sum((v - sum(values) / len(values)) ** 2 for v in values) / len(values))
            spread.append((sd / mean if mean > 0 else math.inf, -i, name))
    if spread:
        return max(spread)[2], "the metric that changes most between jobs (largest std/mean)"
    if known:
        return known[0], "the first metric (no metric changes between jobs)"
    return None, "no job reported a metric"


def choose_mode(jobs: list[Job], metric: str | None, mode: str | None = None,
                settings: dict[str, Any] | None = None) -> str:
    if mode:
        return mode
    settings = settings or {}
    if settings.get("mode"):
        return str(settings["mode"])
    if settings.get("direction") and metric == (settings.get("metric") or "objective"):
        return str(settings["direction"])      # the metric the sweeper optimized, its way
    if metric == "objective":
        for job in jobs:
            stated = job.result.get("objective_mode")
            if stated in ("min", "max"):
                return str(stated)
    if metric and _LOWER_IS_BETTER.search(metric):
        return "min"
    return "max"


def _metric_names(jobs: list[Job]) -> list[str]:
    names: dict[str, None] = {}
    for job in jobs:
        names.update(dict.fromkeys(job.metrics))
    return list(names)


def _did_you_mean(name: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def best_job(jobs: list[Job], metric: str | None, mode: str) -> Job | None:
    if metric is None:
        return None
    scored = [j for j in jobs
              if j.status == "ok" and math.isfinite(j.metrics.get(metric, math.nan))]
    if not scored:
        return None
    sign = 1.0 if mode == "min" else -1.0
    return min(scored, key=lambda j: (sign * j.metrics[metric], _job_order(j)))


def _optuna(sweep_dir: Path, jobs: list[Job], metric: str | None) -> dict[str, Any] | None:
    """The Optuna sweeper's best trial, matched to its job folder (trial number = job number)."""
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return None
    params = {str(k): v for k, v in (data.get("best_params") or {}).items()}
    value = data.get("best_value")
    match = None
    for job in jobs:
        if job.status != "ok":
            continue
        if all(_same(override_value(job, k), v) for k, v in params.items()):
            match = job
            break
    return {"best_params": params, "best_value": value,
            "trial": match.num if match else None, "folder": str(match.folder) if match else None}


def _same(text: str | None, value: Any) -> bool:
    if text is None:
        return False
    try:
        return math.isclose(float(text), float(value), rel_tol=1e-12, abs_tol=0.0)
    except (TypeError, ValueError):
        return text == str(value)


# ---------------------------------------------------------------- building and writing

def summarize(sweep_dir: Path | str, metric: str | None = None, mode: str | None = None,
              plot: bool = True) -> Summary:
    """Read the job folders and write summary.csv, summary.md and summary.png."""
    sweep_dir = Path(sweep_dir)
    if mode not in (None, "min", "max"):
        raise ReportError(f"mode must be min or max, found {mode!r}")
    if not sweep_dir.is_dir():
        raise ReportError(f"{sweep_dir}: no such folder")
    jobs = collect(sweep_dir)
    if not jobs:
        raise ReportError(f"{sweep_dir}: no job folders "
                          "(a job folder holds .hydra/ or result.json)")
    settings = configured(jobs)
    name, reason = choose_metric(jobs, metric, settings)
    chosen_mode = choose_mode(jobs, name, mode, settings)
    summary = Summary(sweep_dir, jobs, swept_keys(jobs), name, chosen_mode, reason,
                      best_job(jobs, name, chosen_mode))
    summary.optuna = _optuna(sweep_dir, jobs, name)
    _write_atomic(sweep_dir / "summary.csv", _csv(summary))
    summary.files.append(sweep_dir / "summary.csv")
    if plot:
        summary.plot_note = _plot(summary, sweep_dir / "summary.png")
        if (sweep_dir / "summary.png").is_file():
            summary.files.append(sweep_dir / "summary.png")
    _write_atomic(sweep_dir / "summary.md", _markdown(summary))
    summary.files.insert(0, sweep_dir / "summary.md")
    return summary


def _metric_columns(summary: Summary) -> list[str]:
    names = _metric_names(summary.jobs)
    if summary.metric in names:
        names.remove(summary.metric)
        names.insert(0, summary.metric)
    return names


def _csv(summary: Summary) -> str:
    metrics = _metric_columns(summary)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["job", "status", "best", *summary.swept, *metrics, "error", "run_folder",
                     "resumed_from", "overrides"])
    for job in summary.jobs:
        writer.writerow([
            job.name, job.status, "*" if job is summary.best else "",
            *[override_value(job, k) or "" for k in summary.swept],
            *[_num(job.metrics.get(m)) for m in metrics],
            job.error, str(job.folder), job.resumed_from, " ".join(job.overrides)])
    return out.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _markdown(summary: Summary) -> str:
    counts = summary.counts()
    lines = [f"# Sweep summary: {summary.sweep_dir}", ""]
    lines.append(f"{len(summary.jobs)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    lines.append("")
    if summary.metric:
        lines.append(f"Metric: `{summary.metric}` ({summary.mode}imized; {summary.metric_reason}).")
    if summary.best is not None:
        b = summary.best
        value = _fmt(b.metrics[summary.metric])
        lines.append(f"**Best job: {b.name}**, `{summary.metric}` = {value}, "
                     f"overrides `{' '.join(b.overrides)}`, folder `{b.run_folder}`.")
    elif summary.metric:
        lines.append("No job finished ok with this metric: no best job.")
    if summary.optuna:
        o = summary.optuna
        lines.append(f"Optuna best trial: {o['trial']} (folder `{o['folder']}`), value "
                     f"{o['best_value']}, params {o['best_params']}.")
    lines.append("")
    metrics = _metric_columns(summary)
    head = ["job", "status", "best", *summary.swept, *metrics, "run folder"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for job in summary.jobs:
        folder = job.run_folder + (" (resumed)" if job.resumed_from else "")
        row = [job.name, job.status, "**best**" if job is summary.best else "",
               *[f"`{override_value(job, k)}`" if override_value(job, k) is not None else ""
                 for k in summary.swept],
               *[_fmt(job.metrics.get(m)) for m in metrics], f"`{folder}`"]
        lines.append("| " + " | ".join(row) + " |")
    bad = [j for j in summary.jobs if j.status != "ok"]
    if bad:
        lines += ["", "## Jobs that did not finish ok", ""]
        for job in bad:
            overrides = " ".join(job.overrides)
            lines.append(f"- job {job.name} ({job.status}, `{overrides}`): {job.error}")
    lines.append("")
    if (summary.sweep_dir / "summary.png").is_file():
        lines += ["![metric against the swept value](summary.png)", ""]
    elif summary.plot_note:
        lines += [f"No plot: {summary.plot_note}", ""]
    return "\n".join(lines)


def _plot(summary: Summary, path: Path) -> str:
    """Each swept value against the metric, one line per value of a second swept key."""
    if summary.metric is None:
        return "no metric"
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return "matplotlib is not installed (pip install '.[plot]')"
    metric = summary.metric
    ok = [j for j in summary.jobs if j.status == "ok" and metric in j.metrics]
    if not ok:
        return "no job finished ok"
    numeric = [k for k in summary.swept if all(_is_float(override_value(j, k)) for j in ok)]
    keys = sorted(numeric, key=lambda k: -len({override_value(j, k) for j in ok}))
    x_key = keys[0] if keys else (summary.swept[0] if summary.swept else None)
    hue_key = next((k for k in summary.swept if k != x_key
                    and len({override_value(j, k) for j in ok}) > 1), None)
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
        ax.plot([x_of(j) for j in members], [j.metrics[metric] for j in members], marker="o",
                label=f"{hue_key}={label}" if hue_key else None)
    if summary.best is not None and summary.best in ok:
        b = summary.best
        ax.plot([x_of(b)], [b.metrics[metric]], marker="*", markersize=16, color="crimson",
                linestyle="none", label=f"best: job {b.name}")
    if categories:
        ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
    ax.set_xlabel(x_key or "job")
    ax.set_ylabel(metric)
    not_ok = len(summary.jobs) - len(ok)
    title = f"{metric} ({summary.mode} is best)"
    if not_ok:
        title += f"; {not_ok} job{'s' if not_ok != 1 else ''} not shown (not ok)"
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, format="png")
    tmp.replace(path)
    return ""


def _is_float(text: str | None) -> bool:
    try:
        float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _sort_key(text: str) -> tuple[int, float, str]:
    return (0, float(text), "") if _is_float(text) else (1, 0.0, text)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def console_lines(summary: Summary) -> list[str]:
    """The last lines of a sweep: counts, failures, the best job, where the summary is."""
    counts = summary.counts()
    tally = ", ".join(f"{n} {s}" for s, n in counts.items())
    lines = [f"sweep: {len(summary.jobs)} jobs: {tally}"]
    for job in summary.jobs:
        if job.status != "ok":
            lines.append(f"  job {job.name} {job.status}: {job.error}")
    if summary.best is not None:
        b = summary.best
        lines.append(f"best: job {b.name} ({summary.metric} = {_fmt(b.metrics[summary.metric])}, "
                     f"{summary.mode}) {' '.join(o for o in b.overrides)}  {b.run_folder}")
    if summary.optuna and summary.optuna.get("trial") is not None:
        lines.append(f"optuna best trial: {summary.optuna['trial']}  {summary.optuna['folder']}")
    others = ", ".join(p.name for p in summary.files[1:])
    lines.append(f"summary: {summary.files[0]}" + (f" (also {others})" if others else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runner.report",
        description="Rebuild summary.csv, summary.md and summary.png of a sweep from its job "
                    "folders.")
    parser.add_argument("sweep_dir", type=Path, help="the sweep folder (holds one folder per job)")
    parser.add_argument("--metric", help="metric to rank jobs by (default: hydra.callbacks.sweep."
                        "metric, else objective, else the metric that changes most)")
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

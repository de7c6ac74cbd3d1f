"""A sweep's jobs as read from their folders on disk, and the choice of metric, direction and
best job. Reading files only is what makes summaries work for every launcher and after a crash."""

from __future__ import annotations

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
    name: str  # the job's subfolder, e.g. "3"
    folder: Path
    status: str  # ok | failed | error | incomplete
    overrides: list[str]
    metrics: dict[str, float]
    error: str = ""  # first line of the error, for jobs that are not ok
    resumed_from: str = ""  # the folder of the identical finished run this job reused
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
    swept: list[str]  # keys whose value differs between jobs
    metric: str | None
    mode: str
    metric_reason: str
    best: Job | None
    optuna: dict[str, Any] | None = None  # optimization_results.yaml, with the matching job
    files: list[Path] = field(default_factory=list)
    plot_note: str = ""
    groups: list[Any] = field(default_factory=list)  # replicates.Group: jobs that differ in seed
    best_group: Any = None

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
            if not isinstance(result, dict):
                raise ValueError(f"expected a JSON object, found {type(result).__name__}")
        except (OSError, ValueError) as exc:
            result = {"status": "error", "error": {"message": f"unreadable {path}: {exc}"}}
    overrides = _hydra_overrides(folder)
    if overrides is None:
        raw = result.get("overrides")
        overrides = [str(o) for o in raw] if isinstance(raw, list) else []
    status = result.get("status", "incomplete") if result else "incomplete"
    bad = [
        k
        for k, t in (("metrics", dict), ("error", (dict, str)), ("overrides", list))
        if result.get(k) is not None and not isinstance(result[k], t)
    ]
    if bad:
        result = {
            "status": "error",
            "error": {"message": f"unreadable {path}: {bad[0]!r} has the wrong type"},
        }
        status = "error"
    if (
        not isinstance(status, str) or status not in STATUS_CODE
    ):  # "running": the process died before the end
        status = "incomplete"
    error = ""
    if status == "incomplete":
        error = "no result.json: the job did not finish" if not result else "the job did not finish"
    elif status != "ok":
        error = _first_line(result.get("error", {}))
    metrics = {
        k: float(v)
        for k, v in (result.get("metrics") or {}).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    return Job(
        name,
        folder,
        status,
        overrides,
        metrics,
        error,
        str(result.get("resumed_from") or ""),
        result,
    )


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


def is_float(text: str | None) -> bool:
    try:
        float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


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
        direction = (hydra.get("sweeper") or {}).get("direction")  # the Optuna sweeper's
        if direction in ("minimize", "maximize"):
            settings["direction"] = direction[:3]
        return settings
    return {}


def choose_metric(
    jobs: list[Job], metric: str | None = None, settings: dict[str, Any] | None = None
) -> tuple[str | None, str]:
    """The metric to rank jobs by, and why it was chosen: the one named (``--metric``, else
    ``hydra.callbacks.sweep.metric``), else ``objective`` (fit's monitored score). Otherwise
    None: a metric is never guessed, a predict-only sweep has no objective to rank by."""
    known = metric_names(jobs)
    if metric:
        if known and metric not in known:
            from layers.registry import did_you_mean  # imported only on this error path

            raise ReportError(
                f"unknown metric {metric!r}{did_you_mean(metric, known)}; "
                f"metrics of this sweep: {', '.join(known)}"
            )
        return metric, "chosen with --metric"
    settings = settings or {}
    if settings.get("metric"):
        return str(settings["metric"]), "set by hydra.callbacks.sweep.metric"
    if "objective" in known:
        return "objective", "the validation score each job reported (objective)"
    return None, NO_METRIC


NO_METRIC = "no metric declared and no objective (only task=fit reports one), so no job is ranked"
DECLARE_HINT = "to rank the jobs, declare a metric: hydra.callbacks.sweep.metric=NAME"


def choose_mode(
    jobs: list[Job],
    metric: str | None,
    mode: str | None = None,
    settings: dict[str, Any] | None = None,
) -> str:
    if mode:
        return mode
    settings = settings or {}
    if settings.get("mode"):
        return str(settings["mode"])
    if settings.get("direction") and metric == (settings.get("metric") or "objective"):
        return str(settings["direction"])  # the metric the sweeper optimized, its way
    if metric == "objective":
        for job in jobs:
            stated = job.result.get("objective_mode")
            if stated in ("min", "max"):
                return str(stated)
    if metric and _LOWER_IS_BETTER.search(metric):
        return "min"
    return "max"


def metric_names(jobs: list[Job]) -> list[str]:
    """Every metric name of the jobs, in first-seen order."""
    names: dict[str, None] = {}
    for job in jobs:
        names.update(dict.fromkeys(job.metrics))
    return list(names)


def best_job(jobs: list[Job], metric: str | None, mode: str) -> Job | None:
    if metric is None:
        return None
    scored = [
        j for j in jobs if j.status == "ok" and math.isfinite(j.metrics.get(metric, math.nan))
    ]
    if not scored:
        return None
    sign = 1.0 if mode == "min" else -1.0
    return min(scored, key=lambda j: (sign * j.metrics[metric], _job_order(j)))


def optuna_summary(sweep_dir: Path, jobs: list[Job], metric: str | None) -> dict[str, Any] | None:
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
    return {
        "best_params": params,
        "best_value": value,
        "trial": match.num if match else None,
        "folder": str(match.folder) if match else None,
    }


def _same(text: str | None, value: Any) -> bool:
    if text is None:
        return False
    try:
        return math.isclose(float(text), float(value), rel_tol=1e-12, abs_tol=0.0)
    except (TypeError, ValueError):
        return text == str(value)

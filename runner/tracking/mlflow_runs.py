"""Runs and sweeps logged to MLflow (``tracking=mlflow``), read back from the run folders.

A run is created when the job starts (status RUNNING, so it shows up while it trains). A fit
logs each epoch's history row as the epoch ends (``runner.tracking.epoch_metrics``: an epoch
callback the CLI hands to the fit, so the trainer imports no MLflow). The rest comes from the
finished folder: the validated config (config.yaml, flattened) as params, any history.csv row
not logged live (a resumed sweep's reused job), result.json's other metrics at the last step, the
folder itself as artifacts, and its status (ok -> FINISHED, interrupted -> KILLED, else FAILED).
Reading the folder keeps the end of a run the same for every task and launcher.

A sweep is one parent run, created by the sweep callback before any job starts; its id is
written to ``SWEEP_DIR/mlflow_parent.json``, where every job finds it, in this process (basic
launcher) or in another one (joblib, submitit, Ray: the sweep folder is shared, as the summary
already requires). Each job becomes a child run (tag ``mlflow.parentRunId``).

MLflow is imported only here, and only when tracking is on: it takes about a second to import.
Only the command line sets ``tracking`` and ``tracking_uri`` (runner.config.guard refuses them in
model files), so a config from a stranger cannot send runs anywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import yaml

from runner.config.paths import resolve_path, shown_path
from runner.errors import ConfigError
from runner.tracking.epoch_metrics import EpochMetrics

log = logging.getLogger("runner")

EXTRA_HINT = 'pip install -e ".[mlflow]" -c constraints.txt (the mlflow extra: mlflow-skinny)'
DEFAULT_STORE = "mlruns"  # in the folder the command runs from
PARENT_FILE = "mlflow_parent.json"  # in the sweep folder: the parent run of the jobs
PARAM_CHARS = 500  # longer values (inline arrays) are named by size and digest: see config.yaml
STATUS = {"ok": "FINISHED", "interrupted": "KILLED"}  # anything else: FAILED
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_KEY_CHARS = re.compile(r"[^\w\-. /]")


def tracking_on(config: Any) -> bool:
    return config.get("tracking") == "mlflow"


def store_uri(config: Any, cwd: Path) -> str:
    """tracking_uri from the command line, else $MLFLOW_TRACKING_URI, else ./mlruns. A local
    path (or file: URI) becomes an absolute file: URI, resolved against the command's folder."""
    uri = config.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE
    uri = str(uri)
    _mask_password(uri)
    if uri.startswith("file://"):
        return uri
    if re.match(r"^[A-Za-z][\w+.-]+:", uri) and not uri.startswith("file:"):
        return uri  # a server or a database: MLflow's to interpret
    return resolve_path(uri.removeprefix("file:"), cwd).resolve().as_uri()


def _mask_password(uri: str) -> None:
    """The password of scheme://user:password@host (a database or a server behind basic
    auth, often from $MLFLOW_TRACKING_URI) is masked as *** in every message and run file,
    MLflow's own error text included, as values oc.env hands out are."""
    from urllib.parse import unquote, urlsplit

    from runner.config import redact

    try:
        password = urlsplit(uri).password
    except ValueError:  # a malformed port or host: MLflow says what is wrong with it
        password = uri.partition("://")[2].rpartition("@")[0].partition(":")[2] or None
    if password:
        redact.remember(password)
        redact.remember(unquote(password))


def open_client(uri: str) -> Any:
    """An MlflowClient on URI, or a ConfigError naming the extra to install / the bad URI."""
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise ConfigError.one(
            "tracking", f"tracking=mlflow needs MLflow, which is not installed: {EXTRA_HINT}"
        ) from exc
    if uri.startswith("file:"):
        # MLflow 3 keeps the file store in maintenance mode and refuses it unless asked: the
        # local store needs no database, and parallel jobs write separate files.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)  # reach the store now, not after the run
    except (MlflowException, OSError) as exc:  # OSError: a local store it cannot create
        raise ConfigError.one(
            "tracking_uri", f"MLflow cannot use {uri!r}: {_store_problem(exc)}"
        ) from exc
    return client


# MLflow's words for a scheme it has no store for, which it words as a registry problem first
_UNSUPPORTED = re.compile(
    r"unsupported URI '[^']*'.*?Supported URI schemes are: \[([^\]]*)\]", re.S
)


def _store_problem(exc: BaseException) -> str:
    """What is wrong with the store, in one line: an unknown scheme is said as such (MLflow's
    own first line speaks of the model registry), anything else is MLflow's first line."""
    found = _UNSUPPORTED.search(str(getattr(exc, "message", None) or exc))
    if found is None:
        return _first_line(exc)
    schemes = [s.strip(" '\"") for s in found.group(1).split(",")]
    known = ", ".join(f"{s}:" for s in schemes if s)
    return (
        f"MLflow has no store for this scheme (it knows {known} and plain folders); "
        "give a folder, or the http(s):// address of an MLflow server"
    )


def experiment_id(client: Any, name: str) -> str:
    """The experiment named NAME, created when missing (parallel jobs may race to create it)."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:  # created by another job in the meantime
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def experiment_name(model: str | None) -> str:
    """$MLFLOW_EXPERIMENT_NAME, else the model's name (+model=NAME), else MLflow's Default."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or model or "Default"


class TrackedRun:
    """One MLflow run, created when the job starts, given a fit's epochs as they end
    (``epochs``, an epoch callback) and filled from its folder at the end."""

    def __init__(self, client: Any, run_id: str, uri: str) -> None:
        self.client, self.run_id, self.uri = client, run_id, uri
        self.epochs = EpochMetrics(client, run_id)

    @classmethod
    def start(
        cls,
        config: dict[str, Any],
        cwd: Path,
        output_dir: Path,
        name: str,
        model: str | None,
        sweep_dir: Path | None = None,
    ) -> TrackedRun:
        uri = store_uri(config, cwd)
        client = open_client(uri)
        parent = read_parent(sweep_dir) if sweep_dir is not None else None
        tags = {"mlflow.runName": name, "runner.run_folder": str(output_dir)}
        if parent is not None:
            tags["mlflow.parentRunId"] = parent["run_id"]
            exp = parent["experiment_id"]
        else:
            exp = experiment_id(client, experiment_name(model))
        run = client.create_run(exp, tags=tags, run_name=name)
        tracked = cls(client, run.info.run_id, uri)
        where = f"{shown_store(uri, cwd)} (experiment {exp}" + (
            f", child of {parent['run_id']})" if parent else ")"
        )
        log.info("tracking: MLflow run %s in %s", run.info.run_id, where)
        return tracked

    def finish(self, output_dir: Path, fallback_config: dict[str, Any]) -> None:
        """Epochs not logged yet, then params, metrics, tags and artifacts, read from the run
        folder; then the status. A run whose logging failed is still ended (never RUNNING)."""
        result = _read_json(output_dir / "result.json")
        status = STATUS.get(str(result.get("status", "incomplete")), "FAILED")
        try:
            self._log_folder(output_dir, result, fallback_config)
        except Exception:
            with contextlib.suppress(Exception):  # the store is gone: the error raised says so
                self.client.set_terminated(self.run_id, status)
            raise
        self.client.set_terminated(self.run_id, status)

    def _log_folder(
        self, output_dir: Path, result: dict[str, Any], fallback_config: dict[str, Any]
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        from runner.config import redact
        from runner.train.history import read_history

        self.epochs.flush(read_history(output_dir))  # kept pending by the store; a reused job's
        config = _read_yaml(output_dir / "config.yaml")
        if config is None:  # the config was refused before it was validated
            config = redact.data(fallback_config)
        params = [Param(k, v) for k, v in flat_params(config).items()]
        now = int(time.time() * 1000)
        last = max(self.epochs.logged, default=0)
        metrics = [
            Metric(key, float(value), now, last)
            for key, value in (result.get("metrics") or {}).items()
            if key not in self.epochs.keys and _is_number(value)
        ]
        tags = [
            RunTag("runner.status", str(result.get("status", "incomplete"))),
            RunTag("runner.task", str(result.get("task", ""))),
            RunTag("runner.config_hash", str(result.get("config_hash", ""))),
            RunTag("runner.overrides", " ".join(result.get("overrides") or [])),
        ]
        if isinstance(result.get("model_file"), dict):
            tags.append(RunTag("runner.model_file", str(result["model_file"].get("path"))))
        self.client.log_batch(self.run_id, metrics=metrics, params=params, tags=tags)
        self.client.log_artifacts(self.run_id, str(output_dir))


# ---------------------------------------------------------------- sweeps: the parent run


def start_sweep(config: Any, cwd: Path, sweep_dir: Path, name: str, model: str | None) -> str:
    """The parent run of a sweep; its id goes to SWEEP_DIR/mlflow_parent.json for the jobs."""
    from runner.output.artifacts import write_text

    uri = store_uri(config, cwd)
    client = open_client(uri)
    exp = experiment_id(client, experiment_name(model))
    tags = {"mlflow.runName": name, "runner.sweep_dir": str(sweep_dir)}
    run = client.create_run(exp, tags=tags, run_name=name)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    record = {"run_id": run.info.run_id, "experiment_id": exp, "tracking_uri": uri}
    write_text(sweep_dir / PARENT_FILE, json.dumps(record, indent=2) + "\n")
    print(  # the launching process: the console, like the sweep summary
        f"tracking: MLflow parent run {run.info.run_id} in {shown_store(uri, cwd)} "
        f"(experiment {exp})",
        flush=True,
    )
    return run.info.run_id


def read_parent(sweep_dir: Path) -> dict[str, str] | None:
    """The parent run this sweep's callback recorded (None outside a tracked sweep)."""
    record = _read_json(sweep_dir / PARENT_FILE)
    run_id, exp = record.get("run_id"), record.get("experiment_id")
    if not (isinstance(run_id, str) and _RUN_ID.match(run_id) and isinstance(exp, str)):
        return None
    return {"run_id": run_id, "experiment_id": exp}


def finish_sweep(config: Any, cwd: Path, sweep_dir: Path, summary: Any | None) -> None:
    """The parent's summary files as artifacts, the best job's (and group's) numbers as
    metrics, and its status: FINISHED when every job finished ok, else FAILED."""
    from mlflow.entities import Metric, RunTag

    parent = read_parent(sweep_dir)
    if parent is None:
        return
    client = open_client(store_uri(config, cwd))
    run_id = parent["run_id"]
    if summary is None:  # the summary could not be made (no jobs)
        client.set_terminated(run_id, "FAILED")
        return
    now = int(time.time() * 1000)
    metrics, tags = [], [RunTag("runner.jobs", str(len(summary.jobs)))]
    for status, n in summary.counts().items():
        metrics.append(Metric(f"jobs_{status}", float(n), now, 0))
    if summary.best is not None:
        value = summary.best.metrics[summary.metric]
        metrics.append(Metric(f"best_job/{summary.metric}", value, now, 0))
        tags.append(RunTag("runner.best_job", summary.best.name))
    group = summary.best_group
    if group is not None:
        metrics.append(Metric(f"best_group/{summary.metric}_mean", group.mean, now, 0))
        if group.n > 1:
            metrics.append(Metric(f"best_group/{summary.metric}_std", group.std, now, 0))
        tags.append(RunTag("runner.best_group", group.label))
    client.log_batch(run_id, metrics=metrics, tags=tags)
    for path in [*summary.files, sweep_dir / "multirun.yaml"]:
        if path.is_file():
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED" if summary.exit_code == 0 else "FAILED")


# ---------------------------------------------------------------- params and small helpers


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested keys joined with dots (``model.layers.drop.p``); values as JSON text. Values
    longer than PARAM_CHARS (inline arrays) are named by their length and sha256 instead."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = _KEY_CHARS.sub("_", f"{prefix}{key}")  # MLflow refuses other characters
        if isinstance(value, dict) and value:
            out.update(flat_params(value, f"{name}."))
            continue
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        if len(text) > PARAM_CHARS:
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            size = f"{len(value)} items" if isinstance(value, list) else f"{len(text)} chars"
            text = f"<{size}, sha256 {digest}: see config.yaml>"
        out[name] = text
    return out


def run_name(model: str | None, overrides: list[str], job: int | None = None) -> str:
    """``mlp_digits seed=2 model.layers.drop.p=0.3`` (``3: ...`` for job 3 of a sweep)."""
    hidden = ("model", "tracking", "tracking_uri")  # in the experiment's name; where it goes
    shown = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] not in hidden]
    name = " ".join([model or "run", *shown])
    return f"{job}: {name}" if job is not None else name


def shown_store(uri: str, cwd: Path) -> str:
    """A local store as a path relative to the command's folder when it lies inside."""
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return shown_path(Path(unquote(urlparse(uri).path)), cwd)
    from runner.config import redact

    return redact.text(uri)  # (printed on the console too, past the logging filter)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc)
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_yaml(path: Path) -> dict[str, Any] | None:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None

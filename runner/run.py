"""One run, start to finish: validate -> plan -> build -> execute -> artifacts.

Works without Hydra: ``run(config_dict, output_dir)``. Every outcome, including an invalid
config, ends with ``result.json`` (written last, atomically) and an exit code. The folder is
claimed first (``artifacts.claim``; under Hydra the ``claim`` callback already did it, before
Hydra wrote anything): a folder that holds a finished run, or that another run is using, raises
``artifacts.FolderClaimed`` (a FileExistsError) and is left untouched. Ctrl-C writes a result.json
with status "interrupted" and raises KeyboardInterrupt again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runner.config.file_access import allowed_dirs, check_paths
from runner.config.limits import check_disk, config_limits, plan_ranks
from runner.config.paths import shown_path
from runner.config.plugins import load_plugins
from runner.config.run_folders import with_run_weights
from runner.config.validate import validate
from runner.data.shards import choose_shard
from runner.errors import ConfigError, RunFailed, UserError
from runner.evaluate.plan import needs_evaluate_plan, plan_evaluate
from runner.graph.build import build, named_weights
from runner.graph.context import phase
from runner.graph.execute import predict
from runner.graph.plan import Plan, make_plan
from runner.output import artifacts
from runner.output.csv_outputs import write_csvs
from runner.output.diagram import mermaid
from runner.output.expect import run_checks
from runner.output.output_stats import OutputStats, output_stats
from runner.output.summary import summary_text
from runner.train.plan import plan_task

log = logging.getLogger("runner")

SMALL_OUTPUT = 1000  # outputs up to this many elements are also written into result.json
CONSOLE_OUTPUT = 100  # outputs up to this many elements are printed in full, larger: a summary


@dataclass
class Outcome:
    exit_code: int
    result: dict[str, Any]
    plan: Plan | None = None
    values: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def metric(self) -> float | None:
        """The number handed back to Hydra sweepers (fit: the monitored score)."""
        value = self.result.get("metrics", {}).get("objective")
        return float(value) if value is not None else None


def run(
    config: dict[str, Any],
    output_dir: Path | str,
    cwd: Path | str | None = None,
    extra_result: dict[str, Any] | None = None,
    model_file: Path | None = None,
    epoch_callbacks: Sequence[Callable[[Any, dict[str, float]], None]] = (),
) -> Outcome:
    """Run ``config`` into ``output_dir``. Data files are read relative to ``cwd`` and only
    from ``cwd``, the folder of ``model_file`` (the YAML the config came from) and data_dirs.
    ``epoch_callbacks``: called after each epoch of a fit (``runner.train.fit.EpochCallback``;
    a tracker's, say)."""
    output_dir = Path(output_dir)
    cwd = Path.cwd() if cwd is None else Path(cwd)
    artifacts.claim(output_dir)  # no-op when this process claimed it (the Hydra callback)
    start = time.perf_counter()
    result: dict[str, Any] = {
        "status": "running",
        "task": config.get("task", "predict"),
        "seed": config.get("seed"),
        "config_hash": config_hash(config),
        **(extra_result or {}),
    }
    if model_file is not None:
        result["model_file"] = {
            "path": shown_path(model_file, cwd),
            "sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
        }
        log.info(
            "model file: %s (sha256 %s)",
            result["model_file"]["path"],
            result["model_file"]["sha256"][:16],
        )
    timings: dict[str, float] = {}
    outcome = Outcome(0, result)
    try:
        plan = check_and_plan(config, cwd, model_file, timings)
        spec = plan.spec
        outcome.plan = plan
        if plan.shard is not None:  # what runner.sweep.merge checks and joins
            unsharded = config_hash({k: v for k, v in config.items() if k != "shard"})
            result["shard"] = {**plan.shard.as_dict(), "config_hash": unsharded}
            log.info("shard %d of %d: %s", plan.shard.index, plan.shard.count, plan.shard.sources)
        artifacts.write_yaml(output_dir / "config.yaml", spec.model_dump(mode="json"))
        summary = summary_text(plan)
        artifacts.write_text(output_dir / "summary.txt", summary + "\n")
        artifacts.write_text(output_dir / "graph.mmd", mermaid(plan))
        log.info("%s", summary)
        result["shapes"] = {n: [None, *node.shape] for n, node in plan.nodes.items()}
        result["plan"] = {
            "rows": plan.rows,
            "params": sum(n.n_params for n in plan.nodes.values()),
            "memory_mb": round(plan.memory_bytes / 2**20, 3),
            "warnings": plan.warnings,
        }
        if spec.task == "validate":
            log.info("config is valid")
        elif spec.task == "predict":
            _predict(spec, plan, output_dir, result, timings, outcome)
        elif spec.task == "evaluate":
            from runner.evaluate.task import evaluate_task

            evaluate_task(spec, plan, output_dir, result, timings, outcome)
        else:
            from runner.train.fit import fit_task  # training lives in its own module

            fit_task(spec, plan, output_dir, result, timings, outcome, epoch_callbacks)
        result["status"] = "ok" if outcome.exit_code == 0 else "failed"
    except UserError as exc:
        outcome.exit_code = exc.exit_code
        result["status"] = "error" if exc.exit_code == 2 else "failed"
        where = _positions(exc, model_file, cwd)
        result["error"] = {
            "kind": type(exc).__name__,
            "problems": [{**vars(p), **w} for p, w in zip(exc.problems, where)],
            "message": str(exc),
        }
        log.error("%s", _error_text(exc, where))
    except artifacts.WriteFailed as exc:  # the machine's problem (disk full), not the config's
        outcome.exit_code = 1
        result["status"] = "failed"
        result["error"] = {"kind": "WriteFailed", "message": str(exc)}
        log.error("run failed: %s", exc)
    except SystemExit as exc:  # only plugin code calls sys.exit inside a run
        outcome.exit_code = 1
        result["status"] = "failed"
        result["error"] = {
            "kind": "SystemExit",
            "message": f"{_who(exc, config)} called sys.exit({exc.code!r}) "
            "during the run: layer code must raise, not exit",
        }
        log.error("run failed: %s", result["error"]["message"])
    except KeyboardInterrupt as exc:
        result["status"] = "interrupted"
        plugin = _plugin_in(exc, config)
        result["error"] = {
            "kind": "KeyboardInterrupt",
            "message": str(exc)
            or (
                f"interrupted: KeyboardInterrupt raised in plugin {plugin!r}"
                if plugin
                else "interrupted (Ctrl-C)"
            ),
        }
        _finish(result, timings, start, output_dir)
        raise
    except Exception as exc:  # our bug, not the user's: say so, keep the traceback in the log
        outcome.exit_code = 1
        result["status"] = "failed"  # "error" is kept for what the user must fix (exit 2)
        result["error"] = {"kind": "InternalError", "message": f"{type(exc).__name__}: {exc}"}
        log.error(
            "internal error: %s: %s (please report it; the traceback is in the run log)",
            type(exc).__name__,
            exc,
        )
        log.debug("%s", traceback.format_exc())
    _finish(result, timings, start, output_dir)
    return outcome


def check_and_plan(
    config: dict[str, Any],
    cwd: Path,
    model_file: Path | None = None,
    timings: dict[str, float] | None = None,
) -> Plan:
    """Every check a task makes before it computes, in order: plugins, machine limits, the
    schema, the files a config may read, the plan (with the fit part when the task needs it).
    ``task=validate``, runs and ``runner.check`` all go through here."""
    timings = {} if timings is None else timings
    t = time.perf_counter()
    _load_plugins(config)
    problems = config_limits(config)
    if problems:
        raise ConfigError(problems)
    spec = validate(config)
    check_paths(spec, cwd, allowed_dirs(cwd, model_file, spec.data_dirs))
    spec = with_run_weights(spec, cwd)  # evaluate.run=DIR: model.weights.path=DIR/weights.npz
    spec, shard = choose_shard(spec, cwd)  # shard=I: each sharded input reads its I-th file
    timings["validate"] = time.perf_counter() - t
    t = time.perf_counter()
    plan = plan_task(spec, make_plan(spec, cwd))
    plan.shard = shard
    if needs_evaluate_plan(spec):
        plan.evaluate = plan_evaluate(spec, plan)
    problems = plan_ranks(plan)
    if problems:
        raise ConfigError(problems)
    if spec.task == "predict":
        check_disk(plan)
    timings["plan"] = time.perf_counter() - t
    return plan


def _finish(
    result: dict[str, Any], timings: dict[str, float], start: float, output_dir: Path
) -> None:
    """result.json, written last: with the sha256 of every file the run wrote; then the claim
    is dropped (result.json now says the folder is finished)."""
    timings["total"] = time.perf_counter() - start
    result["timings"] = {k: round(v, 6) for k, v in timings.items()}
    result["versions"] = artifacts.versions()
    result["output_dir"] = str(output_dir)
    result["files"] = artifacts.run_files(output_dir)
    artifacts.write_result(output_dir / "result.json", result)
    artifacts.release(output_dir)


def _load_plugins(config: dict[str, Any]) -> None:
    """Plugin imports: an exit is a problem of model.plugins[i] (runner.config.plugins); an
    interrupt goes on as Ctrl-C, naming the plugin."""
    try:
        load_plugins(config)
    except KeyboardInterrupt as exc:
        raise KeyboardInterrupt(f"interrupted while importing {_who(exc, config)}") from exc


def _plugin_in(exc: BaseException, config: dict[str, Any]) -> str | None:
    """The innermost plugin module (named under model.plugins) in the exception's traceback."""
    model = config.get("model") if isinstance(config, dict) else None
    names = model.get("plugins") if isinstance(model, dict) else None
    names = [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
    found, tb = None, exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if any(module == n or module.startswith(n + ".") for n in names):
            found = module
        tb = tb.tb_next
    return found


def _who(exc: BaseException, config: dict[str, Any]) -> str:
    plugin = _plugin_in(exc, config)
    return f"plugin {plugin!r}" if plugin else "plugin code"


# Where a run is reported, not what it computes: a resumed sweep reuses runs made without them.
UNHASHED = ("tracking", "tracking_uri")


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the resolved config (canonical JSON): equal hashes mean identical runs."""
    kept = {k: v for k, v in config.items() if k not in UNHASHED}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _predict(spec, plan: Plan, output_dir: Path, result, timings, outcome: Outcome) -> None:
    t = time.perf_counter()
    build(plan)
    timings["build"] = time.perf_counter() - t
    training = phase(spec)
    keep = set(plan.outputs) | set(plan.expect)
    progress = spec.progress if spec.progress is not None else sys.stderr.isatty()
    prediction = predict(
        plan,
        training,
        keep,
        progress=progress,
        out_dir=output_dir / "outputs",
        outputs_to_disk=spec.outputs_to_disk,
    )
    timings["execute"] = prediction.seconds
    outcome.values = prediction.values
    weights = named_weights(plan)
    penalty = sum(prediction.penalties.values())
    weight_penalty = sum(n.layer.weight_penalty() for n in plan.nodes.values())
    metrics: dict[str, Any] = {"activity_penalty": penalty, "weight_penalty": weight_penalty}
    metrics.update({f"penalty/{k}": v for k, v in prediction.penalties.items()})
    stats = {name: output_stats(prediction.values[name]) for name in plan.outputs}
    for name, s in stats.items():
        metrics[f"{name}/mean"] = s.mean
        metrics[f"{name}/zero_fraction"] = s.zero_fraction
    result["phase"] = "train" if training else "test"
    result["metrics"] = metrics
    saved = {str(n): prediction.values[n] for n in plan.outputs}
    saved.update({f"{n}/mask": prediction.masks[n] for n in plan.outputs if n in prediction.masks})
    # Streamed outputs already sit in memory-mapped outputs/NAME.npy files: not copied again.
    on_disk = {n: a for n, a in saved.items() if isinstance(a, np.memmap)}
    for a in on_disk.values():
        a.flush()
    artifacts.write_npz(
        output_dir / "outputs.npz", {n: a for n, a in saved.items() if n not in on_disk}
    )
    artifacts.write_npz(output_dir / "weights.npz", weights)
    result["outputs"] = {
        name: {
            "shape": list(a.shape),
            "dtype": str(a.dtype),
            "sha256": artifacts.array_digest(a),
            **({"file": str(Path(a.filename).relative_to(output_dir))} if name in on_disk else {}),
            **({"values": a.tolist()} if a.size <= SMALL_OUTPUT else {}),
        }
        for name, a in saved.items()
    }
    if spec.save_csv:
        values = {str(n): prediction.values[n] for n in plan.outputs}
        rows = np.arange(len(next(iter(values.values()))))
        write_csvs(output_dir, values, rows, result["outputs"])
    shown = set()
    for name in plan.outputs:
        where = result["outputs"][str(name)].get("file", "outputs.npz")
        for line in _output_lines(str(name), prediction.values[name], where, stats[name]):
            log.info("%s", line)
        if name in prediction.masks:
            log.info("%s", _mask_line(prediction.masks[name]))
        key = f"{name}/activity"
        if key in prediction.penalties:
            shown.add(key)
            log.info("activity penalty: %.6g", prediction.penalties[key])
    for key, value in prediction.penalties.items():  # layers that are not outputs
        if key not in shown:
            log.info("activity penalty of %s: %.6g", key.removesuffix("/activity"), value)
    checks = run_checks(plan.expect, prediction.values, prediction.masks, prediction.penalties)
    result["expect"] = [c.as_dict() for c in checks]
    if checks:
        passed = sum(c.ok for c in checks)
        metrics["expect_passed"] = passed
        log.info("expect: %d of %d checks passed", passed, len(checks))
    failed = [c for c in checks if not c.ok]
    if failed:
        from runner.errors import Problem

        raise RunFailed([Problem(f"model.expect.{c.name}", c.detail) for c in failed])


def _output_lines(name: str, value: np.ndarray, where: str, s: OutputStats) -> list[str]:
    """An output for the console: its values when it has at most CONSOLE_OUTPUT elements, else
    its shape, dtype, min, mean and max and the file that holds it."""
    if value.size <= CONSOLE_OUTPUT:
        return [f"{name} =", np.array2string(np.asarray(value))]
    if np.issubdtype(value.dtype, np.number) or value.dtype == bool:
        stats = f", min {s.minimum:.6g}, mean {s.mean:.6g}, max {s.maximum:.6g}"
    else:
        stats = ""
    shape = "(" + ", ".join(str(d) for d in value.shape) + ")"
    return [f"{name}: shape {shape} {value.dtype}{stats}; values in {where}"]


def _mask_line(mask: np.ndarray) -> str:
    """A mask for the console: 1 = timestep kept, 0 = masked; a count when it is large."""
    if mask.size <= CONSOLE_OUTPUT:
        text = np.array2string(np.asarray(mask).astype(np.int8))
        return ("mask = " if "\n" not in text else "mask =\n") + text
    masked = int(mask.size - np.count_nonzero(mask))
    return f"mask: {masked} of {mask.size} timesteps masked"


def _positions(exc: UserError, model_file: Path | None, cwd: Path) -> list[dict[str, Any]]:
    """For each problem, where its config path sits in the model file (file, line, column)."""
    if model_file is None:
        return [{} for _ in exc.problems]
    from runner.config.positions import locate_all

    try:
        text = model_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return [{} for _ in exc.problems]
    shown = shown_path(model_file, cwd)
    out = []
    places = locate_all(text, [p.path for p in exc.problems])
    for problem, (line, column) in zip(exc.problems, places, strict=True):
        out.append(
            {"model_file": shown, "line": line, "column": column}
            if problem.path.startswith("model")
            else {}
        )
    return out


def _error_text(exc: UserError, where: list[dict[str, Any]] | None = None) -> str:
    from runner.errors import DataError

    kind = (
        "invalid data"
        if isinstance(exc, DataError)
        else "invalid config"
        if exc.exit_code == 2
        else "run failed"
    )
    n = len(exc.problems)
    head = f"{kind}: {n} problem{'s' if n != 1 else ''}"
    where = where or [{} for _ in exc.problems]
    return (
        head
        + "\n"
        + "\n".join(
            f"  {w['model_file']}:{w['line']}:{w['column']}: {p}" if w else f"  {p}"
            for p, w in zip(exc.problems, where)
        )
    )

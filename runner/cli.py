"""What the Hydra task does: turn the composed config into a run and report it."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.config.paths import shown_path

log = logging.getLogger("runner")


def run_job(cfg: DictConfig) -> tuple[int, float | None]:
    hydra_cfg = HydraConfig.get()
    from runner.config import redact

    if not any(isinstance(f, redact.MaskFilter) for f in log.filters):
        log.addFilter(redact.MaskFilter())
    if "oc.env" in (cfg.get("allow_resolvers") or []):
        redact.watch_environment()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    cwd = Path(hydra_cfg.runtime.cwd)
    overrides = list(hydra_cfg.overrides.task)
    from runner.output import artifacts

    if not gc.isenabled():  # python -m runner turned it off for its start-up
        gc.freeze()  # start-up's objects are never garbage: no later collection walks them
        gc.enable()

    clash = model_name_clash(model_files(hydra_cfg), cwd) if "model" in cfg else None
    if clash:
        return _refuse(output_dir, "+model", clash)
    if "model" not in cfg:
        log.error(
            "no model chosen: pass +model=NAME, for example\n"
            "  python -m runner +model=dense_example\nshipped models: %s",
            ", ".join(shipped_models()),
        )
        artifacts.write_result(
            output_dir / "result.json",
            {"status": "error", "error": {"kind": "ConfigError", "message": "no model chosen"}},
        )
        artifacts.release(output_dir)
        return 2, None
    try:
        config: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "(config)"
        message = str(exc).splitlines()[0]
        return _refuse(output_dir, key, message, shown=f"cannot resolve: {message}")
    tracked = None
    if config.get("tracking") == "mlflow":  # MLflow is imported only then
        from runner.errors import ConfigError
        from runner.tracking.mlflow_runs import TrackedRun, run_name

        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        model = hydra_cfg.runtime.choices.get("model")
        try:
            tracked = TrackedRun.start(
                config,
                cwd,
                output_dir,
                run_name(model, overrides, hydra_cfg.job.num if multirun else None),
                model,
                cwd / str(hydra_cfg.sweep.dir) if multirun else None,
            )
        except ConfigError as exc:
            (problem,) = exc.problems
            return _refuse(output_dir, problem.path, problem.message)
    code, metric = _run(config, output_dir, cwd, overrides, hydra_cfg, tracked)
    if tracked is not None:
        code = max(code, _finish_tracking(tracked, output_dir, config))
    return code, metric


def _run(
    config: dict[str, Any],
    output_dir: Path,
    cwd: Path,
    overrides: list[str],
    hydra_cfg: Any,
    tracked: Any,
) -> tuple[int, float | None]:
    """Resume from an identical finished run, or run: the exit code and the sweep's number."""
    from runner.run import config_hash, run
    from runner.sweep.callbacks import reuse_finished, set_aside_unfinished, sweep_settings

    sweep = sweep_settings()
    if sweep.get("resume_from"):
        reused = reuse_finished(
            cwd / str(sweep["resume_from"]), config_hash(config), output_dir, overrides
        )
        if reused is not None:
            log.info(
                "resumed: an identical config finished ok in %s; not run again",
                reused.get("resumed_from") or output_dir,
            )
            return 0, _sweep_metric(reused, sweep.get("metric"))
        refusal = set_aside_unfinished(output_dir)
        if refusal:
            log.error("cannot resume: %s", refusal)
            return 2, None
    try:
        outcome = run(
            config,
            output_dir,
            cwd,
            extra_result={"overrides": overrides},
            model_file=model_file(hydra_cfg),
            epoch_callbacks=[tracked.epochs] if tracked is not None else (),
        )
    except KeyboardInterrupt:  # result.json says "interrupted": the MLflow run is KILLED
        if tracked is not None:
            _finish_tracking(tracked, output_dir, config)
        raise
    except FileExistsError as exc:
        # Never touch an earlier run's results (no result.json is written over it either).
        log.error("%s; or resume a sweep with hydra.callbacks.sweep.resume_from=DIR", exc)
        return 2, None
    log.info("run folder: %s", shown_path(output_dir, cwd))
    if sweep.get("metric") and outcome.exit_code == 0:
        return outcome.exit_code, _sweep_metric(outcome.result, sweep["metric"])
    return outcome.exit_code, outcome.metric


def _refuse(output_dir: Path, path: str, message: str, shown: str = "") -> tuple[int, None]:
    """A problem found before the run starts: logged, recorded in result.json, exit 2."""
    from runner.output import artifacts

    log.error("invalid config: 1 problem\n  %s: %s", path, shown or message)
    artifacts.write_result(
        output_dir / "result.json",
        {
            "status": "error",
            "error": {"kind": "ConfigError", "problems": [{"path": path, "message": message}]},
        },
    )
    artifacts.release(output_dir)
    return 2, None


def _finish_tracking(tracked: Any, output_dir: Path, config: dict[str, Any]) -> int:
    """Log the finished run folder to MLflow: 0, or 1 when that failed (the folder is whole)."""
    try:
        tracked.finish(output_dir, config)
    except Exception as exc:  # the store went away, a disk filled up: not the run's fault
        log.error(
            "tracking: could not log this run to MLflow (%s): %s: %s; the run folder is complete",
            tracked.uri,
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
        )
        return 1
    return 0


def model_file(hydra_cfg: Any) -> Path | None:
    """The file Hydra read the chosen model from: the first source, in search order, that
    holds ``model/NAME.yaml`` (the lookup Hydra made)."""
    found = model_files(hydra_cfg)
    return found[0] if found else None


def model_files(hydra_cfg: Any) -> list[Path]:
    """Every file of the search path that holds the chosen ``model/NAME.yaml``, in order."""
    choice = hydra_cfg.runtime.choices.get("model")
    found: list[Path] = []
    for source in hydra_cfg.runtime.config_sources if choice else []:
        candidate = None
        if source.schema == "file":
            candidate = Path(source.path, "model", f"{choice}.yaml")
        elif source.schema == "pkg":
            from importlib import resources

            try:
                candidate = Path(
                    str(resources.files(source.path).joinpath("model", f"{choice}.yaml"))
                )
            except (ModuleNotFoundError, TypeError):
                continue
        if candidate is not None and candidate.is_file() and candidate.resolve() not in found:
            found.append(candidate.resolve())
    return found


def model_name_clash(files: list[Path], cwd: Path) -> str | None:
    """Two different files answer to one model name (``model_files``): say which, never run
    the wrong one. None when there is one. export-onnx applies the same rule."""
    if len(files) < 2:
        return None
    shown = [shown_path(f, cwd) for f in files]
    return (
        f"the model name is found in {len(files)} places: {', '.join(shown)}; Hydra would run "
        f"the first, silently. Rename your copy (its folder comes later in the search path "
        "than the shipped conf/)"
    )


def _sweep_metric(result: dict[str, Any], name: str | None) -> float | None:
    """The number handed back to sweepers: hydra.callbacks.sweep.metric, else the objective."""
    value = result.get("metrics", {}).get(name or "objective")
    return float(value) if value is not None else None


def shipped_models() -> list[str]:
    from runner.config.conf_dir import config_dir

    where = config_dir()
    if where.startswith("pkg://"):
        from importlib import resources

        files = resources.files("runner.conf").joinpath("model").iterdir()
        return sorted(f.name[:-5] for f in files if f.name.endswith(".yaml"))
    return sorted(p.stem for p in (Path(where) / "model").glob("*.yaml"))

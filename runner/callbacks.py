"""The sweep's end: summarize the job folders on disk, print where the summary is.

Registered in ``conf/config.yaml`` as ``hydra.callbacks.sweep``. Its settings are the sweep's:

- ``metric``: the metric to rank jobs by (default: ``objective`` when jobs report one, else the
  metric that changes most between jobs); the task also hands it back to sweepers such as Optuna;
- ``mode``: ``min`` or ``max`` (default: min for names like loss/error/penalty, else max);
- ``resume_from``: a sweep (or run) folder; jobs whose identical resolved config already finished
  ok there are not run again (``runner.cli`` does the lookup).

``on_multirun_end`` runs in the launching process with every launcher, but Hydra calls it only
when no job raised: so jobs never raise, they write ``result.json`` with their status. The summary
reads the folders, never in-memory job returns, because under joblib, submitit and Ray the jobs
ran in other processes. The sweep's exit code comes from the same files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("runner.sweep")

_sweep_exit_code: int = 0


def sweep_exit_code() -> int:
    """Exit code of the last sweep summarized in this process: 0 when every job was ok."""
    return _sweep_exit_code


class SweepSummary(Callback):
    def __init__(self, metric: str | None = None, mode: str | None = None,
                 resume_from: str | None = None, plot: bool = True) -> None:
        self.metric = metric
        self.mode = mode
        self.resume_from = resume_from
        self.plot = plot

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _sweep_exit_code
        from runner.report import ReportError, console_lines, summarize

        sweep_dir = Path(str(config.hydra.sweep.dir))
        _stop_local_ray()
        try:
            summary = summarize(sweep_dir, self.metric, self.mode, plot=self.plot)
        except ReportError as exc:
            _sweep_exit_code = 2
            print(f"sweep summary: {exc}", flush=True)
            return
        _sweep_exit_code = summary.exit_code
        print("\n".join(console_lines(summary)), flush=True)


def _stop_local_ray() -> None:
    """After a Ray-launched sweep: flush the workers' log lines and stop the local cluster now
    (an existing cluster is only disconnected), so the summary lines are the console's last."""
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def sweep_settings() -> dict[str, Any]:
    """``hydra.callbacks.sweep`` of the running job ({} outside Hydra or when not registered)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    node = HydraConfig.get().get("callbacks", {}) or {}
    settings = node.get("sweep") or {}
    return {k: settings.get(k) for k in ("metric", "mode", "resume_from")}


def reuse_finished(resume_from: Path, digest: str, output_dir: Path,
                   overrides: list[str]) -> dict[str, Any] | None:
    """Resume: the result of a run under RESUME_FROM whose identical config finished ok.

    The match is by ``config_hash`` (sha256 of the resolved config, written by every run into
    result.json). The finished run's files are hard-linked (copied across file systems) into
    OUTPUT_DIR and a result.json saying ``resumed_from`` is written there, so the new sweep
    folder is complete on its own. None when no finished run matches.
    """
    import json
    import os
    import shutil

    from runner import artifacts

    found: tuple[Path, dict[str, Any]] | None = None
    for path in sorted(resume_from.rglob("result.json")):
        if ".hydra" in path.parts:
            continue
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if result.get("status") == "ok" and result.get("config_hash") == digest:
            found = (path.parent, result)
            break
    if found is None:
        return None
    folder, result = found
    origin = result.get("resumed_from") or str(folder)
    if folder.resolve() == output_dir.resolve():       # resuming in place: nothing to do
        return result
    output_dir.mkdir(parents=True, exist_ok=True)
    for src in folder.iterdir():
        dst = output_dir / src.name
        if not src.is_file() or src.name in ("result.json", "run.log") or dst.exists():
            continue
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    reused = {**result, "resumed_from": origin, "output_dir": str(output_dir),
              "overrides": overrides}
    artifacts.write_result(output_dir / "result.json", reused)
    return reused


def set_aside_unfinished(output_dir: Path) -> str | None:
    """Resuming in place: keep the record of an earlier attempt that did not finish ok.

    Its result.json is renamed ``result.attempt-N.json`` so the job can run again in its folder.
    A folder that holds a *different* finished run is never overwritten: the message says so.
    """
    import json

    path = output_dir / "result.json"
    if not path.is_file():
        return None
    try:
        status = json.loads(path.read_text()).get("status")
    except (OSError, ValueError):
        status = None
    if status == "ok":
        return (f"{output_dir} holds a finished run of another config; resume into a new sweep "
                "folder (leave hydra.sweep.dir at its default)")
    n = 1
    while (output_dir / f"result.attempt-{n}.json").exists():
        n += 1
    path.rename(output_dir / f"result.attempt-{n}.json")
    return None

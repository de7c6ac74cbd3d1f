"""The sweep's end: summarize the job folders on disk, print where the summary is.

Registered in ``conf/config.yaml`` as ``hydra.callbacks.sweep``. Its settings are the sweep's:

- ``metric``: the metric to rank jobs by (default: ``objective`` when jobs report one, as fit
  does; else no job is ranked); the task also hands it back to sweepers such as Optuna;
- ``mode``: ``min`` or ``max`` (default: min for names like loss/error/penalty, else max);
- ``resume_from``: a sweep (or run) folder; jobs whose identical resolved config already finished
  ok there are not run again (``runner.cli`` does the lookup).

A sweep whose jobs read one shard each (``-m shard=0,1,2,3``) also ends with their outputs
joined in shard order (``runner.sweep.merge``).

``on_multirun_end`` runs in the launching process with every launcher, but Hydra calls it only
when no job raised: so jobs never raise, they write ``result.json`` with their status. The summary
reads the folders, never in-memory job returns, because under joblib, submitit and Ray the jobs
ran in other processes. The sweep's exit code comes from the same files.
"""

from __future__ import annotations

import logging
import os
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
    def __init__(
        self,
        metric: str | None = None,
        mode: str | None = None,
        resume_from: str | None = None,
        plot: bool = True,
    ) -> None:
        self.metric = metric
        self.mode = mode
        self.resume_from = resume_from
        self.plot = plot

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """tracking=mlflow: the sweep's parent run, before any job starts (jobs find its id in
        the sweep folder, whichever process they run in)."""
        if config.get("tracking") != "mlflow":
            return
        from runner.errors import ConfigError
        from runner.tracking.mlflow_runs import run_name, start_sweep

        model = config.hydra.runtime.choices.get("model")
        name = "sweep " + run_name(model, [str(o) for o in config.hydra.overrides.task])
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            start_sweep(config, Path.cwd(), sweep_dir, name, model)
        except ConfigError as exc:
            import sys

            unclaim_unused_sweep(sweep_dir)  # no job ran: the same command may be run again
            sys.stderr.write("invalid config: 1 problem\n" + f"  {exc.problems[0]}\n")
            raise SystemExit(2) from None  # Hydra would only warn about an exception

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _sweep_exit_code
        from runner.sweep.report import ReportError, console_lines, summarize

        sweep_dir = Path(str(config.hydra.sweep.dir))
        _stop_local_ray()
        summary = None
        try:
            summary = summarize(
                sweep_dir, plot=self.plot, declared={"metric": self.metric, "mode": self.mode}
            )
        except ReportError as exc:
            _sweep_exit_code = 2
            print(f"sweep summary: {exc}", flush=True)
        if summary is not None:
            _sweep_exit_code = summary.exit_code
            print("\n".join(console_lines(summary)), flush=True)
            _merge_shards(sweep_dir, summary.jobs)
        if config.get("tracking") == "mlflow":
            _sweep_exit_code = max(_sweep_exit_code, _finish_parent(config, sweep_dir, summary))


def _merge_shards(sweep_dir: Path, jobs: list) -> None:
    """A shard fan-out (jobs that read shard=I) ends with its outputs joined in shard order."""
    global _sweep_exit_code
    from runner.sweep.merge import MergeError, is_sharded, merge

    if not is_sharded(jobs):
        return
    try:
        print("\n".join(merge(sweep_dir).lines()), flush=True)
    except MergeError as exc:
        _sweep_exit_code = _sweep_exit_code or 2
        print(f"merge: {exc}", flush=True)


def _finish_parent(config: DictConfig, sweep_dir: Path, summary: Any) -> int:
    """The summary onto the sweep's MLflow parent run: 0, or 1 when logging failed."""
    from runner.tracking.mlflow_runs import finish_sweep

    try:
        finish_sweep(config, Path.cwd(), sweep_dir, summary)
    except Exception as exc:  # the store went away: the sweep folder is still complete
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"tracking: could not log the sweep to MLflow: {type(exc).__name__}: {first}")
        return 1
    return 0


class ClaimFolder(Callback):
    """Claims the run folder (``on_run_start``) or the sweep folder (``on_multirun_start``)
    before Hydra writes anything into it: exclusive creation of a marker, so a second run into a
    finished or busy folder is refused (exit 2) and the folder's bytes stay as they were.
    Registered in ``conf/config.yaml`` as ``hydra.callbacks.claim``."""

    # Hydra turns an Exception raised by a callback into a warning and goes on writing into the
    # folder, so a refusal is printed here and ends the process with SystemExit(2).

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from runner.output import artifacts

        try:
            artifacts.claim(Path(str(config.hydra.run.dir)))
        except artifacts.FolderClaimed as exc:
            _refuse(exc)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from runner.output import artifacts

        try:
            self._claim_sweep(config)
        except artifacts.FolderClaimed as exc:
            _refuse(exc)

    def _claim_sweep(self, config: DictConfig) -> None:
        from runner.output import artifacts

        sweep_dir = Path(str(config.hydra.sweep.dir))
        settings = (config.hydra.get("callbacks") or {}).get("sweep") or {}
        resume_from = settings.get("resume_from")
        in_place = bool(resume_from) and _same_folder(Path(str(resume_from)), sweep_dir)
        if not in_place and (sweep_dir / artifacts.CLAIM).exists():
            raise artifacts.FolderClaimed(
                f"{sweep_dir} already holds a sweep and is never overwritten: choose another "
                "hydra.sweep.dir, or resume it with hydra.callbacks.sweep.resume_from=DIR"
            )
        # The sweep folder keeps its marker: a sweep folder has no result.json to say it is done.
        # Resuming in place takes over the claim of a sweep that is no longer running.
        created = _first_missing(sweep_dir)
        artifacts.claim(sweep_dir, take_over_dead=in_place)
        artifacts.keep_claim(sweep_dir)
        _sweeps_claimed[os.path.realpath(sweep_dir)] = created


# Sweep folders this process claimed -> the outermost folder the claim created (None: the
# sweep folder existed), so a sweep refused before any job ran can leave nothing behind.
_sweeps_claimed: dict[str, Path | None] = {}


def _first_missing(folder: Path) -> Path | None:
    """The outermost of FOLDER and its parents that does not exist yet (None: FOLDER exists)."""
    missing = None
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing = path
    return missing


def unclaim_unused_sweep(sweep_dir: Path) -> None:
    """Undo this process's claim of SWEEP_DIR when nothing but the marker is in it (a sweep
    refused before its first job): the marker goes, and so do the folders the claim created.
    A folder that holds anything else (a sweep resumed in place) keeps its claim."""
    from runner.output import artifacts

    key = os.path.realpath(sweep_dir)
    if key not in _sweeps_claimed:
        return
    created = _sweeps_claimed.pop(key)
    try:
        if {p.name for p in sweep_dir.iterdir()} != {artifacts.CLAIM}:
            return
        (sweep_dir / artifacts.CLAIM).unlink()
        if created is None:
            return
        for path in (sweep_dir, *sweep_dir.parents):
            path.rmdir()  # only empty folders; stops at the first that is not (OSError)
            if path == created:
                break
    except OSError:
        pass  # a folder someone else is writing into: left as it is


def _refuse(exc: BaseException) -> None:
    import sys

    sys.stderr.write(f"error: {exc}\n")
    sys.stderr.flush()
    raise SystemExit(2)


def _same_folder(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


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


def reuse_finished(
    resume_from: Path, digest: str, output_dir: Path, overrides: list[str]
) -> dict[str, Any] | None:
    """Resume: the result of a run under RESUME_FROM whose identical config finished ok.

    The match is by ``config_hash`` (sha256 of the resolved config, written by every run into
    result.json). A folder is trusted only when the files its result.json lists (``files``:
    relative path -> sha256) are regular files inside it that still have those hashes; symlinks
    are never followed. The files are hard-linked (copied across file systems) into OUTPUT_DIR,
    checked again there, and a result.json saying ``resumed_from`` is written, so the new sweep
    folder is complete on its own. None when no finished run matches (the job runs again).
    """
    import json

    from runner.output import artifacts

    root = Path(os.path.realpath(resume_from))
    found: tuple[Path, dict[str, Any]] | None = None
    for path in sorted(resume_from.rglob("result.json")):
        if ".hydra" in path.parts or path.is_symlink() or not path.is_file():
            continue
        folder = path.parent
        if not _inside(folder, root):
            continue
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(result, dict):
            continue
        if result.get("status") == "ok" and result.get("config_hash") == digest:
            problem = _untrusted(folder, result.get("files"))
            if problem:
                log.warning("not resuming from %s: %s; the job runs again", folder, problem)
                continue
            found = (folder, result)
            break
    if found is None:
        return None
    folder, result = found
    origin = result.get("resumed_from") or str(folder)
    if folder.resolve() == output_dir.resolve():  # resuming in place: nothing to do
        return result
    artifacts.claim(output_dir)
    linked: list[Path] = []
    problem = None
    for rel, sha in result["files"].items():
        src, dst = folder / rel, output_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(src, dst)
        linked.append(dst)
        if artifacts.file_digest(dst) != sha:  # what was linked is what was checked
            problem = f"{rel} changed while it was being linked"
            break
    if problem:
        for dst in linked:
            dst.unlink(missing_ok=True)
        artifacts.release(output_dir)
        log.warning("not resuming from %s: %s; the job runs again", folder, problem)
        return None
    reused = {
        **result,
        "resumed_from": origin,
        "output_dir": str(output_dir),
        "overrides": overrides,
    }
    artifacts.write_result(output_dir / "result.json", reused)
    artifacts.release(output_dir)
    return reused


def _inside(path: Path, root: Path) -> bool:
    real = Path(os.path.realpath(path))
    return real == root or root in real.parents


def _untrusted(folder: Path, files: Any) -> str | None:
    """Why FOLDER's recorded files cannot be trusted, or None when every one checks out."""
    from runner.output import artifacts

    return artifacts.untrusted_files(folder, files)


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link to SRC itself (never to what a symlink points at), else a copy of it."""
    import shutil

    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f_in, open(dst, "wb") as f_out:
            shutil.copyfileobj(f_in, f_out)


def set_aside_unfinished(output_dir: Path) -> str | None:
    """Resuming in place: keep the record of an earlier attempt that did not finish ok.

    Its result.json is renamed ``result.attempt-N.json`` so the job can run again in its folder.
    A folder that holds a *different* finished run is never overwritten: the message says so.
    """
    import json

    from runner.output import artifacts

    path = output_dir / "result.json"
    if not path.is_file():
        (output_dir / artifacts.CLAIM).unlink(missing_ok=True)  # left by a job that died
        return None
    try:
        status = json.loads(path.read_text()).get("status")
    except (OSError, ValueError):
        status = None
    if status == "ok":
        return (
            f"{output_dir} holds a finished run of another config; resume into a new sweep "
            "folder (leave hydra.sweep.dir at its default)"
        )
    n = 1
    while (output_dir / f"result.attempt-{n}.json").exists():
        n += 1
    path.rename(output_dir / f"result.attempt-{n}.json")
    (output_dir / artifacts.CLAIM).unlink(missing_ok=True)
    return None

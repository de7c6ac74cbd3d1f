"""Run folders a config names (``evaluate.run``, ``evaluate.reference``): a finished run that
holds the files asked for.

The folder itself is confined like every file a config names (``file_access``, which finds
these fields by their ``names_file`` marker); a file inside it must also stay inside it once
symlinks are resolved, so a folder cannot lead a run elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.config.paths import resolve_path, stays_inside
from runner.config.schema import ModelWeights
from runner.errors import ConfigError


def finished_run(folder: str, config_path: str, cwd: Path, files: list[str]) -> Path:
    """The folder, checked: a run that finished ok (its result.json says so) and holds
    ``files``; ConfigError at ``config_path`` naming the folder otherwise."""
    where = resolve_path(folder, cwd)
    if not where.is_dir():
        raise ConfigError.one(config_path, "not a folder (give a run folder)", folder)
    result_file = where / "result.json"
    if not result_file.is_file():
        raise ConfigError.one(
            config_path,
            "not a finished run folder: it holds no result.json (a run writes it last)",
            folder,
        )
    if not stays_inside(result_file, where):  # its status would be shown
        raise ConfigError.one(
            config_path,
            "not a finished run folder: its result.json leads out of it (a symlink)",
            folder,
        )
    try:
        result = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # (too deep)
        raise ConfigError.one(
            config_path, f"its result.json is unreadable: {str(exc).splitlines()[0]}", folder
        ) from None
    status = result.get("status") if isinstance(result, dict) else None
    if status != "ok":
        raise ConfigError.one(
            config_path, f"the run did not finish ok (status {status!r}): choose another", folder
        )
    for name in files:
        file = where / name
        inside = stays_inside(file, where)
        if not file.is_file() or not inside:
            task = result.get("task", "?")
            raise ConfigError.one(
                config_path,
                f"the run (task={task}) holds no {name}"
                + ("" if inside else " inside its folder (a symlink leads out of it)"),
                folder,
            )
    return where


def with_run_weights(spec: Any, cwd: Path) -> Any:
    """``evaluate.run=DIR`` is ``model.weights.path=DIR/weights.npz``: the spec with that set
    (the run folder checked first). Used by task=evaluate and task=validate."""
    run = spec.evaluate.run
    if run is None or spec.task not in ("evaluate", "validate"):
        return spec
    if spec.model.weights is not None:
        raise ConfigError.one(
            "evaluate.run",
            f"the model already names its weights (model.weights.path="
            f"{spec.model.weights.path}): give one of the two",
        )
    finished_run(run, "evaluate.run", cwd, ["weights.npz"])
    path = str(Path(run) / "weights.npz")
    model = spec.model.model_copy(update={"weights": ModelWeights(path=path)})
    return spec.model_copy(update={"model": model})

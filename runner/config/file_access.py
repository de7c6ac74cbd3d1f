"""Which files a run may read: data and weights stay inside folders the person running chose.

A model file names data, weight and target files. Their real paths (symlinks resolved) must
lie inside the directory the command ran from, the model file's own directory, or a directory
given on the command line with ``data_dirs=[...]`` (a run setting, which a model file cannot
set). So a config cannot read ``~/.ssh/id_rsa`` through ``../../`` or a symlink. A glob of
data shards (``data/part-*.npy``, runner.config.globs) may not say ``..`` or ``**``, and every
file it matches is checked the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from runner.config.globs import is_glob, problems_of_matches
from runner.config.paths import resolve_path
from runner.errors import ConfigError, Problem


def allowed_dirs(cwd: Path, model_file: Path | None, data_dirs: Iterable[str]) -> list[Path]:
    dirs = [cwd, *(resolve_path(d, cwd) for d in data_dirs)]
    if model_file is not None:
        dirs.append(model_file.parent)
    return [d.resolve() for d in dirs]


def check_paths(spec: BaseModel, cwd: Path, dirs: list[Path]) -> None:
    """Every file the config names (wherever it sits in the config) lies inside ``dirs``."""
    problems = []

    def inside(real: Path) -> bool:
        return any(real == d or real.is_relative_to(d) for d in dirs)

    for config_path, file in named_files(spec, ""):
        unusable = _unusable(file, cwd)
        if unusable:
            problems.append(Problem(config_path, f"cannot use this path: {unusable}", file))
            continue
        if is_glob(file):  # data shards: the pattern's rules, then every file it matches
            problems.extend(problems_of_matches(file, cwd, config_path, inside))
            continue
        real = resolve_path(file, cwd).resolve()
        if not inside(real):
            problems.append(
                Problem(
                    config_path,
                    "the file lies outside the directories a run "
                    "may read (where the command ran, the model file's folder "
                    "and data_dirs; symlinks are followed): move it there, or "
                    "allow its folder on the command line with "
                    "data_dirs=[DIR]",
                    file,
                )
            )
    if problems:
        raise ConfigError(problems)


def _unusable(file: str, cwd: Path) -> str | None:
    """Why the system cannot look ``file`` up at all (a NUL character, a name too long, a
    symlink loop), or None: refused here, before anything else stats or opens it."""
    try:
        resolve_path(file, cwd).resolve().exists()
    except ValueError:  # os functions refuse an embedded NUL
        return "the path holds a NUL character"
    except RuntimeError:  # Python 3.11's resolve() on a symlink loop
        return "its symlinks form a loop"
    except OSError as exc:  # a name too long, too many levels of links, ...
        return (exc.strerror or type(exc).__name__).lower()
    return None


def named_files(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(config path, file) for every ``path:`` field of every config model inside ``value``,
    and every field marked ``names_file`` (run folders: ``evaluate.run``)."""
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        file = getattr(value, "path", None) if "path" in fields else None
        if isinstance(file, str):
            yield path, file
        for name, info in fields.items():
            item = getattr(value, name)
            extra = info.json_schema_extra
            if isinstance(extra, dict) and extra.get("names_file") and isinstance(item, str):
                yield _join(path, name), item
            elif name != "path":
                yield from named_files(item, _join(path, name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from named_files(item, _join(path, str(key)))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if isinstance(item, (BaseModel, dict, list, tuple)):
                yield from named_files(item, f"{path}[{i}]")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key

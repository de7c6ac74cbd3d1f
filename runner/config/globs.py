"""Shard globs a config names (``{path: "data/part-*.npy"}``): what a pattern may say and
what it matches, in sorted order. No NumPy here: file_access checks every match before anything
is read (runner.data.shards reads them)."""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from runner.config.paths import resolve_path, shown_path
from runner.errors import ConfigError, Problem

#: Most shards one glob may match: each mapped shard keeps a file descriptor open.
MAX_SHARDS = 256

_MAGIC = re.compile(r"[*?\[]")


def is_glob(path: str) -> bool:
    """Whether a config path is a glob pattern (``*``, ``?`` or ``[``) rather than a file."""
    return bool(_MAGIC.search(path))


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not an acceptable shard glob, or None."""
    parts = Path(pattern).parts
    if ".." in parts:
        return "a shard pattern may not contain '..': name the folder directly"
    if any("**" in part for part in parts):
        return "a shard pattern may not use '**' (recursive globs): match files in named folders"
    if any(_MAGIC.search(part) for part in parts[:-1]):
        # every wildcard folder multiplies the listings: two links to '.' under data/ made
        # data/*/*/.../*.npy list 2**depth folders (depth 18: 9.9 s; 30: hours)
        return (
            "a shard pattern may use '*', '?' or '[' in its file name only "
            "(data/part-*.npy): name its folders"
        )
    if not pattern.lower().endswith(".npy"):
        return "a shard pattern must match .npy files (end in .npy, e.g. data/part-*.npy)"
    return None


def expand(pattern: str, cwd: Path, config_path: str) -> list[Path]:
    """The files ``pattern`` matches, sorted; ConfigError when the pattern is refused, matches
    nothing, or matches more than ``MAX_SHARDS`` files."""
    where = dict(path=config_path, file=pattern)
    problem = pattern_problem(pattern)
    if problem:
        raise ConfigError.one(message=problem, **where)
    full = resolve_path(pattern, cwd)
    found = []
    for hit in glob.iglob(str(full)):  # not recursive; hidden files are not matched
        found.append(Path(hit))
        if len(found) > MAX_SHARDS:
            raise ConfigError.one(
                message=f"the pattern matches more than {MAX_SHARDS} files; at most "
                f"{MAX_SHARDS} shards are read in one run: join shards into fewer files, or "
                "fan them out over jobs (docs/sweeps.md)",
                **where,
            )
    files = sorted(p for p in found if p.is_file())
    if not files:
        raise ConfigError.one(
            message=f"the pattern matches no file (looked in {shown_path(full.parent, cwd)})",
            **where,
        )
    return files


def problems_of_matches(
    pattern: str, cwd: Path, config_path: str, inside: Callable[[Path], bool]
) -> Iterator[Problem]:
    """Confinement of a glob: every match must satisfy ``inside(real_path)``."""
    try:
        files = expand(pattern, cwd, config_path)
    except ConfigError as exc:
        yield from exc.problems
        return
    outside = [f for f in files if not inside(f.resolve())]  # every match, links followed
    if outside:
        more = f" (and {len(outside) - 1} more)" if len(outside) > 1 else ""
        yield Problem(
            config_path,
            f"the pattern matches {_as_named(outside[0], cwd)}{more}, which lies (symlinks "
            "followed) outside the directories a run may read (where the command ran, the "
            "model file's folder and data_dirs): move it there, or allow its folder on the "
            "command line with data_dirs=[DIR]",
            pattern,
        )


def _as_named(path: Path, cwd: Path) -> str:
    """A match as the pattern names it: relative to cwd when below it (links not followed)."""
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)

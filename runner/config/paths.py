"""Paths named by configs: how they resolve, and how a message shows them (no heavy imports:
the guard uses this before Hydra composes anything)."""

from __future__ import annotations

from pathlib import Path


def resolve_path(file: str, cwd: Path) -> Path:
    """A path from a config: ``~`` expanded, relative ones against where the command ran."""
    p = Path(file).expanduser()
    return p if p.is_absolute() else cwd / p


def stays_inside(path: Path, folder: Path) -> bool:
    """``path`` lies inside ``folder`` once symlinks are resolved: a link planted in a folder
    (a run folder, a repository of configs) cannot lead a read elsewhere."""
    return path.resolve().is_relative_to(folder.resolve())


def shown_path(path: Path, cwd: Path | None = None) -> str:
    """``path`` for a message: relative to where the command ran when below it, else absolute."""
    try:
        return str(path.resolve().relative_to((cwd or Path.cwd()).resolve()))
    except ValueError:
        return str(path)

"""Paths named by configs: how they resolve, and how a message shows them (no heavy imports:
the guard uses this before Hydra composes anything)."""

from __future__ import annotations

from pathlib import Path


def resolve_path(file: str, cwd: Path) -> Path:
    """A path from a config: ``~`` expanded, relative ones against where the command ran."""
    p = Path(file).expanduser()
    return p if p.is_absolute() else cwd / p


def shown_path(path: Path, cwd: Path | None = None) -> str:
    """``path`` for a message: relative to where the command ran when below it, else absolute."""
    try:
        return str(path.resolve().relative_to((cwd or Path.cwd()).resolve()))
    except ValueError:
        return str(path)

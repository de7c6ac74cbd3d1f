"""Memory budget of what a config asks to read or draw: sizes in words, one refusal message."""

from __future__ import annotations

from runner.errors import ConfigError


def size_text(n_bytes: float) -> str:
    return f"{n_bytes:,.0f} bytes" if n_bytes < 2**20 else f"{n_bytes / 2**20:,.1f} MB"


def limit_text(max_bytes: float) -> str:
    return f"max_memory_mb ({max_bytes / 2**20:,.6g} MB)"


def refuse_above(need: float, max_bytes: float | None, path: str, what: str, fix: str) -> None:
    """A ConfigError at ``path`` when ``need`` bytes exceed the budget: '<what> takes N MB,
    above max_memory_mb (M MB): <fix>, or raise max_memory_mb'."""
    if max_bytes is not None and need > max_bytes:
        raise ConfigError.one(
            path,
            f"{what} takes {size_text(need)}, above {limit_text(max_bytes)}: "
            f"{fix}, or raise max_memory_mb",
        )

"""What the sweep's two plots share: the best point's star, and finishing and saving a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def mark_best(ax: Any, x: float, y: float, label: str) -> None:
    """A large crimson star at the best job (or group), with ``label`` in the legend."""
    ax.plot([x], [y], marker="*", markersize=16, color="crimson", linestyle="none", label=label)


def finish(
    fig: Any, ax: Any, path: Path, categories: list[str], xlabel: str, ylabel: str, title: str
) -> None:
    """Axis labels, category ticks, grid and legend, then the PNG written atomically (a
    temporary file renamed, so a reader never sees half a plot)."""
    if categories:
        ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, format="png")
    tmp.replace(path)

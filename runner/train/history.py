"""The per-epoch history of ``task=fit``: history.csv and history.png."""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

from runner.output import artifacts

log = logging.getLogger("runner")


def write_history(output_dir: Path, history: list[dict[str, float]]) -> None:
    """history.csv (exact floats, one row per epoch) and history.png (needs matplotlib)."""
    columns = list(dict.fromkeys(k for r in history for k in r))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in history:
        writer.writerow([repr(record[c]) if c in record else "" for c in columns])
    artifacts.write_text(output_dir / "history.csv", buffer.getvalue())
    try:
        plot_history(history, output_dir / "history.png")
    except ImportError:
        log.warning('history.png skipped: matplotlib is not installed (pip install -e ".[plot]")')


def read_history(output_dir: Path) -> list[dict[str, float]]:
    """The rows of a run's history.csv as written above ([] when the run wrote none)."""
    path = output_dir / "history.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [
            {k: n for k, v in row.items() if (n := _number(v)) is not None}
            for row in csv.DictReader(f)
        ]


def _number(text: str | None) -> float | None:
    """A cell as a float; None when empty or not a number (a column of names, say)."""
    try:
        return float(text) if text else None
    except ValueError:
        return None


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    """Loss curves (and accuracy curves when recorded) against the epoch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [("loss", ["loss", "val_loss"])]
    if any("accuracy" in r for r in history):
        panels.append(("accuracy", ["accuracy", "val_accuracy"]))
    fig = Figure(figsize=(5.5 * len(panels), 4), layout="constrained")
    FigureCanvasAgg(fig)
    epochs = [r["epoch"] for r in history]
    for i, (title, keys) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), i)
        for key in keys:
            if any(key in r for r in history):
                ax.plot(
                    epochs,
                    [r.get(key, math.nan) for r in history],
                    marker="o",
                    markersize=3,
                    label=key,
                )
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.savefig(path, dpi=100)

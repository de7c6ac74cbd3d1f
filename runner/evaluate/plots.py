"""task=evaluate's pictures: the confusion matrix and the histogram of reconstruction errors.
Both need matplotlib (the ``plot`` extra); without it the run says so and goes on."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_confusion(counts: np.ndarray, names: list[str], title: str, path: Path) -> None:
    """Counts in every cell, true classes down, predicted across, darker = more rows."""
    n = len(names)
    size = min(max(4.0, 0.55 * n + 2.0), 14.0)
    fig = _figure(size, size)
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, shrink=0.8, label="rows")
    ax.set_xticks(range(n), names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    dark = counts.max() / 2 if counts.size else 0
    fontsize = 10 if n <= 12 else 7
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(int(counts[i, j])),
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if counts[i, j] > dark else "black",
            )
    fig.savefig(path, dpi=100)


def plot_errors(
    errors: np.ndarray,
    title: str,
    path: Path,
    threshold: float | None = None,
    anomalous: np.ndarray | None = None,
) -> None:
    """A histogram of the row errors; labelled normal and anomalous rows in two colours; the
    threshold as a vertical line."""
    fig = _figure(6.5, 4.0)
    ax = fig.add_subplot()
    bins = np.histogram_bin_edges(errors, bins=min(50, max(10, len(errors) // 10)))
    if anomalous is None:
        ax.hist(errors, bins=bins, color="tab:blue", label=f"{len(errors)} rows")
    else:
        ax.hist(errors[~anomalous], bins=bins, alpha=0.6, color="tab:blue", label="normal")
        ax.hist(errors[anomalous], bins=bins, alpha=0.6, color="tab:red", label="anomalous")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set_xlabel("reconstruction error per row")
    ax.set_ylabel("rows")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=100)

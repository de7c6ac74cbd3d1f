"""task=evaluate as text: the console tables and the CSV files of the run folder."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np


def table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Aligned columns: the first left-aligned, the others right-aligned (numbers)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return indent + "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    return [line(header), *(line(r) for r in rows)]


def number(value: Any) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.4g}"


def metric_lines(metrics: dict[str, Any]) -> list[str]:
    return table(["metric", "value"], [[k, number(v)] for k, v in metrics.items()])


def class_lines(names: list[str], scores: dict[str, np.ndarray]) -> list[str]:
    rows = [
        [
            name,
            f"{scores['precision'][i]:.4f}",
            f"{scores['recall'][i]:.4f}",
            f"{scores['f1'][i]:.4f}",
            str(int(scores["support"][i])),
        ]
        for i, name in enumerate(names)
    ]
    return table(["class", "precision", "recall", "f1", "support"], rows)


def confusion_lines(counts: np.ndarray, names: list[str]) -> list[str]:
    rows = [[name, *(str(int(c)) for c in counts[i])] for i, name in enumerate(names)]
    return [
        "  confusion matrix (rows: true class, columns: predicted class)",
        *table(["true\\pred", *names], rows),
    ]


def top_lines(top: list[dict[str, Any]]) -> list[str]:
    rows = [
        [str(t["row"]), f"{t['error']:.6g}", *([t["label"]] if "label" in t else [])] for t in top
    ]
    header = ["row", "error", *(["label"] if top and "label" in top[0] else [])]
    return [f"  the {len(top)} rows with the largest errors", *table(header, rows)]


def _csv(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def confusion_csv(counts: np.ndarray, names: list[str]) -> str:
    """A header of predicted classes; each line a true class and its counts."""
    return _csv(
        [["true\\pred", *names], *([name, *map(int, counts[i])] for i, name in enumerate(names))]
    )


def classes_csv(names: list[str], scores: dict[str, np.ndarray]) -> str:
    """class,precision,recall,f1,support with exact floats."""
    return _csv(
        [
            ["class", "precision", "recall", "f1", "support"],
            *(
                [
                    name,
                    repr(float(scores["precision"][i])),
                    repr(float(scores["recall"][i])),
                    repr(float(scores["f1"][i])),
                    int(scores["support"][i]),
                ]
                for i, name in enumerate(names)
            ),
        ]
    )

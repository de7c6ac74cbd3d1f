"""``save_csv: true``: outputs with one or two axes as CSV files beside the .npz/.npy ones.

``outputs/NAME.csv`` has a header (``row,NAME[0],NAME[1],...``) and one line per sample, led
by the sample's row index in the data it came from (task=evaluate scores a subset of rows, and
the index says which). Floats are written with enough digits to read back the same value
(9 significant digits for float32, 17 for float64). The file is written in blocks of rows, and
a memory-mapped output's rows are dropped from resident memory once written (``release_rows``):
a 763 MB outputs/NAME.npy was otherwise mapped whole into the process (VmHWM 1.1 GB).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from runner.data.mapped import release_rows
from runner.output import artifacts

log = logging.getLogger("runner")

BLOCK_ROWS = 4096


def write_csvs(
    output_dir: Path, values: dict[str, np.ndarray], rows: np.ndarray, described: dict[str, Any]
) -> None:
    """Every output of one or two axes as outputs/NAME.csv; ``described`` (result.json's
    ``outputs``) gets each file's path under ``csv``."""
    for name, a in values.items():
        if csv_shape_ok(a):
            path = write_output_csv(output_dir, name, a, rows)
            described[name]["csv"] = path.relative_to(output_dir).as_posix()
        else:
            log.warning(
                "save_csv: %s has shape %s, more than two axes: kept in the .npz/.npy only",
                name,
                tuple(a.shape),
            )


def csv_shape_ok(values: np.ndarray) -> bool:
    """One value per sample, or one row of values: (samples,) or (samples, columns)."""
    return values.ndim in (1, 2)


def csv_path(output_dir: Path, name: str) -> Path:
    return output_dir / "outputs" / f"{name}.csv"


def write_output_csv(output_dir: Path, name: str, values: np.ndarray, rows: np.ndarray) -> Path:
    """outputs/NAME.csv of ``values`` (batch first, one or two axes) led by ``rows``."""
    path = csv_path(output_dir, name)
    artifacts.write_chunks(path, _lines(name, values, rows))
    return path


def _number_format(dtype: np.dtype) -> str:
    if dtype.kind == "f":
        return "%.17g" if dtype.itemsize > 4 else "%.9g"
    return "%d"  # integers and booleans


def _lines(name: str, values: np.ndarray, rows: np.ndarray) -> Iterator[bytes]:
    columns = 1 if values.ndim == 1 else values.shape[1]
    names = [name] if values.ndim == 1 else [f"{name}[{j}]" for j in range(columns)]
    yield ("row," + ",".join(names) + "\n").encode()
    fmt = ["%d"] + [_number_format(values.dtype)] * columns
    for lo in range(0, len(values), BLOCK_ROWS):
        block = np.asarray(values[lo : lo + BLOCK_ROWS]).reshape(-1, columns)
        table = np.empty((len(block), columns + 1), dtype=np.float64)  # exact for both kinds
        table[:, 0] = rows[lo : lo + BLOCK_ROWS]
        table[:, 1:] = block
        buffer = io.BytesIO()
        np.savetxt(buffer, table, fmt=fmt, delimiter=",")
        text = buffer.getvalue()
        # savetxt leaves the buffer in a reference cycle (its text wrapper): only the garbage
        # collector would free it, which large allocations do not wake, so every block's text
        # stayed (331 MB for 2,000,000 rows x 100); closing it frees the text now.
        buffer.close()
        release_rows(values, lo, lo + BLOCK_ROWS)
        yield text

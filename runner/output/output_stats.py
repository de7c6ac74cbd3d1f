"""Summary numbers of an output (min, mean, max, fraction of exact zeros), read in row windows.

An output can be a memory-mapped ``outputs/NAME.npy`` larger than RAM. Whole-array expressions
would undo that: ``np.mean(y == 0)`` allocates a boolean array of the output's size (190 MB of
anonymous memory for 2,000,000 x 100 float32 under max_memory_mb=100), and ``np.min(y)`` maps
every page of the file into this process. Here each window is reduced without temporaries
(``count_nonzero``, a float64 ``sum``) and its rows are dropped from resident memory once read
(``release_rows``), so summarizing costs a window, whatever the output's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from runner.data.mapped import release_rows
from runner.output.artifacts import rows_per_window

WINDOW_BYTES = 8 * 2**20


@dataclass(frozen=True)
class OutputStats:
    minimum: float
    mean: float  # accumulated in float64
    maximum: float
    zero_fraction: float  # exact zeros (-0.0 included; NaN is not zero)


def output_stats(a: np.ndarray) -> OutputStats:
    """min, mean, max and zero fraction of ``a`` (NaN for an empty array)."""
    if a.size == 0:
        return OutputStats(math.nan, math.nan, math.nan, math.nan)
    if a.ndim == 0:
        a = a.reshape(1)
    lo_val, hi_val, total, nonzero = math.inf, -math.inf, 0.0, 0
    step = rows_per_window(a, WINDOW_BYTES)
    for lo in range(0, a.shape[0], step):
        window = a[lo : lo + step]
        lo_val = float(np.minimum(lo_val, np.min(window)))  # NaN wins, as in np.min
        hi_val = float(np.maximum(hi_val, np.max(window)))
        total += float(np.sum(window, dtype=np.float64))
        nonzero += int(np.count_nonzero(window))
        release_rows(a, lo, lo + step)
    return OutputStats(lo_val, total / a.size, hi_val, (a.size - nonzero) / a.size)

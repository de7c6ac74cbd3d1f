"""Test helpers shared across files."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np


def numeric_gradient(f: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar ``f()`` with respect to ``array`` (float64),
    nudging ``array`` in place and restoring it."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        keep = array[index]
        array[index] = keep + eps
        plus = f()
        array[index] = keep - eps
        minus = f()
        array[index] = keep
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def empty_members_zip(path: Path, names: Iterable[str], declared: int | None = None) -> Path:
    """A zip of empty members called NAMES; ``declared``: the member count its end record
    then claims instead of the true one (a forged archive: the directory itself is intact)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            zf.writestr(name, b"")
    if declared is not None:
        data = bytearray(path.read_bytes())
        end = data.rindex(b"PK\x05\x06")
        data[end + 8 : end + 12] = declared.to_bytes(2, "little") * 2  # on this disk, in all
        path.write_bytes(bytes(data))
    return path


# A tiny model that fits in a blink (sweeps, tracking): 40 random rows, 3 epochs.
TINY_FIT_MODEL = """\
inputs:
  x: {shape: [4], data: {random: {distribution: normal, rows: 40, seed: 1}}}
layers:
  hidden: {type: Dense, output_dim: 8, activation: relu}
  drop: {type: Dropout, p: 0.0}
  out: {type: Dense, output_dim: 1}
targets:
  out: {random: {distribution: normal, rows: 40, seed: 2}}
fit: {epochs: 3, batch_size: 20, validation_split: 0.25}
"""

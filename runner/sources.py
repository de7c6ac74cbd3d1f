"""Arrays named by a config: inline values, .npy/.npz/.csv files, seeded random data.

Files are never unpickled. ``.npy`` files are memory-mapped, so their shape is known before
any data is read and large inputs stream batch by batch.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from runner.errors import ConfigError


def resolve_path(path: str, cwd: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else cwd / p


def load_file(ref: Any, cwd: Path, config_path: str) -> np.ndarray:
    """Load a FileRef (``path``, optional ``key``) as an array; errors name path and file."""
    path = resolve_path(ref.path, cwd)
    where = dict(path=config_path, file=str(ref.path))
    if not path.is_file():
        raise ConfigError.one(message=f"file not found (looked in {_shown(path, cwd)})", **where)
    suffix = path.suffix.lower()
    if ref.key is not None and suffix != ".npz":
        raise ConfigError.one(message=f"'key' only applies to .npz files, this is {suffix!r}",
                              **where)
    try:
        if suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        if suffix == ".npz":
            return _load_npz_key(path, ref.key, where)
        if suffix == ".csv":
            return _load_csv(path)
    except ConfigError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError.one(message=f"cannot read {suffix} file: {_first_line(exc)}",
                              **where) from None
    raise ConfigError.one(
        message=f"unsupported file type {suffix!r}: expected .npy, .npz or .csv", **where
    )


def _load_npz_key(path: Path, key: str | None, where: dict) -> np.ndarray:
    with np.load(path, allow_pickle=False) as npz:
        names = list(npz.files)
        if key is None:
            if len(names) != 1:
                raise ConfigError.one(
                    message=f"this .npz holds {len(names)} arrays {names}: name one with 'key'",
                    **where)
            key = names[0]
        if key not in names:
            from layers.registry import did_you_mean

            raise ConfigError.one(
                message=f"no array {key!r} in this .npz{did_you_mean(key, names)}; "
                f"it holds {names}", **where)
        return npz[key]


def _load_csv(path: Path) -> np.ndarray:
    """Numbers separated by commas; one header row of non-numbers is skipped."""
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(cell.strip() for cell in r)]
    if rows and not _numeric(rows[0]):
        rows = rows[1:]  # header
    if not rows:
        raise ValueError("no data rows")
    width = len(rows[0])
    values = []
    for i, row in enumerate(rows, start=1):
        if len(row) != width:
            raise ValueError(f"data row {i} has {len(row)} columns, the first has {width}")
        try:
            values.append([float(c) for c in row])
        except ValueError:
            raise ValueError(f"data row {i} has a value that is not a number: {row}") from None
    return np.asarray(values)


def _numeric(row: list[str]) -> bool:
    try:
        [float(c) for c in row]
    except ValueError:
        return False
    return True


def random_array(src: Any, shape: tuple[int, ...], seed: int, dtype) -> np.ndarray:
    """Seeded random data; the stream depends only on the seed (and the input's own seed)."""
    rng = np.random.default_rng([src.seed if src.seed is not None else seed, 7919])
    size = (src.rows, *shape)
    if src.distribution == "uniform":
        a = rng.uniform(src.low, src.high, size)
    elif src.distribution == "normal":
        a = rng.normal(src.mean, src.std, size)
    elif src.distribution == "integers":
        a = rng.integers(int(src.low), int(src.high), size)
    else:  # bernoulli
        a = rng.random(size) < src.p
    return a.astype(dtype)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _shown(path: Path, cwd: Path) -> str:
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)

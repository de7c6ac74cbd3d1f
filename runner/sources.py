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

from layers.base import FileRef
from runner import datasets, streams
from runner.datasets import DatasetSource
from runner.errors import ConfigError
from runner.schema import RandomSource


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
            _check_npy_header(path)
            return np.load(path, mmap_mode="r", allow_pickle=False)
        if suffix == ".npz":
            return _load_npz_key(path, ref.key, where)
        if suffix == ".csv":
            return _load_csv(path)
    except ConfigError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError.one(message=f"cannot read {suffix} file: {explain_read_error(exc)}",
                              **where) from None
    raise ConfigError.one(
        message=f"unsupported file type {suffix!r}: expected .npy, .npz or .csv", **where
    )


def inline_array(value: Any, config_path: str, what: str = "data") -> np.ndarray:
    """A nested list of numbers from a config as a float64 array, or a ConfigError saying
    what was found instead (a ragged row, a non-number, a number too large for a float)."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        found = _inline_problem(value, "")
    raise ConfigError.one(config_path, f"inline {what} must be a rectangular nested list of "
                          f"numbers (rows of equal length); found {found}")


def _inline_problem(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (list, tuple, int, float)):
        return f"{type(value).__name__} {str(value)[:40]!r} at {where or 'the top'}"
    if isinstance(value, (int, float)):
        if isinstance(value, int) and abs(value) > 1.7e308:
            return f"a number too large for a float ({len(str(abs(value)))} digits) at " \
                   f"{where or 'the top'}"
        return "an unreadable value"
    lengths = {len(v) if isinstance(v, (list, tuple)) else None for v in value}
    if len(lengths) > 1:
        shown = [len(v) if isinstance(v, (list, tuple)) else "a number" for v in value]
        return f"rows of different lengths {shown[:8]} at {where or 'the top'}"
    for i, v in enumerate(value):
        try:
            np.asarray(v, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            return _inline_problem(v, f"{where}[{i}]")
    return "an unreadable value"


def explain_read_error(exc: BaseException) -> str:
    """numpy's load errors in our words: pickled data is refused, never 'load it unsafely'."""
    text = _first_line(exc)
    if "pickle" in text or "Object arrays" in text or "Python objects" in text:
        return ("the file holds pickled Python objects (dtype=object), which are never loaded "
                "(files are read with allow_pickle=False): save a numeric array instead")
    return text


def _check_npy_header(path: Path) -> None:
    """Refuse a .npy that is not one, or that holds Python objects, before memory-mapping it."""
    with path.open("rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            header = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                      else np.lib.format.read_array_header_2_0(f))
        except ValueError:
            raise ValueError("not a .npy file (no NumPy header)") from None
    if header[2].hasobject:
        raise ValueError("pickled data")


def _load_npz_key(path: Path, key: str | None, where: dict) -> np.ndarray:
    if not zipfile.is_zipfile(path):
        raise ValueError("not a .npz file (not a zip archive)")
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
    rng = streams.generator(src.seed if src.seed is not None else seed, streams.RANDOM_DATA)
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


def load_source(source: Any, path: str, cwd: Path, seed: int = 0,
                shape: tuple[int, ...] = ()) -> np.ndarray:
    """Any data source (inline, file, random, dataset) as an array, batch first. Random data
    needs the per-sample ``shape`` and the run's ``seed``."""
    if isinstance(source, RandomSource):
        return random_array(source.random, shape, seed, np.float64)
    if isinstance(source, DatasetSource):
        return datasets.load(source.dataset, path)
    if isinstance(source, FileRef):
        return load_file(source, cwd, path)  # .npy stays memory-mapped
    return inline_array(source, path)

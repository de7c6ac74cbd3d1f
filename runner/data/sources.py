"""Arrays named by a config: inline values, .npy/.npz/.csv files, seeded random data.

Files are never unpickled. ``.npy`` files are memory-mapped, so their shape is known before
any data is read and large inputs stream batch by batch.

Sizes are checked before anything is read: with ``max_bytes`` (the run's ``max_memory_mb``),
a .npz member is refused when its zip entry or its .npy header says it is larger, or when the
two disagree; a .csv is parsed with a running count of values that stops at the limit; random
data and datasets are sized from the config before they are drawn. A .npy header that
promises more bytes than its file holds is refused whatever the limit.
"""

from __future__ import annotations

import array
import csv
import io
import math
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from layers.base import FileRef
from runner import streams
from runner.config import globs
from runner.config.paths import resolve_path  # noqa: F401 (weights read it here)
from runner.config.schema import DatasetSource, RandomSource
from runner.data import datasets
from runner.data.budget import limit_text, refuse_above, size_text
from runner.data.shards import Shard, ShardedArray, check_shards
from runner.data.zip_directory import read_directory
from runner.errors import ConfigError

#: Inline arrays (nested lists in the config) may hold this many numbers; more belongs in a
#: .npy file (inline data is validated, hashed and copied into config.yaml as text, slowly).
MAX_INLINE_VALUES = 50_000


def load_file(
    ref: Any, cwd: Path, config_path: str, max_bytes: float | None = None, streamed: bool = False
) -> np.ndarray:
    """Load a FileRef (``path``, optional ``key``) as an array; errors name path and file.

    ``max_bytes`` bounds what is read into memory (.npz members, .csv values, and a .npy
    unless it is ``streamed``: a model input the plan reads batch by batch and counts
    itself). A .npy is memory-mapped; its header is checked against its file size."""
    path = resolve_path(ref.path, cwd)
    where = dict(path=config_path, file=str(ref.path))
    if globs.is_glob(ref.path):
        raise ConfigError.one(
            message="a glob names data shards (model inputs, targets, validation data); "
            "this file must be named exactly",
            **where,
        )
    if not path.is_file():
        raise ConfigError.one(message=f"file not found (looked in {_shown(path, cwd)})", **where)
    suffix = path.suffix.lower()
    if ref.key is not None and suffix != ".npz":
        raise ConfigError.one(
            message=f"'key' only applies to .npz files, this is {suffix!r}", **where
        )
    try:
        if suffix == ".npy":
            nbytes = _check_npy_header(path)
            if max_bytes is not None and not streamed and nbytes > max_bytes:
                raise ConfigError.one(
                    message=f"this .npy holds {size_text(nbytes)}, read whole "
                    f"here, above {limit_text(max_bytes)}: use a smaller "
                    "array or raise max_memory_mb",
                    **where,
                )
            return np.load(path, mmap_mode="r", allow_pickle=False)
        if suffix == ".npz":
            return _load_npz_key(path, ref.key, where, max_bytes)
        if suffix == ".csv":
            return _load_csv(path, where, max_bytes)
    except ConfigError:
        raise
    except (ValueError, OSError, csv.Error, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError.one(
            message=f"cannot read {suffix} file: {explain_read_error(exc)}", **where
        ) from None
    raise ConfigError.one(
        message=f"unsupported file type {suffix!r}: expected .npy, .npz or .csv", **where
    )


def load_shards(
    ref: Any, cwd: Path, config_path: str, max_bytes: float | None = None, streamed: bool = False
) -> np.ndarray | ShardedArray:
    """The .npy shards a glob matches (runner.config.globs), in sorted order, as one array of
    rows: each memory-mapped and header-checked; a ConfigError names the shard at fault."""
    where = dict(path=config_path, file=str(ref.path))
    if ref.key is not None:
        raise ConfigError.one(
            message="'key' only applies to .npz files; a shard pattern matches .npy files",
            **where,
        )
    shards, total = [], 0
    for file in globs.expand(ref.path, cwd, config_path):
        shown = _shown(file, cwd)
        try:
            total += _check_npy_header(file)
            array = np.load(file, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ConfigError.one(
                config_path, f"cannot read shard {shown}: {explain_read_error(exc)}", shown
            ) from None
        if array.ndim == 0:
            raise ConfigError.one(
                config_path, f"shard {shown} holds a single number, not rows of samples", shown
            )
        shards.append(Shard(file, shown, array))
    if max_bytes is not None and not streamed and total > max_bytes:
        raise ConfigError.one(
            message=f"the {len(shards)} shards hold {size_text(total)}, read whole here, "
            f"above {limit_text(max_bytes)}: use smaller arrays or raise max_memory_mb",
            **where,
        )
    check_shards(shards, config_path)
    return ShardedArray(shards) if len(shards) > 1 else shards[0].array


def inline_array(value: Any, config_path: str, what: str = "data") -> np.ndarray:
    """A nested list of numbers from a config as a float64 array, or a ConfigError saying
    what was found instead (a ragged row, a non-number, a number too large for a float), or
    that it holds more than ``MAX_INLINE_VALUES`` numbers."""
    try:
        out = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        found = _inline_problem(value, "")
    else:
        if out.size > MAX_INLINE_VALUES:
            raise ConfigError.one(
                config_path,
                f"inline {what} holds {out.size:,} numbers; "
                f"inline arrays are limited to {MAX_INLINE_VALUES:,} (they are "
                "validated and copied into the run folder as text): save the "
                "array with numpy.save and give {path: file.npy} instead",
            )
        return out
    raise ConfigError.one(
        config_path,
        f"inline {what} must be a rectangular nested list of "
        f"numbers (rows of equal length); found {found}",
    )


def _inline_problem(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (list, tuple, int, float)):
        return f"{type(value).__name__} {str(value)[:40]!r} at {where or 'the top'}"
    if isinstance(value, (int, float)):
        if isinstance(value, int) and abs(value) > 1.7e308:
            return (
                f"a number too large for a float ({len(str(abs(value)))} digits) at "
                f"{where or 'the top'}"
            )
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


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\{.*\}|b'.*'")


def explain_read_error(exc: BaseException) -> str:
    """numpy's load errors in our words: pickled data is refused, never 'load it unsafely'."""
    text = _first_line(exc)
    if "pickle" in text or "Object arrays" in text or "Python objects" in text:
        return (
            "the file holds pickled Python objects (dtype=object), which are never loaded "
            "(files are read with allow_pickle=False): save a numeric array instead"
        )
    # NumPy quotes what it read (a header, a key); a message never repeats a file's contents.
    return _QUOTED.sub("…", text)


#: Longest .npy header read: NumPy's own limit for files it does not fully trust. NumPy reads
#: the whole header its length field declares (up to 4 GB in format 2.0) before it checks that
#: limit, so the length is checked here first.
MAX_NPY_HEADER = 10_000
#: Longest header text NumPy may parse once its trailing padding is set aside: NumPy tokenizes
#: the text with Python's tokenizer, about 6 microseconds a token, so 9,000 '{' took 58 ms a
#: file (2,000 inputs naming one such file: 158 s). A real header is a dict of dtype, order and
#: shape: a shape of 64 axes whose product fits in a file needs about 300 characters.
MAX_NPY_HEADER_TEXT = 512


def _npy_header(f: Any) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, bytes of data the header promises) of the .npy stream at ``f``; ``f`` is
    left at the start of the data. The header's declared length is checked before it is read."""
    try:
        version = np.lib.format.read_magic(f)
        length_field = f.read(2 if version == (1, 0) else 4)
        length = int.from_bytes(length_field, "little")
    except Exception:
        raise ValueError("not a .npy file (no valid NumPy header)") from None
    if length > MAX_NPY_HEADER:
        raise ValueError(
            f"not a .npy file NumPy would read: its header declares {length:,} bytes, above "
            f"NumPy's limit of {MAX_NPY_HEADER:,} (a real header takes about 100)"
        )
    text = f.read(length)
    content = len(text.rstrip(b" \t\n\x00"))  # NumPy pads with blanks to 64 bytes
    if content > MAX_NPY_HEADER_TEXT:
        raise ValueError(
            f"not a .npy file NumPy would read: its header holds {content:,} characters of "
            f"text, above {MAX_NPY_HEADER_TEXT:,} (a real header's dtype, order and shape "
            "take about 100)"
        )
    header = io.BytesIO(length_field + text)
    try:
        shape, _, dtype = (
            np.lib.format.read_array_header_1_0(header)
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0(header)
        )
    except Exception:  # NumPy parses the header text with Python's tokenizer: any error
        raise ValueError("not a .npy file (no valid NumPy header)") from None
    if dtype.hasobject:
        raise ValueError("pickled data")
    return tuple(shape), dtype, math.prod(shape) * dtype.itemsize


def _check_npy_header(path: Path) -> int:
    """Refuse a .npy that is not one, that holds Python objects, or whose header promises more
    data than the file holds, before memory-mapping it. Returns the bytes of its data."""
    with path.open("rb") as f:
        shape, dtype, nbytes = _npy_header(f)
        offset = f.tell()
    held = path.stat().st_size - offset
    if nbytes > held:
        raise ValueError(
            f"the .npy header declares shape {shape} of {dtype} ({size_text(nbytes)}), "
            f"but the file holds only {size_text(held)} of data after it: the file is "
            "truncated or not what it claims; save it again with numpy.save"
        )
    return nbytes


def read_npz(
    path: Path, keys: list[str] | None, where: dict, max_bytes: float | None = None
) -> dict[str, np.ndarray]:
    """Arrays of a .npz (all, or ``keys``), each member's size checked before it is read.

    A member's uncompressed size comes from the zip directory and must agree with what its
    .npy header declares; the members read must together fit ``max_bytes``. The zip reader
    then never yields more than the declared size, so a zip bomb is refused unread."""
    _check_zip_directory(path, where, max_bytes)
    with zipfile.ZipFile(path) as zf:
        members = {i.filename.removesuffix(".npy"): i for i in zf.infolist() if not i.is_dir()}
        chosen = list(members) if keys is None else [k for k in keys if k in members]
        total = sum(members[k].file_size for k in chosen)
        if max_bytes is not None and total > max_bytes:
            what = f"array {chosen[0]!r} is" if len(chosen) == 1 else f"{len(chosen)} arrays are"
            raise ConfigError.one(
                message=f"the .npz {what} {size_text(total)} uncompressed, above "
                f"{limit_text(max_bytes)}: use smaller arrays or raise "
                "max_memory_mb (for model inputs, a .npy file is memory-mapped "
                "and read batch by batch)",
                **where,
            )
        out = {}
        for key in chosen:
            info = members[key]
            with zf.open(info) as f:
                shape, dtype, nbytes = _npy_header(f)
                declared = info.file_size - f.tell()
            if nbytes != declared:
                raise ValueError(
                    f"array {key!r}: its .npy header declares shape {shape} of "
                    f"{dtype} ({size_text(nbytes)}), but the zip entry holds "
                    f"{size_text(max(declared, 0))} of data: the file is corrupt or "
                    "forged; save it again with numpy.savez"
                )
            with zf.open(info) as f:
                out[key] = np.load(f, allow_pickle=False)
        return out


def _check_zip_directory(path: Path, where: dict, max_bytes: float | None) -> None:
    """Refuse a file that is not a zip archive, or whose directory can list so many members
    that parsing it alone would pass ``max_bytes``: counted from the end records first."""
    if not zipfile.is_zipfile(path):
        raise ValueError("not a .npz file (not a zip archive)")
    if max_bytes is None:
        return
    directory = read_directory(path)  # from the end records: nothing parsed yet
    if directory is not None and directory.parsed_bytes > max_bytes:
        raise ConfigError.one(
            message=f"this .npz lists {directory.entries:,} members in a directory of "
            f"{size_text(directory.size)}, room for {directory.most_members:,}; reading "
            f"it alone takes up to about {size_text(directory.parsed_bytes)}, "
            f"above {limit_text(max_bytes)}: save fewer arrays in one file "
            "or raise max_memory_mb",
            **where,
        )


def npz_keys(path: Path, where: dict | None = None, max_bytes: float | None = None) -> list[str]:
    """Array names of a .npz, as numpy.load names them (without reading any array)."""
    _check_zip_directory(path, where or {"path": "data"}, max_bytes)
    with zipfile.ZipFile(path) as zf:
        return [i.filename.removesuffix(".npy") for i in zf.infolist() if not i.is_dir()]


def _load_npz_key(
    path: Path, key: str | None, where: dict, max_bytes: float | None = None
) -> np.ndarray:
    names = npz_keys(path, where, max_bytes)
    if key is None:
        if len(names) != 1:
            raise ConfigError.one(
                message=f"this .npz holds {len(names)} arrays {names}: name one with 'key'", **where
            )
        key = names[0]
    if key not in names:
        from layers.registry import did_you_mean

        raise ConfigError.one(
            message=f"no array {key!r} in this .npz{did_you_mean(key, names)}; it holds {names}",
            **where,
        )
    return read_npz(path, [key], where, max_bytes)[key]


def _lines(f: Any, max_chars: int | None) -> Any:
    """The lines of ``f``, refusing one longer than ``max_chars`` before it is split."""
    number = 0
    while True:
        line = f.readline() if max_chars is None else f.readline(max_chars + 1)
        if not line:
            return
        number += 1
        if max_chars is not None and len(line) > max_chars:
            raise ValueError(f"line {number} is longer than {max_chars:,} characters")
        yield line


def _load_csv(path: Path, where: dict | None = None, max_bytes: float | None = None) -> np.ndarray:
    """Numbers separated by commas; one header row of non-numbers is skipped.

    Parsed row by row into float64 with a running count: with ``max_bytes``, a file holding
    more values than fit is refused as soon as the count passes the limit (its text is
    never held whole), and so is a line long enough that splitting it could."""
    max_values = None if max_bytes is None else max(int(max_bytes // 8), 1)
    # a line of n characters splits into up to n/2 Python strings (~60 bytes each)
    max_chars = None if max_bytes is None else max(int(max_bytes // 64), 2**16)
    values = array.array("d")
    width, n_rows, first = 0, 0, True
    with path.open(newline="") as f:
        reader = csv.reader(_lines(f, max_chars))
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            if first:
                first = False
                if not _numeric(row):
                    continue  # header
            n_rows += 1
            if n_rows == 1:
                width = len(row)
            elif len(row) != width:
                raise ValueError(f"data row {n_rows} has {len(row)} columns, the first has {width}")
            try:
                values.extend([float(c) for c in row])
            except ValueError:
                # The position only: a message never repeats a file's contents.
                column = next(i for i, c in enumerate(row, 1) if not _numeric([c]))
                raise ValueError(
                    f"line {reader.line_num}, column {column}: not a number (data row {n_rows})"
                ) from None
            if max_values is not None and len(values) > max_values:
                raise ConfigError.one(
                    message=(
                        f"this .csv holds more than {max_values:,} numbers "
                        f"({size_text(len(values) * 8)} as float64 by row {n_rows:,}), "
                        f"above {limit_text(max_bytes)}: save the data as .npy "
                        "(memory-mapped and read batch by batch) or raise max_memory_mb"
                    ),
                    **(where or {"path": "data"}),
                )
    if not n_rows:
        raise ValueError("no data rows")
    return np.frombuffer(values, dtype=np.float64).reshape(n_rows, width)


def _numeric(row: list[str]) -> bool:
    try:
        [float(c) for c in row]
    except ValueError:
        return False
    return True


def random_bytes(src: Any, shape: tuple[int, ...]) -> int:
    """Bytes drawing ``src`` takes: every value in float64 (then cast)."""
    return src.rows * math.prod(shape) * 8


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


def load_source(
    source: Any,
    path: str,
    cwd: Path,
    seed: int = 0,
    shape: tuple[int, ...] = (),
    max_bytes: float | None = None,
    streamed: bool = False,
) -> np.ndarray:
    """Any data source (inline, file, random, dataset) as an array, batch first. Random data
    needs the per-sample ``shape`` and the run's ``seed``. With ``max_bytes``, what would be
    read or drawn into memory is sized first and refused above it (a ``streamed`` .npy, a
    model input read batch by batch, is left to the plan's estimate)."""
    if isinstance(source, RandomSource):
        refuse_above(
            random_bytes(source.random, shape),
            max_bytes,
            f"{path}.random.rows",
            f"drawing {source.random.rows:,} rows of {tuple(shape)} (float64)",
            "draw fewer rows or use a .npy file",
        )
        return random_array(source.random, shape, seed, np.float64)
    if isinstance(source, DatasetSource):
        return datasets.load(source.dataset, path, max_bytes)
    if isinstance(source, FileRef):
        if globs.is_glob(source.path):  # .npy shards, each memory-mapped
            return load_shards(source, cwd, path, max_bytes, streamed)  # type: ignore[return-value]
        return load_file(source, cwd, path, max_bytes, streamed)  # .npy: memory-mapped
    return inline_array(source, path)

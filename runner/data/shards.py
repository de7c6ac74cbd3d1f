"""Sharded inputs: a ``{path: "data/part-*.npy"}`` glob read as one stream of rows.

The pattern matches ``.npy`` shards, read in sorted path order (plain string order: name
shards with zero-padded numbers, ``part-0007.npy``) and joined along axis 0 without copying
(``ShardedArray``). Each shard is memory-mapped, header-checked and never unpickled, like a
single ``.npy``; every shard's per-sample shape and dtype must equal the first's.

The pattern may use ``*``, ``?`` and ``[...]`` but never ``**`` or ``..``; what it matches is
confined like any file a config names (runner.config.file_access checks every match, symlinks
resolved). At most ``runner.config.globs.MAX_SHARDS`` files (each mapped shard holds a file
descriptor).

The run setting ``shard=I`` picks the I-th shard (from 0, in the same order) of every sharded
model input, so a multirun can fan the shards out one job each (docs/sweeps.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runner.config.globs import expand, is_glob
from runner.errors import ConfigError


@dataclass(frozen=True)
class Shard:
    path: Path
    shown: str  # as a message names it
    array: np.ndarray  # memory-mapped


def check_shards(shards: list[Shard], config_path: str) -> None:
    """Every shard has the first shard's per-sample shape and dtype (rows may differ)."""
    first = shards[0]
    for shard in shards[1:]:
        a = shard.array
        if a.ndim == 0 or a.shape[1:] != first.array.shape[1:] or a.dtype != first.array.dtype:
            raise ConfigError.one(
                config_path,
                f"shard {shard.shown} holds {a.dtype} of shape {a.shape}, but the first "
                f"shard {first.shown} holds {first.array.dtype} of shape {first.array.shape}: "
                "every shard needs the same dtype and shape except the rows (axis 0)",
                shard.shown,
            )


class ShardedArray:
    """Read-only rows of several memory-mapped shards, joined along axis 0 without a copy.

    Supports what the runner does with a data array: ``shape``/``dtype``/``len``, a slice of
    rows (a view when it lies in one shard, else a copy), an integer array of rows (a copy, in
    the order given), and a per-sample ``reshape``."""

    def __init__(self, shards: list[Shard]) -> None:
        self.shards = shards
        rows = [s.array.shape[0] for s in shards]
        self.starts = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        first = shards[0].array
        self.shape = (int(self.starts[-1]), *first.shape[1:])
        self.dtype = first.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def parts(self, lo: int, hi: int) -> Iterator[tuple[np.ndarray, int, int]]:
        """(shard array, first row, end row) of the shards rows ``[lo, hi)`` lie in."""
        first = int(np.searchsorted(self.starts, lo, side="right")) - 1
        for k in range(max(first, 0), len(self.shards)):
            start = int(self.starts[k])
            if start >= hi:
                break
            a = self.shards[k].array
            yield a, max(lo - start, 0), min(hi - start, a.shape[0])

    def rows(self, lo: int, hi: int) -> ShardedArray:
        """Rows ``[lo, hi)`` as a ShardedArray of views (nothing is read)."""
        lo, hi, _ = slice(lo, hi).indices(self.shape[0])
        hi = max(lo, hi)
        kept = [
            Shard(s.path, s.shown, a[a_lo:a_hi])
            for s, (a, a_lo, a_hi) in zip(self._shards_of(lo, hi), self.parts(lo, hi))
        ]
        if not kept:  # no rows: an empty view of the first shard keeps shape and dtype
            first = self.shards[0]
            kept = [Shard(first.path, first.shown, first.array[:0])]
        return ShardedArray(kept)

    def _shards_of(self, lo: int, hi: int) -> list[Shard]:
        first = max(int(np.searchsorted(self.starts, lo, side="right")) - 1, 0)
        return [s for k, s in enumerate(self.shards) if k >= first and self.starts[k] < hi]

    def reshape(self, shape: tuple[int, ...]) -> ShardedArray:
        """The same rows with another per-sample shape (``shape[0]`` is the row count)."""
        per_sample = tuple(shape[1:])
        return ShardedArray(
            [
                Shard(s.path, s.shown, s.array.reshape((s.array.shape[0], *per_sample)))
                for s in self.shards
            ]
        )

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            lo, hi, step = key.indices(self.shape[0])
            if step != 1:
                raise IndexError("ShardedArray takes row slices with step 1")
            pieces = [a[a_lo:a_hi] for a, a_lo, a_hi in self.parts(lo, hi)]
            if len(pieces) == 1:
                return pieces[0]
            if not pieces:
                return np.empty((0, *self.shape[1:]), self.dtype)
            return np.concatenate(pieces)
        rows = np.asarray(key)
        if rows.dtype.kind not in "iu" or rows.ndim != 1:
            raise IndexError("ShardedArray takes a row slice or a 1-D array of row numbers")
        rows = np.where(rows < 0, rows + self.shape[0], rows)
        which = np.searchsorted(self.starts, rows, side="right") - 1
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        for k in np.unique(which):
            here = which == k
            out[here] = self.shards[k].array[rows[here] - self.starts[k]]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[0 : self.shape[0]]
        return out if dtype is None else out.astype(dtype)


# ---- shard=I: one shard per job ------------------------------------------------------------
@dataclass
class ShardChoice:
    """What ``shard=I`` picked: for result.json and the merge step."""

    index: int
    count: int
    sources: dict[str, str]  # config path of each sharded input -> its chosen file, shown

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count, "sources": self.sources}


def choose_shard(spec: Any, cwd: Path) -> tuple[Any, ShardChoice | None]:
    """Apply the run setting ``shard``: every sharded model input reads only its I-th shard.

    Returns the spec with those inputs' paths replaced by the chosen files, and what was
    chosen; ``(spec, None)`` when ``shard`` is not set. ConfigError at ``shard`` when the
    task is not predict (or validate), no input is sharded, the inputs have different shard
    counts, or I is out of range."""
    index = getattr(spec, "shard", None)
    if index is None:
        return spec, None
    if spec.task not in ("predict", "validate"):
        raise ConfigError.one(
            "shard",
            f"shard=I fans predictions out over jobs; task={spec.task} reads every shard "
            "together (remove shard), or name one shard's file as the input's path",
        )
    sharded = {
        name: ispec
        for name, ispec in spec.model.inputs.items()
        if isinstance(getattr(ispec.data, "path", None), str) and is_glob(ispec.data.path)
    }
    if not sharded:
        raise ConfigError.one(
            "shard",
            f"shard={index} picks one shard of each sharded input, but no model input is "
            "sharded: give an input a glob, e.g. data: {path: data/part-*.npy}",
        )
    files = {
        name: expand(ispec.data.path, cwd, f"model.inputs.{name}.data")
        for name, ispec in sharded.items()
    }
    counts = {f"model.inputs.{n}.data": len(f) for n, f in files.items()}
    if len(set(counts.values())) > 1:
        raise ConfigError.one(
            "shard",
            f"the sharded inputs have different numbers of shards {counts}: shard=I needs "
            "the same count everywhere, so that shard I of each input holds the same rows",
        )
    count = next(iter(counts.values()))
    if index >= count:
        raise ConfigError.one(
            "shard",
            f"shard={index}, but the inputs have {count} shard(s), numbered 0..{count - 1}",
        )
    inputs = dict(spec.model.inputs)
    sources: dict[str, str] = {}
    for name, ispec in sharded.items():
        chosen = files[name][index]
        shown = str(chosen.relative_to(cwd) if chosen.is_relative_to(cwd) else chosen)
        data = ispec.data.model_copy(update={"path": shown})
        inputs[name] = ispec.model_copy(update={"data": data})
        sources[f"model.inputs.{name}.data"] = shown
    model = spec.model.model_copy(update={"inputs": inputs})
    return spec.model_copy(update={"model": model}), ShardChoice(index, count, sources)

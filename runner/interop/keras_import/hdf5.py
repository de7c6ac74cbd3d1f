"""Bounded reads of Keras HDF5 files with h5py (never pickle, never TensorFlow).

Before a dataset is read its declared shape and dtype are checked: numbers only (no object,
string, compound or opaque data), its bytes counted against the import's budget, and so is one
chunk of a chunked dataset (a chunk can be far larger than the data: libhdf5 unpacks it
whole). A dataset stored in another file (external storage, virtual datasets) and links to
other files (external or soft links) are refused, so a file cannot make us read elsewhere.
Text attributes (``model_config``, ``weight_names``) are bounded like a config file, by their
length: the storage of a variable-length string is a 16-byte reference whatever the text's
length. (libhdf5 still reads such a text whole, at about 6 bytes per byte, before the bound
applies: that cost is bounded by the file's size, not by --max-memory-mb.)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from runner.errors import ConfigError
from runner.interop.keras_import.budget import MAX_TEXT_BYTES, Budget


def h5py_module() -> Any:
    try:
        import h5py
    except ImportError:  # the optional extra is missing
        raise ConfigError.one(
            "(setup)",
            "reading HDF5 needs h5py: pip install 'keras-layer-runner[keras-import]'",
        ) from None
    return h5py


def open_file(source: Path | Any, shown: str) -> Any:
    """An h5py.File opened read-only (``source``: a path or a file-like object)."""
    h5py = h5py_module()
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as exc:
        raise ConfigError.one(
            "(file)", f"not an HDF5 file h5py can read ({_first_line(exc)})", shown
        ) from None


def is_hdf5(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def member(group: Any, name: str, shown: str, where: str) -> Any | None:
    """``group[name]`` when it is a hard link inside this file (None when absent)."""
    h5py = h5py_module()
    link = group.get(name, getlink=True)
    if link is None:
        return None
    if not isinstance(link, h5py.HardLink):
        raise ConfigError.one(
            where,
            f"{name!r} is a {type(link).__name__}: links to other places or files are "
            "never followed",
            shown,
        )
    return group[name]


def dataset(group: Any, name: str, shown: str, where: str) -> Any:
    h5py = h5py_module()
    obj = member(group, name, shown, where)
    if not isinstance(obj, h5py.Dataset):
        raise ConfigError.one(where, f"no dataset {name!r} here", shown)
    return obj


def read_array(ds: Any, budget: Budget, shown: str, where: str) -> np.ndarray:
    """The dataset as float32, after checking what it declares."""
    if ds.external or ds.is_virtual:
        raise ConfigError.one(
            where, "this dataset's data lives in other files; it is never read", shown
        )
    dtype = ds.dtype
    if dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None:
        raise ConfigError.one(
            where, f"holds {dtype} values, not numbers: weights must be numeric arrays", shown
        )
    shape = tuple(int(n) for n in ds.shape) if ds.shape is not None else ()
    need, what = math.prod(shape) * dtype.itemsize, f"array {shape} of {dtype}"
    if ds.chunks is not None:  # libhdf5 unpacks a whole chunk, however little of it is data
        chunk = tuple(int(n) for n in ds.chunks)
        chunk_bytes = math.prod(chunk) * dtype.itemsize
        if chunk_bytes > need:
            what += f" stored in chunks of {chunk}"
        need += chunk_bytes
    budget.take(need, where, shown, what)
    data = np.asarray(ds[()])
    return data.astype(np.float32, copy=False)


def text_attr(obj: Any, name: str, shown: str, where: str) -> str | None:
    """A string attribute, bounded like a config file; None when absent."""
    value = _string_attr(obj, name, shown, where, MAX_TEXT_BYTES)
    if value is None:
        return None
    if value.shape != ():
        raise ConfigError.one(where, f"attribute {name!r} is not text", shown)
    return bytes(value.item()).decode("utf-8", "replace")


def names_attr(obj: Any, name: str, shown: str, where: str) -> list[str] | None:
    """A list-of-strings attribute (``layer_names``, ``weight_names``); None when absent."""
    value = _string_attr(obj, name, shown, where, MAX_TEXT_BYTES)
    if value is None:
        return None
    if value.size == 0:
        return []
    if value.ndim != 1:
        raise ConfigError.one(where, f"attribute {name!r} is not a list of names", shown)
    return [bytes(item).decode("utf-8", "replace") for item in value.tolist()]


def _string_attr(obj: Any, name: str, shown: str, where: str, limit: int) -> np.ndarray | None:
    """The strings of attribute ``name`` as an array of bytes, at most ``limit`` bytes in all;
    None when absent. Sized before anything is read: a fixed-length string attribute by its
    storage, and a variable-length one (whose storage holds only 16-byte references to the
    text, wherever it lies in the file) is read into fixed-length slots of ``limit`` bytes
    shared among its items, so text longer than that is refused, never held. An attribute of
    any other type is refused unread: text is all we read from attributes."""
    h5py = h5py_module()
    if name not in obj.attrs:
        return None
    attr = obj.attrs.get_id(name)
    kind = attr.get_type()
    refused = ConfigError.one(
        where,
        f"attribute {name!r} holds more than {limit:,} bytes of text, the limit for a "
        "config: this is not a model of our layers",
        shown,
    )
    if not isinstance(kind, h5py.h5t.TypeStringID):
        raise ConfigError.one(where, f"attribute {name!r} is not text", shown)
    count = math.prod(attr.shape)
    if not kind.is_variable_str():
        if attr.get_storage_size() > limit:
            raise refused
        return np.asarray(obj.attrs[name], dtype=bytes)
    slot = limit // max(count, 1)
    if slot < 1:
        raise refused
    memory = h5py.h5t.C_S1.copy()
    memory.set_size(slot + 1)  # one byte more: an item that fills it is too long
    memory.set_strpad(h5py.h5t.STR_NULLPAD)
    memory.set_cset(kind.get_cset())
    out = np.zeros(attr.shape, dtype=f"S{slot + 1}")
    attr.read(out, mtype=memory)
    if count and max(len(item) for item in out.reshape(-1)) > slot:
        raise refused
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

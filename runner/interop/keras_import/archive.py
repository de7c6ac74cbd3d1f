"""Keras 3 ``.keras`` archives: a zip of ``metadata.json``, ``config.json`` and
``model.weights.h5``.

Every member's declared (uncompressed) size is checked before it is read: the JSON members
against the config-file limit, the weights against the import's budget; the zip reader never
yields more than a member declares, so a zip bomb is refused unread. Members holding code or
other assets (``assets/``, custom objects) are never opened.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.data.zip_directory import ZIP_ENTRY_BYTES, read_directory
from runner.errors import ConfigError
from runner.interop.keras_import.budget import MAX_TEXT_BYTES, Budget
from runner.interop.keras_import.text import decode, parse_json, too_large

MAX_MEMBERS = 64  # a model archive holds three files; thousands would only cost us memory


@dataclass
class Archive:
    config: Any  # config.json, parsed
    keras_version: str | None  # metadata.json's keras_version
    weights: io.BytesIO | None  # model.weights.h5, read into memory within the budget


def read_archive(path: Path, shown: str, budget: Budget) -> Archive:
    if not zipfile.is_zipfile(path):
        raise ConfigError.one("(file)", "not a .keras archive (not a zip file)", shown)
    directory = read_directory(path)
    if directory is not None and directory.most_members > MAX_MEMBERS:
        raise ConfigError.one(  # from the end records, before the directory is parsed
            "(zip directory)",
            f"{directory.entries:,} members in a directory of {directory.size:,} bytes, room "
            f"for {directory.most_members:,}; a .keras archive of a model holds a few",
            shown,
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            budget.take(len(infos) * ZIP_ENTRY_BYTES, "(zip directory)", shown, "the directory")
            members = {i.filename: i for i in infos}
            if "config.json" not in members:
                raise ConfigError.one(
                    "(zip directory)", "no config.json: not a Keras 3 archive", shown
                )
            config = parse_json(_text(zf, members["config.json"], shown), f"{shown}:config.json")
            version = None
            if "metadata.json" in members:
                meta = parse_json(
                    _text(zf, members["metadata.json"], shown), f"{shown}:metadata.json"
                )
                if isinstance(meta, dict) and isinstance(meta.get("keras_version"), str):
                    version = meta["keras_version"]
            weights = None
            info = members.get("model.weights.h5")
            if info is not None:
                budget.take(info.file_size, "model.weights.h5", shown, "the weights member")
                with zf.open(info) as f:
                    weights = io.BytesIO(f.read(info.file_size + 1))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ConfigError.one("(file)", f"cannot read the archive: {exc}", shown) from None
    return Archive(config, version, weights)


def _text(zf: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str) -> str:
    where = f"{shown}:{info.filename}"
    if info.file_size > MAX_TEXT_BYTES:
        raise too_large(where)  # declared larger: nothing is read
    with zf.open(info) as f:
        return decode(f.read(MAX_TEXT_BYTES + 1), where)

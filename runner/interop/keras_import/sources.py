"""What each file on the command line is, and the Keras version that wrote it.

SRC: architecture JSON or YAML (``to_json`` / ``to_yaml``), a whole-model HDF5 (``save``:
``model_config`` plus ``model_weights``), or a Keras 3 ``.keras`` archive. WEIGHTS (optional):
an HDF5 file of ``save_weights``, any version's layout; without it the weights of a whole
model file or archive are used, and a bare architecture gets the layers' initializers.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.config.paths import shown_path
from runner.errors import ConfigError
from runner.interop.keras_import import archive, hdf5, text
from runner.interop.keras_import.budget import Budget
from runner.interop.keras_import.legacy import is_legacy, parse_legacy
from runner.interop.keras_import.model import KModel
from runner.interop.keras_import.topology import detect_version, parse_topology


@dataclass
class Loaded:
    model: KModel
    files: list[str]  # the source files, as shown in messages and the YAML's comment
    weights: Any | None = None  # an HDF5 group holding the weights
    weights_file: str | None = None
    keep_open: list[Any] = field(default_factory=list)  # h5py files to close at the end

    def close(self) -> None:
        for f in self.keep_open:
            f.close()


def load(src: Path, weights: Path | None, budget: Budget, cwd: Path) -> Loaded:
    shown = shown_path(src, cwd)
    if not src.is_file():
        raise ConfigError.one("SRC", "no such file", shown)
    if weights is not None and not weights.is_file():
        raise ConfigError.one("WEIGHTS", "no such file", shown_path(weights, cwd))
    loaded = _architecture(src, shown, budget)
    if weights is not None:
        w_shown = shown_path(weights, cwd)
        if not hdf5.is_hdf5(weights):
            raise ConfigError.one(
                "WEIGHTS", "not an HDF5 file (weights come from save_weights or save)", w_shown
            )
        f = hdf5.open_file(weights, w_shown)
        loaded.keep_open.append(f)
        group = hdf5.member(f, "model_weights", w_shown, "model_weights")
        loaded.weights = f if group is None else group
        loaded.weights_file = w_shown
        loaded.files.append(w_shown)
    return loaded


def _architecture(src: Path, shown: str, budget: Budget) -> Loaded:
    suffix = src.suffix.lower()
    if hdf5.is_hdf5(src):
        return _whole_h5(src, shown)
    if zipfile.is_zipfile(src):
        found = archive.read_archive(src, shown, budget)
        loaded = Loaded(_model(found.config, f"{shown}:config.json", found.keras_version), [shown])
        if found.weights is not None:
            f = hdf5.open_file(found.weights, f"{shown}:model.weights.h5")
            loaded.keep_open.append(f)
            loaded.weights, loaded.weights_file = f, f"{shown}:model.weights.h5"
        return loaded
    body = text.read_text(src, shown)
    if suffix in (".yaml", ".yml") or (suffix != ".json" and not body.lstrip().startswith("{")):
        config = text.parse_yaml(body, shown)
    else:
        config = text.parse_json(body, shown)
    declared = config.get("keras_version") if isinstance(config, dict) else None
    return Loaded(_model(config, shown, declared if isinstance(declared, str) else None), [shown])


def _whole_h5(src: Path, shown: str) -> Loaded:
    f = hdf5.open_file(src, shown)
    config_text = hdf5.text_attr(f, "model_config", shown, "model_config")
    if config_text is None:
        f.close()
        raise ConfigError.one(
            "model_config",
            "this HDF5 file holds no architecture (it comes from save_weights): give the "
            "architecture JSON or YAML as SRC and this file as WEIGHTS",
            shown,
        )
    config = text.parse_json(config_text, f"{shown}:model_config")
    declared = hdf5.text_attr(f, "keras_version", shown, "keras_version")
    loaded = Loaded(_model(config, f"{shown}:model_config", declared), [shown])
    loaded.keep_open.append(f)
    group = hdf5.member(f, "model_weights", shown, "model_weights")
    if group is not None:
        loaded.weights, loaded.weights_file = group, shown
    return loaded


def _model(config: Any, shown: str, declared: str | None) -> KModel:
    if not isinstance(config, dict):
        raise ConfigError.one("(top)", "expected a Keras model config (a mapping)", shown)
    if is_legacy(config):
        return parse_legacy(config, shown)
    if "class_name" not in config:
        raise ConfigError.one(
            "(top)",
            "not a Keras model config: expected 'class_name' (Keras 1-3) or "
            "'name: Sequential|Graph' (Keras 0.x) at the top",
            shown,
        )
    version, version_text = detect_version(config, declared)
    return parse_topology(config, shown, version, version_text)

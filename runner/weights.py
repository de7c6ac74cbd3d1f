"""Weights named by a config: inline arrays, files per parameter, .npz per layer or per model.

Each array is checked against the shape the plan expects (from the input size and the layer's
settings), for numbers and for NaN/Inf; accepted arrays wait in ``node.given`` for the build.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from layers import registry
from layers.base import FileRef, Layer
from layers.initializers import check_init
from runner import sources
from runner.errors import ConfigError, Problem

if TYPE_CHECKING:
    from runner.nodes import Node


def check_layer_weights(node: Node, problems: list[Problem], cwd: Path,
                          layer: Layer | None = None, prefix: str = "", path: str = "") -> None:
    """Weights and init of ``node``'s layer, and of the layers inside a composite (their
    parameters are the node's, keyed ``<prefix><param>``, e.g. ``encoder/enc/W``)."""
    layer, path = (node.layer, node.path) if layer is None else (layer, path)
    for sub_prefix, child, sub_path in getattr(layer, "children", list)():
        check_layer_weights(node, problems, cwd, child, prefix + sub_prefix, f"{path}.{sub_path}")
    shapes = {k[len(prefix):]: v for k, v in node.param_shapes.items() if k.startswith(prefix)}
    weights = layer.spec.weights
    if weights is None:
        init = getattr(layer.spec, "init", None)
        for pname, shape in shapes.items():
            issue = check_init(init, shape) if init and pname == "W" else None
            if issue:
                problems.append(Problem(f"{path}.init", issue))
        return
    where = f"{path}.weights"
    if isinstance(weights, FileRef):
        if prefix:
            problems.append(Problem(where, "a weights file for a layer inside a composite is not "
                                    f"supported: give {node.name}.weights a file keyed "
                                    f"'{prefix}<param>', or use the model-level weights file"))
        return  # loaded with the model-level file in load_weight_files
    for pname, value in weights.items():
        if pname not in shapes:
            problems.append(Problem(f"{where}.{pname}", f"{layer.spec.type} has no "
                                    f"parameter {pname!r}{registry.did_you_mean(pname, shapes)}; "
                                    f"it has {list(shapes)}"))
            continue
        try:
            array = (sources.load_file(value, cwd, f"{where}.{pname}")
                     if isinstance(value, FileRef)
                     else sources.inline_array(value, f"{where}.{pname}", "weights"))
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        _accept_weight(node, prefix + pname, array, f"{where}.{pname}",
                       value.path if isinstance(value, FileRef) else None, problems)


def _accept_weight(node, pname, array, path, file, problems) -> None:
    expected = node.param_shapes[pname]
    if array.dtype.kind not in "biuf":
        problems.append(Problem(path, f"expected numbers, found dtype {array.dtype}", file))
    elif tuple(array.shape) != expected:
        problems.append(Problem(path, f"expected shape {expected} (from the input size and the "
                                f"layer's settings), found {tuple(array.shape)}", file))
    elif not np.isfinite(array).all():
        problems.append(Problem(path, "contains NaN or Inf", file))
    else:
        node.given[pname] = array


def load_weight_files(spec, cwd, nodes: dict[str, Node], problems) -> None:
    """Weights from .npz files: per layer ({path}) and the model-level file ('layer/param')."""
    for node in nodes.values():
        ref = node.layer.spec.weights
        if isinstance(ref, FileRef):
            _weights_from_npz(cwd, ref.path, f"{node.path}.weights", {node.name: node}, problems,
                              prefix_optional=True, strict=True)
    model_weights = spec.model.weights
    if model_weights is not None:
        _weights_from_npz(cwd, model_weights.path, "model.weights", nodes, problems,
                          prefix_optional=False, strict=model_weights.strict)


def _weights_from_npz(cwd, file, path, nodes, problems, *, prefix_optional, strict) -> None:
    full = sources.resolve_path(file, cwd)
    if not full.is_file():
        problems.append(Problem(f"{path}.path", "file not found", file))
        return
    try:
        if not zipfile.is_zipfile(full):
            raise ValueError("not a .npz file (not a zip archive)")
        with np.load(full, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        problems.append(Problem(f"{path}.path", f"cannot read .npz: "
                                f"{sources.explain_read_error(exc)}", file))
        return
    for node in nodes.values():
        for key, pshape in node.param_shapes.items():
            for candidate in ([f"{node.name}/{key}", key] if prefix_optional else [f"{node.name}/{key}"]):
                if candidate in arrays:
                    _accept_weight(node, key, arrays.pop(candidate), f"{path}[{candidate}]", file,
                                   problems)
                    break
            else:
                if strict and key not in node.given:
                    problems.append(Problem(f"{path}.path", f"no array {node.name}/{key} "
                                            f"(shape {pshape}) in the file", file))
    if strict and arrays:
        problems.append(Problem(f"{path}.path", f"arrays match no layer parameter: {sorted(arrays)}",
                                file))

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
from runner.data import sources
from runner.errors import ConfigError, Problem

if TYPE_CHECKING:
    from runner.graph.nodes import Node


def check_layer_weights(
    node: Node,
    problems: list[Problem],
    cwd: Path,
    layer: Layer | None = None,
    prefix: str = "",
    path: str = "",
    max_bytes: float | None = None,
) -> None:
    """Weights and init of ``node``'s layer, and of the layers inside a composite (their
    parameters are the node's, keyed ``<prefix><param>``, e.g. ``encoder/enc/W``). Files are
    sized against ``max_bytes`` before they are read."""
    layer, path = (node.layer, node.path) if layer is None else (layer, path)
    for sub_prefix, child, sub_path in layer.children():
        check_layer_weights(
            node, problems, cwd, child, prefix + sub_prefix, f"{path}.{sub_path}", max_bytes
        )
    shapes = {k[len(prefix) :]: v for k, v in node.param_shapes.items() if k.startswith(prefix)}
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
            problems.append(
                Problem(
                    where,
                    "a weights file for a layer inside a composite is not "
                    f"supported: give {node.name}.weights a file keyed "
                    f"'{prefix}<param>', or use the model-level weights file",
                )
            )
        return  # loaded with the model-level file in load_weight_files
    for pname, value in weights.items():
        if pname not in shapes:
            problems.append(
                Problem(
                    f"{where}.{pname}",
                    f"{layer.spec.type} has no "
                    f"parameter {pname!r}{registry.did_you_mean(pname, shapes)}; "
                    f"it has {list(shapes)}",
                )
            )
            continue
        try:
            array = (
                sources.load_file(value, cwd, f"{where}.{pname}", max_bytes)
                if isinstance(value, FileRef)
                else sources.inline_array(value, f"{where}.{pname}", "weights")
            )
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        _accept_weight(
            node,
            prefix + pname,
            array,
            f"{where}.{pname}",
            value.path if isinstance(value, FileRef) else None,
            problems,
            max_bytes,
        )


def _accept_weight(node, pname, array, path, file, problems, max_bytes=None) -> None:
    expected = node.param_shapes[pname]
    if array.dtype.kind not in "biuf":
        problems.append(Problem(path, f"expected numbers, found dtype {array.dtype}", file))
    elif tuple(array.shape) != expected:
        problems.append(
            Problem(
                path,
                f"expected shape {expected} (from the input size and the "
                f"layer's settings), found {tuple(array.shape)}",
                file,
            )
        )
    elif max_bytes is not None and array.nbytes > max_bytes:  # a memory-mapped .npy: unread
        problems.append(
            Problem(
                path,
                f"this weight array is {array.nbytes / 2**20:,.1f} MB, "
                f"above max_memory_mb ({max_bytes / 2**20:,.6g} MB): make the "
                "layer smaller or raise max_memory_mb",
                file,
            )
        )
    elif not np.isfinite(array).all():
        problems.append(Problem(path, "contains NaN or Inf", file))
    else:
        node.given[pname] = array
        node.given_at[pname] = (path, file)


def _finite_as(array: np.ndarray, dtype: np.dtype) -> bool:
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.asarray(array, dtype=dtype)).all())


def check_finite_weights(nodes: dict[str, Node], dtype: np.dtype, problems) -> None:
    """Given weights must stay finite once converted to the run's floatx (1e300 is finite as
    a float64 but inf as a float32)."""
    for node in nodes.values():
        for pname, array in node.given.items():
            if array.dtype != dtype and not _finite_as(array, dtype):
                path, file = node.given_at[pname]
                problems.append(
                    Problem(
                        path,
                        f"values beyond the range of {dtype} (largest "
                        f"finite: {np.finfo(dtype).max:.3g}) become Inf once "
                        "converted: scale the weights or use floatx=float64",
                        file,
                    )
                )


def load_weight_files(
    spec, cwd, nodes: dict[str, Node], problems, max_bytes: float | None = None
) -> None:
    """Weights from .npz files: per layer ({path}) and the model-level file ('layer/param').
    Each file's arrays are sized from its zip directory and .npy headers, against
    ``max_bytes``, before any is read."""
    for node in nodes.values():
        ref = node.layer.spec.weights
        if isinstance(ref, FileRef):
            _weights_from_npz(
                cwd,
                ref.path,
                f"{node.path}.weights",
                {node.name: node},
                problems,
                prefix_optional=True,
                strict=True,
                max_bytes=max_bytes,
            )
    model_weights = spec.model.weights
    if model_weights is not None:
        _weights_from_npz(
            cwd,
            model_weights.path,
            "model.weights",
            nodes,
            problems,
            prefix_optional=False,
            strict=model_weights.strict,
            max_bytes=max_bytes,
        )


def _weights_from_npz(
    cwd, file, path, nodes, problems, *, prefix_optional, strict, max_bytes=None
) -> None:
    full = sources.resolve_path(file, cwd)
    if not full.is_file():
        problems.append(Problem(f"{path}.path", "file not found", file))
        return
    try:
        arrays = sources.read_npz(full, None, {"path": f"{path}.path", "file": file}, max_bytes)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        problems.append(
            Problem(f"{path}.path", f"cannot read .npz: {sources.explain_read_error(exc)}", file)
        )
        return
    for node in nodes.values():
        for key, pshape in node.param_shapes.items():
            for candidate in (
                [f"{node.name}/{key}", key] if prefix_optional else [f"{node.name}/{key}"]
            ):
                if candidate in arrays:
                    _accept_weight(
                        node, key, arrays.pop(candidate), f"{path}[{candidate}]", file, problems
                    )
                    break
            else:
                if strict and key not in node.given:
                    problems.append(
                        Problem(
                            f"{path}.path",
                            f"no array {node.name}/{key} (shape {pshape}) in the file",
                            file,
                        )
                    )
    if strict and arrays:
        problems.append(
            Problem(f"{path}.path", f"arrays match no layer parameter: {sorted(arrays)}", file)
        )

"""Write the imported model: a model YAML and one .npz of weights it references.

Both files are first written to a private temporary folder and checked there as
``task=validate`` checks a model file (the guard on the file, the schema, the files it may
read, the plan with the weights' shapes); only then are they written to their destination,
each through a temporary file renamed into place. A problem leaves nothing behind;
``--dry-run`` stops after the check.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from runner.config import guard
from runner.config.paths import shown_path
from runner.errors import ConfigError, Problem
from runner.interop.keras_import.mapping import Ours
from runner.interop.keras_import.model import KModel, has_bias

SCHEMA_LINE = "# yaml-language-server: $schema=../../schema/model.schema.json"
PLACEHOLDER = {"random": {"distribution": "uniform", "low": 0, "high": 1, "rows": 2}}


@dataclass
class Written:
    yaml_path: Path
    npz_path: Path | None
    n_layers: int
    n_arrays: int
    written: bool = True  # False for --dry-run


def weight_arrays(ours: Ours) -> dict[str, np.ndarray]:
    """``layer/param`` -> array (float32) for every layer that took Keras weights."""
    arrays: dict[str, np.ndarray] = {}
    for prefix, layer in ours.params:
        if layer.weights is None:
            continue
        kernel = layer.weights[0]
        arrays[f"{prefix}/W"] = kernel.astype(np.float32)
        bias = (
            layer.weights[1]
            if has_bias(layer) and len(layer.weights) > 1
            else np.zeros(kernel.shape[-1], dtype=np.float32)
        )
        arrays[f"{prefix}/b"] = bias.astype(np.float32)
    return arrays


def model_dict(ours: Ours, weights_path: str | None) -> dict[str, Any]:
    model: dict[str, Any] = {
        "inputs": {n: {**spec, "data": PLACEHOLDER} for n, spec in ours.inputs.items()},
        "layers": ours.layers,
        "outputs": ours.outputs,
    }
    if weights_path is not None:
        model["weights"] = {"path": weights_path}
    return model


def yaml_text(model: dict[str, Any], header: list[str]) -> str:
    """Block style for the sections, one flow-style line per input and layer."""

    def flow(value: Any) -> str:
        return yaml.safe_dump(value, default_flow_style=True, width=math.inf, sort_keys=False)

    lines = [*header]
    for section in ("inputs", "layers"):
        lines.append(f"{section}:")
        for name, spec in model[section].items():
            lines.append(f"  {name}: {flow(spec).strip()}")
    lines.append(f"outputs: {flow(model['outputs']).strip()}")
    if "weights" in model:
        lines.append(f"weights: {flow(model['weights']).strip()}")
    return "\n".join(lines) + "\n"


def header(model: KModel, files: list[str], ours: Ours, out: Path, npz: str | None) -> list[str]:
    from runner.config.conf_dir import config_dir

    lines = []
    if out.parent.name == "model" and out.parent.parent.resolve() == Path(config_dir()).resolve():
        lines.append(SCHEMA_LINE)  # the project's own conf/model: its schema is two folders up
    lines.append(f"# Imported by layer-runner import-keras from {' + '.join(files)}")
    kind = f"{model.kind} {model.name!r}" if model.name else model.kind
    lines.append(f"# (Keras {model.version_text}, {kind}).")
    if npz:
        lines.append(f"# Weights: {npz} (keyed layer/param).")
    else:
        lines.append("# No weights were given: layers start from their initializers.")
    for keras_name, name in ours.renamed.items():
        lines.append(f"# Keras layer {keras_name!r} is {name!r} here.")
    lines += [f"# {note}" for note in ours.notes]
    lines.append("# The inputs' data are placeholders (random rows): give yours here, or with")
    lines.append(
        "# ~model.inputs.NAME.data '+model.inputs.NAME.data={path:x.npy}' on the command line."
    )
    return lines


def write(
    model: KModel,
    ours: Ours,
    files: list[str],
    out: Path,
    cwd: Path,
    max_memory_mb: float,
    force: bool,
    dry_run: bool = False,
) -> Written:
    if out.suffix not in (".yaml", ".yml"):
        raise ConfigError.one("--out", f"expected a .yaml file, got {shown_path(out, cwd)}")
    npz = out.with_suffix(".npz")
    for target in (out, npz):
        if target.exists() and not force:
            raise ConfigError.one(
                "--out",
                f"{shown_path(target, cwd)} exists; choose another name or pass --force",
            )
    arrays = weight_arrays(ours)
    final_ref = os.path.relpath(npz, cwd) if arrays else None
    text = yaml_text(model_dict(ours, final_ref), header(model, files, ours, out, final_ref))
    # Checked in a private folder first, so a refused import leaves nothing where it aimed.
    with tempfile.TemporaryDirectory(prefix="import-keras-") as folder:
        check_yaml, check_npz = Path(folder) / out.name, Path(folder) / npz.name
        _save(check_npz, arrays)
        check_ref = os.path.relpath(check_npz, cwd) if arrays else None
        check_text = yaml_text(
            model_dict(ours, check_ref), header(model, files, ours, out, check_ref)
        )
        check_yaml.write_text(check_text, encoding="utf-8")
        try:
            _validate(check_yaml, cwd, max_memory_mb)
        except ConfigError as exc:  # name the files as they would have been written
            names = {
                os.path.relpath(p, cwd): os.path.relpath(q, cwd)
                for p, q in ((check_yaml, out), (check_npz, npz))
            }
            raise ConfigError([_renamed(p, names) for p in exc.problems]) from None
    if not dry_run:
        out.parent.mkdir(parents=True, exist_ok=True)
        if arrays:
            _replace(npz, lambda path: _save(path, arrays))
        _replace(out, lambda path: path.write_text(text, encoding="utf-8"))
    return Written(out, npz if arrays else None, len(ours.layers), len(arrays), not dry_run)


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    if arrays:
        with open(path, "wb") as f:
            np.savez(f, **arrays)


def _replace(target: Path, write_to) -> None:
    """Write through a temporary file beside ``target``, then rename: never half a file."""
    fd, name = tempfile.mkstemp(prefix=".import-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write_to(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _renamed(problem: Problem, names: dict[str, str]) -> Problem:
    def fix(text: str | None) -> str | None:
        for old, new in names.items():
            text = text.replace(old, new) if text else text
        return text

    return Problem(problem.path, fix(problem.message) or "", fix(problem.file))


def _validate(path: Path, cwd: Path, max_memory_mb: float) -> None:
    """What ``task=validate`` checks, on the written file (messages name the file)."""
    from runner.run import check_and_plan

    try:
        guard.check_model_file(path)
    except guard.ModelFileError as exc:
        raise ConfigError.one("(written model)", exc.message) from None
    model = yaml.safe_load(path.read_text(encoding="utf-8"))
    config = {"task": "validate", "max_memory_mb": max_memory_mb, "model": model}
    check_and_plan(config, cwd, model_file=path)

"""Import a Keras fixture through the CLI and run the model through the run path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "keras"


def import_model(tmp_path: Path, capsys, *files, name: str = "imported", extra=()) -> Path:
    """``layer-runner import-keras FILES --out model/NAME.yaml`` (in-process, from tmp_path);
    the written YAML's path. The command's exit code must be 0."""
    from runner.interop.keras_import.cli import main

    out = tmp_path / "model" / f"{name}.yaml"
    args = [str(FIXTURES / f) for f in files] + ["--out", f"model/{name}.yaml", *extra]
    # (a Path joined to FIXTURES stays itself when it is absolute)
    code = main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"wrote model/{name}.yaml" in captured.out
    return out


def run_imported(yaml_path: Path, tmp_path: Path, inputs: dict[str, np.ndarray], tag="run"):
    """Run the written model file from ``tmp_path`` on ``inputs`` (saved to TAG.npz, read by
    path) with ``runner.run.run``; returns (outputs.npz as a dict, the model config)."""
    from runner.api import load_model_file
    from runner.run import run

    np.savez(tmp_path / f"{tag}.npz", **inputs)
    config = load_model_file(yaml_path, seed=0)
    for name in config["model"]["inputs"]:
        config["model"]["inputs"][name]["data"] = {"path": f"{tag}.npz", "key": name}
    folder = tmp_path / tag
    outcome = run(config, folder, tmp_path, model_file=yaml_path)
    result = json.loads((folder / "result.json").read_text())
    assert outcome.exit_code == 0, result.get("problems")
    with np.load(folder / "outputs.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}, config["model"]


def deviation(ours: np.ndarray, keras: np.ndarray) -> tuple[float, float]:
    """(max abs, max rel) difference; rel over the elements Keras gives as non-zero."""
    diff = np.abs(ours.astype(np.float64) - keras.astype(np.float64))
    nonzero = keras != 0
    rel = diff[nonzero] / np.abs(keras[nonzero].astype(np.float64))
    return float(diff.max(initial=0)), float(rel.max(initial=0))

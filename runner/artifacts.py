"""The run folder: config.yaml, summary.txt, outputs.npz, weights.npz, result.json (last)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from runner import redact


def write_text(path: Path, text: str) -> None:
    _atomic(path, redact.text(text).encode())


def write_yaml(path: Path, data: Any) -> None:
    write_text(path, yaml.safe_dump(redact.data(data), sort_keys=False, default_flow_style=None,
                                    width=100))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, path)


def write_result(path: Path, result: dict[str, Any]) -> None:
    """result.json is written last and atomically: its presence means the run finished."""
    text = json.dumps(redact.data(result), indent=2, default=_json_default) + "\n"
    _atomic(path, text.encode())


def _atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def array_digest(a: np.ndarray) -> str:
    """sha256 of the array's bytes (C order), its dtype and shape: a stable fingerprint."""
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()[:16]


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("numpy", "pydantic", "hydra-core", "omegaconf"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out

"""Where the Hydra config tree lives (its own module, so the CLI entry and the Python API both
read it without importing each other)."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> str:
    """Live conf/ of a checkout or editable install; else the copy packaged as runner.conf."""
    env = os.environ.get("RUNNER_CONFIG_DIR")
    if env:
        return str(Path(env).resolve())
    repo_conf = Path(__file__).resolve().parents[2] / "conf"
    if (repo_conf / "config.yaml").is_file():
        return str(repo_conf)
    return "pkg://runner.conf"

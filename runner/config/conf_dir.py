"""Where the Hydra config tree lives (its own module, so the CLI entry and the Python API both
read it without importing each other)."""

from __future__ import annotations

import os
import re
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


def initialize():  # noqa: ANN201 (a Hydra context manager)
    """Hydra's compose API opened on the project's config tree (checkout or package)."""
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    where = config_dir()
    if where.startswith("pkg://"):
        return initialize_config_module("runner.conf", version_base="1.3")
    return initialize_config_dir(where, version_base="1.3")


def searchpath_override(folder: Path) -> str:
    """The override that adds ``folder`` (a user's repository of model files) to Hydra's search
    path after the shipped tree, as ``--config-dir`` does for the compose API. Hydra records
    its provider as ``hydra.searchpath``, so the guard reads only model files from it."""
    url = f"file://{folder.resolve()}"
    # Hydra's quoted string: a quote, and backslashes before a quote or at the end, escaped
    quoted = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), url)
    return f"hydra.searchpath=['{quoted}']"


def sets_searchpath(overrides: list[str]) -> bool:
    """An override of ``hydra.searchpath`` among ``overrides``: Hydra reads only the first, so
    it and ``searchpath_override`` cannot both be given."""
    return any(o.lstrip("+~").split("=", 1)[0].strip() == "hydra.searchpath" for o in overrides)

"""Layer plugins: modules that register spec + layer pairs, exactly as built-in layers do.

Trust model: a config can only name plugin modules under ``model.plugins``; nothing else in a
config imports code. Installed packages may expose modules through the ``runner.layers``
entry-point group (installing a package is already trusting it).
"""

from __future__ import annotations

import importlib
import re
from importlib.metadata import entry_points
from typing import Any

from runner.errors import ConfigError, Problem

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_entry_points_loaded = False


def load_plugins(config: dict[str, Any]) -> list[str]:
    """Import the modules named under ``model.plugins`` (and installed entry points)."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        for ep in entry_points(group="runner.layers"):
            ep.load()
        _entry_points_loaded = True
    model = config.get("model") if isinstance(config, dict) else None
    names = model.get("plugins") if isinstance(model, dict) else None
    if not names:
        return []
    if not isinstance(names, list):
        raise ConfigError.one("model.plugins", f"expected a list of module names, found {names!r}")
    problems = []
    for i, name in enumerate(names):
        path = f"model.plugins[{i}]"
        if not isinstance(name, str) or not _MODULE_NAME.match(name):
            problems.append(Problem(path, f"expected a dotted module name such as "
                                          f"my_layers.masking, found {name!r}"))
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            hint = (f"name the module, not the file: {name[:-3]!r}" if name.endswith(".py") else
                    "run from the directory that holds it or install its package")
            problems.append(Problem(path, f"cannot import plugin module {name!r}: {exc}; {hint}"))
        except Exception as exc:  # a plugin's own bug: report it, do not crash the runner
            problems.append(Problem(path, f"plugin module {name!r} failed to import: "
                                          f"{type(exc).__name__}: {exc}"))
    if problems:
        raise ConfigError(problems)
    return list(names)

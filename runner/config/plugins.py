"""Layer plugins: modules that register spec + layer pairs, exactly as built-in layers do.

A plugin is code, so whoever runs the command decides which plugins may be imported, never the
model file. A model names the plugins it needs under ``model.plugins``; each must be allowed
outside the model file:

- by an installed package, through the ``runner.layers`` entry-point group (installing a
  package is already trusting it), named by entry-point name or module;
- or on the command line: ``allow_plugins=[my_layers.masking]`` (a run setting that a model
  file cannot set).

Anything else is refused before any import. Only named plugins are imported, so a broken
installed plugin fails only the models that name it.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from runner.errors import ConfigError, Problem

ENTRY_POINT_GROUP = "runner.layers"
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def is_module_name(name: object) -> bool:
    """A dotted module name (``my_layers.masking``): nothing else is ever imported."""
    return isinstance(name, str) and _MODULE_NAME.match(name) is not None


def installed_plugins() -> dict[str, EntryPoint]:
    """Entry points of installed packages, by entry-point name and by module name."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep
        found.setdefault(ep.module, ep)
    return found


def load_plugins(config: dict[str, Any]) -> list[str]:
    """Import the modules named under ``model.plugins`` that the run allows."""
    model = config.get("model") if isinstance(config, dict) else None
    names = model.get("plugins") if isinstance(model, dict) else None
    if not names:
        return []
    if not isinstance(names, list):
        raise ConfigError.one("model.plugins", f"expected a list of module names, found {names!r}")
    allowed = config.get("allow_plugins") or []
    if not isinstance(allowed, list):
        raise ConfigError.one(
            "allow_plugins", f"expected a list of module names, found {allowed!r}"
        )
    installed = installed_plugins()
    problems = []
    for i, name in enumerate(names):
        path = f"model.plugins[{i}]"
        if not is_module_name(name):
            problems.append(
                Problem(
                    path, f"expected a dotted module name such as my_layers.masking, found {name!r}"
                )
            )
            continue
        if name in allowed:
            problem = import_plugin(name, path, lambda n=name: import_allowed(n))
        elif name in installed:
            problem = import_plugin(name, path, installed[name].load)
        else:
            problem = Problem(
                path,
                f"plugin {name!r} is not allowed: a plugin is code, so the "
                "person running the command allows it, not the model file. Add "
                f"allow_plugins=[{name}] to the command line, or install a "
                f"package that exposes it in the {ENTRY_POINT_GROUP!r} "
                "entry-point group",
            )
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError(problems)
    return list(names)


def import_allowed(name: str) -> None:
    """A module the command line allows, also from the current directory (searched last, so
    it never shadows an installed package), whichever way the runner was started."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        importlib.import_module(name)
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def import_plugin(name: str, path: str, load: Callable[[], object]) -> Problem | None:
    """Run ``load`` (an import of plugin ``name``): None, or the Problem at ``path`` that
    says why it failed (not found, its own error, sys.exit), its half-import undone."""
    try:
        load()
    except ModuleNotFoundError as exc:
        hint = (
            f"name the module, not the file: {name[:-3]!r}"
            if name.endswith(".py")
            else "put its folder on PYTHONPATH or install its package"
        )
        return Problem(path, f"cannot import plugin module {name!r}: {exc}; {hint}")
    except (Exception, SystemExit) as exc:
        # A plugin's own bug (or a plugin that exits): report it, the run still ends properly.
        # KeyboardInterrupt goes on: it may be a real Ctrl-C (runner.run records it).
        what = (
            f"called sys.exit({exc.code!r})"
            if isinstance(exc, SystemExit)
            else f"failed to import: {type(exc).__name__}: {exc}"
        )
        sys.modules.pop(name, None)
        return Problem(path, f"plugin module {name!r} {what}")
    return None

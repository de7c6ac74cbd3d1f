"""Hydra's start-up without its waste: the same composed config, run and help, less work.

Three costs of a stock Hydra app that the command line does not pay (``install()``):

- **Copies of the config store.** Hydra deep-copies its config repository each time it
  composes a config or lists a group (``CachingConfigRepository``), and the repository holds
  the ``ConfigStore``: the structured configs of Hydra and of every installed launcher and
  sweeper plugin. ``--help`` lists groups 66 times, so it copied the store 67 times (about
  1 s). The store is never written through the repository (``ConfigStore.load`` hands out a
  deep copy of the node asked for), so our structured source shares it instead.
- **A second composition.** Before it runs, Hydra composes the whole config once more only
  to read ``hydra.mode`` (``Hydra.get_mode``). For a plain command (below) nothing can set
  that value, so the answer, "unset", is given without composing.
- **Launcher and sweeper plugins.** Hydra imports every installed plugin at start-up; the
  launchers and sweepers (``hydra_plugins.hydra_*_launcher``/``_sweeper``) register their
  configs then, and the Ray launcher alone reads the metadata of every installed
  distribution. A plain command selects none of them, so when they are the only plugins
  installed Hydra scans as it does with no plugin installed.

A *plain* command runs, shows help or ``--cfg job`` for the shipped primary config, and
selects no config group but ``model`` on its command line: no ``-m``, no other Hydra flag,
no override of ``hydra``, ``hydra.mode``, ``hydra.searchpath``, ``hydra.launcher`` or
``hydra.sweeper``, no ``+experiment=`` (which sets ``hydra.mode: MULTIRUN``), no
``hydra/...=``, no ``@package``. Model files cannot hold ``hydra:`` keys (the guard refuses
them), the shipped config sets no mode (a test keeps it so). Any other command runs exactly
as stock Hydra does.
"""

from __future__ import annotations

import copy
import os
import pkgutil
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins import structured_config_source as _hydra_structured
from hydra._internal.hydra import Hydra

from runner.config.conf_dir import config_dir
from runner.config.guard import MODEL_GROUP

# Hydra flags of a plain command; --cfg only as --cfg job. The value flags take one value.
_FLAGS = frozenset({"--help", "-h", "--run", "-r", "--resolve"})
_VALUE_FLAGS = frozenset({"--cfg", "-c", "--package", "-p", "--config-dir", "-cd"})
_HYDRA_KEYS = ("hydra", "hydra.mode", "hydra.searchpath")
_PLUGIN_KEYS = ("hydra.launcher", "hydra.sweeper")
# Search-path providers whose files cannot set hydra.mode: Hydra's own defaults, the primary
# config dir, --config-dir (model files only, see guard.py) and the structured-config schema.
_KNOWN_PROVIDERS = frozenset({"hydra", "main", "command-line", "schema"})

_plain = False  # the command being run is plain (set by install)


# Keeps the class name of Hydra's own: Hydra finds its schema source by that name.
class StructuredConfigSource(_hydra_structured.StructuredConfigSource):
    def __deepcopy__(self, memo: dict[int, Any]) -> StructuredConfigSource:
        shared = copy.copy(self)  # the same ConfigStore, read-only through this source
        memo[id(self)] = shared
        return shared


_hydra_get_mode = Hydra.get_mode


def _get_mode(self: Hydra, config_name: str | None, overrides: list[str]) -> Any:
    if _plain and config_name == "config" and _shipped_search_path(self.config_loader):
        return None  # what Hydra's composition returns: nothing sets hydra.mode
    return _hydra_get_mode(self, config_name, overrides)


def install(argv: list[str]) -> None:
    """Set Hydra up for the command ``argv`` (``sys.argv[1:]``). Call before anything else
    asks for Hydra's plugins (guard.install does)."""
    from hydra._internal.sources_registry import SourcesRegistry
    from hydra.core.plugins import Plugins

    global _plain
    _plain = is_plain(argv)
    if _plain:
        _scan_plugins_without_launchers()
    Plugins.instance()
    SourcesRegistry.instance().types["structured"] = StructuredConfigSource
    Hydra.get_mode = _get_mode  # type: ignore[method-assign]


def is_plain(argv: list[str]) -> bool:
    """Whether ``argv`` is a plain command (see the module's docstring)."""
    if os.environ.get("RUNNER_CONFIG_DIR"):
        return False  # another primary config may set the mode or pick a launcher itself
    overrides: list[str] = []
    user_dirs: list[str] = []
    args = iter(argv)
    for arg in args:
        flag, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if flag in _VALUE_FLAGS:
            value = inline if eq else next(args, None)
            if value is None or (flag in ("--cfg", "-c") and value != "job"):
                return False
            if flag in ("--config-dir", "-cd"):
                user_dirs.append(value)
        elif arg in _FLAGS:
            continue
        elif arg.startswith("-"):
            return False  # -m, --hydra-help, --info, -sc, -cp, -cn, ...: Hydra as it is
        else:
            overrides.append(arg)
    return _plain_overrides(overrides, user_dirs)


def _plain_overrides(overrides: list[str], user_dirs: list[str]) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # Hydra reports a malformed override itself, with its own message
        return False
    for override in parsed:
        key = override.key_or_group
        if key in _HYDRA_KEYS or key.startswith(_PLUGIN_KEYS) or override.package is not None:
            return False  # (a package moves a config's keys anywhere, hydra.mode included)
        if key != MODEL_GROUP and ("/" in key or _is_group(key, user_dirs)):
            return False
    return True


def _is_group(key: str, user_dirs: list[str]) -> bool:
    """A config group of that name in the shipped config tree or a --config-dir."""
    where = config_dir()
    if where.startswith("pkg://"):
        shipped = resources.files("runner.conf").joinpath(key).is_dir()
    else:
        shipped = Path(where, key).is_dir()
    return shipped or any(Path(d, key).is_dir() for d in user_dirs)


def _shipped_search_path(loader: Any) -> bool:
    """Hydra searches only its own configs, the shipped tree and --config-dir (no search-path
    plugin added a folder that could set the mode)."""
    for element in loader.config_search_path.get_path():
        if element.provider not in _KNOWN_PROVIDERS:
            return False
        if element.provider == "main" and element.path != config_dir():
            return False
    return True


def _scan_plugins_without_launchers() -> None:
    """Hydra's plugin scan as with no plugin installed, when every installed plugin is a
    launcher or sweeper (Hydra's own packages are named so); else the full scan, later."""
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton

    if Plugins in Singleton._instances:
        return
    try:
        import hydra_plugins
    except ImportError:
        return  # nothing installed: the scan is already the small one
    names = [m.name for m in pkgutil.iter_modules(hydra_plugins.__path__)]
    if not all(m.endswith(("_launcher", "_sweeper")) for m in names):
        return
    sys.modules["hydra_plugins"] = None  # type: ignore[assignment]  # Hydra: "not installed"
    try:
        Plugins.instance()
    finally:
        sys.modules["hydra_plugins"] = hydra_plugins

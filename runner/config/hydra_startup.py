"""Hydra's start-up without its waste: the same composed config and run, less work.

Two costs of a stock Hydra app that the command line does not pay (``install()``):

- **Copies of the config store.** Hydra deep-copies its config repository each time it
  composes a config or lists a group (``CachingConfigRepository``), and the repository holds
  the ``ConfigStore``: the structured configs of Hydra and of every installed launcher and
  sweeper plugin. ``--help`` lists groups 66 times, so it copied the store 67 times (about
  1 s). The store is never written through the repository (``ConfigStore.load`` hands out a
  deep copy of the node asked for), so our structured source shares it instead.
- **A second composition.** Before it runs, Hydra composes the whole config once more only
  to read ``hydra.mode`` (``Hydra.get_mode``). With the shipped primary config (which sets no
  mode: a test keeps it so) that value can only come from the command line: an override of
  ``hydra.mode`` or ``hydra``, a config group other than ``model`` (``+experiment=...`` sets
  ``hydra.mode: MULTIRUN``; model files cannot hold ``hydra:`` keys, the guard refuses them),
  or another search path. When none of those is given the answer is "unset" without
  composing; otherwise Hydra composes as before.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from hydra._internal.core_plugins import structured_config_source as _hydra_structured
from hydra._internal.hydra import Hydra

from runner.config.conf_dir import config_dir
from runner.config.guard import MODEL_GROUP

# Search-path providers whose files cannot set hydra.mode: Hydra's own defaults, the primary
# config dir, --config-dir (model files only, see guard.py) and the structured-config schema.
_KNOWN_PROVIDERS = frozenset({"hydra", "main", "command-line", "schema"})


# Keeps the class name of Hydra's own: Hydra finds its schema source by that name.
class StructuredConfigSource(_hydra_structured.StructuredConfigSource):
    def __deepcopy__(self, memo: dict[int, Any]) -> StructuredConfigSource:
        shared = copy.copy(self)  # the same ConfigStore, read-only through this source
        memo[id(self)] = shared
        return shared


_hydra_get_mode = Hydra.get_mode


def _get_mode(self: Hydra, config_name: str | None, overrides: list[str]) -> Any:
    if mode_is_unset(self.config_loader, config_name, overrides):
        return None  # what Hydra's composition would return
    return _hydra_get_mode(self, config_name, overrides)


def install() -> None:
    """Share the config store between Hydra's copies; skip the composition for the mode when
    its answer is known. Call after Hydra's plugins are registered (guard.install does)."""
    from hydra._internal.sources_registry import SourcesRegistry
    from hydra.core.plugins import Plugins

    Plugins.instance()
    SourcesRegistry.instance().types["structured"] = StructuredConfigSource
    Hydra.get_mode = _get_mode  # type: ignore[method-assign]


def mode_is_unset(loader: Any, config_name: str | None, overrides: list[str]) -> bool:
    """True when nothing Hydra would compose from ``overrides`` can set ``hydra.mode``."""
    if config_name != "config" or os.environ.get("RUNNER_CONFIG_DIR"):
        return False  # another primary config may set the mode itself
    for element in loader.config_search_path.get_path():
        if element.provider not in _KNOWN_PROVIDERS:
            return False  # a search-path plugin may bring a config that sets it
        if element.provider == "main" and element.path != config_dir():
            return False
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # Hydra reports a malformed override itself, with its own message
        return False
    for override in parsed:
        key = override.key_or_group
        if key in ("hydra", "hydra.mode", "hydra.searchpath") or override.package is not None:
            return False  # (a package moves a config's keys anywhere, hydra.mode included)
        is_group = "/" in key or loader.repository.group_exists(key)
        if is_group and key != MODEL_GROUP:
            return False
    return True

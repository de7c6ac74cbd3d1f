"""A command-line override naming a key the composed config does not have, in our words.

Hydra answers ``model.layers.dense.ouput_dim=8`` with "Could not override ... To append to your
config use +...". We answer as a model file's typo is answered: the path, then "did you mean",
the Keras name's answer, or how to add a key the file does not set (``+key=`` / ``++key=``).
"""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

_APPEND = re.compile(r"Could not override '([^']+)'\.\s*To append to your config use \+(\S+)")


def describe(exc: BaseException) -> str | None:
    """Our message for a failed override of a missing key, else None."""
    match = _APPEND.search(str(exc))
    cause = exc.__cause__ or exc.__context__
    if match is None or not isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
        return None
    override = match.group(2)
    full_key = str(getattr(cause, "full_key", "") or match.group(1))
    key = str(getattr(cause, "key", "") or "")
    if not key or not full_key.endswith(key):
        return None
    container = _plain(getattr(cause, "parent_node", None))
    where = full_key[: -len(key)].rstrip(".")  # the config path holding the key
    value = override.partition("=")[2] or "..."
    lead = f"{full_key} (override {override}): "
    if not where and key == "model":
        return f"override {override}: " + (
            "no model is chosen: choose one first, e.g. "
            f"python -m runner +model=NAME {override} (python -m runner lists the shipped models)"
        )
    from layers import registry
    from runner.config import validate

    keras = validate.keras_hint(key, container, None)
    if keras:
        ours = _renamed(key)
        if ours and ours in validate.layer_fields(container)[1]:
            keras += f" (write {where}.{ours}={value})"
        return lead + keras
    layer, fields = validate.layer_fields(container)
    if where == "model":
        from runner.config.schema import run_spec_class

        layer = "a model"
        fields = set(run_spec_class().model_fields["model"].annotation.model_fields)
    present = set(container) if isinstance(container, dict) else set()
    names = (present | fields) - {"type", "hydra"}
    if key in fields:
        return (
            f"{lead}{layer} accepts {key!r} but the model file does not set it; "
            f"to add it write +{override} (++{override} adds or replaces)"
        )
    hint = registry.did_you_mean(key, sorted(names - {key}))
    if hint:
        return f"{lead}unknown key {key!r}{hint}"
    place = where or "the top level"
    known = f"; keys at {place}: {', '.join(sorted(names))}" if names else ""
    return (
        f"{lead}{key!r} is not in the config{known}; to add a key the config "
        f"does not have write +{override} (++{override} adds or replaces)"
    )


def _renamed(key: str) -> str | None:
    from runner.config import keras_names

    return keras_names.renamed(key)


def _plain(node: Any) -> Any:
    if isinstance(node, DictConfig):
        try:
            return OmegaConf.to_container(node, resolve=False)
        except Exception:  # an unresolvable node: its keys are enough
            return {str(k): None for k in node.keys()}
    return node

"""Plain config dict -> validated RunSpec, or every problem as ``path: message``."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from layers import registry
from layers.base import BooleanGiven
from runner.config import keras_names
from runner.config.schema import run_spec_class
from runner.errors import ConfigError, Problem


def validate(config: dict[str, Any]) -> BaseModel:
    """Validate a composed config (``OmegaConf.to_container(cfg, resolve=True)``)."""
    cls = run_spec_class(_layer_types(config))
    try:
        return cls.model_validate(config)
    except ValidationError as exc:
        problems = [_problem(err, config) for err in exc.errors()]
        raise ConfigError([p for p in problems if p is not None]) from None


def _layer_types(config: Any) -> set[str] | None:
    """The ``type`` of every layer of the config, or None when one is not a string (then the
    whole union reports it, as it reports an unknown type)."""
    model = config.get("model") if isinstance(config, dict) else None
    layers = model.get("layers") if isinstance(model, dict) else None
    if not isinstance(layers, dict):
        return None
    types = [layer.get("type") if isinstance(layer, dict) else None for layer in layers.values()]
    return set(types) if all(isinstance(t, str) for t in types) else None


def _problem(err: dict[str, Any], data: Any) -> Problem | None:
    path, node, parent = _walk(err["loc"], data)
    kind = err["type"]
    found = err.get("input")
    if kind == "dict_type" and path == "model.layers" and isinstance(found, list):
        return Problem(path, _layers_list(found))
    if kind == "extra_forbidden":
        key = path.rsplit(".", 1)[-1]
        keras = keras_hint(key, parent, _flow(node))
        if keras:
            return Problem(path, keras)
        if key in _INSTANTIATE_KEYS:
            return Problem(
                path,
                f"{key!r} is not accepted: a config cannot name code to import "
                "or call; custom layers come from modules listed under model.plugins",
            )
        return Problem(path, f"unknown key {key!r}{_suggest(key, parent)}")
    if kind in ("too_short", "too_long") and "ctx" in err:
        bound = ("at least", "min_length") if kind == "too_short" else ("at most", "max_length")
        n = err["ctx"].get(bound[1])
        return Problem(
            path,
            f"expected {bound[0]} {n} entr{'y' if n == 1 else 'ies'}; found "
            f"{err['ctx'].get('actual_length')}: {_short(found)}",
        )
    if kind == "missing":
        key = path.rsplit(".", 1)[-1]
        if isinstance(parent, dict) and any(keras_names.renamed(k) == key for k in parent):
            return None  # the Keras name given instead is reported, with this key's name
        return Problem(path, f"required key {key!r} is missing{_describe_field(key, parent)}")
    if (
        kind in ("union_tag_invalid", "union_tag_not_found")
        and err["ctx"].get("discriminator") == "'name'"
    ):  # fit.schedule (layers are told apart by 'type')
        return Problem(path, _named_choice_problem(err))
    if kind == "union_tag_invalid":
        tag = err["ctx"]["tag"]
        keras = keras_names.layer_type(tag)
        if keras:
            return Problem(path, keras)
        known = ", ".join(sorted(registry.registered()))
        return Problem(
            path,
            f"unknown layer type {tag!r}{registry.did_you_mean(tag, registry.registered())}; "
            f"known types: {known}",
        )
    if kind == "union_tag_not_found":
        return Problem(path, "every layer needs a 'type' (for example type: Dense)")
    message = err["msg"]
    if kind == "literal_error" and isinstance(found, str):
        choices = [c.strip(" '") for c in err["ctx"]["expected"].replace(" or ", ", ").split(",")]
        message += registry.did_you_mean(found, choices)
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    elif message.startswith("Input should be "):
        message = "expected " + message[len("Input should be ") :]
    return Problem(path, f"{message}; found {_short(found)}")


def _named_choice_problem(err: dict[str, Any]) -> str:
    """A union told apart by ``name`` (a schedule): the name is unknown or missing."""
    from runner.config.fit_schema import SCHEDULES

    known = ", ".join(SCHEDULES)
    tag = err["ctx"].get("tag")
    if tag is None:
        return f"needs a 'name': one of {known}"
    return f"unknown name {tag!r}{registry.did_you_mean(str(tag), SCHEDULES)}; known: {known}"


def _walk(loc: tuple, data: Any) -> tuple[str, Any, Any]:
    """Turn a Pydantic loc into a config path, skipping union tags: Pydantic puts the tag of a
    discriminated union (a layer type, a data-source kind) in the loc, but the config has no
    such key, so the path names only keys the user wrote."""
    parts: list[str] = []
    node, parent = data, None
    for i, part in enumerate(loc):
        if part == "[key]":
            continue  # the key itself is at fault: the path already ends with it
        if _is_tag_step(part, node, loc[i + 1 :]):
            continue  # a tag that is also a key of this dict ({path, random} given together)
        if isinstance(node, dict) and part in node:
            parent, node = node, node[part]
            parts.append(str(part))
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            parent, node = node, node[part]
            parts.append(f"[{part}]")
        elif isinstance(node, dict) and (
            part in (node.get("type"), node.get("name"))
            or part in ("inline", "file", "random", "params")
        ):
            continue  # discriminator tag, not a key
        elif isinstance(part, str) and not isinstance(node, (dict, list)):
            continue  # tag of a non-dict branch ("inline", "file"), or a function name
        else:
            parent = node if isinstance(node, dict) else None
            node = None
            parts.append(str(part))
    path = ".".join(parts).replace(".[", "[")
    return path or "(config)", node, parent


# Hydra's instantiate keys: a model config never names code.
_INSTANTIATE_KEYS = frozenset(["_target_", "_args_", "_partial_", "_convert_", "_recursive_"])
_SOURCE_TAGS = ("inline", "file", "random", "params")


def _is_tag_step(part: Any, node: Any, rest: tuple) -> bool:
    if part not in _SOURCE_TAGS or not isinstance(node, dict) or part not in node or not rest:
        return False
    child = node[part]
    return rest[0] in node and not (isinstance(child, dict) and rest[0] in child)


def layer_fields(container: Any) -> tuple[str | None, set[str]]:
    """The layer type of ``container`` (a layer's settings) and its fields, else (None, set())."""
    if isinstance(container, dict) and isinstance(container.get("type"), str):
        try:
            return container["type"], set(registry.layer_class(container["type"]).Spec.model_fields)
        except ValueError:
            return None, set()
    return None, set()


def keras_hint(key: str, container: Any, value: str | None = None) -> str | None:
    """The answer for a Keras 1-3 parameter name ``key`` in ``container``, else None."""
    layer, fields = layer_fields(container)
    ours = keras_names.renamed(key)
    write = f"{ours}: {value}" if ours and value is not None else None
    return keras_names.parameter(key, layer, fields, write)


def _layers_list(found: list) -> str:
    """A Keras Sequential-style list of layers, answered with the mapping form."""
    first = found[0] if found else {}
    if isinstance(first, dict) and first:
        name = (
            str(first.get("type", "layer1")).lower()
            if isinstance(first.get("type"), str)
            else "layer1"
        )
        example = f"{{{name}: {_flow(first)}, ...}}"
    else:
        example = "{dense: {type: Dense, output_dim: 8}, ...}"
    return (
        "layers is a mapping from a layer's name to its settings, not a list (Keras "
        f"Sequential style): write layers: {example}; layers run in the order written, "
        "each reading the previous one"
    )


def _flow(value: Any) -> str | None:
    """``value`` in YAML flow style (short), or None when absent."""
    if value is None:
        return None
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(str(_flow(v)) for v in value) + "]"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(key: str, container: Any) -> str:
    fields: set[str] = set()
    if isinstance(container, dict) and isinstance(container.get("type"), str):
        try:
            fields = set(registry.layer_class(container["type"]).Spec.model_fields)
        except ValueError:
            fields = set()
    if fields:  # a layer: suggest, else list what this layer type accepts
        hint = registry.did_you_mean(key, sorted(fields - {"type", key}))
        return hint or f"; {container['type']} accepts: {', '.join(sorted(fields - {'type'}))}"
    return registry.did_you_mean(key, sorted(_all_field_names() - {"type", key}))


def _describe_field(key: str, container: Any) -> str:
    """' (Dense: Number of output units.)' for a layer's field, else ''."""
    if not (isinstance(container, dict) and isinstance(container.get("type"), str)):
        return ""
    try:
        field = registry.layer_class(container["type"]).Spec.model_fields.get(key)
    except ValueError:
        return ""
    text = field.description if field is not None and field.description else ""
    return f" ({container['type']} needs it: {text})" if text else ""


def _all_field_names() -> set[str]:
    schema = run_spec_class().model_json_schema()
    names = set(schema.get("properties", {}))
    for definition in schema.get("$defs", {}).values():
        names |= set(definition.get("properties", {}))
    return names


def _short(value: Any) -> str:
    if isinstance(value, BooleanGiven):
        return str(value)
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

"""Architecture text: ``model.to_json()`` and ``model.to_yaml()`` of any Keras version.

YAML is read with a safe loader. Keras wrote its YAML with ``yaml.dump``, so tuples appear as
``!!python/tuple [3]``: that one tag builds a plain list here. Every other Python tag
(``!!python/object``, ``!!python/name``, ``!!python/object/apply``...) would build Python
objects or call functions, and is refused with its line. Size and nesting are bounded as for a
config file (runner.config.guard), before anything is built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from runner.config.guard import ModelFileError, check_yaml_size  # one bound for all YAML
from runner.errors import ConfigError
from runner.interop.keras_import.budget import MAX_TEXT_BYTES

_TUPLE = "tag:yaml.org,2002:python/tuple"


class KerasYamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader plus ``!!python/tuple`` as a list; nothing else of Python's tags."""


def _tuple(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
    return loader.construct_sequence(node, deep=True)


KerasYamlLoader.add_constructor(_TUPLE, _tuple)


def read_text(path: Path, shown: str, limit: int = MAX_TEXT_BYTES) -> str:
    with path.open("rb") as f:
        data = f.read(limit + 1)
    return decode(data, shown, limit)


def too_large(shown: str, limit: int = MAX_TEXT_BYTES) -> ConfigError:
    return ConfigError.one(
        "(file)",
        f"more than {limit:,} bytes of architecture text, the limit for a config file: "
        "this is not a model of our layers",
        shown,
    )


def decode(data: bytes, shown: str, limit: int = MAX_TEXT_BYTES) -> str:
    if len(data) > limit:
        raise too_large(shown, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError.one("(file)", f"not UTF-8 text (byte {exc.start})", shown) from None


def parse_json(text: str, shown: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError.one(
            f"line {exc.lineno}, column {exc.colno}", f"malformed JSON: {exc.msg}", shown
        ) from None
    except RecursionError:
        raise ConfigError.one("(file)", "JSON nested too deeply", shown) from None


def parse_yaml(text: str, shown: str) -> Any:
    for tag in _python_tags(text, shown):
        raise ConfigError.one(
            f"line {tag[1]}",
            f"the YAML tag !!{tag[0].removeprefix('tag:yaml.org,2002:')} would build a "
            "Python object or call a function when loaded; it is never loaded (only "
            "!!python/tuple, a plain list, is read)",
            shown,
        )
    try:
        check_yaml_size(yaml.compose(text, Loader=KerasYamlLoader), shown)
        loader = KerasYamlLoader(text)  # the safe loader itself, never yaml.load's choice
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except ModelFileError as exc:
        raise ConfigError.one(f"line {exc.line}", exc.message, shown) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ConfigError.one(where, f"malformed YAML: {exc.problem or exc}", shown) from None
    except yaml.YAMLError as exc:
        raise ConfigError.one("(file)", f"malformed YAML: {exc}", shown) from None


def _python_tags(text: str, shown: str) -> list[tuple[str, int]]:
    """(tag, line) of every node whose tag names a Python type, other than tuples."""
    try:
        events = list(yaml.parse(text, Loader=KerasYamlLoader))
    except yaml.YAMLError:
        return []  # reported as malformed by the loader
    found = []
    for event in events:
        tag = getattr(event, "tag", None)
        if tag and tag != _TUPLE and ("python/" in tag or tag.startswith("!python")):
            found.append((tag, event.start_mark.line + 1))
    return found

"""Where a config path sits in a model file: ``model.layers.d.output_dim`` -> line and column.

Problems are found on the composed config, whose paths start with ``model.``; the model file
holds what is under ``model``. A path that leads past what the file says (a missing key, a
value that came from a file it pulls in) points at the deepest node the file does have.

A run can report a problem for every input or layer of a large file, so the file is composed
once (not once per problem) and each mapping's keys are indexed on first use: locating N
problems in a file of N keys costs linear time, not N compositions of N keys.
"""

from __future__ import annotations

import re

import yaml

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def locate(text: str, config_path: str) -> tuple[int, int]:
    """(line, column), 1-based, of ``config_path`` in a model file's text; (1, 1) when the path
    is not about the model or the text does not parse."""
    return locate_all(text, [config_path])[0]


def locate_all(text: str, config_paths: list[str]) -> list[tuple[int, int]]:
    """``locate`` of each path, the text composed once."""
    tree = None
    out = []
    for config_path in config_paths:
        if not config_path.startswith("model.") and config_path != "model":
            out.append((1, 1))
            continue
        tree = tree or _composed(text)
        out.append(tree.find(config_path) if tree else (1, 1))
    return out


class _Tree:
    """A composed file, its mappings' keys indexed as they are first walked."""

    def __init__(self, root: yaml.Node) -> None:
        self.root = root
        self._keys: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = {}

    def find(self, config_path: str) -> tuple[int, int]:
        node = self.root
        mark = node.start_mark
        for key, index in _SEGMENT.findall(config_path[len("model") :]):
            child, child_mark = self.step(node, key, index)
            if child is None:
                break
            node, mark = child, child_mark
        return mark.line + 1, mark.column + 1

    def step(self, node: yaml.Node, key: str, index: str):
        if index and isinstance(node, yaml.SequenceNode):
            i = int(index)
            if i < len(node.value):
                return node.value[i], node.value[i].start_mark
        if key and isinstance(node, yaml.MappingNode):
            found = self._index(node).get(key)
            if found is not None:
                k, v = found
                # a scalar value points at itself; a block (mapping, list) at its key's line
                return v, v.start_mark if isinstance(v, yaml.ScalarNode) else k.start_mark
        return None, None

    def _index(self, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        keys = self._keys.get(id(node))
        if keys is None:
            keys = self._keys[id(node)] = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    keys.setdefault(k.value, (k, v))  # the first of duplicate keys
        return keys


def _composed(text: str) -> _Tree | None:
    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    return None if node is None else _Tree(node)

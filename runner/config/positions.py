"""Where a config path sits in a model file: ``model.layers.d.output_dim`` -> line and column.

Problems are found on the composed config, whose paths start with ``model.``; the model file
holds what is under ``model``. A path that leads past what the file says (a missing key, a
value that came from a file it pulls in) points at the deepest node the file does have.
"""

from __future__ import annotations

import re

import yaml

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def locate(text: str, config_path: str) -> tuple[int, int]:
    """(line, column), 1-based, of ``config_path`` in a model file's text; (1, 1) when the path
    is not about the model or the text does not parse."""
    if not config_path.startswith("model.") and config_path != "model":
        return 1, 1
    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return 1, 1
    if node is None:
        return 1, 1
    mark = node.start_mark
    for key, index in _SEGMENT.findall(config_path[len("model") :]):
        child, child_mark = _step(node, key, index)
        if child is None:
            break
        node, mark = child, child_mark
    return mark.line + 1, mark.column + 1


def _step(node: yaml.Node, key: str, index: str):
    if index and isinstance(node, yaml.SequenceNode):
        i = int(index)
        if i < len(node.value):
            return node.value[i], node.value[i].start_mark
    if key and isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                # a scalar value points at itself; a block (mapping, list) at its key's line
                return v, v.start_mark if isinstance(v, yaml.ScalarNode) else k.start_mark
    return None, None

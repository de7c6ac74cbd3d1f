"""Keras 1, 2 and 3 architecture configs -> the neutral description.

Layouts followed (keras-team/keras at tags 1.2.2, 2.2.4, and Keras 3 as ``keras`` 3.x and
``tf-keras`` 2.x write them):

- top level ``{"class_name": "Sequential" | "Model" | "Functional", "config": ...}``;
- Sequential: ``config`` is the list of layers (1.x, 2.0-2.2.4) or ``{"name", "layers"}``;
  Keras 1 may start with a Merge of branch Sequentials (``config.layers``);
- functional: ``config.layers[i] = {"name", "class_name", "config", "inbound_nodes"}`` with
  ``input_layers`` / ``output_layers``; an inbound node is a list of
  ``[layer, call, tensor(, kwargs)]`` (1.x, 2.x) or ``{"args": [...], "kwargs": {...}}``
  holding ``__keras_tensor__`` entries with a ``keras_history`` (3.x).
"""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any

from runner.errors import ConfigError
from runner.interop.keras_import.model import GraphReader, KCall, KLayer, KModel, Ref

FUNCTIONAL = ("Model", "Functional")
WRAPPERS = ("TimeDistributed", "Bidirectional")
IGNORED_KWARGS = ("training",)  # the phase: we run the test phase, as Keras' predict


def detect_version(config: Any, declared: str | None) -> tuple[int, str]:
    """(major, text): what the file declares, else what its entries show. ``module`` keys
    alone do not tell (tf-keras writes them too); Keras 3 alone writes ``batch_shape``,
    ``__keras_tensor__`` inbound nodes and ``DTypePolicy`` dtypes."""
    if declared:
        match = re.match(r"\s*(\d+)", declared)
        if match:
            return int(match.group(1)), declared
    text = json.dumps(config)
    if any(mark in text for mark in ('"batch_shape"', "__keras_tensor__", "DTypePolicy")):
        return 3, "3.x (recognised by its batch_shape, tensor and DTypePolicy entries)"
    if '"output_dim"' in text and '"units"' not in text:
        return 1, "1.x (recognised by output_dim and class_name)"
    return 2, "2.x (recognised by class_name and Keras 2 parameter names)"


class _Parser(GraphReader):
    def __init__(self, shown: str) -> None:
        super().__init__(shown)
        self.saved_order: list[tuple[str, str]] = []  # (name, kind) in the file's order

    def layer(self, entry: Any, path: str) -> KLayer | None:
        if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
            self.problem(path, "expected a layer {class_name, config}")
            return None
        kind = entry["class_name"]
        config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        name = entry.get("name") or config.get("name")
        if not isinstance(name, str) or not name:
            name = f"{kind.lower()}_{len(self.layers) + 1}"
        module = entry.get("module") if isinstance(entry.get("module"), str) else None
        where = f"{path} ({kind} {name!r})"
        layer = KLayer(name, kind, config, where, weight_key=name, module=module)
        if kind in WRAPPERS:
            inner = self.layer(config.get("layer"), f"{path}.config.layer")
            layer.children = {"layer": [inner] if inner else []}
        return layer

    # ---- Sequential ---------------------------------------------------------------------
    def sequential(self, config: Any, path: str) -> Ref | None:
        entries = config if isinstance(config, list) else (config or {}).get("layers")
        if not isinstance(entries, list) or not entries:
            self.problem(path, "a Sequential needs a non-empty list of layers")
            return None
        ref: Ref | None = None
        for i, entry in enumerate(entries):
            where = f"{path}[{i}]" if isinstance(config, list) else f"{path}.layers[{i}]"
            if isinstance(entry, dict) and entry.get("class_name") == "InputLayer" and ref is None:
                cfg = entry.get("config") or {}
                name = cfg.get("name") or entry.get("name") or "input"
                ref = self.add_input(name, _declared_shape(cfg, entry), where)
                self.saved_order.append((name, "InputLayer"))
                continue
            if (
                ref is None
                and isinstance(entry, dict)
                and entry.get("class_name") == "Merge"
                and isinstance((entry.get("config") or {}).get("layers"), list)
            ):
                ref = self.merge_of_branches(entry, where)
                if ref is None:
                    return None
                continue
            layer = self.layer(entry, where)
            if layer is None:
                return None
            if ref is None:
                ref = self.add_input(
                    f"{layer.name}_input", _declared_shape(layer.config, entry), where
                )
            ref = self.call(layer, [ref])
        return ref

    def merge_of_branches(self, entry: dict[str, Any], path: str) -> Ref | None:
        """Keras 1: Sequential([Merge([seq_a, seq_b], mode=...), ...])."""
        config = entry["config"]
        refs = []
        for j, branch in enumerate(config["layers"]):
            where = f"{path}.config.layers[{j}]"
            if isinstance(branch, dict) and branch.get("class_name") == "Sequential":
                ref = self.sequential(branch.get("config"), f"{where}.config")
            else:
                ref = self.sequential([branch], where)
            if ref is None:
                return None
            refs.append(ref)
        layer = self.layer(
            {"class_name": "Merge", "config": {k: v for k, v in config.items() if k != "layers"}},
            path,
        )
        return self.call(layer, refs) if layer else None

    def add_input(self, name: str, shape: Any, path: str) -> Ref:
        self.inputs[name] = shape
        self.input_paths[name] = path
        return Ref(name)

    def call(self, layer: KLayer, inputs: list[Ref]) -> Ref:
        if layer.name in self.layers or layer.name in self.inputs:
            self.problem(layer.path, f"the name {layer.name!r} is used twice")
        self.layers[layer.name] = layer
        self.saved_order.append((layer.name, layer.kind))
        self.calls.append(KCall(layer, 0, inputs))
        return Ref(layer.name)

    # ---- functional ---------------------------------------------------------------------
    def functional(self, config: dict[str, Any], path: str) -> list[Ref]:
        entries = config.get("layers")
        if not isinstance(entries, list):
            self.problem(f"{path}.layers", "a functional model needs a list of layers")
            return []
        pending: list[KCall] = []
        for i, entry in enumerate(entries):
            where = f"{path}.layers[{i}]"
            if isinstance(entry, dict) and entry.get("class_name") == "InputLayer":
                cfg = entry.get("config") or {}
                name = entry.get("name") or cfg.get("name")
                self.add_input(name, _declared_shape(cfg, entry), where)
                self.saved_order.append((name, "InputLayer"))
                continue
            layer = self.layer(entry, where)
            if layer is None:
                continue
            if layer.name in self.layers or layer.name in self.inputs:
                self.problem(layer.path, f"the name {layer.name!r} is used twice")
                continue
            self.layers[layer.name] = layer
            if not _is_op(layer):
                self.saved_order.append((layer.name, layer.kind))
            nodes = entry.get("inbound_nodes") or []
            for k, node in enumerate(nodes):
                call = self.node(layer, k, node, f"{where}.inbound_nodes[{k}]")
                if call is not None:
                    pending.append(call)
        self.calls = self.ordered(pending)
        return [r for r in (_ref(e) for e in _triples(config.get("output_layers"))) if r]

    def node(self, layer: KLayer, k: int, node: Any, path: str) -> KCall | None:
        if isinstance(node, dict):  # Keras 3
            tensors, constants = [], []
            _collect(node.get("args"), tensors, constants)
            kwargs = node.get("kwargs") or {}
            masks: list[Ref] = []
            _collect(kwargs.get("mask"), masks, [])
            extra = [
                key
                for key, v in kwargs.items()
                if key not in ("mask", *IGNORED_KWARGS) and v is not None
            ]
            if extra:
                self.problem(path, f"call arguments {extra} are not supported")
            return KCall(layer, k, tensors, masks, constants)
        if isinstance(node, list):  # Keras 1 and 2
            refs = []
            for entry in node:
                ref = _ref(entry)
                if ref is None:
                    self.problem(path, f"expected [layer, call, tensor], found {entry!r}")
                    return None
                kwargs = entry[3] if len(entry) > 3 and isinstance(entry[3], dict) else {}
                extra = [key for key, v in kwargs.items() if key not in IGNORED_KWARGS]
                if extra:
                    self.problem(path, f"call arguments {extra} are not supported")
                refs.append(ref)
            return KCall(layer, k, refs)
        self.problem(path, "expected an inbound node (a list, or {args, kwargs})")
        return None

    def ordered(self, calls: list[KCall]) -> list[KCall]:
        """Calls in an order where every tensor exists before it is used (shared layers may be
        called again after layers listed later): by rounds, each the calls whose tensors the
        earlier rounds made, in the file's order. Rounds are counted as the calls are reached
        (Kahn's algorithm), never by rescanning every call per round: a chain listed backwards
        took N rounds over N calls (4,000 layers: 9.6 s; a 1 MiB model_config, about a minute)."""
        done = {(name, 0) for name in self.inputs}
        users: dict[tuple[str, int], list[int]] = {}
        missing_count = []
        ready = deque()
        round_of: dict[int, int] = {}
        for i, c in enumerate(calls):
            keys = {(r.layer, r.call) for r in c.inputs + c.masks} - done
            missing_count.append(len(keys))
            for key in keys:
                users.setdefault(key, []).append(i)
            if not keys:
                round_of[i] = 0
                ready.append(i)
        while ready:
            i = ready.popleft()
            for j in users.get((calls[i].layer.name, calls[i].index), ()):
                missing_count[j] -= 1
                if missing_count[j] == 0:
                    round_of[j] = round_of[i] + 1  # the last tensor it waited for: the latest
                    ready.append(j)
        out = [calls[i] for i in sorted(round_of, key=lambda i: (round_of[i], i))]
        done |= {(c.layer.name, c.index) for c in out}
        for i, c in enumerate(calls):
            if i not in round_of:
                missing = [r.layer for r in c.inputs if (r.layer, r.call) not in done]
                self.problem(c.layer.path, f"reads tensors nothing produces: {missing}")
        return out


def _is_op(layer: KLayer) -> bool:
    """A Keras 3 operation (keras.ops.*) in a functional model: not a layer, no weights."""
    return (layer.module or "").startswith("keras.src.ops")


def _declared_shape(config: dict[str, Any], entry: dict[str, Any]) -> Any:
    for key in ("batch_input_shape", "batch_shape"):
        if isinstance(config.get(key), list):
            return tuple(config[key][1:])
    build = entry.get("build_config") if isinstance(entry, dict) else None
    if isinstance(build, dict) and isinstance(build.get("input_shape"), list):
        shape = build["input_shape"]
        if shape and not isinstance(shape[0], list):
            return tuple(shape[1:])
    if config.get("input_dim") is not None:
        if "input_length" in config:
            return (config.get("input_length"), config["input_dim"])
        return (config["input_dim"],)
    return None


def _collect(value: Any, tensors: list[Ref], constants: list[Any]) -> None:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        history = (value.get("config") or {}).get("keras_history")
        ref = _ref(history)
        if ref is not None:
            tensors.append(ref)
    elif isinstance(value, list):
        for item in value:
            _collect(item, tensors, constants)
    elif value is not None:
        constants.append(value)


def _ref(entry: Any) -> Ref | None:
    if (
        isinstance(entry, list)
        and len(entry) >= 3
        and isinstance(entry[0], str)
        and all(isinstance(v, int) for v in entry[1:3])
    ):
        return Ref(entry[0], entry[1], entry[2])
    return None


def _triples(value: Any) -> list[Any]:
    """``output_layers``: a list of [name, call, tensor], or one such triple (Keras 3)."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [value]
    return value if isinstance(value, list) else []


def parse_topology(config: dict[str, Any], shown: str, version: int, text: str) -> KModel:
    p = _Parser(shown)
    kind = config.get("class_name")
    body = config.get("config")
    name = ""
    if kind == "Sequential":
        last = p.sequential(body, "config")
        outputs = [last] if last else []
        name = body.get("name", "") if isinstance(body, dict) else ""
    elif kind in FUNCTIONAL and isinstance(body, dict):
        outputs = p.functional(body, "config")
        name = body.get("name", "")
    else:
        raise ConfigError.one(
            "class_name",
            f"expected a Sequential or functional model (Model, Functional), found {kind!r}",
            shown,
        )
    if p.problems:
        raise ConfigError(p.problems)
    return KModel(
        version=version,
        version_text=text,
        kind=kind,
        name=name if isinstance(name, str) else "",
        inputs=p.inputs,
        input_paths=p.input_paths,
        layers=p.layers,
        calls=p.calls,
        outputs=outputs,
        saved_order=p.saved_order,
    )

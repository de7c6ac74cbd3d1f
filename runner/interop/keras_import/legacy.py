"""Keras 0.x architecture configs -> the neutral description.

Written from Keras 0.3.3's source (keras-team/keras at tag 0.3.3): ``Layer.get_config`` and
each layer's ``get_config`` in keras/layers/core.py (``{"name": <class name>, ...}``, the
layer's own name saved as ``custom_name``), ``Sequential`` and ``Graph.get_config`` in
keras/layers/containers.py (``layers``; ``input_config``, ``node_config``, ``output_config``,
``nodes``), and ``save_weights`` in keras/models.py (``layer_k/param_n`` for a Sequential,
one flat ``graph/param_n`` list for a Graph, in ``get_weights`` order).

A Sequential may start with a Merge or Siamese of branch Sequentials: each branch gets a model
input of its own (inputs ``input_1``, ``input_2``, ... in branch order, as 0.3's ``fit`` took
them). A Graph node with several ``inputs`` merges them first (a Merge named ``NODE_merge``).
"""

from __future__ import annotations

from typing import Any

from runner.errors import ConfigError
from runner.interop.keras_import.model import GraphReader, KCall, KLayer, KModel, Ref

BRANCHED = ("Merge", "Siamese")


def is_legacy(config: Any) -> bool:
    return (
        isinstance(config, dict)
        and "class_name" not in config
        and config.get("name") in ("Sequential", "Graph")
    )


class _Builder(GraphReader):
    def unique(self, wanted: str) -> str:
        name, k = wanted, 1
        while name in self.layers or name in self.inputs:
            k += 1
            name = f"{wanted}_{k}"
        return name

    def layer(self, config: Any, path: str, name: str | None = None) -> KLayer | None:
        if not isinstance(config, dict) or not isinstance(config.get("name"), str):
            self.problem(path, "expected a layer config with a 'name' (its class)")
            return None
        kind = config["name"]
        params = {k: v for k, v in config.items() if k != "name"}
        own = params.get("custom_name")
        if name is None:
            name = own if isinstance(own, str) and own and own != kind.lower() else kind.lower()
            name = self.unique(name)
        layer = KLayer(name, kind, params, path)
        if kind == "TimeDistributed":
            inner = self.layer(params.get("layer"), f"{path}.layer", f"{name}_layer")
            layer.children = {"layer": [inner] if inner else []}
        elif kind == "AutoEncoder":
            layer.children = {
                part: self.stack(params.get(f"{part}_config"), f"{path}.{part}_config", part)
                for part in ("encoder", "decoder")
            }
        return layer

    def stack(self, config: Any, path: str, owner: str) -> list[KLayer]:
        """An AutoEncoder part: one layer, or a Sequential of layers (no branches)."""
        if isinstance(config, dict) and config.get("name") == "Sequential":
            out = []
            for i, c in enumerate(config.get("layers") or []):
                layer = self.layer(c, f"{path}.layers[{i}]", f"{owner}_{i}")
                if layer is not None:
                    out.append(layer)
            return out
        layer = self.layer(config, path, f"{owner}_0")
        return [layer] if layer else []

    def add_input(self, first: dict[str, Any], path: str, name: str | None = None) -> Ref:
        name = self.unique(name or f"input_{len(self.inputs) + 1}")
        self.inputs[name] = input_shape(first)
        self.input_paths[name] = path
        return Ref(name)

    def call(self, layer: KLayer, inputs: list[Ref]) -> Ref:
        self.layers[layer.name] = layer
        self.calls.append(KCall(layer, 0, inputs))
        return Ref(layer.name)

    def sequential(self, layers: Any, path: str, groups: list[list[KLayer]]) -> Ref | None:
        """Chain a Sequential's layers; returns the last output. ``groups`` gets one weight
        group per top-level layer (``layer_k``)."""
        if not isinstance(layers, list) or not layers:
            self.problem(f"{path}.layers", "a Sequential needs a non-empty list of layers")
            return None
        ref: Ref | None = None
        for i, config in enumerate(layers):
            where = f"{path}.layers[{i}]"
            kind = config.get("name") if isinstance(config, dict) else None
            if kind in BRANCHED:
                if i != 0:
                    self.problem(where, f"a {kind} of branches must be the first layer")
                    return None
                ref, group = self.branched(config, where)
                groups.append(group)
                continue
            layer = self.layer(config, where)
            if layer is None:
                return None
            if ref is None:
                ref = self.add_input(config, where)
            ref = self.call(layer, [ref])
            groups.append([layer])
        return ref

    def branched(self, config: dict[str, Any], path: str) -> tuple[Ref | None, list[KLayer]]:
        """A Merge (``layers``) or Siamese (``inputs``) over branch Sequentials."""
        kind = config["name"]
        key = "layers" if kind == "Merge" else "inputs"
        branch_refs, weight_order = [], []
        for j, branch in enumerate(config.get(key) or []):
            where = f"{path}.{key}[{j}]"
            sub: list[list[KLayer]] = []
            if isinstance(branch, dict) and branch.get("name") == "Sequential":
                ref = self.sequential(branch.get("layers"), where, sub)
            else:
                ref = self.sequential([branch], where, sub)
            if ref is None:
                return None, []
            branch_refs.append(ref)
            weight_order += [layer for group in sub for layer in group]
        layer = self.layer(config, path)
        if layer is None:
            return None, []
        layer.config = {k: v for k, v in layer.config.items() if k not in (key,)}
        if kind == "Siamese":
            inner = self.layer(config.get("layer"), f"{path}.layer", f"{layer.name}_layer")
            layer.children = {"layer": [inner] if inner else []}
            # get_weights: the shared layer first, then (not in a Graph) each branch's
            shared = [inner] if inner else []
            weight_order = shared + ([] if config.get("is_graph") else weight_order)
        return self.call(layer, branch_refs), weight_order

    def graph(self, config: dict[str, Any]) -> tuple[list[Ref], list[KLayer]]:
        names: dict[str, Ref] = {}
        for i, spec in enumerate(config.get("input_config") or []):
            where = f"input_config[{i}]"
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                self.problem(where, "expected {name, input_shape}")
                continue
            names[spec["name"]] = self.add_input(spec, where, spec["name"])
        nodes = config.get("nodes") or {}
        order: list[KLayer] = []
        last_siamese: str | None = None
        for i, spec in enumerate(config.get("node_config") or []):
            where = f"node_config[{i}]"
            name = spec.get("name") if isinstance(spec, dict) else None
            if not isinstance(name, str) or name not in nodes:
                self.problem(where, "a node needs a name that 'nodes' defines")
                continue
            layer_config = nodes[name]
            kind = layer_config.get("name") if isinstance(layer_config, dict) else None
            if kind == "SiameseHead":  # an output of the last shared node (merge_mode None)
                if last_siamese is None:
                    self.problem(f"nodes.{name}", "a SiameseHead without a shared node before it")
                    continue
                names[name] = Ref(last_siamese, 0, int(layer_config.get("head", 0)))
                continue
            sources = self.sources(spec, names, where)
            if sources is None:
                continue
            layer = self.layer(layer_config, f"nodes.{name}", self.unique(name))
            if layer is None:
                continue
            if kind == "Siamese":
                inner = self.layer(
                    layer_config.get("layer"), f"nodes.{name}.layer", f"{layer.name}_layer"
                )
                layer.children = {"layer": [inner] if inner else []}
                layer.config = {
                    "merge_mode": spec.get("merge_mode"),
                    "concat_axis": spec.get("concat_axis", -1),
                    "dot_axes": spec.get("dot_axes", -1),
                }
                last_siamese = layer.name
                order += [inner] if inner else []
            else:
                if len(sources) > 1:
                    sources = [self.merge(f"{name}_merge", spec, sources, where)]
                order.append(layer)
            names[name] = self.call(layer, sources)
        outputs = []
        for i, spec in enumerate(config.get("output_config") or []):
            where = f"output_config[{i}]"
            sources = self.sources(spec, names, where)
            if sources is None:
                continue
            if len(sources) > 1:
                sources = [self.merge(spec.get("name") or f"output_{i}", spec, sources, where)]
            outputs.append(sources[0])
        return outputs, order

    def sources(self, spec: Any, names: dict[str, Ref], where: str) -> list[Ref] | None:
        if not isinstance(spec, dict):
            self.problem(where, "expected a mapping")
            return None
        wanted = [spec["input"]] if spec.get("input") else list(spec.get("inputs") or [])
        missing = [n for n in wanted if n not in names]
        if missing or not wanted:
            self.problem(where, f"unknown inputs {missing or wanted}")
            return None
        return [names[n] for n in wanted]

    def merge(self, name: str, spec: dict[str, Any], sources: list[Ref], where: str) -> Ref:
        config = {
            "mode": spec.get("merge_mode", "concat"),
            "concat_axis": spec.get("concat_axis", -1),
            "dot_axes": spec.get("dot_axes", -1),
        }
        return self.call(KLayer(self.unique(name), "Merge", config, where), sources)


def input_shape(config: dict[str, Any]) -> tuple[int | None, ...] | None:
    """The per-sample shape a 0.x first layer (or Graph input) declares, if any; a container
    layer's first inner layer declares it."""
    for key in ("encoder_config", "layer"):
        inner = config.get(key)
        if isinstance(inner, dict):
            if inner.get("name") == "Sequential" and inner.get("layers"):
                inner = inner["layers"][0]
            found = input_shape(inner) if isinstance(inner, dict) else None
            if found is not None:
                return found
    if isinstance(config.get("batch_input_shape"), list):
        return tuple(config["batch_input_shape"][1:])
    if isinstance(config.get("input_shape"), list):
        return tuple(config["input_shape"])
    if config.get("input_dim") is not None:
        if "input_length" in config:  # TimeDistributedDense
            return (config.get("input_length"), config["input_dim"])
        return (config["input_dim"],)
    return None


def parse_legacy(config: dict[str, Any], shown: str) -> KModel:
    b = _Builder(shown)
    groups: list[list[KLayer]] = []
    if config["name"] == "Sequential":
        last = b.sequential(config.get("layers"), "config", groups)
        outputs = [last] if last else []
    else:
        outputs, order = b.graph(config)
        groups = [order]
    if b.problems:
        raise ConfigError(b.problems)
    model = KModel(
        version=0,
        version_text="0.x (a config with 'name' at the top, as Keras 0.3 wrote it)",
        kind=config["name"],
        name=config["name"].lower(),
        inputs=b.inputs,
        input_paths=b.input_paths,
        layers=b.layers,
        calls=b.calls,
        outputs=outputs,
        weight_groups=groups,
    )
    return model

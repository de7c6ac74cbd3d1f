"""Weights from each version's HDF5 layout onto the neutral layers, in Keras' order.

- Keras 1 and 2 (``save_weights`` and a whole model's ``model_weights``; Keras 3's legacy .h5
  too): root attribute ``layer_names``; one group per layer with ``weight_names``, datasets
  at those names (keras/engine/topology.py ``save_weights_to_hdf5_group``, 1.2.2 / 2.2.4).
- Keras 3 (``.weights.h5`` and an archive's ``model.weights.h5``): ``layers/<name>/vars/<i>``,
  where <name> is the layer's class in snake case, numbered in layer order (``dense``,
  ``dense_1``...); a wrapper's layer sits below it at ``layer/vars``.
- Keras 0.3: ``layer_k/param_n`` per top-level Sequential layer (attributes ``nb_layers``,
  ``nb_params``), or one flat ``graph/param_n`` list for a Graph (keras/models.py, 0.3.3).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from runner.errors import ConfigError, Problem
from runner.interop.keras_import import hdf5
from runner.interop.keras_import.budget import Budget
from runner.interop.keras_import.model import KLayer, KModel, param_count


def assign(model: KModel, root: Any, shown: str, budget: Budget) -> None:
    """Set ``layer.weights`` of every layer with parameters, or raise listing what is off."""
    problems: list[Problem] = []
    if "nb_layers" in root.attrs or "graph" in root:
        arrays = _legacy(model, root, shown, budget)
        for group, values in zip(model.weight_groups or [], arrays):
            _split(group, values, problems, shown)
    elif "layer_names" in root.attrs:
        for layer in _with_params(model):
            values = _named(root, layer.weight_key or layer.name, shown, budget)
            _split([layer], values, problems, shown)
    elif "layers" in root:
        saved = _keras3_names(model, root)
        for layer in _with_params(model):
            values = _keras3(root, saved.get(layer.name), layer, shown, budget)
            _split([layer], values, problems, shown)
    else:
        raise ConfigError.one(
            "(weights)",
            "no Keras weight layout found (expected layer_names, layers/, layer_k or graph)",
            shown,
        )
    if problems:
        raise ConfigError(problems)


def _with_params(model: KModel) -> list[KLayer]:
    return [layer for layer in model.layers.values() if param_count(layer) > 0]


def _split(layers: list[KLayer], values: list[np.ndarray], problems: list, shown: str) -> None:
    """Hand ``values`` out in order, each layer taking as many arrays as it holds."""
    need = sum(param_count(layer) for layer in layers)
    if len(values) != need:
        names = ", ".join(layer.name for layer in layers)
        problems.append(
            Problem(
                layers[0].path if layers else "(weights)",
                f"the weights file holds {len(values)} arrays for {names}; "
                f"the architecture needs {need}",
                shown,
            )
        )
        return
    for layer in layers:
        _give(layer, values[: param_count(layer)])
        values = values[param_count(layer) :]


def _give(layer: KLayer, values: list[np.ndarray]) -> None:
    if layer.children:
        for kids in layer.children.values():
            for child in kids:
                _give(child, values[: param_count(child)])
                values = values[param_count(child) :]
        return
    layer.weights = list(values)


def _named(root: Any, key: str, shown: str, budget: Budget) -> list[np.ndarray]:
    where = f"layer_names: {key}"
    group = hdf5.member(root, key, shown, where)
    if group is None:
        raise ConfigError.one(where, f"no weights group for layer {key!r}", shown)
    names = hdf5.names_attr(group, "weight_names", shown, where) or []
    return [
        hdf5.read_array(hdf5.dataset(group, n, shown, f"{key}/{n}"), budget, shown, f"{key}/{n}")
        for n in names
    ]


def _keras3_names(model: KModel, root: Any) -> dict[str, str]:
    """Layer name -> group under ``layers/``: by position and class, as Keras 3 names them."""
    used: dict[str, int] = {}
    out = {}
    for name, kind in model.saved_order:
        base = _snake(kind)
        n = used.get(base, 0)
        used[base] = n + 1
        out[name] = base if n == 0 else f"{base}_{n}"
    return out


def _keras3(
    root: Any, group_name: str | None, layer: KLayer, shown: str, budget: Budget
) -> list[np.ndarray]:
    path = f"layers/{group_name}"
    group = hdf5.member(root["layers"], group_name or "", shown, path) if group_name else None
    if group is None:
        raise ConfigError.one(path, f"no weights group for layer {layer.name!r}", shown)
    if layer.children:  # a wrapper: its layer's variables
        group = hdf5.member(group, "layer", shown, f"{path}/layer")
        path = f"{path}/layer"
        if group is None:
            raise ConfigError.one(path, f"no weights for the layer {layer.name!r} wraps", shown)
    vars_ = hdf5.member(group, "vars", shown, f"{path}/vars")
    if vars_ is None:
        return []
    saved_name = vars_.attrs.get("name") if "name" in vars_.attrs else None
    if isinstance(saved_name, str) and not layer.children and saved_name != layer.name:
        raise ConfigError.one(
            f"{path}/vars",
            f"holds the weights of {saved_name!r}, expected {layer.name!r}: the weights file "
            "is not from this architecture",
            shown,
        )
    count = len(vars_)
    return [
        hdf5.read_array(
            hdf5.dataset(vars_, str(i), shown, f"{path}/vars/{i}"),
            budget,
            shown,
            f"{path}/vars/{i}",
        )
        for i in range(count)
    ]


def _legacy(model: KModel, root: Any, shown: str, budget: Budget) -> list[list[np.ndarray]]:
    groups = model.weight_groups or []
    if "graph" in root:
        g = hdf5.member(root, "graph", shown, "graph")
        return [_params(g, "graph", shown, budget)]
    count = int(np.asarray(root.attrs["nb_layers"]).item())
    if count != len(groups):
        raise ConfigError.one(
            "nb_layers",
            f"the weights file holds {count} layers, the architecture has {len(groups)}",
            shown,
        )
    out = []
    for k in range(count):
        g = hdf5.member(root, f"layer_{k}", shown, f"layer_{k}")
        if g is None:
            raise ConfigError.one(f"layer_{k}", "missing", shown)
        out.append(_params(g, f"layer_{k}", shown, budget))
    return out


def _params(group: Any, where: str, shown: str, budget: Budget) -> list[np.ndarray]:
    n = int(np.asarray(group.attrs.get("nb_params", 0)).item())
    if not 0 <= n <= 10_000:
        raise ConfigError.one(f"{where}.nb_params", f"{n} parameters is not plausible", shown)
    return [
        hdf5.read_array(
            hdf5.dataset(group, f"param_{i}", shown, f"{where}/param_{i}"),
            budget,
            shown,
            f"{where}/param_{i}",
        )
        for i in range(n)
    ]


def _snake(name: str) -> str:
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()

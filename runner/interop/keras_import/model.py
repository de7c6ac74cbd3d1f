"""The neutral description of a Keras model, whatever version or file wrote it.

A ``KLayer`` is one Keras layer object (its parameters, where it sits in the source, its
weights once read); a ``KCall`` is one application of a layer to tensors (a shared layer has
several); a ``Ref`` names a tensor as Keras does: (layer, call index, output index).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runner.errors import Problem


@dataclass(frozen=True)
class Ref:
    layer: str
    call: int = 0
    tensor: int = 0


@dataclass
class KLayer:
    name: str  # unique in the model (Keras' own name where it has one)
    kind: str  # the Keras class name, e.g. "Dense", "TimeDistributed", "Merge"
    config: dict[str, Any]  # the layer's own parameters as saved
    path: str  # where it sits in the source, e.g. "config.layers[3]"
    children: dict[str, list[KLayer]] = field(default_factory=dict)  # wrapped layers
    weights: list[np.ndarray] | None = None  # in Keras' order (kernel, bias), once read
    weight_key: str | None = None  # the name its weights are stored under (HDF5 layouts)
    module: str | None = None  # Keras 3: the module its class comes from


@dataclass
class KCall:
    layer: KLayer
    index: int  # the k-th call of this layer
    inputs: list[Ref]
    masks: list[Ref] = field(default_factory=list)  # Keras 3: mask tensors passed explicitly
    constants: list[Any] = field(default_factory=list)  # Keras 3 ops: non-tensor arguments


@dataclass
class KModel:
    version: int  # major version of the Keras that wrote it: 0 (0.x), 1, 2 or 3
    version_text: str  # as the file says it, or how it was recognised
    kind: str  # Sequential, Functional (Model), Graph
    name: str
    inputs: dict[str, tuple[int | None, ...] | None]  # per-sample shapes (batch excluded)
    input_paths: dict[str, str]
    layers: dict[str, KLayer]
    calls: list[KCall]
    outputs: list[Ref]
    # Keras 0.x stores weights by position, not name: one group per top-level Sequential layer
    # (``layer_k``) or one flat list (``graph``); each group lists its layers in weight order.
    weight_groups: list[list[KLayer]] | None = None
    # Keras 3 names weight groups by class and position: (name, class) of every saved layer.
    saved_order: list[tuple[str, str]] = field(default_factory=list)


def param_count(layer: KLayer) -> int:
    """How many arrays a layer's weights hold (legacy flat layouts are split by this)."""
    if layer.children:
        return sum(param_count(c) for kids in layer.children.values() for c in kids)
    if layer.kind in ("Dense", "TimeDistributedDense"):
        return 2 if has_bias(layer) else 1
    return 0


def has_bias(layer: KLayer) -> bool:
    c = layer.config
    return bool(c.get("use_bias", c.get("bias", True)))


class GraphReader:
    """What every reader of a Keras architecture collects as it walks the file: layers by
    name, their calls in order, the model inputs (shape and where each was declared), and
    every problem found, each naming its path in ``shown`` (the file as the user gave it)."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.layers: dict[str, KLayer] = {}
        self.calls: list[KCall] = []
        self.inputs: dict[str, tuple[int | None, ...] | None] = {}
        self.input_paths: dict[str, str] = {}
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, self.shown))

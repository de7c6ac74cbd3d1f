"""The planned graph: input nodes, layer nodes and the plan that holds them (data only).

Their own module, so what the plan step calls (weights, sources) can name them without
importing the plan step back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from layers.base import Layer


@dataclass
class InputNode:
    name: str
    path: str
    shape: tuple[int, ...]
    rows: int
    array: np.ndarray | None  # loaded (or memory-mapped) data; None for random inputs
    spec: Any


@dataclass
class Node:
    name: str
    path: str
    layer: Layer
    inputs: list[str]
    shape: tuple[int, ...]
    masked: bool
    param_shapes: dict[str, tuple[int, ...]]
    given: dict[str, np.ndarray] = field(default_factory=dict)  # weights from config or file
    given_at: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # (path, file)
    # A layer with several outputs (Siamese merge_mode none) has ``heads`` of them, each of
    # per-sample ``shape``, read by later layers as "<name>.0", "<name>.1", ...
    heads: int = 0
    head_masks: list[bool] = field(default_factory=list)
    # Per-sample values the layer holds while it runs besides its output: the outputs of
    # the layers inside a composite, a Lambda's intermediate results (counted for memory).
    inner: int = 0

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.param_shapes.values())


@dataclass
class Plan:
    spec: BaseModel
    cwd: Path
    inputs: dict[str, InputNode]
    nodes: dict[str, Node]
    outputs: list[str]
    rows: int
    memory_bytes: int
    warnings: list[str] = field(default_factory=list)
    fit: Any = None  # the fit part (runner.train.plan.FitPlan) when the task needs it

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.spec.floatx)

    def shape_of(self, name: str) -> tuple[int, ...]:
        if name in self.inputs:
            return self.inputs[name].shape
        node = self.nodes.get(name)
        return node.shape if node is not None else self.nodes[head_base(name)].shape


def head_base(ref: str) -> str:
    """'siam.1' -> 'siam' (one output of a multi-output layer); other names unchanged."""
    base, dot, index = ref.rpartition(".")
    return base if dot and index.isdigit() else ref

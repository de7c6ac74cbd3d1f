"""The planned graph: input nodes, layer nodes and the plan that holds them (data only).

Their own module, so what the plan step calls (weights, sources) can name them without
importing the plan step back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from layers.base import Layer
from runner.graph.refs import Ref


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
    inputs: list[Ref]  # what it reads, parsed from the config once (runner.graph.refs)
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
    # Per-sample shape and mask of each input, in the order of ``inputs`` (set by the plan).
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    input_masks: list[bool] = field(default_factory=list)
    # The plan's choice (runner.graph.fusion): in predict, hand readers a deferred value of
    # this kind ("steps", "concat") instead of the output; None: the output itself.
    deferred: str | None = None

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.param_shapes.values())

    @property
    def in_shape(self) -> tuple[int, ...] | list[tuple[int, ...]]:
        """The input shape as the layer takes it: a list for a multi-input layer."""
        return list(self.input_shapes) if self.layer.multi_input else self.input_shapes[0]

    @property
    def outputs(self) -> list[Ref]:
        """Its outputs: ``name``, or ``name.0``, ``name.1``, ... for a multi-output layer."""
        return [Ref(self.name, i) for i in range(self.heads)] if self.heads else [Ref(self.name)]


@dataclass
class Plan:
    spec: BaseModel
    cwd: Path
    inputs: dict[str, InputNode]
    nodes: dict[str, Node]
    outputs: list[Ref]
    rows: int
    memory_bytes: int
    warnings: list[str] = field(default_factory=list)
    fit: Any = None  # the fit part (runner.train.plan.FitPlan) when the task needs it
    evaluate: Any = None  # the evaluate part (runner.evaluate.plan.EvaluatePlan), likewise
    shard: Any = None  # what shard=I picked (runner.data.shards.ShardChoice)
    expect: dict[Ref, Any] = field(default_factory=dict)  # model.expect, keys parsed
    # runner.graph.fusion.deferring's answers for callers that keep more than the outputs
    deferred_for: dict[frozenset, dict[str, str]] = field(default_factory=dict, repr=False)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.spec.floatx)

    @cached_property
    def refs(self) -> dict[str, Ref]:
        """Every value of the graph by its name: inputs, layer outputs, heads."""
        out = {name: Ref(name) for name in self.inputs}
        for node in self.nodes.values():
            out.update((ref, ref) for ref in node.outputs)
        return out

    def shape_of(self, ref: str) -> tuple[int, ...]:
        """Per-sample shape of a value (an input, a layer's output or one of its heads)."""
        ref = self.refs.get(ref) or Ref(ref)
        if ref.head is None and ref.node in self.inputs:
            return self.inputs[ref.node].shape
        return self.nodes[ref.node].shape

"""Plan before compute: wiring, shapes, masks, parameters and memory, from the config alone.

Every problem is reported with the config path of the layer at fault (and of the layer that
fed it); independent problems are all collected before failing. No layer array is allocated.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from layers import registry
from layers.base import FileRef, PlanError
from runner.config.schema import RandomSource
from runner.data import sources
from runner.data.mapped import is_streamed
from runner.errors import ConfigError, Problem
from runner.graph.fusion import plan_deferred
from runner.graph.nodes import InputNode, Node, Plan
from runner.graph.refs import Ref, parse_ref
from runner.graph.weights import check_finite_weights, check_layer_weights, load_weight_files

__all__ = ["InputNode", "Node", "Plan", "Ref", "check_memory", "make_plan", "estimate_memory"]


def make_plan(spec: BaseModel, cwd: Path | None = None) -> Plan:
    cwd = Path.cwd() if cwd is None else cwd
    problems: list[Problem] = []
    model = spec.model
    limit = spec.max_memory_mb * 2**20  # bytes: every file is checked against it before reading
    inputs = _plan_inputs(model, cwd, problems, limit)
    nodes: dict[str, Node] = {}
    # per-sample shape and mask of every value planned so far (None: it has a problem)
    known: dict[Ref, tuple[tuple[int, ...], bool] | None] = {
        Ref(n): ((i.shape, False) if i is not None else None) for n, i in inputs.items()
    }
    order = list(model.layers)
    positions = {name: i for i, name in enumerate(order)}  # wiring checks in O(1) per ref
    previous: str | None = None
    for name, layer_spec in model.layers.items():
        path = f"model.layers.{name}"
        if name in model.inputs:
            problems.append(Problem(path, f"name {name!r} is already a model input; rename one"))
        wired = _wiring(name, layer_spec, previous, model, order, path, problems, positions)
        previous = name
        node = _plan_layer(name, path, layer_spec, wired, known, nodes, problems, cwd, limit)
        known[Ref(name)] = (node.shape, node.masked) if node else None
        if node:
            nodes[name] = node
            for ref, head_mask in zip(node.outputs if node.heads else [], node.head_masks):
                known[ref] = (node.shape, head_mask)
    outputs = _plan_outputs(model, order, nodes, inputs, problems)
    expect = _plan_expect(model, order, nodes, inputs, problems)
    warnings = _check_unused_inputs(model, inputs, problems)
    _check_finite_inputs(inputs, np.dtype(spec.floatx), problems)
    rows = max((i.rows for i in inputs.values() if i is not None), default=0)
    counts = {n: i.rows for n, i in inputs.items() if i is not None}
    if len(set(counts.values())) > 1:
        problems.append(
            Problem(
                "model.inputs",
                "every input needs the same number of rows "
                f"(samples, the first axis); found {counts}",
            )
        )
    if problems:
        load_weight_files(spec, cwd, nodes, problems, limit)  # report their problems too
        check_finite_weights(nodes, np.dtype(spec.floatx), problems)
        raise ConfigError(problems)
    plan = Plan(spec, cwd, inputs, nodes, outputs, rows, 0, warnings)  # type: ignore[arg-type]
    plan.expect = expect
    plan_deferred(plan)
    plan.memory_bytes = estimate_memory(plan)
    if spec.task != "fit":  # before the weight files are read; fit: its own batch (train/plan)
        check_memory(plan)
    load_weight_files(spec, cwd, nodes, problems, limit)
    check_finite_weights(nodes, np.dtype(spec.floatx), problems)
    if problems:
        raise ConfigError(problems)
    return plan


def _plan_inputs(
    model, cwd: Path, problems: list[Problem], limit: float | None = None
) -> dict[str, InputNode | None]:
    out: dict[str, InputNode | None] = {}
    for name, ispec in model.inputs.items():
        path = f"model.inputs.{name}"
        try:
            out[name] = _plan_input(name, path, ispec, cwd, limit)
        except ConfigError as exc:
            problems.extend(exc.problems)
            out[name] = None
    return out


def _check_finite_inputs(
    inputs: dict[str, InputNode | None], dtype: np.dtype, problems: list[Problem]
) -> None:
    """Data already in memory must be finite in floatx; memory-mapped files are checked batch by
    batch while they stream (runner.graph.execute)."""
    for node in inputs.values():
        if node is None or node.array is None or is_streamed(node.array):
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            finite = np.isfinite(np.asarray(node.array, dtype=dtype))
        if not finite.all():
            where = tuple(int(i) for i in np.argwhere(~finite)[0])
            problems.append(
                Problem(
                    f"{node.path}.data",
                    f"contains NaN or Inf values in {dtype} "
                    f"(the first at index {where}; the largest finite {dtype} "
                    f"is {np.finfo(dtype).max:.3g}): clean or scale the data",
                    getattr(node.spec.data, "path", None),
                )
            )


def _plan_input(
    name: str, path: str, ispec: Any, cwd: Path, limit: float | None = None
) -> InputNode:
    data = ispec.data
    if isinstance(data, RandomSource):
        return InputNode(name, path, tuple(ispec.shape), data.random.rows, None, ispec)
    # a .npy input streams batch by batch; the estimate counts what a batch (or fit) holds
    array = sources.load_source(data, f"{path}.data", cwd, max_bytes=limit, streamed=True)
    file = data.path if isinstance(data, FileRef) else None
    if array.dtype.kind not in "biuf":
        raise ConfigError.one(f"{path}.data", f"expected numbers, found dtype {array.dtype}", file)
    if array.size == 0:
        raise ConfigError.one(
            f"{path}.data",
            f"the data is empty (shape {array.shape}): expected at least one row",
            file,
        )
    if array.ndim < 2 and ispec.shape is None:
        raise ConfigError.one(
            f"{path}.data",
            f"expected rows of samples (at least 2D, batch "
            f"first), found shape {array.shape}; set 'shape' or nest the rows",
            file,
        )
    shape = tuple(array.shape[1:])
    if ispec.shape is not None:
        declared = tuple(ispec.shape)
        if math.prod(declared) * array.shape[0] != array.size and shape != declared:
            raise ConfigError.one(
                f"{path}.shape",
                f"declared per-sample shape {declared}, but "
                f"the data has shape {array.shape} (batch first)",
                file,
            )
        if shape != declared:
            array = array.reshape((array.shape[0], *declared))
        shape = declared
    return InputNode(name, path, shape, array.shape[0], array, ispec)


def _wiring(
    name,
    layer_spec,
    previous,
    model,
    order,
    path,
    problems,
    positions: dict[str, int] | None = None,
) -> list[Ref] | None:
    if layer_spec.inputs is None:
        if previous is not None:
            return [Ref(previous)]
        if len(model.inputs) == 1:
            return [Ref(next(iter(model.inputs)))]
        problems.append(
            Problem(
                f"{path}.inputs",
                "the model has several inputs "
                f"{list(model.inputs)}: say which this layer reads, e.g. inputs: "
                f"[{next(iter(model.inputs))}]",
            )
        )
        return None
    ok = True
    positions = positions if positions is not None else {n: i for i, n in enumerate(order)}
    position = positions[name]
    refs = [parse_ref(text) for text in layer_spec.inputs]
    for ref in refs:
        earlier = positions.get(ref.node, position) < position  # a layer above, or one head
        if earlier or (ref.head is None and ref.node in model.inputs):
            continue  # "<layer>.<i>" (one output of a multi-output layer) is checked later
        ok = False
        if ref == name:
            msg = "a layer cannot read its own output"
        elif ref in order:
            msg = (
                f"{ref!r} is defined after this layer; layers may only read inputs and "
                "earlier layers (move it up)"
            )
        else:
            candidates = list(model.inputs) + order[:position]
            msg = (
                f"unknown name {ref!r}{registry.did_you_mean(ref, candidates)}; known: {candidates}"
            )
        problems.append(Problem(f"{path}.inputs", msg))
    return refs if ok else None


def _plan_layer(
    name,
    path,
    layer_spec,
    wired,
    known,
    nodes,
    problems,
    cwd: Path | None = None,
    limit: float | None = None,
) -> Node | None:
    layer = registry.layer_class(layer_spec.type)(layer_spec, name)
    if wired is None:
        return None
    message = layer.arity_error(len(wired))
    if message:
        problems.append(Problem(f"{path}.inputs", f"{message} (reads {wired})"))
        return None
    if not _heads_ok(wired, known, nodes, path, problems):
        return None
    if any(known.get(ref) is None for ref in wired):
        return None  # an upstream problem was already reported
    shapes = [known[ref][0] for ref in wired]
    masks = [known[ref][1] for ref in wired]  # kept on the node: no later step looks them up
    if not layer.multi_input and len(wired) != 1:
        problems.append(
            Problem(
                f"{path}.inputs",
                f"{layer_spec.type} takes exactly one input, "
                f"got {len(wired)}: {wired}; merge them first with a Merge layer",
            )
        )
        return None
    in_shape = shapes if layer.multi_input else shapes[0]
    in_mask = masks if layer.multi_input else masks[0]
    try:
        shape = tuple(layer.output_shape(in_shape))
        masked = layer.output_mask(in_shape, in_mask)
        param_shapes = layer.param_shapes(in_shape)
        inner = layer.inner_elements(in_shape)
    except PlanError as exc:
        problems.append(Problem(path, f"{exc} {_fed_by(wired, known, nodes, masks)}".strip()))
        return None
    heads = layer.heads
    head_masks = list(masked) if heads else []
    node = Node(
        name,
        path,
        layer,
        wired,
        shape,
        any(head_masks) if heads else bool(masked),
        param_shapes,
        heads=heads,
        head_masks=head_masks,
        inner=inner,
        input_shapes=shapes,
        input_masks=masks,
    )
    check_layer_weights(node, problems, Path.cwd() if cwd is None else cwd, max_bytes=limit)
    return node


def _heads_ok(wired, known, nodes, path, problems) -> bool:
    """A multi-output layer is read one output at a time: '<name>.<i>'."""
    ok = True
    for ref in wired:
        node = nodes.get(ref.node)
        if node is None or ref in known and (ref.head is not None or not node.heads):
            continue
        heads = node.outputs
        if ref.head is None:
            msg = (
                f"{ref!r} has {node.heads} outputs ({node.layer.spec.type} with merge_mode "
                f"none): read one of {heads}"
            )
        elif node.heads:
            msg = f"{node.name!r} has no output {ref!r}; its outputs are {heads}"
        else:
            msg = f"{node.name!r} has a single output: read it as {node.name!r}, not {ref!r}"
        problems.append(Problem(f"{path}.inputs", msg))
        ok = False
    return ok


def _fed_by(wired, known, nodes, masks) -> str:
    parts = []
    for ref, masked in zip(wired, masks):
        origin = nodes.get(ref.node)
        kind = origin.layer.spec.type if origin else "input"
        where = origin.path if origin else f"model.inputs.{ref}"
        mask_note = ", masked" if masked else ""
        parts.append(f"{where} ({kind}, per-sample shape {known[ref][0]}{mask_note})")
    text = f"(fed by {', '.join(parts)})"
    if any(masks):
        text += (
            "; to use a mask, insert a TimeDistributedMerge before this layer, or remove "
            "the Masking layer"
        )
    return text


def _plan_outputs(model, order, nodes, inputs, problems) -> list[Ref]:
    outputs = model.outputs if model.outputs is not None else [order[-1]]
    expanded: list[Ref] = []
    for ref in map(parse_ref, outputs):  # a multi-output layer stands for all its outputs
        node = nodes.get(ref.node) if ref.head is None else None
        expanded += node.outputs if node else [ref]
    heads = _heads(nodes)
    for ref in expanded:
        if ref not in nodes and ref not in order and ref not in inputs and ref not in heads:
            problems.append(
                Problem(
                    "model.outputs",
                    f"unknown name {ref!r}{registry.did_you_mean(ref, order)}; known: {order}",
                )
            )
    return expanded


def _heads(nodes) -> list[Ref]:
    return [ref for n in nodes.values() if n.heads for ref in n.outputs]


def _plan_expect(model, order, nodes, inputs, problems) -> dict[Ref, Any]:
    """``model.expect`` keyed by the values it checks."""
    heads = _heads(nodes)
    expect = {parse_ref(text): spec for text, spec in model.expect.items()}
    for ref in expect:
        node = nodes.get(ref.node) if ref.head is None else None
        if node is not None and node.heads:
            problems.append(
                Problem(
                    f"model.expect.{ref}",
                    f"{ref!r} has {node.heads} outputs: expect each of {node.outputs}",
                )
            )
        elif (
            ref not in order
            and ref not in inputs
            and ref not in heads
            and (ref.node not in order or ref.node in nodes)
        ):
            problems.append(
                Problem(
                    f"model.expect.{ref}",
                    f"unknown name {ref!r}"
                    f"{registry.did_you_mean(ref, order + heads)}; known: "
                    f"{order + heads}",
                )
            )
    return expect


def _check_unused_inputs(model, inputs, problems) -> list[str]:
    warnings: list[str] = []
    read: set[str] = set()
    previous = None
    for name, spec in model.layers.items():
        read |= (
            set(spec.inputs)
            if spec.inputs is not None
            else {previous}
            if previous
            else set(list(model.inputs)[:1])
        )
        previous = name
    for name in model.inputs:
        if name not in read and name not in (model.outputs or []):
            import logging

            warnings.append(f"model.inputs.{name}: no layer reads this input (it is ignored)")
            logging.getLogger(__name__).warning("%s", warnings[-1])
    return warnings


def check_memory(plan: Plan, batch: int | None = None, streams: int = 0) -> None:
    """Estimate the memory of ``plan`` with batches of ``batch`` rows (default: the run's
    batch_size, else every row) plus ``streams`` bytes of read buffers, into
    ``plan.memory_bytes``; a ConfigError at max_memory_mb when it is above the limit."""
    limit = plan.spec.max_memory_mb * 2**20
    plan.memory_bytes = estimate_memory(plan, batch) + streams
    if plan.memory_bytes > limit:
        reads = f"; {_mb(streams)} MB of it reads memory-mapped files" if streams else ""
        raise ConfigError.one(
            "max_memory_mb",
            f"this model needs about {_mb(plan.memory_bytes)} MB (parameters, activations of "
            f"one batch, random inputs{reads}), above the limit of {_mb(limit)} MB"
            f"{_largest(plan, batch)}: make layers smaller, set batch_size, or raise "
            "max_memory_mb",
        )


def _batch_rows(plan: Plan, batch: int | None) -> int:
    return min(batch, max(plan.rows, 1)) if batch else plan.spec.batch_size or max(plan.rows, 1)


def _largest(plan: Plan, batch: int | None = None) -> str:
    """Where most of the estimated memory goes, for the max_memory_mb message."""
    itemsize = plan.dtype.itemsize
    batch = _batch_rows(plan, batch)
    copies = _param_copies(plan)
    sizes = {
        n.path: (
            (copies * n.n_params + batch * _activations(n)) * itemsize,
            f"{n.layer.spec.type}, output {n.shape}, {n.n_params:,} parameters"
            + (f", {n.inner:,} values per sample inside it" if n.inner else ""),
        )
        for n in plan.nodes.values()
    }
    for i in plan.inputs.values():
        if i.array is None:
            sizes[i.path] = (
                i.rows * math.prod(i.shape) * (8 + itemsize),
                f"random input of {i.rows:,} rows of {i.shape}, drawn whole",
            )
    if not sizes:
        return ""
    path, (size, what) = max(sizes.items(), key=lambda kv: kv[1][0])
    return f"; the largest is {path} ({what}, about {_mb(size)} MB)"


def _mb(n_bytes: float) -> str:
    mb = n_bytes / 2**20
    return f"{mb:,.0f}" if mb >= 10 else f"{mb:.3g}"


def _activations(node: Node) -> int:
    """Per-sample values of one layer: its output(s) and what it holds inside."""
    return math.prod(node.shape) * max(node.heads, 1) + node.inner


def _param_copies(plan: Plan) -> int:
    """Arrays per parameter: its values; training adds its gradient and up to two optimizer
    slots (adam's moments)."""
    return 4 if plan.spec.task == "fit" else 1


def estimate_memory(plan: Plan, batch: int | None = None) -> int:
    """Bytes for parameters plus every activation of one batch (a safe upper bound): the
    outputs of every layer, of the layers nested inside composites, and a Lambda's
    intermediate results (broadcasting included). Training counts each parameter four times
    (values, gradient, optimizer slots) and holds every row of inputs held in memory; a
    memory-mapped input streams (runner.train.data sizes its reads)."""
    itemsize = plan.dtype.itemsize
    batch = _batch_rows(plan, batch)
    params = _param_copies(plan) * sum(n.n_params for n in plan.nodes.values())
    per_sample = sum(_activations(n) for n in plan.nodes.values())
    per_sample += sum(math.prod(i.shape) for i in plan.inputs.values())
    # random inputs are drawn whole (in float64, then cast), whatever the batch size
    drawn = sum(
        i.rows * math.prod(i.shape) * (8 + itemsize)
        for i in plan.inputs.values()
        if i.array is None
    )
    if plan.spec.task == "fit":  # training holds the rows of in-memory inputs (files stream)
        drawn += sum(
            i.rows * math.prod(i.shape) * itemsize
            for i in plan.inputs.values()
            if i.array is not None and not is_streamed(i.array)
        )
    return (params + batch * per_sample) * itemsize + drawn

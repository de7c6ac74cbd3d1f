"""Graph backward: replay the caches of one forward pass in reverse.

``runner.graph.execute.forward`` with ``Context(keep_cache=True)`` leaves one cache per layer.
Walking the layers from last to first, each layer turns the gradient of its output into
gradients of its inputs and of its own parameters. Where a value feeds several layers (or
one layer twice), the gradients reaching it add up (``+``, never assignment), as in
micrograd; layers that reach no output get no gradient. Nothing here changes a parameter:
only ``runner.train.optim`` does. Layers' backward is the chain rule alone: the training
step adds the weight penalties' gradient once, with ``with_weight_penalty_grads``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from layers.base import Context
from runner.graph.plan import Plan, Ref


def backward(
    plan: Plan,
    caches: dict[str, Any],
    output_grads: dict[str, np.ndarray],
    ctx: Context,
    input_grads: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Gradients of the loss whose output gradients are ``output_grads``.

    Returns (parameter gradients keyed ``layer/param``, gradients of the model inputs; the
    latter only when ``input_grads`` is true, else empty).
    """
    pending: dict[str, np.ndarray] = {}
    for name, dy in output_grads.items():
        _accumulate(pending, plan.refs[name], dy, plan)
    grads: dict[str, np.ndarray] = {}
    for node in reversed(list(plan.nodes.values())):
        dy = pending.pop(node.name, None)
        if dy is None:
            continue  # reaches no output
        layer = node.layer
        # A layer reading only model inputs may skip its input gradient (Dense saves a GEMM).
        need = input_grads or any(ref not in plan.inputs for ref in node.inputs)
        dx, layer_grads = layer.backward(dy, caches[node.name], replace(ctx, need_input_grad=need))
        for pname, g in layer_grads.items():
            grads[f"{node.name}/{pname}"] = g
        if dx is None:
            continue
        for ref, d in zip(node.inputs, dx if layer.multi_input else [dx]):
            if d is not None and (input_grads or ref not in plan.inputs):
                _accumulate(pending, ref, d, plan)
    inputs = {name: pending[name] for name in plan.inputs if name in pending}
    return grads, inputs


def with_weight_penalty_grads(plan: Plan, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``grads`` plus each layer's ``weight_penalty_grads()``, added once per parameter
    (however often the layer ran), for the parameters ``backward`` reached."""
    out = dict(grads)
    for node in plan.nodes.values():
        for pname, g in node.layer.weight_penalty_grads().items():
            key = f"{node.name}/{pname}"
            if key in out:
                out[key] = out[key] + g
    return out


def _accumulate(pending: dict[str, Any], ref: Ref, d: Any, plan: Plan) -> None:
    """Add ``d`` to the gradient of ``ref``; a head 'siam.1' of a multi-output layer goes to
    slot 1 of that layer's list of per-head gradients (None = head not read)."""
    node = plan.nodes.get(ref.node)
    if node is not None and node.heads and ref.head is not None:
        heads = list(pending.get(ref.node) or [None] * node.heads)
        heads[ref.head] = _sum(heads[ref.head], d)
        pending[ref.node] = heads
    else:
        pending[ref] = _sum(pending.get(ref), d)


def _sum(a: Any, b: Any) -> Any:
    """a + b as a new array (never in place: a layer may hand back the array it was given);
    lists (a layer with several heads) add up head by head, None meaning no gradient."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, list):
        return [_sum(x, y) for x, y in zip(a, b)]
    return a + b

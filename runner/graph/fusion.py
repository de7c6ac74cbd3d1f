"""Decisions the plan takes for speed, recorded on the nodes (never changing what a caller reads).

A layer's output is *deferred* (``Node.deferred``, the kind of ``layers.deferred`` value it
hands on) when every reader can take that kind: the reader reads it (``reads_deferred``), or
defers the same kind itself. Two kinds exist:

Deferred steps (``"steps"``). A layer's output is deferred when every reader only
reads its kept (unmasked) timesteps: a TimeDistributedMerge (which reduces over the kept steps),
or another deferred layer. Its values at masked steps are then left unspecified, and a
per-step layer (TimeDistributedDense) does not even compute its output: it hands its reader a
``layers.steps.DeferredSteps``, which the reader runs block by block over the samples, so
masked steps never go through the GEMM and the ``(batch, steps, features)`` output is never
written to memory. Masking skips zeroing the masked steps (no reader looks at them).

Deferred concat (``"concat"``). A Siamese layer that concatenates its heads along the last
axis hands a Dense reader the heads themselves: the Dense multiplies each by its own rows of
W and adds (``concat(a, b) @ W = a @ W[:n] + b @ W[n:]``), and the concatenation is never
copied.

Values a caller reads (model outputs, ``expect`` entries, any name ``keep`` asks for) are never
deferred, and training passes (``keep_cache``) compute everything as before.
"""

from __future__ import annotations

from collections.abc import Iterable

from runner.graph.nodes import Node, Plan


def deferred_nodes(nodes: dict[str, Node], visible: Iterable[str]) -> dict[str, str]:
    """The nodes that may defer their output, with its kind, when the values ``visible`` are
    read from outside. Readers come after their producers, so deciding from the last node
    back knows each reader's own decision."""
    seen = set(visible)
    readers: dict[str, list[Node]] = {}
    for node in nodes.values():
        for ref in node.inputs:
            readers.setdefault(ref, []).append(node)
    deferred: dict[str, str] = {}
    for node in reversed(list(nodes.values())):
        users = readers.get(node.name, [])
        if not users or node.heads or node.name in seen:
            continue
        kind = node.layer.defers(node.in_shape)
        if kind and all(
            not u.layer.multi_input
            and (deferred.get(u.name) == kind or u.layer.reads_deferred(kind))
            for u in users
        ):
            deferred[node.name] = kind
    return deferred


def plan_deferred(plan: Plan) -> None:
    """Record the decision for the plan's own outputs and expectations on its nodes."""
    chosen = deferred_nodes(plan.nodes, [*plan.outputs, *plan.expect])
    for node in plan.nodes.values():
        node.deferred = chosen.get(node.name)


def deferring(plan: Plan, keep: Iterable[str]) -> dict[str, str]:
    """The nodes that defer (and the kind) in a predict pass that keeps ``keep``: the plan's
    decision, or (when ``keep`` asks for more than the outputs and expectations) the same
    rule again."""
    extra = frozenset(keep) - set(plan.outputs) - set(plan.expect)
    if not extra:
        return {n.name: n.deferred for n in plan.nodes.values() if n.deferred}
    cached = plan.deferred_for.get(extra)
    if cached is None:
        cached = plan.deferred_for[extra] = deferred_nodes(
            plan.nodes, [*plan.outputs, *plan.expect, *extra]
        )
    return cached

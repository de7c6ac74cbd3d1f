"""Decisions the plan takes for speed, recorded on the nodes (never changing what a caller reads).

Deferred steps (``Node.defer_steps``). A layer's output is *deferred* when every reader only
reads its kept (unmasked) timesteps: a TimeDistributedMerge (which reduces over the kept steps),
or another deferred layer. Its values at masked steps are then left unspecified, and a
per-step layer (TimeDistributedDense) does not even compute its output: it hands its reader a
``layers.steps.DeferredSteps``, which the reader runs block by block over the samples, so
masked steps never go through the GEMM and the ``(batch, steps, features)`` output is never
written to memory. Masking skips zeroing the masked steps (no reader looks at them).

Values a caller reads (model outputs, ``expect`` entries, any name ``keep`` asks for) are never
deferred, and training passes (``keep_cache``) compute everything as before.
"""

from __future__ import annotations

from collections.abc import Iterable

from runner.graph.nodes import Node, Plan


def deferred_nodes(nodes: dict[str, Node], visible: Iterable[str]) -> frozenset[str]:
    """The nodes that may defer their output when the values ``visible`` are read from
    outside. Readers come after their producers, so deciding from the last node back knows
    each reader's own decision."""
    seen = set(visible)
    readers: dict[str, list[Node]] = {}
    for node in nodes.values():
        for ref in node.inputs:
            readers.setdefault(ref, []).append(node)
    deferred: set[str] = set()
    for node in reversed(list(nodes.values())):
        users = readers.get(node.name, [])
        if (
            users
            and not node.heads
            and node.name not in seen
            and node.layer.defers_steps()
            and all(
                not u.layer.multi_input and (u.name in deferred or u.layer.reads_deferred_steps())
                for u in users
            )
        ):
            deferred.add(node.name)
    return frozenset(deferred)


def plan_deferred_steps(plan: Plan) -> None:
    """Record the decision for the plan's own outputs and expectations on its nodes."""
    chosen = deferred_nodes(plan.nodes, [*plan.outputs, *plan.expect])
    for node in plan.nodes.values():
        node.defer_steps = node.name in chosen


def deferring(plan: Plan, keep: Iterable[str]) -> frozenset[str]:
    """The nodes that defer in a predict pass that keeps ``keep``: the plan's decision, or
    (when ``keep`` asks for more than the outputs and expectations) the same rule again."""
    extra = frozenset(keep) - set(plan.outputs) - set(plan.expect)
    if not extra:
        return frozenset(n.name for n in plan.nodes.values() if n.defer_steps)
    cached = plan.deferred_for.get(extra)
    if cached is None:
        cached = plan.deferred_for[extra] = deferred_nodes(
            plan.nodes, [*plan.outputs, *plan.expect, *extra]
        )
    return cached

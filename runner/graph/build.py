"""Build: give every layer its parameters (config/file weights, else its seeded initializer)."""

from __future__ import annotations

import logging

import numpy as np

from runner.graph.plan import Plan
from runner.streams import init_rng

log = logging.getLogger(__name__)


def build(plan: Plan) -> Plan:
    """Draw or set every parameter, in config order, W before b; returns the same plan."""
    rng = init_rng(plan.spec.seed)
    dtype = plan.dtype
    for node in plan.nodes.values():
        node.layer.init_params(node.in_shape, rng, dtype)
        params = node.layer.named_params()
        for pname, array in node.given.items():
            params[pname][...] = array  # cast into the layer's own float array
        log.debug(
            "built %s (%s) -> %s, %d params",
            node.path,
            node.layer.spec.type,
            node.shape,
            node.n_params,
        )
    return plan


def named_weights(plan: Plan) -> dict[str, np.ndarray]:
    """Every parameter keyed 'layer/param' (composites: 'layer/child/.../param')."""
    out: dict[str, np.ndarray] = {}
    for node in plan.nodes.values():
        for pname, array in node.layer.named_params().items():
            out[f"{node.name}/{pname}"] = array
    return out

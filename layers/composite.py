"""Helpers shared by the layers that hold other layers (AutoEncoder, Siamese).

A composite exposes ``children()``: ``(key prefix, child layer, config sub-path)`` triples.
Its parameters are its children's, keyed ``<prefix><param>`` (``encoder/enc/W``), and are the
children's own arrays (never copies), so loading a weights file into the composite loads the
children.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from layers import registry
from layers.base import Layer, PlanError, SpecBase


def child_layer(spec: SpecBase, name: str) -> Layer:
    return registry.layer_class(spec.type)(spec, name)


def check_children(owner: str, children: dict[str, SpecBase]) -> dict[str, SpecBase]:
    """Config-time checks of inner specs: unwired, single-input layers only."""
    for key, spec in children.items():
        if spec.inputs is not None:
            raise ValueError(f"inner layer {key!r} sets 'inputs', but layers inside {owner} are "
                             "wired by it (each reads the previous one): remove 'inputs'")
        if registry.layer_class(spec.type).multi_input:
            raise ValueError(f"inner layer {key!r} is a {spec.type}, which takes several inputs; "
                             f"layers inside {owner} read exactly one")
    return children


def in_child(where: str, layer: Layer, call: Any, *args: Any) -> Any:
    """Run a child's plan function, naming the child in any PlanError."""
    try:
        return call(*args)
    except PlanError as exc:
        raise PlanError(f"in {where} ({layer.spec.type}): {exc}") from None


def child_rows(key: str, child: Layer, reads: str, in_shape: Any, out_shape: Any
               ) -> list[tuple[str, str, str, tuple, int]]:
    """Summary rows of one child (and of its own children, if it is a composite)."""
    n_params = sum(int(np.prod(s)) for s in child.param_shapes(in_shape).values())
    rows = [(key, child.spec.type, reads, tuple(out_shape), n_params)]
    inner = getattr(child, "summary_rows", None)
    if inner is not None:
        rows += [(f"{key}/{k}", t, r, s, n) for k, t, r, s, n in inner(in_shape)]
    return rows


def prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}{k}": v for k, v in values.items()}


def add_grads(total: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
    """Accumulate into ``total`` without touching the children's own gradient arrays."""
    for key, g in grads.items():
        if key in total:
            total[key] = total[key] + g
        else:
            total[key] = g

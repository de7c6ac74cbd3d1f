"""Helpers shared by the layers that hold other layers (AutoEncoder, Siamese).

A composite overrides ``Layer.children()``: ``(key prefix, child layer, config sub-path)`` triples.
Its parameters are its children's, keyed ``<prefix><param>`` (``encoder/enc/W``), and are the
children's own arrays (never copies), so loading a weights file into the composite loads the
children.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from layers import registry
from layers.base import Layer, PlanError, SpecBase

#: Composites (AutoEncoder, Siamese, ...) may hold composites this many levels deep, counting
#: the outermost. Deeper configs are refused at validation, so planning stays small and fast.
MAX_NESTING = 8


def child_layer(spec: SpecBase, name: str) -> Layer:
    return registry.layer_class(spec.type)(spec, name)


def check_children(owner: str, children: dict[str, SpecBase]) -> dict[str, SpecBase]:
    """Config-time checks of inner specs: unwired, single-input layers only, and composites
    nested at most ``MAX_NESTING`` levels deep (counting the one that holds ``children``)."""
    for key, spec in children.items():
        if spec.inputs is not None:
            raise ValueError(
                f"inner layer {key!r} sets 'inputs', but layers inside {owner} are "
                "wired by it (each reads the previous one): remove 'inputs'"
            )
        if registry.layer_class(spec.type).multi_input:
            raise ValueError(
                f"inner layer {key!r} is a {spec.type}, which takes several inputs; "
                f"layers inside {owner} read exactly one"
            )
    depth = 1 + max((nesting_depth(spec) for spec in children.values()), default=0)
    if depth > MAX_NESTING:
        raise ValueError(
            f"composite layers (AutoEncoder, Siamese) are nested {depth} levels deep "
            f"here; the limit is {MAX_NESTING}: flatten the model (list the layers "
            "one after another under model.layers) instead of nesting further"
        )
    return children


def nested_specs(spec: Any) -> list[SpecBase]:
    """The layer specs held directly by a composite spec (none for other layers)."""
    if not getattr(type(spec), "nested_layers", False):
        return []
    out: list[SpecBase] = []
    for name in type(spec).model_fields:
        value = getattr(spec, name)
        if isinstance(value, SpecBase):
            out.append(value)
        elif isinstance(value, dict):
            out += [v for v in value.values() if isinstance(v, SpecBase)]
    return out


def nesting_depth(spec: Any) -> int:
    """Levels of composites in ``spec``: 0 for a plain layer, 1 for a composite of plain
    layers, ... (children deeper than the limit were already refused when they validated)."""
    inner = nested_specs(spec)
    if not getattr(type(spec), "nested_layers", False):
        return 0
    return 1 + max((nesting_depth(s) for s in inner), default=0)


def in_child(where: str, layer: Layer, call: Any, *args: Any) -> Any:
    """Run a child's plan function, naming the child in any PlanError."""
    try:
        return call(*args)
    except PlanError as exc:
        raise PlanError(f"in {where} ({layer.spec.type}): {exc}") from None


def child_rows(
    key: str, child: Layer, reads: str, in_shape: Any, out_shape: Any
) -> list[tuple[str, str, str, tuple, int]]:
    """Summary rows of one child (and of its own children, if it is a composite)."""
    n_params = sum(int(np.prod(s)) for s in child.param_shapes(in_shape).values())
    rows = [(key, child.spec.type, reads, tuple(out_shape), n_params)]
    rows += [(f"{key}/{k}", t, r, s, n) for k, t, r, s, n in child.summary_rows(in_shape)]
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

"""ONNX emitters by layer type: the one place that says how a layer type becomes ONNX ops.

An emitter writes a layer's *inference* pass (test phase) into the graph being built:

    @onnx_emitter("Dense")
    def _dense(g, layer, x, mask, shape):
        ...                     # g.op(...), g.weight(...), g.const(...)
        return y, mask          # tensor names (mask: None when there is none)

``x``, ``mask`` and ``shape`` (per-sample, batch excluded) are lists for multi-input layers;
a multi-output layer (Siamese ``merge_mode: none``) returns lists. A layer type without an
emitter is refused by name when a model is exported.

Why a registry and not a method on the layer class: ``layers/`` stays a plain NumPy library
with no export concern, every ONNX translation sits in this package (one module per family
of layers), and ``tests/test_onnx_export.py`` fails when a registered layer type has none.
This module imports nothing heavy, so a plugin can register its own emitter (see
``examples/custom_masking.py``) without importing onnx.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Emitter = Callable[[Any, Any, Any, Any, Any], tuple[Any, Any]]

_EMITTERS: dict[str, Emitter] = {}


class NotExportable(Exception):
    """This layer (or a part of it) has no ONNX form; the message says what and why.
    ``path`` is the config path at fault (set by the graph when the emitter leaves it out)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def onnx_emitter(layer_type: str) -> Callable[[Emitter], Emitter]:
    """Decorator: ``fn`` writes layers of ``layer_type`` (the spec's ``type`` tag) as ONNX."""

    def register(fn: Emitter) -> Emitter:
        existing = _EMITTERS.get(layer_type)
        if existing is not None and existing is not fn:
            raise ValueError(f"an ONNX emitter for {layer_type!r} is already registered")
        _EMITTERS[layer_type] = fn
        return fn

    return register


def emitter_for(layer_type: str) -> Emitter | None:
    return _EMITTERS.get(layer_type)


def exportable_types() -> list[str]:
    return sorted(_EMITTERS)

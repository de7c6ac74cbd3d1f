"""The graph being written: ONNX nodes and initializers through ``onnx.helper``, with names
that say where each value comes from.

Tensor names are ``<layer path>/<Op>_<n>`` (``ae/encoder/enc/MatMul_3``); weights are
initializers named exactly as in ``weights.npz`` (``ae/encoder/enc/W``), so a weight used
twice (Siamese) is one initializer read by several nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from runner.interop.onnx_export.registry import NotExportable, emitter_for

OPSET = 18  # every reduction takes its axes as an input from 18 on; ORT 1.14+ runs it


class OnnxGraph:
    """Nodes and initializers of one export, in the floating dtype of the run (floatx)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.elem_type = helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self._constants: dict[tuple[str, tuple, bytes], str] = {}
        self._count = 0
        self.prefix = ""  # the weights.npz key prefix of the layer being written
        self.path = ""  # its config path, for refusals

    # ---- nodes ---------------------------------------------------------------------------
    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        """One node with one output; returns the output's name."""
        self._count += 1
        out = f"{self.prefix}{op_type}_{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def const(self, value: Any, dtype: Any = None) -> str:
        """A constant tensor (the run's dtype unless given), stored once however often used."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        name = self._constants.get(key)
        if name is None:
            name = f"const/{len(self._constants)}"  # no layer name holds a "/"
            self._constants[key] = name
            self.initializers[name] = numpy_helper.from_array(array, name)
        return name

    def ints(self, *values: int) -> str:
        """A 1-D int64 constant (axes, shapes, slice bounds)."""
        return self.const(list(values), np.int64)

    def weight(self, key: str, array: np.ndarray) -> str:
        """The layer's parameter ``key`` as an initializer named ``<prefix><key>``: one
        initializer per parameter, however many nodes read it."""
        name = f"{self.prefix}{key}"
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(np.asarray(array, self.dtype), name)
        return name

    # ---- layers --------------------------------------------------------------------------
    @contextmanager
    def scope(self, prefix: str, path: str) -> Iterator[None]:
        saved = self.prefix, self.path
        self.prefix, self.path = prefix, path
        try:
            yield
        finally:
            self.prefix, self.path = saved

    def emit(self, layer: Any, prefix: str, path: str, x: Any, mask: Any, shape: Any):
        """Write ``layer`` (weights keyed ``<prefix><param>``) by its type's emitter."""
        kind = layer.spec.type
        emitter = emitter_for(kind)
        if emitter is None:
            origin = type(layer).__module__
            where = "" if origin.startswith("layers.") else f" (plugin {origin})"
            raise NotExportable(
                f"{kind}{where} has no ONNX form (a plugin adds one with "
                "runner.interop.onnx_export.registry.onnx_emitter)",
                path,
            )
        with self.scope(prefix, path):
            try:
                return emitter(self, layer, x, mask, shape)
            except NotExportable as exc:
                exc.path = exc.path or path
                raise

    def emit_child(self, owner_prefix: str, owner_path: str, child: tuple, x, mask, shape):
        """A composite's inner layer: ``child`` is one of ``Layer.children()``'s triples."""
        key, layer, sub_path = child
        return self.emit(layer, owner_prefix + key, f"{owner_path}.{sub_path}", x, mask, shape)

    # ---- numerics shared by several emitters ---------------------------------------------
    def cast(self, x: str, dtype: Any = None) -> str:
        target = helper.np_dtype_to_tensor_dtype(np.dtype(self.dtype if dtype is None else dtype))
        return self.op("Cast", x, to=target)

    def log1p(self, a: str) -> str:
        """log(1 + a), accurate for tiny a (ONNX has no Log1p): log(u) * a / (u - 1) with
        u = 1 + a, and a itself where u rounds to 1 (Goldberg's trick)."""
        u = self.op("Add", self.const(1), a)
        d = self.op("Sub", u, self.const(1))
        tiny = self.op("Equal", d, self.const(0))
        return self.op("Where", tiny, a, self.op("Mul", self.op("Log", u), self.op("Div", a, d)))

    def expm1(self, a: str) -> str:
        """exp(a) - 1, accurate near 0 (ONNX has no Expm1): (u - 1) * a / log(u) with
        u = exp(a); a where u rounds to 1, -1 where u - 1 rounds to -1."""
        u = self.op("Exp", a)
        d = self.op("Sub", u, self.const(1))
        ratio = self.op("Div", self.op("Mul", d, a), self.op("Log", u))
        inner = self.op("Where", self.op("Equal", d, self.const(-1)), self.const(-1), ratio)
        return self.op("Where", self.op("Equal", u, self.const(1)), a, inner)

    def any_last(self, flags: str) -> str:
        """A bool tensor reduced with any() over its last axis."""
        as_int = self.op("Cast", flags, to=onnx.TensorProto.INT32)
        hit = self.op("ReduceMax", as_int, self.ints(-1), keepdims=0)
        return self.op("Cast", hit, to=onnx.TensorProto.BOOL)

    def all_last(self, flags: str) -> str:
        """A bool tensor reduced with all() over its last axis."""
        as_int = self.op("Cast", flags, to=onnx.TensorProto.INT32)
        hit = self.op("ReduceMin", as_int, self.ints(-1), keepdims=0)
        return self.op("Cast", hit, to=onnx.TensorProto.BOOL)

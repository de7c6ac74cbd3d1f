"""The W1-W5 graphs in torch (CPU, eager) and onnxruntime, from the runtime's own weights.

Each builder returns a function that runs the whole graph on fixed inputs and returns a NumPy
array, or raises ``MissingPackage`` when its package is not installed (the ``bench`` extra).
The ONNX graphs are drawn here with ``onnx.helper`` (MatMul + Add, the activations, ReduceMean,
Concat, Softmax: what an exporter emits for these layers), so the benchmark needs no exporter.
Both run with a pinned number of threads (``threads``), like the runtime's BLAS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hand_numpy import param, param_key  # type: ignore[import-not-found]


class MissingPackage(RuntimeError):
    """The column's package is not installed."""


# ---- torch --------------------------------------------------------------------------------


def torch_module(threads: int):
    try:
        import torch
    except ImportError as exc:
        raise MissingPackage("torch") from exc
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch


def torch_fn(key: str, weights: dict[str, np.ndarray], feeds: dict[str, np.ndarray], threads: int):
    """The graph in torch eager, in inference mode (addmm with the bias, in-place activations
    where torch users write them)."""
    torch = torch_module(threads)
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
    f = {k: torch.from_numpy(v) for k, v in feeds.items()}

    def p(layer, name):
        return t[param_key(weights, layer, name)]

    def dense(x, layer):
        if x.dim() == 2:
            return torch.addmm(p(layer, "b"), x, p(layer, "W"))
        return torch.matmul(x, p(layer, "W")).add_(p(layer, "b"))

    def w1():
        h = dense(f["x"], "fc1").relu_()
        h = dense(h, "fc2").relu_()
        return torch.softmax(dense(h, "out"), dim=-1)

    def w2():
        return dense(dense(f["x"], "tdd").tanh_().mean(dim=1), "out")

    def w3():
        x = f["x"]
        keep = (x != 0).any(dim=-1)  # (n, steps)
        h = dense(x, "tdd").tanh_()
        count = keep.sum(dim=1, keepdim=True).clamp_(min=1)
        pooled = (h * keep.unsqueeze(-1)).sum(dim=1) / count
        return dense(pooled, "out")

    def w4():
        ha = dense(f["a"], "shared").relu_()
        hb = dense(f["b"], "shared").relu_()
        return dense(torch.cat([ha, hb], dim=1), "out")

    def w5():
        h = f["x"]
        for name in ("enc1", "enc2", "dec1"):
            h = dense(h, name).relu_()
        return dense(h, "dec2").sigmoid_()

    graph = {"W1": w1, "W2": w2, "W3": w3, "W4": w4, "W5": w5}[key]

    def run() -> np.ndarray:
        with torch.inference_mode():
            return graph().numpy()

    return run


# ---- onnxruntime ------------------------------------------------------------------------


def _onnx():
    try:
        import onnx
        import onnxruntime
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise MissingPackage("onnx and onnxruntime") from exc
    return onnx, onnxruntime, TensorProto, helper, numpy_helper


class _Graph:
    """A tiny builder of ONNX nodes: each method adds one node and returns its output name."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.onnx, _, self.TensorProto, self.helper, self.numpy_helper = _onnx()
        self.weights = weights
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def const(self, value: np.ndarray, name: str | None = None) -> str:
        name = name or f"c{len(self.initializers)}"
        if any(i.name == name for i in self.initializers):  # a shared layer's weights: once
            return name
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        self.count += 1
        out = f"{op_type.lower()}{self.count}"
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def dense(self, x: str, layer: str, act: str | None = None) -> str:
        w = self.const(param(self.weights, layer, "W"), f"{layer}.W")
        b = self.const(param(self.weights, layer, "b"), f"{layer}.b")
        z = self.op("Add", self.op("MatMul", x, w), b)
        return self.op(act, z) if act else z

    def model(self, feeds: dict[str, np.ndarray], out: str):
        h, tp = self.helper, self.TensorProto
        inputs = [
            h.make_tensor_value_info(k, tp.FLOAT, [None, *v.shape[1:]]) for k, v in feeds.items()
        ]
        output = h.make_tensor_value_info(out, tp.FLOAT, [None, None])  # (rows, features)
        graph = h.make_graph(self.nodes, "bench", inputs, [output], self.initializers)
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])
        model.ir_version = 9
        self.onnx.checker.check_model(model)
        return model


def onnx_model(key: str, weights: dict[str, np.ndarray], feeds: dict[str, np.ndarray]):
    """The workload as an ONNX model (opset 18)."""
    g = _Graph(weights)
    if key == "W1":
        h = g.dense(g.dense("x", "fc1", "Relu"), "fc2", "Relu")
        out = g.op("Softmax", g.dense(h, "out"), axis=-1)
    elif key == "W2":
        pooled = g.op("ReduceMean", g.dense("x", "tdd", "Tanh"), g.const(np.array([1])), keepdims=0)
        out = g.dense(pooled, "out")
    elif key == "W3":
        zero = g.const(np.zeros((), np.float32))
        one = g.const(np.ones((), np.float32))
        axis1, last = g.const(np.array([1])), g.const(np.array([-1]))
        # (n, steps, 1): 1 where a step has a nonzero feature (Masking with mask_value 0)
        keep = g.op("Cast", g.op("Greater", g.op("ReduceMax", g.op("Abs", "x"), last), zero), to=1)
        h = g.op("Mul", g.dense("x", "tdd", "Tanh"), keep)
        count = g.op("Max", g.op("ReduceSum", keep, axis1, keepdims=0), one)
        out = g.dense(g.op("Div", g.op("ReduceSum", h, axis1, keepdims=0), count), "out")
    elif key == "W4":
        both = g.op(
            "Concat", g.dense("a", "shared", "Relu"), g.dense("b", "shared", "Relu"), axis=1
        )
        out = g.dense(both, "out")
    elif key == "W5":
        h = "x"
        for name in ("enc1", "enc2", "dec1"):
            h = g.dense(h, name, "Relu")
        out = g.dense(h, "dec2", "Sigmoid")
    else:
        raise KeyError(key)
    return g.model(feeds, out)


def ort_fn(key: str, weights: dict[str, np.ndarray], feeds: dict[str, np.ndarray], threads: int):
    """The ONNX graph in an onnxruntime CPU session: all graph optimizations, ``threads``
    intra-op threads, sequential execution (one operator at a time, as the others)."""
    _, ort, *_ = _onnx()
    model = onnx_model(key, weights, feeds)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    out_name = session.get_outputs()[0].name

    def run() -> np.ndarray:
        return session.run([out_name], feeds)[0]

    return run


BUILDERS: dict[str, Callable[..., Callable[[], np.ndarray]]] = {"torch": torch_fn, "ort": ort_fn}

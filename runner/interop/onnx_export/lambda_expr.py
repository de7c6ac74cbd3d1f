"""Lambda: the parsed expression tree (``layers.expressions``) translated node by node into
ONNX ops. The config text is never evaluated: the tree the validator already built is walked,
as our runtime walks it.

Broadcasting follows ours: a value of lower rank gains unit axes right *after* the batch axis
(ONNX, like NumPy, would prepend them), and a constant stays a 0-d scalar. A function a
plugin registered (``register_function``) is NumPy code with no ONNX form: refused by name.
"""

from __future__ import annotations

from collections.abc import Callable

from layers import expressions as ex
from runner.interop.onnx_export.activations import ACTIVATIONS
from runner.interop.onnx_export.graph import OnnxGraph
from runner.interop.onnx_export.registry import NotExportable, onnx_emitter

_UNARY: dict[str, Callable[[OnnxGraph, str], str]] = {
    "exp": lambda g, a: g.op("Exp", a),
    "log": lambda g, a: g.op("Log", a),
    "log1p": lambda g, a: g.log1p(a),
    "expm1": lambda g, a: g.expm1(a),
    "tanh": ACTIVATIONS["tanh"],
    "sigmoid": ACTIVATIONS["sigmoid"],
    "abs": lambda g, a: g.op("Abs", a),
    "sqrt": lambda g, a: g.op("Sqrt", a),
    "square": lambda g, a: g.op("Mul", a, a),
    "sin": lambda g, a: g.op("Sin", a),
    "cos": lambda g, a: g.op("Cos", a),
    "relu": ACTIVATIONS["relu"],
    "softplus": ACTIVATIONS["softplus"],
}
_BINARY = {"+": "Add", "-": "Sub", "*": "Mul", "/": "Div"}
_COMPARE = {
    "<": "Less",
    "<=": "LessOrEqual",
    ">": "Greater",
    ">=": "GreaterOrEqual",
    "==": "Equal",
}
_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin"}


@onnx_emitter("Lambda")
def _lambda(g: OnnxGraph, layer, x, mask, shape):
    expression = layer.expression
    plugins = sorted(
        {n.name for n in ex.walk(expression.root) if isinstance(n, ex.Call) and n.plugin}
    )
    if plugins:
        raise NotExportable(
            f"function {expression.source!r} calls {', '.join(map(repr, plugins))}, registered "
            "by a plugin as NumPy code, which has no ONNX form: write it with the built-in "
            "functions (see the Lambda section of the README) to export"
        )
    # per-sample shape of every node
    shapes = {id(node): s for node, s in expression.node_shapes(tuple(shape))}
    y, rank = _Writer(g, x, shapes).write(expression.root)
    if rank == 0:  # a constant expression still gives one value per sample
        y = g.op("Expand", y, g.op("Shape", x, start=0, end=1))
    return y, None


class _Writer:
    def __init__(self, g: OnnxGraph, x: str, shapes: dict[int, tuple]) -> None:
        self.g, self.x, self.shapes = g, x, shapes

    def rank(self, node: ex.Node) -> int:
        """Rank of the batched value (0 for a constant, which has no batch axis)."""
        return 1 + len(self.shapes[id(node)]) if node.uses_x else 0

    def write(self, node: ex.Node) -> tuple[str, int]:
        g = self.g
        if isinstance(node, ex.Var):
            return self.x, self.rank(node)
        if isinstance(node, ex.Const):
            return g.const(node.value), 0
        if isinstance(node, ex.Index):
            return self.index(node), self.rank(node)
        kids = ex.children(node)
        args = self.aligned([self.write(kid) for kid in kids])
        return self.combine(node, args), self.rank(node)

    def aligned(self, values: list[tuple[str, int]]) -> list[str]:
        """Aligned as our runtime aligns operands: unit axes inserted after the batch axis;
        0-d values stay 0-d."""
        top = max(rank for _, rank in values)
        out = []
        for name, rank in values:
            if rank not in (0, top):
                name = self.g.op("Unsqueeze", name, self.g.ints(*range(1, 1 + top - rank)))
            out.append(name)
        return out

    def combine(self, node: ex.Node, args: list[str]) -> str:
        g = self.g
        if isinstance(node, ex.Neg):
            return g.op("Neg", args[0])
        if isinstance(node, ex.Pow):
            return g.op("Pow", args[0], g.const(node.exponent))
        if isinstance(node, ex.Clip):
            return g.op("Clip", args[0], g.const(node.lo), g.const(node.hi))
        if isinstance(node, ex.Reduce):
            axis = ex.reduce_axis(node, self.rank(node.arg))
            return g.op(_REDUCE[node.name], args[0], g.ints(axis), keepdims=0)
        if isinstance(node, ex.BinOp):
            if node.op in _BINARY:
                return g.op(_BINARY[node.op], *args)
            if node.op == "!=":
                return g.cast(g.op("Not", g.op("Equal", *args)))
            return g.cast(g.op(_COMPARE[node.op], *args))  # 1.0 / 0.0, as ours
        if node.name == "where":
            chosen = g.op("Not", g.op("Equal", args[0], g.const(0)))
            return g.op("Where", chosen, args[1], args[2])
        if node.name in ("maximum", "minimum"):
            return g.op("Max" if node.name == "maximum" else "Min", *args)
        return _UNARY[node.name](g, args[0])

    def index(self, node: ex.Index) -> str:
        """x[:, i, a:b, ...]: the slices first, then each integer index (last axis first,
        so the axes still to index keep their positions)."""
        g, y = self.g, self.x
        slices = [
            (axis, item) for axis, item in enumerate(node.items, 1) if isinstance(item, tuple)
        ]
        if slices:
            big = 2**63 - 1  # "to the end" for an open upper bound
            starts = [0 if lo is None else lo for _, (lo, _) in slices]
            ends = [big if hi is None else hi for _, (_, hi) in slices]
            axes = [axis for axis, _ in slices]
            y = g.op("Slice", y, g.ints(*starts), g.ints(*ends), g.ints(*axes))
        for axis, item in reversed(list(enumerate(node.items, 1))):
            if not isinstance(item, tuple):
                y = g.op("Gather", y, g.const(item, "int64"), axis=axis)
        return y

"""The small, safe expression language of the Lambda layer.

A config string such as ``where(x > 0, x, 0.1 * x)`` is parsed with :mod:`ast` (mode="eval"),
checked against a tiny grammar and turned into a tree of frozen dataclasses that is only ever
*walked*: nothing reaches eval/exec/compile. Every limit (text length, depth, node count,
literal exponents) is enforced before any arithmetic runs, so hostile text can neither run code
nor hang the process.

Shapes: ``x`` has batch axis 0. Per-sample shapes broadcast with NumPy rules *after* the batch
axis (a value of lower rank gets new axes inserted at position 1, never in front of the batch
axis). Reductions take a full-tensor ``axis`` which may not be 0.

Gradients (:meth:`Expression.backward`): comparisons and where() conditions have zero gradient;
abs'(0) = relu'(0) = 0; maximum/minimum send ties to the first argument; clip passes the gradient
inside [lo, hi] inclusive; max/min reductions split the gradient evenly among tied extrema.
"""

from __future__ import annotations

import ast
import keyword
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NoReturn

import numpy as np

from layers.activations import ACTIVATIONS

MAX_CHARS = 1000
MAX_DEPTH = 32
MAX_NODES = 200
MAX_EXPONENT = 16


class ExpressionError(ValueError):
    """An expression is invalid, unsafe, or does not fit the input shape."""


@dataclass(frozen=True)
class ExprFunction:
    """An elementwise function registered by a plugin.

    ``fn(*args)`` gets ``n_args`` broadcast-compatible arrays and returns their broadcast shape.
    ``grad(g, *args)`` returns one vector-Jacobian product per argument (a bare array is fine
    when ``n_args == 1``); without it, expressions using the function are not differentiable.
    """

    fn: Callable[..., np.ndarray]
    grad: Callable[..., np.ndarray | Sequence[np.ndarray]] | None = None
    n_args: int = 1

    def __post_init__(self) -> None:
        if not callable(self.fn) or (self.grad is not None and not callable(self.grad)):
            raise ExpressionError("ExprFunction needs callables for fn and grad")
        if self.n_args < 1:
            raise ExpressionError(f"ExprFunction.n_args must be >= 1, got {self.n_args}")


def _activation(name: str) -> tuple[Callable, Callable]:
    """The activation's own value and derivative (layers.activations): one copy of the math."""
    act = ACTIVATIONS[name]
    return act.forward, act.backward  # backward(x, y, dy) has the vjp's (a, y, g) order


# name -> (forward(a), vjp(a, y, g)) for the one-argument elementwise functions
_UNARY: dict[str, tuple[Callable, Callable]] = {
    "exp": (np.exp, lambda a, y, g: g * y),
    "log": (np.log, lambda a, y, g: g / a),
    "log1p": (np.log1p, lambda a, y, g: g / (1 + a)),
    "expm1": (np.expm1, lambda a, y, g: g * (y + 1)),
    "tanh": _activation("tanh"),
    "sigmoid": _activation("sigmoid"),
    "abs": (np.abs, lambda a, y, g: g * np.sign(a)),
    "sqrt": (np.sqrt, lambda a, y, g: g / (2 * y)),
    "square": (np.square, lambda a, y, g: g * 2 * a),
    "sin": (np.sin, lambda a, y, g: g * np.cos(a)),
    "cos": (np.cos, lambda a, y, g: -g * np.sin(a)),
    "relu": _activation("relu"),
    "softplus": _activation("softplus"),
}
_REDUCE = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}
_OPS = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
_COMPARE = frozenset(["<", "<=", ">", ">=", "==", "!="])

#: Public table of built-in functions: name -> call signature.
FUNCTIONS: Mapping[str, str] = MappingProxyType(
    {
        **{name: f"{name}(a)" for name in _UNARY},
        "maximum": "maximum(a, b)",
        "minimum": "minimum(a, b)",
        "clip": "clip(a, lo, hi)",
        "where": "where(cond, a, b)",
        **{name: f"{name}(a, axis=k)" for name in _REDUCE},
    }
)


# ---- the parsed tree ----------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    text: str  # source fragment, for error messages
    uses_x: bool  # False for constant subtrees, which need no gradient


@dataclass(frozen=True)
class Var(Node):
    pass


@dataclass(frozen=True)
class Const(Node):
    value: float


@dataclass(frozen=True)
class Neg(Node):
    arg: Node


@dataclass(frozen=True)
class BinOp(Node):
    op: str  # + - * / or a comparison
    left: Node
    right: Node


@dataclass(frozen=True)
class Pow(Node):
    base: Node
    exponent: float


@dataclass(frozen=True)
class Call(Node):
    name: str  # an elementwise built-in, maximum/minimum/where, or a plugin
    args: tuple[Node, ...]
    plugin: ExprFunction | None = None


@dataclass(frozen=True)
class Clip(Node):
    arg: Node
    lo: float
    hi: float


@dataclass(frozen=True)
class Reduce(Node):
    name: str
    arg: Node
    axis: int  # full-tensor axis, never 0


@dataclass(frozen=True)
class Index(Node):
    items: tuple[int | tuple[int | None, int | None], ...]  # per-sample axes: index or (lo, hi)


def children(node: Node) -> tuple[Node, ...]:
    """The operands of ``node`` in order (none for ``x``, a constant or an index of ``x``)."""
    if isinstance(node, BinOp):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, (Neg, Clip, Reduce)):
        return (node.arg,)
    return (node.base,) if isinstance(node, Pow) else ()


def walk(node: Node) -> Iterator[Node]:
    """``node`` and every node below it, parents before their operands."""
    yield node
    for child in children(node):
        yield from walk(child)


# ---- parsing ------------------------------------------------------------------------------
_AST_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_AST_COMPARE = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
_BAD_BINOPS = {
    ast.FloorDiv: "floor division // is",
    ast.Mod: "modulo % is",
    ast.MatMult: "matrix multiply @ is",
}
_FORBIDDEN: dict[type | tuple[type, ...], str] = {
    ast.Attribute: "attribute access is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.IfExp: "conditional expressions are not allowed; use where(cond, a, b)",
    ast.BoolOp: "boolean operators and/or are not allowed; use comparisons and where()",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    (ast.JoinedStr, ast.FormattedValue): "strings and f-strings are not allowed",
    (
        ast.ListComp,
        ast.SetComp,
        ast.DictComp,
        ast.GeneratorExp,
    ): "comprehensions and generators are not allowed",
    (ast.List, ast.Tuple, ast.Dict, ast.Set): "list, tuple, dict and set literals are not allowed",
    ast.Starred: "starred arguments are not allowed",
    (ast.Await, ast.Yield, ast.YieldFrom): "await and yield are not allowed",
}


def _segment(source: str, node: ast.AST) -> str:
    text = ast.get_source_segment(source, node) or ast.unparse(node)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_size(root: ast.AST, source: str) -> None:
    """Reject deep or large trees iteratively, before any recursive processing."""
    count, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"{_segment(source, root)!r}: expression is nested deeper than {MAX_DEPTH} levels"
            )
        if count > MAX_NODES:
            raise ExpressionError(
                f"{_segment(source, root)!r}: expression has more than {MAX_NODES} nodes"
            )
        stack.extend(
            (child, depth + 1)
            for child in ast.iter_child_nodes(node)
            if isinstance(child, (ast.expr, ast.keyword))
        )


class _Builder:
    """Converts a size-checked ast into Nodes, rejecting everything outside the grammar."""

    def __init__(self, source: str, plugins: Mapping[str, ExprFunction]) -> None:
        self.source, self.plugins = source, plugins
        self.allowed = (
            "allowed: x, numbers, + - * / ** (number-literal exponent, |e| <= 16), "
            "unary -, one comparison < <= > >= == !=, x[:, i] and x[:, a:b], and the "
            "functions " + ", ".join([*FUNCTIONS, *plugins])
        )

    def fail(self, node: ast.AST, reason: str) -> NoReturn:
        raise ExpressionError(f"{_segment(self.source, node)!r}: {reason}; {self.allowed}")

    def literal(
        self, node: ast.AST, what: str, quote: ast.AST, integer: bool = False
    ) -> int | float:
        """The value of a (signed) number literal; errors quote the enclosing ``quote`` node."""
        sign, inner = 1, node
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            sign, inner = (-1 if isinstance(node.op, ast.USub) else 1), node.operand
        kinds = (int,) if integer else (int, float)
        if isinstance(inner, ast.Constant) and type(inner.value) in kinds:
            return sign * inner.value
        self.fail(quote, f"{what} must be {'an integer' if integer else 'a number'} literal")

    def build(self, node: ast.AST) -> Node:
        text = _segment(self.source, node)
        if isinstance(node, ast.Name):
            if node.id == "x":
                return Var(text, True)
            if node.id in FUNCTIONS or node.id in self.plugins:
                self.fail(node, f"function {node.id!r} must be called, e.g. {node.id}(x)")
            self.fail(node, f"unknown name {node.id!r}; the only variable is x")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (str, bytes)):
                self.fail(node, "strings are not allowed")
            if type(node.value) not in (int, float):
                self.fail(node, f"{node.value!r} is not allowed; use numbers and comparisons")
            try:
                value = float(node.value)
            except OverflowError:
                self.fail(node, "number literal is too large")
            if value in (float("inf"), float("-inf")):  # 1e309 parses to inf
                self.fail(node, "number literal is too large (it would be infinite)")
            return Const(text, False, value)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                self.fail(node, "'not' is not allowed; use comparisons and where()")
            if isinstance(node.op, ast.Invert):
                self.fail(node, "bit operations are not allowed")
            arg = self.build(node.operand)
            if isinstance(node.op, ast.UAdd):
                return arg
            return (
                Const(text, False, -arg.value)
                if isinstance(arg, Const)
                else Neg(text, arg.uses_x, arg)
            )
        if isinstance(node, ast.BinOp):
            return self.binop(node, text)
        if isinstance(node, ast.Compare):
            if len(node.ops) > 1:
                self.fail(node, "chained comparisons are not allowed; use one comparison")
            op = _AST_COMPARE.get(type(node.ops[0]))
            if op is None:
                self.fail(node, "'is' and 'in' are not allowed; use < <= > >= == !=")
            left, right = self.build(node.left), self.build(node.comparators[0])
            return BinOp(text, left.uses_x or right.uses_x, op, left, right)
        if isinstance(node, ast.Call):
            return self.call(node, text)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, text)
        for kinds, reason in _FORBIDDEN.items():
            if isinstance(node, kinds):
                self.fail(node, reason)
        self.fail(node, f"{type(node).__name__} is not allowed")

    def binop(self, node: ast.BinOp, text: str) -> Node:
        if isinstance(node.op, ast.Pow):
            # Checked before anything is built: `2 ** 2 ** 99` must never be computed.
            exponent = self.literal(node.right, "the exponent of **", node)
            if abs(exponent) > MAX_EXPONENT:
                self.fail(node, f"the exponent of ** must satisfy |exponent| <= {MAX_EXPONENT}")
            base = self.build(node.left)
            return Pow(text, base.uses_x, base, float(exponent))
        op = _AST_BINOPS.get(type(node.op))
        if op is None:
            what = _BAD_BINOPS.get(type(node.op), "bit operations are")
            self.fail(node, f"{what} not allowed (the language is kept small)")
        left, right = self.build(node.left), self.build(node.right)
        return BinOp(text, left.uses_x or right.uses_x, op, left, right)

    def call(self, node: ast.Call, text: str) -> Node:
        func = node.func
        if not isinstance(func, ast.Name):
            self.build(func)  # reports lambda, attribute access, ... with their own reason
            self.fail(func, "calling an expression is not allowed; only named functions")
        name = func.id
        if name not in FUNCTIONS and name not in self.plugins:
            self.fail(func, f"{name!r} is not an allowed function")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.fail(arg, "starred arguments are not allowed")
        axis_kw = None
        for kw in node.keywords:
            if kw.arg is None:
                self.fail(kw, "**keyword arguments are not allowed")
            if kw.arg != "axis":
                self.fail(kw, f"keyword {kw.arg!r} is not supported; only reductions take axis=k")
            if name not in _REDUCE:
                self.fail(kw, f"{name}() takes no axis argument")
            axis_kw = kw
        plugin = self.plugins.get(name)
        n_args = (
            plugin.n_args
            if plugin
            else {"maximum": 2, "minimum": 2, "where": 3, "clip": 3}.get(name, 1)
        )
        if len(node.args) != n_args:
            self.fail(node, f"{name}() takes {n_args} positional argument(s), got {len(node.args)}")
        if name in _REDUCE:
            if axis_kw is None:
                self.fail(node, f"{name}() needs an explicit axis=k keyword (k != 0)")
            axis = int(self.literal(axis_kw.value, "axis", axis_kw, integer=True))
            if axis == 0:
                self.fail(axis_kw, "axis 0 is the batch axis and cannot be reduced")
            arg = self.build(node.args[0])
            return Reduce(text, arg.uses_x, name, arg, axis)
        if name == "clip":
            lo = float(self.literal(node.args[1], "clip's lower bound", node))
            hi = float(self.literal(node.args[2], "clip's upper bound", node))
            if lo > hi:
                self.fail(node, "clip needs lo <= hi")
            arg = self.build(node.args[0])
            return Clip(text, arg.uses_x, arg, lo, hi)
        args = tuple(self.build(a) for a in node.args)
        return Call(text, any(a.uses_x for a in args), name, args, plugin)

    def subscript(self, node: ast.Subscript, text: str) -> Node:
        if not (isinstance(node.value, ast.Name) and node.value.id == "x"):
            self.fail(node, "only x itself can be indexed, as x[:, i] or x[:, a:b]")
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        first = items[0] if items else None
        if not (
            isinstance(first, ast.Slice)
            and first.lower is None
            and first.upper is None
            and first.step is None
        ):
            self.fail(node, "the first index must be ':' (axis 0 is the batch axis), e.g. x[:, 0]")
        out: list[int | tuple[int | None, int | None]] = []
        for item in items[1:]:
            if not isinstance(item, ast.Slice):
                out.append(int(self.literal(item, "an index", node, integer=True)))
                continue
            if item.step is not None:
                self.fail(item, "slice steps are not supported")
            out.append(
                tuple(
                    None
                    if bound is None
                    else int(self.literal(bound, "a slice bound", node, integer=True))
                    for bound in (item.lower, item.upper)
                )
            )
        return Index(text, True, tuple(out))


def parse(text: str, extra_functions: Mapping[str, ExprFunction] | None = None) -> Expression:
    """Parse and validate ``text``; raise :class:`ExpressionError` for anything not allowed."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise ExpressionError(
            f"{text[:40]!r}...: expression is {len(text)} characters long; the limit is {MAX_CHARS}"
        )
    plugins = dict(extra_functions or {})
    for name, fn in plugins.items():
        if not name.isidentifier() or keyword.iskeyword(name) or name == "x" or name in FUNCTIONS:
            raise ExpressionError(f"plugin function name {name!r} is invalid or taken")
        if not isinstance(fn, ExprFunction):
            raise ExpressionError(f"plugin function {name!r} must be an ExprFunction")
    body = text.strip()  # YAML block scalars add newlines; ast would call them indentation
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as e:
        where = f" at column {e.offset}" if e.offset else ""
        raise ExpressionError(f"invalid syntax{where} in {body[:80]!r}: {e.msg}") from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise ExpressionError(f"cannot parse {body[:80]!r}: {e}") from None
    if not isinstance(tree, ast.Expression):  # e.g. NUL bytes make Python 3.11 return None
        raise ExpressionError(f"cannot parse {body[:80]!r}")
    _check_size(tree.body, body)
    return Expression(text, _Builder(body, plugins).build(tree.body))


# ---- shapes and evaluation ----------------------------------------------------------------
def reduce_axis(node: Reduce, rank: int) -> int:
    """Normalise ``node.axis`` for a batched value of ``rank`` dims (batch axis included):
    the axis a reduction runs over, from 0, never the batch axis (else ExpressionError)."""
    k = node.axis + rank if node.axis < 0 else node.axis
    if not 0 <= k < rank:
        raise ExpressionError(
            f"{node.text!r}: axis={node.axis} is out of range for a tensor "
            f"of rank {rank} (batch axis included)"
        )
    if k == 0:
        raise ExpressionError(f"{node.text!r}: axis={node.axis} is the batch axis here")
    return k


def _shape(
    node: Node, s: tuple[int, ...], seen: list[tuple[Node, tuple[int, ...]]] | None = None
) -> tuple[int, ...]:
    """Per-sample shape of ``node`` for input ``s``; with ``seen``, also appends
    (node, shape) for every node of the subtree (children first)."""
    shape = _node_shape(node, s, seen)
    if seen is not None:
        seen.append((node, shape))
    return shape


def _node_shape(
    node: Node, s: tuple[int, ...], seen: list[tuple[Node, tuple[int, ...]]] | None
) -> tuple[int, ...]:
    if isinstance(node, Var):
        return s
    if isinstance(node, Const):
        return ()
    if isinstance(node, Index):
        if len(node.items) > len(s):
            raise ExpressionError(f"{node.text!r}: too many indices for per-sample shape {s}")
        out = []
        for item, n in zip(node.items, s):
            if isinstance(item, tuple):
                out.append(len(range(n)[slice(*item)]))
            elif not -n <= item < n:
                raise ExpressionError(f"{node.text!r}: index {item} is out of range for size {n}")
        return (*out, *s[len(node.items) :])
    if isinstance(node, Reduce):
        inner = _shape(node.arg, s, seen)
        k = reduce_axis(node, len(inner) + 1)
        return inner[: k - 1] + inner[k:]
    shapes = [_shape(child, s, seen) for child in children(node)]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ExpressionError(
            f"{node.text!r}: per-sample shapes {shapes} cannot be broadcast together"
        ) from None


def _align(*arrays: np.ndarray) -> list[np.ndarray]:
    """Give batched values equal rank by inserting axes after the batch axis (0-d stay 0-d)."""
    rank = max(np.ndim(a) for a in arrays)
    return [
        a
        if np.ndim(a) in (0, rank)
        else a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:])
        for a in arrays
    ]


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` back to an operand's (unaligned) shape."""
    if np.shape(g) == shape:
        return g
    if not shape:
        return np.sum(g)
    aligned = shape[:1] + (1,) * (g.ndim - len(shape)) + shape[1:]
    axes = tuple(i for i, n in enumerate(aligned) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def _index(node: Index) -> tuple:
    return (slice(None), *(i if isinstance(i, int) else slice(*i) for i in node.items))


def _forward(node: Node, x: np.ndarray, values: dict[int, np.ndarray]) -> np.ndarray:
    value = _compute(node, x, values)
    values[id(node)] = value  # kept for the backward pass
    return value


def _compute(node: Node, x: np.ndarray, values: dict[int, np.ndarray]) -> np.ndarray:
    dtype = x.dtype  # Python numbers are cast to it so float32 never becomes float64
    if isinstance(node, Var):
        return x
    if isinstance(node, Const):
        return np.asarray(node.value, dtype)
    if isinstance(node, Index):
        return x[_index(node)]
    args = _align(*(_forward(child, x, values) for child in children(node)))
    if isinstance(node, Neg):
        return -args[0]
    if isinstance(node, Pow):
        return np.power(args[0], np.asarray(node.exponent, dtype))
    if isinstance(node, Clip):
        return np.clip(args[0], np.asarray(node.lo, dtype), np.asarray(node.hi, dtype))
    if isinstance(node, Reduce):
        return _REDUCE[node.name](args[0], axis=reduce_axis(node, args[0].ndim))
    if isinstance(node, BinOp):
        y = _OPS[node.op](*args)
        return y.astype(dtype) if node.op in _COMPARE else y
    if node.plugin is not None:
        y = np.asarray(node.plugin.fn(*args), dtype)
        if y.shape != np.broadcast_shapes(*(np.shape(a) for a in args)):
            raise ExpressionError(f"{node.text!r}: plugin {node.name!r} returned shape {y.shape}")
        return y
    if node.name == "where":
        return np.where(args[0] != 0, args[1], args[2])
    if node.name in ("maximum", "minimum"):
        return getattr(np, node.name)(*args)
    return _UNARY[node.name][0](args[0])


def _vjp(node: Node, g: np.ndarray, args: list[np.ndarray], y: np.ndarray) -> list:
    """Gradients for each child of ``node`` (None: no gradient) given upstream ``g``."""
    a = _align(*args)
    if isinstance(node, Neg):
        return [-g]
    if isinstance(node, Pow):
        c = node.exponent
        return [None] if c == 0 else [g * c * np.power(a[0], c - 1)]
    if isinstance(node, Clip):
        return [g * ((a[0] >= node.lo) & (a[0] <= node.hi))]
    if isinstance(node, Reduce):
        k = reduce_axis(node, a[0].ndim)
        g = np.expand_dims(g, k)
        if node.name in ("sum", "mean"):
            return [np.broadcast_to(g / (a[0].shape[k] if node.name == "mean" else 1), a[0].shape)]
        hit = a[0] == np.expand_dims(y, k)  # ties share the gradient evenly
        return [g * hit / np.maximum(hit.sum(axis=k, keepdims=True), 1).astype(g.dtype)]
    if isinstance(node, BinOp):
        left, right = a
        if node.op in _COMPARE:
            return [None, None]
        if node.op in "+-":
            return [g, g if node.op == "+" else -g]
        if node.op == "*":
            return [g * right, g * left]
        return [g / right, -g * left / (right * right)]
    if node.plugin is not None:
        grads = node.plugin.grad(g, *a)
        grads = (
            [grads]
            if node.plugin.n_args == 1 and not isinstance(grads, (list, tuple))
            else list(grads)
        )
        if len(grads) != len(a):
            raise ExpressionError(f"{node.text!r}: plugin gradient returned {len(grads)} arrays")
        return [np.broadcast_to(np.asarray(gr, g.dtype), g.shape) for gr in grads]
    if node.name == "where":
        hit = a[0] != 0
        return [None, np.where(hit, g, 0), np.where(hit, 0, g)]
    if node.name in ("maximum", "minimum"):
        first = a[0] >= a[1] if node.name == "maximum" else a[0] <= a[1]  # ties: first arg
        return [g * first, g * ~first]
    return [_UNARY[node.name][1](a[0], y, g)]


def _backward(node: Node, g: np.ndarray, values: dict[int, np.ndarray], grad: np.ndarray) -> None:
    # The parsed tree never shares nodes, so each node receives its whole gradient at once.
    if isinstance(node, Var):
        grad += g
    elif isinstance(node, Index):
        grad[_index(node)] += g
    else:
        kids = children(node)
        args = [values[id(kid)] for kid in kids]
        for kid, arg, gk in zip(kids, args, _vjp(node, g, args, values[id(node)])):
            if gk is not None and kid.uses_x:
                _backward(kid, _unbroadcast(gk, np.shape(arg)), values, grad)


def _as_input(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 0:
        raise ExpressionError("x needs a batch axis (got a 0-d array)")
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


@dataclass(frozen=True)
class Expression:
    """A validated expression: ``source`` is the original text, ``root`` the parsed tree."""

    source: str
    root: Node = field(repr=False)

    @property
    def is_differentiable(self) -> bool:
        """False when a plugin function without ``grad`` occurs in the tree."""
        return not self._no_grad_plugins()

    def _no_grad_plugins(self) -> list[str]:
        return sorted(
            {
                n.name
                for n in walk(self.root)
                if isinstance(n, Call) and n.plugin is not None and n.plugin.grad is None
            }
        )

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape for per-sample ``input_shape`` (batch axis excluded)."""
        return _shape(self.root, tuple(int(n) for n in input_shape))

    def node_shapes(self, input_shape: tuple[int, ...]) -> list[tuple[Node, tuple[int, ...]]]:
        """Every node of the tree with its per-sample shape for per-sample ``input_shape``,
        operands before the node that reads them (the root last). The memory estimate and
        the ONNX exporter both read the shapes from here."""
        seen: list[tuple[Node, tuple[int, ...]]] = []
        _shape(self.root, tuple(int(n) for n in input_shape), seen)
        return seen

    def intermediate_elements(self, input_shape: tuple[int, ...]) -> int:
        """Per-sample count of the values evaluating (and differentiating) the expression
        holds besides its input and output, from shapes alone (broadcasting included).

        Every computed node's value is kept until the pass ends (the backward pass reads
        them), so they add up; views of ``x`` (``x``, ``x[:, i]``) and constants cost
        nothing. One operation may also need temporaries (sigmoid, softplus, a plugin, the
        gradient of a node and the cast of the result): counted as twice the largest value,
        a bound rather than an exact count."""
        seen = self.node_shapes(input_shape)

        def computed(node: Node) -> bool:
            return node.uses_x and not isinstance(node, (Var, Index))

        sizes = [math.prod(shape) for node, shape in seen if computed(node)]
        # seen lists children first: the root, the output the caller counts, comes last
        held = sum(sizes) - (sizes[-1] if computed(self.root) else 0)
        return held + 2 * max(sizes, default=0)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Value for batch ``x``; float dtypes are kept, other dtypes become float64."""
        x = _as_input(x)
        self.output_shape(x.shape[1:])  # clear shape errors before any arithmetic
        y = np.asarray(_forward(self.root, x, {}), x.dtype)
        if y.ndim == 0:  # a constant expression still yields one value per sample
            return np.full(x.shape[:1], y, x.dtype)
        return y.copy() if np.may_share_memory(y, x) else y

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Gradient of ``sum(dy * f(x))`` with respect to ``x`` (reverse mode)."""
        missing = self._no_grad_plugins()
        if missing:
            raise ExpressionError(
                f"{self.source!r} is not differentiable: plugin function(s) "
                f"{', '.join(missing)} have no grad"
            )
        x = _as_input(x)
        expected = x.shape[:1] + self.output_shape(x.shape[1:])
        dy = np.asarray(dy, x.dtype)
        if dy.shape != expected:
            raise ExpressionError(f"{self.source!r}: dy has shape {dy.shape}, expected {expected}")
        values: dict[int, np.ndarray] = {}
        _forward(self.root, x, values)
        grad = np.zeros_like(x)
        if self.root.uses_x:
            _backward(self.root, dy, values, grad)
        return grad

"""Lambda: ``y = f(x)`` for a small arithmetic expression ``f`` written in the config.

``function`` is parsed at validation time by :mod:`layers.expressions` (``ast``, a closed set of
NumPy operations, walked, never ``eval``ed), so a bad expression fails validation with the
offending fragment quoted. Plugins add named elementwise functions with
:func:`register_function`; a config that uses one lists the plugin under ``plugins:``.

Input: any shape. Output: inferred from the expression (``output_shape``, if given, must
agree). Like the legacy Lambda it does not take masks.

    sq: {type: Lambda, function: "x * x"}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field, NonNegativeInt, field_validator

from layers.base import Context, Layer, PlanError, Shape, SpecBase
from layers.registry import register

if TYPE_CHECKING:
    from layers.expressions import ExprFunction

# layers.expressions (the parser and its node classes) is imported where an expression is
# read: a run whose model has no Lambda does not pay for it at start-up.

_FUNCTIONS: dict[str, ExprFunction] = {}


def register_function(
    name: str, fn: Callable[..., np.ndarray], grad: Callable | None = None, n_args: int = 1
) -> ExprFunction:
    """Make ``name(...)`` callable in Lambda expressions (from a plugin module).

    ``fn`` maps ``n_args`` broadcastable arrays to their broadcast shape; ``grad(g, *args)``
    returns the vector-Jacobian product per argument (without it the Lambda cannot be fitted).
    """
    from layers.expressions import ExprFunction, parse

    entry = fn if isinstance(fn, ExprFunction) else ExprFunction(fn, grad, n_args)
    existing = _FUNCTIONS.get(name)
    if existing is not None and existing != entry:
        raise ValueError(f"Lambda function {name!r} is already registered")
    parse("x", {name: entry})  # the same name rules as the parser (identifier, not built-in)
    _FUNCTIONS[name] = entry
    return entry


def lambda_functions() -> Mapping[str, ExprFunction]:
    """Plugin functions registered so far (name -> ExprFunction), read-only."""
    return MappingProxyType(_FUNCTIONS)


class LambdaSpec(SpecBase):
    """An expression over ``x``; input any shape, output as the expression gives."""

    type: Literal["Lambda"] = "Lambda"
    function: str = Field(
        description="Expression over x, e.g. 'x * x', 'tanh(x) + 1', "
        "'maximum(x, 0.5)', 'sum(x, axis=-1)'; plugin functions by name."
    )
    output_shape: list[NonNegativeInt] | None = Field(
        default=None,
        description="Per-sample output shape (batch excluded); default: inferred. "
        "If given, it must equal the inferred shape.",
    )

    @field_validator("function")
    @classmethod
    def _parse(cls, value: str) -> str:
        from layers.expressions import ExpressionError, parse

        try:
            parse(value, _FUNCTIONS)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
        return value


@register
class Lambda(Layer):
    Spec = LambdaSpec

    def __init__(self, spec: LambdaSpec, name: str) -> None:
        from layers.expressions import parse

        super().__init__(spec, name)
        self.expression = parse(spec.function, _FUNCTIONS)
        self.differentiable = self.expression.is_differentiable

    def output_shape(self, input_shape: Shape) -> Shape:
        from layers.expressions import ExpressionError

        try:
            shape = tuple(self.expression.output_shape(tuple(input_shape)))
        except ExpressionError as exc:
            raise PlanError(f"function {exc}") from None
        given = self.spec.output_shape
        if given is not None and tuple(given) != shape:
            raise PlanError(
                f"output_shape {list(given)} is given, but {self.spec.function!r} "
                f"gives per-sample shape {list(shape)} for input {list(input_shape)}"
            )
        return shape

    def inner_elements(self, input_shape: Shape) -> int:
        """Per-sample intermediate values of the expression
        (see Expression.intermediate_elements)."""
        from layers.expressions import ExpressionError

        try:
            return self.expression.intermediate_elements(tuple(input_shape))
        except ExpressionError as exc:
            raise PlanError(f"function {exc}") from None

    def forward(self, x, mask, ctx: Context):
        y = self.expression.evaluate(x)
        return y, None, (x if ctx.keep_cache else None)

    def backward(self, dy, x, ctx: Context):
        return self.expression.backward(x, dy), {}

"""The layer interface every built-in and plugin layer implements.

Shapes are per-sample tuples (the batch axis excluded). A mask has the data's shape minus the
last axis (per sample: ``shape[:-1]``); at plan time only its presence travels, as a bool.

A layer's life:
1. plan  (pure, no arrays): ``output_shape``, ``output_mask``, ``param_shapes``;
2. build: ``init_params`` draws weights from an explicit ``np.random.Generator``;
3. run:   ``forward(x, mask, ctx) -> (y, mask, cache)``;
          ``activity_penalties(y, cache)`` the penalties that pass adds to the loss;
          ``backward(dy, cache, ctx) -> (dx, grads)`` never changes ``self.params``.
Multi-input layers (``multi_input = True``) take lists of shapes, arrays and masks instead.

``Layer`` below declares the whole contract: every member the runner calls exists there with
its default, so the runner calls each directly (never ``getattr``/``hasattr``). Per pass:
``backward`` is the chain rule of the layer's own output (plus the gradient of its own
activity penalty, a loss term on that output); the gradient of ``weight_penalty()`` is not in
it: the trainer adds ``weight_penalty_grads()`` once per step, for every layer.
"""

from __future__ import annotations

import re
import types
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Union

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

Shape = tuple[int, ...]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name) or len(name) > 100:
        raise ValueError(
            "names of layers and inputs are identifiers: letters, digits and "
            "underscores, not starting with a digit, at most 100 characters "
            "(they become keys of the run folder's files, where '/' and '.' "
            "have a meaning)"
        )
    return name


# A layer or input name. Keys such as ``name/mask`` (outputs.npz), ``ae/encoder/enc/W``
# (weights.npz) and ``siam.0`` (a head) stay unambiguous because names hold no '/' or '.'.
Name = Annotated[str, AfterValidator(_identifier)]

# Nested lists of numbers, as YAML writes arrays.
InlineArray = list[Any]


def _scalar_types(annotation: Any) -> set[Any]:
    """The types a field accepts at its top level (through Optional, unions, Annotated)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return set().union(*(_scalar_types(a) for a in typing.get_args(annotation)))
    if origin is Annotated:
        return _scalar_types(typing.get_args(annotation)[0])
    return {annotation}


class BooleanGiven:
    """A boolean where a number is expected; shown as such in the error message."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"{str(self.value).lower()} (a boolean)"

    __str__ = __repr__


class ConfigModel(BaseModel):
    """Base of every config model: unknown keys fail, values are frozen, and a boolean is
    never silently read as a number (``output_dim: true`` would otherwise become 1)."""

    # defer_build: a model's validator is built when it is first used, not at import. A run
    # validates through the run schema alone (runner/config/schema.py), so the validators of
    # every spec class would otherwise be built at start-up for nothing.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_as_number(cls, data: Any) -> Any:
        # Pydantic reads true as 1 for int and float fields. Swap such a boolean for a marker
        # that no number validator accepts, so the field's own error names it (with its path).
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, value in data.items():
            field_info = cls.model_fields.get(name) if isinstance(value, bool) else None
            accepted = _scalar_types(field_info.annotation) if field_info else set()
            if accepted & {int, float} and bool not in accepted:
                out[name] = BooleanGiven(value)
        return out


class FileRef(ConfigModel):
    """An array stored in a file: .npy, .npz (with ``key``) or .csv. Never unpickled."""

    path: str = Field(
        description="File path; relative paths resolve against the directory "
        "the runner was started from."
    )
    key: str | None = Field(default=None, description="Array name inside a .npz file.")


def _file_or_inline(value: Any) -> str:
    # Called on raw config data when validating and on the models when serializing.
    return "file" if isinstance(value, (dict, FileRef)) else "inline"


WeightValue = Annotated[
    Annotated[FileRef, Tag("file")] | Annotated[InlineArray, Tag("inline")],
    Discriminator(_file_or_inline),
]


def _weights_kind(value: Any) -> str:
    return (
        "file"
        if isinstance(value, FileRef) or (isinstance(value, dict) and "path" in value)
        else "params"
    )


Weights = Annotated[
    Annotated[FileRef, Tag("file")] | Annotated[dict[str, WeightValue], Tag("params")],
    Discriminator(_weights_kind),
]


class PlanError(ValueError):
    """A layer cannot accept what feeds it; the planner adds the config path."""


class SpecBase(ConfigModel):
    """Fields every layer spec shares. Specs are strict (unknown keys fail) and frozen."""

    inputs: list[str] | None = Field(
        default=None,
        description="Names of model inputs or earlier layers this layer reads. "
        "Default: the previous layer (the first layer reads the only model input).",
    )
    weights: Weights | None = Field(
        default=None,
        description="Weights by parameter name (inline nested lists or {path, key}), or one "
        "{path: file.npz} keyed by parameter name; else drawn by `init` with the run's seed.",
    )


@dataclass(frozen=True)
class Context:
    """Everything a pass may depend on besides its inputs: passed, never global, never changed
    (a per-call variant is ``dataclasses.replace(ctx, need_input_grad=False)``)."""

    training: bool = False
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    keep_cache: bool = False  # only fit needs caches; predict frees activations early
    # Backward only. False: nobody reads this call's input gradient (the layer reads model
    # inputs), so a layer may return None for dx and skip that work. Default: compute it.
    need_input_grad: bool = True


#: (key, type, reads, per-sample output shape, parameter count) of a layer inside a composite.
SummaryRow = tuple[str, str, str, tuple, int]


class Layer(ABC):
    """Base of every layer. Subclasses set ``Spec`` and read parameters from ``self.spec``.

    The whole contract the runner relies on, each member with its default:

    - ``Spec``, ``multi_input`` (False), ``passes_mask`` (False), ``differentiable`` (True),
      ``heads`` (0: one output);
    - plan: ``arity_error(n)`` (None), ``output_shape``, ``output_mask``, ``param_shapes``
      ({}), ``inner_elements`` (0), ``children()`` ([]), ``summary_rows`` ([]);
    - build: ``init_params``, ``named_params`` (``self.params``);
    - run: ``forward``, ``activity_penalties`` ({}), ``backward``;
    - deferred outputs (``layers.deferred``, predict only, the plan's choice):
      ``defers(input_shape)`` (None) and ``forward_deferred`` for a producer,
      ``reads_deferred(kind)`` (False) for a reader;
    - penalties: ``weight_penalty`` and ``weight_penalty_grads`` (the children's, summed).
    """

    Spec: ClassVar[type[SpecBase]]
    multi_input: ClassVar[bool] = False
    passes_mask: ClassVar[bool] = False  # legacy MaskedLayer: forwards its input mask unchanged
    differentiable: bool = True  # has a checked backward; fit refuses layers without
    #: Number of separate outputs, read as ``<name>.0``, ``<name>.1``, ...; 0: one output.
    heads: int = 0

    def __init__(self, spec: SpecBase, name: str) -> None:
        self.spec = spec
        self.name = name
        self.params: dict[str, np.ndarray] = {}

    # ---- plan (pure) -------------------------------------------------------------------
    def arity_error(self, n_inputs: int) -> str | None:
        """Why ``n_inputs`` inputs cannot feed this layer (None: they can)."""
        return None

    @abstractmethod
    def output_shape(self, input_shape: Any) -> Shape: ...

    def output_mask(self, input_shape: Any, has_mask: Any) -> bool:
        """Whether the output carries a mask. Layers that cannot use a mask refuse it here."""
        if self.multi_input:
            return False
        if has_mask and not self.passes_mask:
            raise PlanError(
                f"{type(self).__name__} cannot take a masked input: it would silently compute on "
                "masked timesteps"
            )
        return bool(has_mask)

    def param_shapes(self, input_shape: Any) -> dict[str, Shape]:
        return {}

    def inner_elements(self, input_shape: Any) -> int:
        """Per-sample count of the values this layer holds while it runs besides its output
        (the outputs of the layers inside a composite, a Lambda's intermediate results)."""
        return 0

    def children(self) -> list[tuple[str, Layer, str]]:
        """Layers held by this one: ``(key prefix, child, config sub-path)`` triples."""
        return []

    def summary_rows(self, input_shape: Any) -> list[SummaryRow]:
        """Rows of the layers inside this one, for the summary and diagram ([]: none)."""
        return []

    # ---- build ---------------------------------------------------------------------------
    def init_params(self, input_shape: Any, rng: np.random.Generator, dtype: np.dtype) -> None:
        """Draw every parameter (subclasses with weights override)."""
        self.params = {}

    def named_params(self) -> dict[str, np.ndarray]:
        """Parameters keyed relative to this layer (composites prefix their children's)."""
        return self.params

    # ---- penalties -------------------------------------------------------------------------
    def weight_penalty(self) -> float:
        """W/b regularizer penalty of this layer (added to the training loss once per step,
        however often the layer runs); default: the children's."""
        return sum(child.weight_penalty() for _, child, _ in self.children())

    def weight_penalty_grads(self) -> dict[str, np.ndarray]:
        """Gradient of ``weight_penalty()`` keyed as ``named_params()``. Never inside
        ``backward``'s grads: the trainer adds it once per step. Default: the children's."""
        out: dict[str, np.ndarray] = {}
        for prefix, child, _ in self.children():
            out.update({f"{prefix}{k}": g for k, g in child.weight_penalty_grads().items()})
        return out

    def activity_penalties(self, y: Any, cache: Any) -> dict[str, float]:
        """Activity penalties of the pass that returned ``(y, _, cache)``, keyed
        ``<layer name>/activity`` (a composite: its inner layers' names). The runner adds them
        to the loss; ``cache`` is whatever ``forward`` returned (None allowed in predict)."""
        return {}

    # ---- run -----------------------------------------------------------------------------
    @abstractmethod
    def forward(self, x: Any, mask: Any, ctx: Context) -> tuple[Any, Any, Any]: ...

    def backward(
        self, dy: np.ndarray, cache: Any, ctx: Context
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """Chain rule: gradients of the input(s) and of the parameters, from the output's."""
        raise NotImplementedError(f"{type(self).__name__} has no backward pass")

    # ---- deferred outputs (the plan's choice: runner.graph.fusion) ------------------------
    def defers(self, input_shape: Any) -> str | None:
        """The kind of ``layers.deferred`` value ``forward_deferred`` can hand on instead of
        this layer's output (None: it cannot)."""
        return None

    def forward_deferred(self, x: Any, mask: Any, ctx: Context) -> tuple[Any, Any, Any]:
        """``forward``, its output left deferred (x may be a deferred value of the same kind)."""
        raise NotImplementedError(f"{type(self).__name__} cannot defer its output")

    def reads_deferred(self, kind: str) -> bool:
        """True: ``forward`` accepts a deferred value of this kind as its input."""
        return False


def add_penalties(total: dict[str, float], penalties: dict[str, float]) -> None:
    """Accumulate activity penalties (a layer run twice, as in Siamese, counts twice)."""
    for key, value in penalties.items():
        total[key] = total.get(key, 0.0) + float(value)

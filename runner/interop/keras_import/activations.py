"""Keras activation names, per version -> ours, or a Lambda expression where only the formula
fits, or a refusal where nothing does.

Checked against our ``layers/activations.py`` (the legacy formulas):

- ``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)`` in Keras 0.3 to 2 (and tf-keras): ours.
  Keras 3 changed it to ``relu6(x + 3) / 6``: that becomes a Lambda of the same formula.
- Keras 3's ``silu`` is Keras 2's ``swish``; ``hard_silu`` / ``hard_swish``, ``relu6`` and
  ``exponential`` become Lambdas of their formulas; 0.1's ``time_distributed_softmax`` is
  ``softmax`` (per timestep over the last axis, as ours).
- ``gelu`` by name is the exact form in Keras 2 and 3, as ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from layers.activations import ActivationName

# Ours, taken by name in every version; hard_sigmoid's formula changed in Keras 3 (below).
SAME = tuple(name for name in get_args(ActivationName) if name != "hard_sigmoid")
RENAMED = {"silu": "swish", "time_distributed_softmax": "softmax"}
KERAS3_LAMBDAS = {
    "hard_sigmoid": "clip(x + 3, 0, 6) / 6",
    "hard_silu": "x * clip(x + 3, 0, 6) / 6",
    "hard_swish": "x * clip(x + 3, 0, 6) / 6",
    "relu6": "clip(x, 0, 6)",
}
ANY_LAMBDAS = {"exponential": "exp(x)"}


@dataclass(frozen=True)
class Mapped:
    ours: str | None = None  # our activation name
    expression: str | None = None  # else a Lambda expression of the same formula
    problem: str | None = None  # else why not


def activation_name(value: Any) -> str | None:
    """The name in a layer config: a string, or Keras 3's {class_name: function, config: NAME}
    for a built-in (a custom function is refused by the caller: its module is not Keras')."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        module = value.get("module")
        config = value.get("config")
        if isinstance(config, str) and (module is None or str(module).startswith("keras")):
            return config
    return None


def map_activation(value: Any, version: int) -> Mapped:
    name = activation_name(value)
    if name is None:
        return Mapped(
            problem=f"activation {value!r} is a custom function: its code is never imported; "
            "use a built-in activation, or our Lambda layer's expressions"
        )
    if name == "hard_sigmoid":
        if version >= 3:
            return Mapped(expression=KERAS3_LAMBDAS[name])
        return Mapped(ours=name)
    if name in SAME:
        return Mapped(ours=name)
    if name in RENAMED:
        return Mapped(ours=RENAMED[name])
    if version >= 3 and name in KERAS3_LAMBDAS:
        return Mapped(expression=KERAS3_LAMBDAS[name])
    if name in ANY_LAMBDAS:
        return Mapped(expression=ANY_LAMBDAS[name])
    return Mapped(
        problem=f"activation {name!r} has no counterpart here (ours: {', '.join(SAME)}, "
        "hard_sigmoid); a Lambda layer can compute it if its formula fits our expressions"
    )

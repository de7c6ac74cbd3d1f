"""References to the values of the graph: a model input, a layer's output, or one output
("head") of a multi-output layer (Siamese with merge_mode none).

Configs spell them as strings: ``x`` (an input), ``dense`` (a layer), ``siam.1`` (head 1 of
``siam``). This module is the only place that reads that spelling: ``parse_ref`` turns it into
a ``Ref`` once, when the plan is made (``runner.graph.plan``), and everything after uses
``ref.node`` and ``ref.head``. Names of inputs and layers are identifiers (no '.'), so the
spelling is never ambiguous.

A ``Ref`` *is* its spelling (a ``str`` subclass): it equals, hashes and prints as ``"siam.1"``,
so dicts of values keyed by refs stay keyed by the names that messages, ``result.json`` and
``outputs.npz`` use, and a caller may look a value up by its plain name.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["Ref", "parse_ref"]

# A head index as configs write it: 0, 1, 12 (no sign, no leading zero, ASCII digits only).
_HEAD = re.compile(r"0|[1-9][0-9]*")


class Ref(str):
    """``node`` (an input or layer name) and ``head`` (which output of a multi-output layer;
    None for the single output of a layer, or an input). Immutable."""

    node: str
    head: int | None

    def __new__(cls, node: str, head: int | None = None) -> Ref:
        self = super().__new__(cls, node if head is None else f"{node}.{head}")
        self.__dict__.update(node=str(node), head=head)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Ref is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Ref is immutable (cannot delete {name!r})")

    def __reduce__(self):  # pickle and copy rebuild it from its parts, not from the spelling
        return (Ref, (self.node, self.head))


def parse_ref(text: str) -> Ref:
    """``"siam.1"`` -> ``Ref("siam", 1)``; ``"dense"`` -> ``Ref("dense")``.

    Anything else after the last '.' (``"a.x"``, ``"a.-1"``, ``"a.01"``) is not a head: the
    whole text is kept as a name, which the plan then reports as unknown."""
    if isinstance(text, Ref):
        return text
    node, dot, index = str(text).rpartition(".")
    if dot and node and _HEAD.fullmatch(index):
        return Ref(node, int(index))
    return Ref(str(text))

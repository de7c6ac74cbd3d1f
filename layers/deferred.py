"""Values the plan lets a layer hand on unfinished, for readers that finish them cheaper.

``runner.graph.fusion`` decides, from the config alone, which layers defer their output and
records it on the plan; the layer's ``forward_deferred`` then returns one of these instead of
an array. Every kind can still be turned into the plain array (``materialize``), which the
executor does for any reader that does not read that kind.

- ``"steps"`` (``layers.steps.DeferredSteps``, or an array whose masked steps are left
  unspecified): readers read only kept timesteps (TimeDistributedMerge);
- ``"concat"`` (``DeferredConcat``): the parts of a concatenation along the last axis, for a
  Dense reader that multiplies each part by its own rows of W (no concatenated copy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class Deferred:
    """Base of the deferred values: ``kind`` names what readers must accept."""

    kind: str = ""

    def materialize(self) -> np.ndarray:
        raise NotImplementedError


@dataclass
class DeferredConcat(Deferred):
    """``np.concatenate(parts, axis=-1)``, kept as its parts."""

    parts: list[np.ndarray]
    kind = "concat"

    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.parts[0].shape[:-1], sum(p.shape[-1] for p in self.parts))

    def materialize(self) -> np.ndarray:
        return np.concatenate(self.parts, axis=-1)

"""The context of every forward pass (phase, dropout stream, dtype), built here and only here.

``run()``'s predict task, ``task=fit`` (training steps and validation) and the Python API all
take their ``layers.base.Context`` from ``pass_context``, so the same config gives the same
numbers whichever way it is run.
"""

from __future__ import annotations

from typing import Any

from layers.base import Context
from runner.streams import dropout_rng


def phase(spec: Any, training: bool | None = None) -> bool:
    """The forward phase: an explicit choice, else the run's ``training``, else the model's
    own ``training``, else the test phase (False)."""
    if training is not None:
        return training
    if spec.training is not None:
        return spec.training
    return bool(spec.model.training)


def pass_context(plan: Any, training: bool, keep_cache: bool = False) -> Context:
    """A fresh Context for passes over ``plan``: its dtype and the run's dropout stream."""
    return Context(
        training=training, rng=dropout_rng(plan.spec.seed), dtype=plan.dtype, keep_cache=keep_cache
    )

"""A plain NumPy library of Keras-style core layers (no Hydra, no runner imports).

Importing this package registers every built-in layer. ``LayerSpec`` is the discriminated
union of their specs; plugins extend the registry and ``registry.spec_union()`` then covers them.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from layers.activation import Activation, ActivationSpec
from layers.activity_regularization import ActivityRegularization, ActivityRegularizationSpec
from layers.base import Context, Layer, PlanError, Shape, SpecBase
from layers.dense import Dense, DenseSpec
from layers.dropout import Dropout, DropoutSpec
from layers.flatten import Flatten, FlattenSpec
from layers.masking import Masking, MaskingSpec
from layers.permute import Permute, PermuteSpec
from layers.repeat_vector import RepeatVector, RepeatVectorSpec
from layers.reshape import Reshape, ReshapeSpec
from layers.time_distributed_dense import TimeDistributedDense, TimeDistributedDenseSpec
from layers.time_distributed_merge import TimeDistributedMerge, TimeDistributedMergeSpec

# The explicit, greppable list of built-in specs; tests keep it equal to the registry's
# built-in entries.
LayerSpec = Annotated[
    Union[  # noqa: UP007
        MaskingSpec, DropoutSpec, ActivationSpec, ReshapeSpec, PermuteSpec, FlattenSpec,
        RepeatVectorSpec, DenseSpec, TimeDistributedDenseSpec, TimeDistributedMergeSpec,
        ActivityRegularizationSpec,
    ],
    Field(discriminator="type"),
]

__all__ = [
    "Activation", "ActivityRegularization", "Context", "Dense", "Dropout", "Flatten", "Layer",
    "LayerSpec", "Masking", "Permute", "PlanError", "RepeatVector", "Reshape", "Shape",
    "SpecBase", "TimeDistributedDense", "TimeDistributedMerge",
]

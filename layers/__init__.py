"""A plain NumPy library of Keras-style core layers (no Hydra, no runner imports).

Importing this package registers every built-in layer. ``LayerSpec`` is the discriminated
union of their specs; plugins extend the registry and ``registry.spec_union()`` then covers them.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from layers import registry
from layers.activation import Activation, ActivationSpec
from layers.activity_regularization import ActivityRegularization, ActivityRegularizationSpec
from layers.autoencoder import AutoEncoder, AutoEncoderSpec
from layers.base import Context, Layer, PlanError, Shape, SpecBase
from layers.dense import Dense, DenseSpec
from layers.dropout import Dropout, DropoutSpec
from layers.flatten import Flatten, FlattenSpec
from layers.lambda_layer import Lambda, LambdaSpec
from layers.masking import Masking, MaskingSpec
from layers.merge import Merge, MergeSpec
from layers.permute import Permute, PermuteSpec
from layers.repeat_vector import RepeatVector, RepeatVectorSpec
from layers.reshape import Reshape, ReshapeSpec
from layers.siamese import Siamese, SiameseSpec
from layers.time_distributed_dense import TimeDistributedDense, TimeDistributedDenseSpec
from layers.time_distributed_merge import TimeDistributedMerge, TimeDistributedMergeSpec

# The explicit, greppable list of built-in specs; tests keep it equal to the registry's
# built-in entries.
LayerSpec = Annotated[
    Union[  # noqa: UP007
        MaskingSpec, DropoutSpec, ActivationSpec, ReshapeSpec, PermuteSpec, FlattenSpec,
        RepeatVectorSpec, DenseSpec, TimeDistributedDenseSpec, TimeDistributedMergeSpec,
        ActivityRegularizationSpec, MergeSpec, AutoEncoderSpec, LambdaSpec, SiameseSpec,
    ],
    Field(discriminator="type"),
]
registry.spec_union()  # resolves the layers inside composites (AutoEncoder, Siamese)

__all__ = [
    "Activation", "ActivityRegularization", "AutoEncoder", "Context", "Dense", "Dropout",
    "Flatten", "Lambda", "Layer", "LayerSpec", "Masking", "Merge", "Permute", "PlanError",
    "RepeatVector", "Reshape", "Shape", "Siamese", "SpecBase", "TimeDistributedDense",
    "TimeDistributedMerge",
]

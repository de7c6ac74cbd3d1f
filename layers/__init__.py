"""A plain NumPy library of Keras-style core layers (no Hydra, no runner imports).

Importing this package registers every built-in layer. ``registry.spec_union()`` is the
discriminated union of the registered specs (plugins extend the registry, and the union with it).
Spec classes build their validators on first use, composites with every layer registered then.
"""

from __future__ import annotations

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

__all__ = [
    "Activation",
    "ActivationSpec",
    "ActivityRegularization",
    "ActivityRegularizationSpec",
    "AutoEncoder",
    "AutoEncoderSpec",
    "Context",
    "Dense",
    "DenseSpec",
    "Dropout",
    "DropoutSpec",
    "Flatten",
    "FlattenSpec",
    "Lambda",
    "LambdaSpec",
    "Layer",
    "Masking",
    "MaskingSpec",
    "Merge",
    "MergeSpec",
    "Permute",
    "PermuteSpec",
    "PlanError",
    "RepeatVector",
    "RepeatVectorSpec",
    "Reshape",
    "ReshapeSpec",
    "Shape",
    "Siamese",
    "SiameseSpec",
    "SpecBase",
    "TimeDistributedDense",
    "TimeDistributedDenseSpec",
    "TimeDistributedMerge",
    "TimeDistributedMergeSpec",
]

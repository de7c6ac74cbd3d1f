"""Names users bring from Keras 1-3, answered with this runner's legacy (Keras 0.3) spelling.

These are never accepted as aliases: every parameter has one spelling. The tables only let an
error say exactly what to write instead, and they win over fuzzy "did you mean" matching (a
fuzzy match would answer ``units`` with ``init``). Used by ``validate`` (model files) and
``overrides`` (command-line keys).
"""

from __future__ import annotations

from typing import Any

# Keras name -> (era, our name, the layer types that have it; None = any layer with our name)
RENAMED: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "units": ("Keras 2", "output_dim", ("Dense", "TimeDistributedDense")),
    "rate": ("Keras 2", "p", ("Dropout",)),
    "target_shape": ("Keras 1", "dims", ("Reshape",)),
    "kernel_initializer": ("Keras 2", "init", ("Dense", "TimeDistributedDense")),
    "kernel_regularizer": ("Keras 2", "W_regularizer", ("Dense", "TimeDistributedDense")),
    "bias_regularizer": ("Keras 2", "b_regularizer", ("Dense", "TimeDistributedDense")),
    "axis": ("Keras 2", "concat_axis", ("Merge", "Siamese")),
    "axes": ("Keras 2", "dot_axes", ("Merge", "Siamese")),
}

# Keras parameters with no counterpart here -> what to do instead
UNSUPPORTED: dict[str, str] = {
    "input_dim": (
        "'input_dim' is not needed here: a layer's input size comes from the layer or input "
        "that feeds it (an input's per-sample shape is model.inputs.NAME.shape)"
    ),
    "input_shape": (
        "'input_shape' is written here as model.inputs.NAME.shape: the per-sample shape, batch "
        "axis excluded (inputs: {x: {shape: [3]}}); a layer reads an input with inputs: [x]"
    ),
    "batch_input_shape": (
        "'batch_input_shape' is written here as model.inputs.NAME.shape without the batch "
        "axis (inputs: {x: {shape: [3]}}); batch_size is a run setting"
    ),
    "use_bias": (
        "'use_bias' (Keras 2) has no equivalent here: Dense always adds a bias b, "
        "as in legacy Keras"
    ),
    "bias_initializer": (
        "'bias_initializer' (Keras 2) has no equivalent here: biases start at zero, as in "
        "legacy Keras; give other values with weights: {b: [...]}"
    ),
    "kernel_constraint": (
        "'kernel_constraint' (Keras 2) has no equivalent here: weight constraints "
        "(legacy W_constraint) are not supported"
    ),
    "bias_constraint": (
        "'bias_constraint' (Keras 2) has no equivalent here: weight constraints "
        "(legacy b_constraint) are not supported"
    ),
}

# Keras 2/3 layer classes -> how the same layer is written here
LAYER_TYPES: dict[str, str] = {
    "Add": "Merge with mode: sum (type: Merge, mode: sum, inputs: [a, b])",
    "Multiply": "Merge with mode: mul (type: Merge, mode: mul, inputs: [a, b])",
    "Average": "Merge with mode: ave (type: Merge, mode: ave, inputs: [a, b])",
    "Maximum": "Merge with mode: max (type: Merge, mode: max, inputs: [a, b])",
    "Concatenate": (
        "Merge with mode: concat (type: Merge, mode: concat, concat_axis: -1, inputs: [a, b])"
    ),
    "Dot": "Merge with mode: dot (type: Merge, mode: dot, dot_axes: -1, inputs: [a, b])",
    "TimeDistributed": (
        "TimeDistributedDense for a Dense inside (type: TimeDistributedDense with the "
        "Dense parameters on the layer itself: output_dim, init, activation, ...)"
    ),
    "GlobalAveragePooling1D": "TimeDistributedMerge with mode: ave (type: TimeDistributedMerge, "
    "mode: ave)",
    "InputLayer": "model.inputs, not a layer (inputs: {x: {shape: [3]}}; a layer reads it "
    "with inputs: [x])",
    "Input": "model.inputs, not a layer (inputs: {x: {shape: [3]}}; a layer reads it "
    "with inputs: [x])",
}


def layer_type(tag: Any) -> str | None:
    """The answer for a Keras 2/3 class name given as ``type:``, else None."""
    if not isinstance(tag, str) or tag not in LAYER_TYPES:
        return None
    return f"{tag!r} is a Keras 2/3 layer; here it is {LAYER_TYPES[tag]}"


def renamed(key: str) -> str | None:
    """Our name for a renamed Keras parameter, else None."""
    entry = RENAMED.get(key)
    return entry[1] if entry else None


def parameter(
    key: str, layer: str | None, fields: set[str], write: str | None = None
) -> str | None:
    """The answer for Keras parameter ``key`` on a layer of type ``layer`` (None: unknown) with
    ``fields``, else None. ``write`` is how to write the fix ("output_dim: 8")."""
    if key in UNSUPPORTED:
        return UNSUPPORTED[key]
    if key not in RENAMED:
        return None
    era, ours, types = RENAMED[key]
    text = f"{key!r} is {era}'s name for {ours!r}"
    if layer is None or ours in fields:
        return f"{text} (write {write})" if write else text
    owners = " and ".join(types) if types else "other layers"
    return f"{text}, a parameter of {owners}; {layer} has no such parameter"

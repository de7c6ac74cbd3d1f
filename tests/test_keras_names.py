"""Names users bring from Keras 1-3 get a targeted answer (never an alias, never a fuzzy guess).

The table lives in runner/config/keras_names.py; these are the exact messages, in model files
(through validate, as every task and `layer-runner check` see them) and in command-line
overrides (through the real CLI).
"""

from __future__ import annotations

import pytest

from runner.config.validate import validate
from runner.errors import ConfigError

X = {"x": {"shape": [3], "data": [[1, 2, 3]]}}
SEQ = {"x": {"shape": [2, 3], "data": [[[1, 2, 3], [4, 5, 6]]]}}


def problems(layers, inputs=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate({"model": {"inputs": inputs or X, "layers": layers}})
    return [str(p) for p in info.value.problems]


PARAMS = [
    # (layer settings, message) - the layer is named "bad"
    (
        {"type": "Dense", "units": 8},
        "model.layers.bad.units: 'units' is Keras 2's name for 'output_dim' (write output_dim: 8)",
    ),
    (
        {"type": "TimeDistributedDense", "units": 4},
        "model.layers.bad.units: 'units' is Keras 2's name for 'output_dim' (write output_dim: 4)",
    ),
    (
        {"type": "Dropout", "rate": 0.5},
        "model.layers.bad.rate: 'rate' is Keras 2's name for 'p' (write p: 0.5)",
    ),
    (
        {"type": "Reshape", "target_shape": [3, 1]},
        "model.layers.bad.target_shape: 'target_shape' is Keras 1's name for 'dims' "
        "(write dims: [3, 1])",
    ),
    (
        {"type": "Dense", "output_dim": 2, "kernel_initializer": "he_normal"},
        "model.layers.bad.kernel_initializer: 'kernel_initializer' is Keras 2's name for "
        "'init' (write init: he_normal)",
    ),
    (
        {"type": "Dense", "output_dim": 2, "kernel_regularizer": {"l2": 0.01}},
        "model.layers.bad.kernel_regularizer: 'kernel_regularizer' is Keras 2's name for "
        "'W_regularizer' (write W_regularizer: {l2: 0.01})",
    ),
    (
        {"type": "Dense", "output_dim": 2, "bias_regularizer": {"l1": 0.1}},
        "model.layers.bad.bias_regularizer: 'bias_regularizer' is Keras 2's name for "
        "'b_regularizer' (write b_regularizer: {l1: 0.1})",
    ),
    (
        {"type": "Dense", "output_dim": 2, "input_dim": 3},
        "model.layers.bad.input_dim: 'input_dim' is not needed here: a layer's input size comes "
        "from the layer or input that feeds it (an input's per-sample shape is "
        "model.inputs.NAME.shape)",
    ),
    (
        {"type": "Dense", "output_dim": 2, "input_shape": [3]},
        "model.layers.bad.input_shape: 'input_shape' is written here as model.inputs.NAME.shape: "
        "the per-sample shape, batch axis excluded (inputs: {x: {shape: [3]}}); a layer reads "
        "an input with inputs: [x]",
    ),
    (
        {"type": "Dense", "output_dim": 2, "use_bias": False},
        "model.layers.bad.use_bias: 'use_bias' (Keras 2) has no equivalent here: Dense always "
        "adds a bias b, as in legacy Keras",
    ),
    (
        {"type": "Dense", "output_dim": 2, "kernel_constraint": "max_norm"},
        "model.layers.bad.kernel_constraint: 'kernel_constraint' (Keras 2) has no equivalent "
        "here: weight constraints (legacy W_constraint) are not supported",
    ),
    (
        {"type": "Merge", "mode": "concat", "axis": -1},
        "model.layers.bad.axis: 'axis' is Keras 2's name for 'concat_axis' (write concat_axis: -1)",
    ),
    (
        {"type": "Merge", "mode": "dot", "axes": [1, 1]},
        "model.layers.bad.axes: 'axes' is Keras 2's name for 'dot_axes' (write dot_axes: [1, 1])",
    ),
    (
        {"type": "Dense", "output_dim": 2, "rate": 0.5},
        "model.layers.bad.rate: 'rate' is Keras 2's name for 'p', a parameter of Dropout; "
        "Dense has no such parameter",
    ),
]


@pytest.mark.parametrize(("layer", "message"), PARAMS, ids=[m.split(":")[0] for _, m in PARAMS])
def test_keras_parameter_names(layer, message):
    # exactly one line: the missing legacy key (output_dim, p, dims) is not reported again
    assert problems({"bad": layer}) == [message]


def test_activity_regularizer_is_the_same_name():
    validate(
        {
            "model": {
                "inputs": X,
                "layers": {
                    "d": {"type": "Dense", "output_dim": 2, "activity_regularizer": {"l1": 1}}
                },
            }
        }
    )


MERGE_FORM = "inputs: [a, b])"
TYPES = [
    (
        "Add",
        "'Add' is a Keras 2/3 layer; here it is Merge with mode: sum (type: Merge, mode: sum, ",
    ),
    ("Multiply", "'Multiply' is a Keras 2/3 layer; here it is Merge with mode: mul (type: Merge, "),
    ("Average", "'Average' is a Keras 2/3 layer; here it is Merge with mode: ave (type: Merge, "),
    ("Maximum", "'Maximum' is a Keras 2/3 layer; here it is Merge with mode: max (type: Merge, "),
    ("Concatenate", "'Concatenate' is a Keras 2/3 layer; here it is Merge with mode: concat "),
    (
        "Dot",
        "'Dot' is a Keras 2/3 layer; here it is Merge with mode: dot (type: Merge, mode: dot, ",
    ),
]


@pytest.mark.parametrize(("tag", "start"), TYPES)
def test_keras_merge_layers(tag, start):
    [line] = problems({"a": {"type": "Dense", "output_dim": 2}, "bad": {"type": tag}})
    assert line.startswith("model.layers.bad: " + start)
    assert line.endswith(MERGE_FORM)


def test_exact_merge_messages():
    assert problems({"bad": {"type": "Concatenate"}}) == [
        "model.layers.bad: 'Concatenate' is a Keras 2/3 layer; here it is Merge with mode: concat "
        "(type: Merge, mode: concat, concat_axis: -1, inputs: [a, b])"
    ]
    assert problems({"bad": {"type": "Add"}}) == [
        "model.layers.bad: 'Add' is a Keras 2/3 layer; here it is Merge with mode: sum "
        "(type: Merge, mode: sum, inputs: [a, b])"
    ]


def test_time_distributed():
    assert problems({"bad": {"type": "TimeDistributed", "layer": {"type": "Dense"}}}, SEQ) == [
        "model.layers.bad: 'TimeDistributed' is a Keras 2/3 layer; here it is "
        "TimeDistributedDense for a Dense inside (type: TimeDistributedDense with the Dense "
        "parameters on the layer itself: output_dim, init, activation, ...)"
    ]


def test_global_average_pooling():
    assert problems({"bad": {"type": "GlobalAveragePooling1D"}}, SEQ) == [
        "model.layers.bad: 'GlobalAveragePooling1D' is a Keras 2/3 layer; here it is "
        "TimeDistributedMerge with mode: ave (type: TimeDistributedMerge, mode: ave)"
    ]


@pytest.mark.parametrize("tag", ["Input", "InputLayer"])
def test_input_layer(tag):
    assert problems({"bad": {"type": tag, "shape": [3]}}) == [
        f"model.layers.bad: {tag!r} is a Keras 2/3 layer; here it is model.inputs, not a layer "
        "(inputs: {x: {shape: [3]}}; a layer reads it with inputs: [x])"
    ]


def test_layers_as_a_list():
    assert problems([{"type": "Dense", "output_dim": 2}, {"type": "Dropout", "p": 0.1}]) == [
        "model.layers: layers is a mapping from a layer's name to its settings, not a list "
        "(Keras Sequential style): write layers: {dense: {type: Dense, output_dim: 2}, ...}; "
        "layers run in the order written, each reading the previous one"
    ]


def test_fuzzy_matching_still_answers_typos():
    assert problems({"bad": {"type": "Dense", "output_dim": 2, "activaton": "relu"}}) == [
        "model.layers.bad.activaton: unknown key 'activaton' (did you mean 'activation'?)"
    ]


# ---- command-line overrides (the real CLI) ---------------------------------------------------
OVERRIDES = [
    (
        ["model.layers.dense.ouput_dim=8"],
        "invalid config: model.layers.dense.ouput_dim (override model.layers.dense.ouput_dim=8): "
        "unknown key 'ouput_dim' (did you mean 'output_dim'?)",
    ),
    (
        ["sed=3"],
        "invalid config: sed (override sed=3): unknown key 'sed' (did you mean 'seed'?)",
    ),
    (
        ["model.layers.dense.units=8"],
        "invalid config: model.layers.dense.units (override model.layers.dense.units=8): "
        "'units' is Keras 2's name for 'output_dim' (write model.layers.dense.output_dim=8)",
    ),
    (
        ["model.layers.dense.W_regularizer={l2:0.1}"],
        "invalid config: model.layers.dense.W_regularizer (override "
        "model.layers.dense.W_regularizer={l2:0.1}): Dense accepts 'W_regularizer' but the "
        "model file does not set it; to add it write +model.layers.dense.W_regularizer={l2:0.1} "
        "(++model.layers.dense.W_regularizer={l2:0.1} adds or replaces)",
    ),
    (
        ["model.layers.dense.zzz=1"],
        "invalid config: model.layers.dense.zzz (override model.layers.dense.zzz=1): 'zzz' is "
        "not in the config; keys at model.layers.dense: W_regularizer, activation, "
        "activity_regularizer, b_regularizer, init, inputs, output_dim, weights; to add a key "
        "the config does not have write +model.layers.dense.zzz=1 "
        "(++model.layers.dense.zzz=1 adds or replaces)",
    ),
]


@pytest.mark.parametrize(("args", "message"), OVERRIDES, ids=[a[0] for a, _ in OVERRIDES])
def test_override_keys(cli, tmp_path, args, message):
    result = cli("+model=dense_example", *args, f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert "Traceback" not in result.stderr and "not in struct" not in result.stderr


def test_override_without_a_model(cli, tmp_path):
    result = cli("model.layers.dense.output_dim=8", f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "invalid config: override model.layers.dense.output_dim=8: no model is chosen: choose "
        "one first, e.g. python -m runner +model=NAME model.layers.dense.output_dim=8 "
        "(python -m runner lists the shipped models)"
    )

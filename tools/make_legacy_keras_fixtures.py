"""Write the Keras 0.3 and 1.x fixtures of tests/test_keras_import_legacy.py by hand.

No installable Keras writes these formats any more (0.3 needs Theano, 1.x an old TensorFlow),
so the files are written here from each version's documented format, read in its source
(keras-team/keras at the tags named):

- Keras 0.3.3: a layer's config is ``Layer.get_config`` (``name`` = class name, ``input_shape``
  of the first layer, ``cache_enabled``, ``custom_name``) plus the layer's own keys
  (keras/layers/core.py); ``Sequential.get_config`` is ``{name, layers}`` and
  ``Graph.get_config`` is ``{name, input_config, node_config, output_config, input_order,
  output_order, nodes}`` (keras/layers/containers.py); ``to_yaml`` is ``yaml.dump`` of the
  config, so tuples are ``!!python/tuple`` (keras/models.py); ``save_weights`` writes
  ``nb_layers`` and ``layer_k/param_n`` (``nb_params``) for a Sequential, one flat
  ``graph/param_n`` list for a Graph (keras/models.py), in ``get_weights`` order.
- Keras 1.2.2: ``{"class_name", "config", "keras_version"}`` (keras/engine/topology.py
  ``to_json``); a layer's config starts with ``name``, ``trainable`` and (first layer)
  ``batch_input_shape``, ``input_dtype``; Dense adds ``output_dim``, ``init``, ``activation``,
  regularizers, constraints, ``bias``, ``input_dim`` (keras/layers/core.py); weights
  ``NAME_W``, ``NAME_b`` in groups listed by ``layer_names`` with ``weight_names``
  (``save_weights_to_hdf5_group``); a functional model lists ``inbound_nodes`` as
  ``[[layer, call, tensor], ...]`` per call; ``merge()`` saves ``mode``, ``mode_type``,
  ``concat_axis`` and the ``dot_axes`` its validation normalised to a pair.

The weights are the seed post's hand-picked numbers (conf/model/*_example.yaml), so the tests
check the imported models against hand-computed values. Run with h5py and PyYAML:
``python tools/make_legacy_keras_fixtures.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import yaml

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras"
W3 = [[0.1, 0.2, 0.5]] * 3  # the seed post's Dense kernel


def layer03(kind: str, first_shape: tuple | None = None, **params) -> dict:
    """A Keras 0.3.3 layer config: Layer.get_config's keys, then the layer's own."""
    config: dict = {"name": kind}
    if first_shape is not None:
        config["input_shape"] = tuple(first_shape)
    config["cache_enabled"] = True
    config["custom_name"] = kind.lower()
    config.update(params)
    return config


def dense03(units: int, first_shape=None, activation="linear", **extra) -> dict:
    return layer03(
        "Dense",
        first_shape,
        output_dim=units,
        init="glorot_uniform",
        activation=activation,
        W_regularizer=None,
        b_regularizer=None,
        activity_regularizer=None,
        W_constraint=None,
        b_constraint=None,
        input_dim=None,
        **extra,
    )


def seq03(*layers: dict) -> dict:
    return {"name": "Sequential", "layers": list(layers)}


def save03_sequential(path: Path, groups: list[list]) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["nb_layers"] = len(groups)
        for k, params in enumerate(groups):
            g = f.create_group(f"layer_{k}")
            g.attrs["nb_params"] = len(params)
            for n, p in enumerate(params):
                g.create_dataset(f"param_{n}", data=np.asarray(p, dtype=np.float32))


def save03_graph(path: Path, params: list) -> None:
    with h5py.File(path, "w") as f:
        g = f.create_group("graph")
        g.attrs["nb_params"] = len(params)
        for n, p in enumerate(params):
            g.create_dataset(f"param_{n}", data=np.asarray(p, dtype=np.float32))


def write_json(path: Path, config: dict) -> None:
    path.write_text(json.dumps(config, default=list))  # tuples become lists, as in to_json


def keras03() -> None:
    out = OUT / "k03"
    out.mkdir(parents=True, exist_ok=True)
    # The seed post's Dense and TimeDistributedDense, in JSON and in to_yaml's YAML.
    dense = seq03(dense03(3, (3,)))
    write_json(out / "dense.json", dense)
    (out / "dense.yaml").write_text(yaml.dump(dense))  # !!python/tuple, as 0.3 wrote it
    save03_sequential(out / "dense_weights.h5", [[W3, [0, 0, 0]]])
    tdd = seq03(
        layer03(
            "TimeDistributedDense",
            (1, 3),
            output_dim=3,
            init="glorot_uniform",
            activation="linear",
            W_regularizer=None,
            b_regularizer=None,
            activity_regularizer=None,
            W_constraint=None,
            b_constraint=None,
            input_dim=3,
            input_length=1,
        )
    )
    write_json(out / "tdd.json", tdd)
    save03_sequential(out / "tdd_weights.h5", [[W3, [0, 0, 0]]])

    # One Sequential of the shape layers, Masking and Dropout (identity at predict).
    shapes = seq03(
        layer03("Dropout", (6,), p=0.3),
        layer03("Reshape", dims=(2, -1)),
        layer03("Permute", dims=(2, 1)),
        layer03("Flatten"),
        layer03("RepeatVector", n=2),
        layer03("ActivityRegularization", l1=0.01, l2=0.0),
        layer03("TimeDistributedMerge", mode="sum"),
        layer03("Activation", activation="hard_sigmoid"),
    )
    write_json(out / "shapes.json", shapes)
    masking = seq03(
        layer03("Masking", (2, 3), mask_value=1.0), layer03("Activation", activation="linear")
    )
    write_json(out / "masking.json", masking)

    # A Graph: the six reference activations of one input, and the TimeDistributedMerges.
    acts = ["tanh", "softplus", "relu", "sigmoid", "hard_sigmoid", "linear"]
    graph = {
        "name": "Graph",
        "input_config": [{"name": "x", "input_shape": (4,), "dtype": "float"}],
        "node_config": [
            {
                "name": a,
                "input": "x",
                "inputs": [],
                "merge_mode": "concat",
                "concat_axis": -1,
                "dot_axes": -1,
                "create_output": True,
            }
            for a in acts
        ],
        "output_config": [
            {
                "name": a,
                "input": a,
                "inputs": [],
                "merge_mode": "concat",
                "concat_axis": -1,
                "dot_axes": -1,
            }
            for a in acts
        ],
        "input_order": ["x"],
        "output_order": acts,
        "nodes": {a: layer03("Activation", activation=a) for a in acts},
    }
    write_json(out / "activations_graph.json", graph)

    # A Graph merging two Dense nodes in every mode (the outputs merge their inputs).
    modes = {
        "sum": {},
        "mul": {},
        "ave": {},
        "concat": {},
        "dot": {"dot_axes": -1},
        "cos": {"dot_axes": [[1], [1]]},
    }
    node = {"inputs": [], "merge_mode": "concat", "concat_axis": -1, "dot_axes": -1}
    merges = {
        "name": "Graph",
        "input_config": [{"name": "x", "input_shape": (2,), "dtype": "float"}],
        "node_config": [
            {"name": "left", "input": "x", **node, "create_output": False},
            {"name": "right", "input": "x", **node, "create_output": False},
        ],
        "output_config": [
            {
                "name": m,
                "input": None,
                "inputs": ["left", "right"],
                "merge_mode": m,
                "concat_axis": -1,
                "dot_axes": extra.get("dot_axes", -1),
            }
            for m, extra in modes.items()
        ],
        "input_order": ["x"],
        "output_order": list(modes),
        "nodes": {"left": dense03(2), "right": dense03(2)},
    }
    write_json(out / "merges_graph.json", merges)
    save03_graph(out / "merges_graph_weights.h5", [np.eye(2), [0, 0], np.eye(2), [4, 4]])

    # A Graph with shared nodes (Graph.add_shared_node: a Siamese node), merged by cos/concat.
    w, b = [[1, 0], [1, 1]], [0, 1]
    siamese = {
        "name": "Graph",
        "input_config": [
            {"name": "a", "input_shape": (2,), "dtype": "float"},
            {"name": "b", "input_shape": (2,), "dtype": "float"},
        ],
        "node_config": [
            {
                "name": "siam",
                "inputs": ["a", "b"],
                "merge_mode": "cos",
                "concat_axis": -1,
                "dot_axes": [[1], [1]],
                "create_output": True,
            },
            {
                "name": "joined",
                "inputs": ["a", "b"],
                "merge_mode": "concat",
                "concat_axis": -1,
                "dot_axes": -1,
                "create_output": True,
            },
        ],
        "output_config": [
            {
                "name": n,
                "input": n,
                "inputs": [],
                "merge_mode": "concat",
                "concat_axis": -1,
                "dot_axes": -1,
            }
            for n in ("siam", "joined")
        ],
        "input_order": ["a", "b"],
        "output_order": ["siam", "joined"],
        "nodes": {
            n: layer03(
                "Siamese",
                layer=dense03(2),
                inputs=[layer03("Layer"), layer03("Layer")],
                merge_mode=mode,
                concat_axis=-1,
                dot_axes=axes,
                is_graph=True,
            )
            for n, mode, axes in (("siam", "cos", [[1], [1]]), ("joined", "concat", -1))
        },
    }
    write_json(out / "siamese_graph.json", siamese)
    save03_graph(out / "siamese_graph_weights.h5", [w, b, w, b])

    # A Sequential starting with a Merge of two branch Sequentials (the 0.3 way to merge).
    branches = seq03(
        layer03(
            "Merge",
            layers=[seq03(dense03(2, (2,))), seq03(dense03(2, (2,)))],
            mode="concat",
            concat_axis=-1,
            dot_axes=-1,
        ),
        dense03(1),
    )
    write_json(out / "merge_branches.json", branches)
    save03_sequential(
        out / "merge_branches_weights.h5",
        [[np.eye(2), [0, 0], np.eye(2), [4, 4]], [[[1], [1], [1], [1]], [0.5]]],
    )

    # A Sequential starting with a Siamese over two branches (Siamese(layer, inputs, merge_mode));
    # get_weights: the shared layer's first, then each branch's (not in a Graph).
    siamese_seq = seq03(
        layer03(
            "Siamese",
            layer=dense03(2),
            inputs=[seq03(dense03(2, (2,))), seq03(dense03(2, (2,)))],
            merge_mode="sum",
            concat_axis=1,
            dot_axes=-1,
            is_graph=False,
        )
    )
    write_json(out / "siamese_branches.json", siamese_seq)
    save03_sequential(
        out / "siamese_branches_weights.h5",
        [[w, b, np.eye(2), [0, 0], np.eye(2), [1, 1]]],
    )

    # The AutoEncoder of autoencoder_example.yaml (encoder and decoder one Dense each).
    ae = seq03(
        layer03(
            "AutoEncoder",
            encoder_config=dense03(2, (4,), activation="relu"),
            decoder_config=dense03(4),
            output_reconstruction=True,
        )
    )
    ae["layers"][0] = {k: v for k, v in ae["layers"][0].items() if k != "cache_enabled"}
    write_json(out / "autoencoder.json", ae)
    enc_w = [[1, 0], [0, 1], [1, 0], [0, 1]]
    dec_w = [[0.5, 0, 0.5, 0], [0, 0.5, 0, 0.5]]
    save03_sequential(out / "autoencoder_weights.h5", [[enc_w, [0, 0], dec_w, [0, 0, 0, 0]]])

    # Refused: 0.3.0-0.3.2 saved a Lambda's bytecode (marshal.dumps) as a string in JSON; this
    # is such a string's start (not a complete code object: it is never loaded anyway).
    lam = seq03(
        layer03("Lambda", (3,), function="c\x01\x00\x00\x00\x01\x00\x00\x00", output_shape=None)
    )
    write_json(out / "lambda.json", lam)
    # 0.3.3 kept the function object itself; yaml.dump wrote it as a Python name tag.
    (out / "lambda.yaml").write_text(
        "layers:\n"
        "- cache_enabled: true\n"
        "  custom_name: lambda\n"
        "  function: !!python/name:__main__.%3Clambda%3E ''\n"
        "  input_shape: !!python/tuple [3]\n"
        "  name: Lambda\n"
        "  output_shape: null\n"
        "name: Sequential\n"
    )


def dense1(name: str, units: int, first_shape=None, activation="linear", bias=True) -> dict:
    config: dict = {"name": name, "trainable": True}
    if first_shape is not None:
        config["batch_input_shape"] = [None, *first_shape]
        config["input_dtype"] = "float32"
    config.update(
        output_dim=units,
        init="glorot_uniform",
        activation=activation,
        W_regularizer=None,
        b_regularizer=None,
        activity_regularizer=None,
        W_constraint=None,
        b_constraint=None,
        bias=bias,
        input_dim=first_shape[-1] if first_shape else None,
    )
    return {"class_name": "Dense", "config": config}


def save1(path: Path, layers: dict[str, list]) -> None:
    """Keras 1 save_weights: layer_names, and per layer its weights' names (weight_names:
    LAYER_W, LAYER_b of the layer that made them; a wrapper's are its inner layer's)."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in layers]
        for name, params in layers.items():
            g = f.create_group(name)
            names = [p for p, _ in params]
            g.attrs["weight_names"] = [n.encode() for n in names]
            for n, (_, value) in zip(names, params):
                g.create_dataset(n, data=np.asarray(value, dtype=np.float32))


def keras1() -> None:
    out = OUT / "k1"
    out.mkdir(parents=True, exist_ok=True)
    # Sequential: TimeDistributed(Dense) (the seed post's kernel), then a bias-free
    # TimeDistributedDense and Keras 1's hard_sigmoid (0.2 x + 0.5, as ours).
    seq = {
        "class_name": "Sequential",
        "config": [
            {
                "class_name": "TimeDistributed",
                "config": {
                    "name": "timedistributed_1",
                    "trainable": True,
                    "batch_input_shape": [None, 2, 3],
                    "input_dtype": "float32",
                    "layer": dense1("dense_1", 3),
                },
            },
            {
                "class_name": "TimeDistributedDense",
                "config": {
                    "name": "timedistributeddense_1",
                    "trainable": True,
                    "output_dim": 2,
                    "init": "glorot_uniform",
                    "activation": "hard_sigmoid",
                    "W_regularizer": None,
                    "b_regularizer": None,
                    "activity_regularizer": None,
                    "W_constraint": None,
                    "b_constraint": None,
                    "bias": False,
                    "input_dim": 3,
                    "input_length": None,
                },
            },
        ],
        "keras_version": "1.2.2",
    }
    write_json(out / "sequence.json", seq)
    # Keras 1: Sequential([Merge([Sequential([Dense]), Sequential([Dense])], mode="sum"),
    # Dense]); weights by name over the flattened layers (branches first).
    branches = {
        "class_name": "Sequential",
        "config": [
            {
                "class_name": "Merge",
                "config": {
                    "name": "merge_1",
                    "layers": [
                        {"class_name": "Sequential", "config": [dense1("dense_1", 2, (2,))]},
                        {"class_name": "Sequential", "config": [dense1("dense_2", 2, (2,))]},
                    ],
                    "mode": "sum",
                    "mode_type": "raw",
                    "concat_axis": -1,
                    "dot_axes": -1,
                    "output_shape": None,
                    "output_shape_type": "raw",
                    "output_mask": None,
                    "output_mask_type": "raw",
                    "arguments": {},
                },
            },
            dense1("dense_3", 1, activation="relu"),
        ],
        "keras_version": "1.2.2",
    }
    write_json(out / "merge_branches.json", branches)
    save1(
        out / "merge_branches_weights.h5",
        {
            "dense_1": [("dense_1_W", np.eye(2)), ("dense_1_b", [0, 0])],
            "dense_2": [("dense_2_W", 2 * np.eye(2)), ("dense_2_b", [1, 1])],
            "merge_1": [],
            "dense_3": [("dense_3_W", [[1], [-1]]), ("dense_3_b", [0])],
        },
    )
    save1(
        out / "sequence_weights.h5",
        {
            "timedistributed_1": [("dense_1_W", W3), ("dense_1_b", [0, 0, 0])],
            "timedistributeddense_1": [("timedistributeddense_1_W", [[0.1, 0], [0, 0.1], [0, 0]])],
        },
    )
    # Functional: one Dense shared by two inputs (a Siamese), merged by cos and by concat.
    w, b = [[1, 0], [1, 1]], [0, 1]

    def inp(name):
        return {
            "name": name,
            "class_name": "InputLayer",
            "config": {
                "batch_input_shape": [None, 2],
                "input_dtype": "float32",
                "sparse": False,
                "name": name,
            },
            "inbound_nodes": [],
        }

    def merge(name, mode, **extra):
        config = {
            "name": name,
            "mode": mode,
            "mode_type": "raw",
            "concat_axis": -1,
            "dot_axes": -1,
            "output_shape": None,
            "output_shape_type": "raw",
            "output_mask": None,
            "output_mask_type": "raw",
            "arguments": {},
        }
        config.update(extra)
        return {
            "name": name,
            "class_name": "Merge",
            "config": config,
            "inbound_nodes": [[["shared", 0, 0], ["shared", 1, 0]]],
        }

    shared = dense1("shared", 2)
    shared.update(name="shared", inbound_nodes=[[["a", 0, 0]], [["b", 0, 0]]])
    functional = {
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": [
                inp("a"),
                inp("b"),
                shared,
                merge("cos", "cos", dot_axes=[1, 1]),
                merge("joined", "concat"),
            ],
            "input_layers": [["a", 0, 0], ["b", 0, 0]],
            "output_layers": [["cos", 0, 0], ["joined", 0, 0]],
        },
        "keras_version": "1.2.2",
    }
    write_json(out / "siamese.json", functional)
    save1(
        out / "siamese_weights.h5",
        {"a": [], "b": [], "shared": [("shared_W", w), ("shared_b", b)], "cos": [], "joined": []},
    )


if __name__ == "__main__":
    keras03()
    keras1()

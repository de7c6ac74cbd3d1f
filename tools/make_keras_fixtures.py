"""Build the Keras 2 and Keras 3 fixtures of tests/test_keras_import*.py with real Keras.

Not run in CI, and not part of the test extra: it needs TensorFlow, Keras 3 and tf-keras, in a
venv of their own (they pin their own NumPy and protobuf)::

    python -m venv /tmp/keras-venv
    /tmp/keras-venv/bin/pip install tensorflow-cpu tf-keras keras h5py pyyaml
    KERAS_BACKEND=tensorflow /tmp/keras-venv/bin/python tools/make_keras_fixtures.py

For every model it writes, under tests/fixtures/keras/k2/ (tf-keras, Keras 2 API) and
tests/fixtures/keras/k3/ (Keras 3):

- NAME.json: ``model.to_json()``; k2 also NAME.yaml, the same config written with
  ``yaml.dump`` as Keras 2's ``to_yaml`` did (tf-keras removed ``to_yaml``; the text is the
  same function of the same config);
- NAME_weights.h5 (k2) / NAME.weights.h5 (k3): ``model.save_weights`` (Keras 2: the HDF5
  layout with ``layer_names``; Keras 3: the ``layers/NAME/vars/i`` layout);
- NAME.h5: ``model.save`` as a whole-model HDF5 (Keras 2; for one model Keras 3's legacy
  writer, so a Keras 3 file in the Keras 2 layout, keras_version 3.x, is covered too);
- NAME.keras: ``model.save`` as a Keras 3 archive (k3 only);
- (FORMATS below says which of these each model gets);
- NAME.io.npz: the inputs (``in/NAME``) and what Keras computed for each output
  (``out/NAME``), float32, in the test phase (``model.predict``).

Files are small (a few KB each): the models have a handful of units.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import yaml

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras"
RNG = np.random.default_rng(20261130)
# Which files each model gets (json, yaml, weights, h5, keras), to keep the fixtures small:
# every format is written for some models, every mapped model in one format at least.
FORMATS = {
    "k2": {
        "*": {"json", "weights"},
        "mlp": {"json", "yaml", "weights", "h5"},
        "merges": {"json", "yaml", "weights"},
        "siamese": {"json", "weights", "h5"},
        "sequence": {"yaml", "weights", "h5"},
        "lambda": {"json"},
        "unmapped": {"json"},
    },
    "k3": {
        "*": {"keras"},
        "mlp": {"keras", "json", "weights"},
        "shapes": {"keras", "json", "weights", "h5"},
    },
}


def _inputs(model, rows: int = 4, masked_steps: bool = False) -> dict[str, np.ndarray]:
    out = {}
    for tensor in model.inputs:
        name = tensor.name.split(":")[0]
        shape = tuple(tensor.shape)[1:]
        x = RNG.uniform(-2, 2, size=(rows, *shape)).astype(np.float32)
        if masked_steps:  # pad the last steps of some rows with the mask value 0
            x[0, -2:] = 0
            x[2, -1:] = 0
        out[name] = x
    return out


def _save(keras, model, folder: Path, name: str, masked_steps: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    inputs = _inputs(model, masked_steps=masked_steps)
    feed = [inputs[t.name.split(":")[0]] for t in model.inputs]
    outputs = model.predict(feed if len(feed) > 1 else feed[0], verbose=0)
    if not isinstance(outputs, list):
        outputs = [outputs]
    names = getattr(model, "output_names", None) or [model.layers[-1].name]
    arrays = {f"in/{k}": v for k, v in inputs.items()}
    arrays.update({f"out/{n}": np.asarray(o, dtype=np.float32) for n, o in zip(names, outputs)})
    np.savez(folder / f"{name}.io.npz", **arrays)
    config_json = model.to_json()
    formats = FORMATS[folder.name].get(name, FORMATS[folder.name]["*"])
    if "json" in formats:
        (folder / f"{name}.json").write_text(config_json)
    if "yaml" in formats:
        (folder / f"{name}.yaml").write_text(yaml.dump(json.loads(config_json)))
    if "weights" in formats:  # a .weights.h5 suffix would pick the Keras 3 layout in tf-keras
        suffix = "_weights.h5" if keras.__version__.startswith("2.") else ".weights.h5"
        model.save_weights(str(folder / f"{name}{suffix}"))
    if "h5" in formats:
        model.save(str(folder / f"{name}.h5"))
    if "keras" in formats:
        model.save(str(folder / f"{name}.keras"))
    print(f"{folder.name}/{name}: outputs {names}")


def _square():
    """v * v, its code object named as a fixture: Keras saves the bytecode, and with it the
    file name, which must not be a path on this machine."""
    import types

    def square(v):
        return v * v

    code = square.__code__.replace(co_filename="<keras fixture>")
    return types.FunctionType(code, {}, "square")


def models(keras) -> dict[str, object]:
    """name -> (model, inputs padded with masked steps?); the same graphs in Keras 2 and 3."""
    L = keras.layers
    built = {}

    # A Sequential MLP: Dense with and without bias, Dropout (identity at predict), softmax.
    built["mlp"] = (
        keras.Sequential(
            [
                keras.Input(shape=(4,), name="x"),
                L.Dense(5, activation="relu", name="hidden"),
                L.Dropout(0.3, name="drop"),
                L.Dense(4, activation="tanh", use_bias=False, name="nobias"),
                L.Dense(3, activation="softmax", name="out"),
            ],
            name="mlp",
        ),
        False,
    )

    # Every merge layer over two Dense branches (functional API, several outputs).
    a = keras.Input(shape=(3,), name="a")
    b = keras.Input(shape=(3,), name="b")
    left = L.Dense(4, activation="tanh", name="left")(a)
    right = L.Dense(4, activation="sigmoid", name="right")(b)
    outs = [
        L.Add(name="add")([left, right]),
        L.Multiply(name="mul")([left, right]),
        L.Average(name="ave")([left, right]),
        L.Maximum(name="max")([left, right]),
        L.Concatenate(name="concat")([left, right]),
        L.Dot(axes=1, name="dot")([left, right]),
        L.Dot(axes=-1, normalize=True, name="cos")([left, right]),
    ]
    built["merges"] = (keras.Model([a, b], outs, name="merges"), False)

    # One Dense shared by two inputs, merged (a Siamese), and its heads used separately.
    a = keras.Input(shape=(3,), name="a")
    b = keras.Input(shape=(3,), name="b")
    shared = L.Dense(4, activation="relu", name="shared")
    ha, hb = shared(a), shared(b)
    cos = L.Dot(axes=1, normalize=True, name="cos")([ha, hb])
    joined = L.Concatenate(name="joined")([ha, hb])
    built["siamese"] = (keras.Model([a, b], [cos, joined], name="siamese"), False)

    # Sequences: Masking, TimeDistributed(Dense), Dense on 3D input, masked average pooling.
    x = keras.Input(shape=(5, 3), name="x")
    m = L.Masking(mask_value=0.0, name="mask")(x)
    t = L.TimeDistributed(L.Dense(4, activation="tanh"), name="td")(m)
    d = L.Dense(2, activation="linear", name="dense3d")(t)
    pool = L.GlobalAveragePooling1D(name="pool")(d)
    built["sequence"] = (keras.Model(x, [d, pool], name="sequence"), True)

    # Shape layers and the activations whose formula changed between versions.
    x = keras.Input(shape=(6,), name="x")
    r = L.Reshape((2, 3), name="reshape")(x)
    p = L.Permute((2, 1), name="permute")(r)
    f = L.Flatten(name="flatten")(p)
    rep = L.RepeatVector(2, name="repeat")(f)
    hs = L.Activation("hard_sigmoid", name="hard")(rep)
    reg = L.ActivityRegularization(l1=0.01, l2=0.01, name="reg")(hs)
    built["shapes"] = (keras.Model(x, [p, rep, reg], name="shapes"), False)

    # Activations by name, side by side on one input.
    x = keras.Input(shape=(6,), name="x")
    names = ["tanh", "sigmoid", "hard_sigmoid", "softplus", "softsign", "relu", "elu", "selu"]
    names += ["softmax", "linear", "swish", "gelu"]
    acts = [L.Activation(n, name=f"act_{n}")(x) for n in names]
    dense_hs = L.Dense(3, activation="hard_sigmoid", name="dense_hard")(x)
    built["activations"] = (keras.Model(x, [*acts, dense_hs], name="activations"), False)

    # Refused: a Lambda (Python code) and layers we do not have.
    x = keras.Input(shape=(4,), name="x")
    y = L.Dense(2, name="dense")(x)
    y = L.Lambda(_square(), name="square")(y)
    built["lambda"] = (keras.Model(x, y, name="lambda"), False)

    x = keras.Input(shape=(5, 3), name="x")
    y = L.Conv1D(2, 2, name="conv")(x)
    y = L.LSTM(3, name="lstm")(y)
    y = L.BatchNormalization(name="norm")(y)
    y = L.Dense(1, name="dense")(y)
    built["unmapped"] = (keras.Model(x, y, name="unmapped"), False)
    return built


def main() -> int:
    import keras as keras3
    import tf_keras as keras2

    for keras, folder in ((keras2, OUT / "k2"), (keras3, OUT / "k3")):
        keras.utils.set_random_seed(7)
        built = models(keras)
        for name, (model, masked) in built.items():
            _save(keras, model, folder, name, masked_steps=masked)
    return 0


if __name__ == "__main__":
    sys.exit(main())

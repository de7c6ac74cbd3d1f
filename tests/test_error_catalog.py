"""The error catalog: every bad config or bad data a user can write, and what they are told.

Each row is one mistake. Through ``runner.run.run`` (the code path of the CLI, minus Hydra),
each must end with exit code 2, a ``result.json`` with status ``error``, and a problem that
names the config path (and the file, where one is involved) with a message that says what was
expected and what was found (the row's fragments). A subset goes through the real CLI.

Add a row whenever a new way to get a config wrong appears; the message fragments are the
specification of our wording.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from layers import registry
from runner.run import run

ROOT = Path(__file__).resolve().parent.parent


# ---- config builders -----------------------------------------------------------------------
X = {"x": {"shape": [3], "data": [[1, 2, 3], [4, 5, 6]]}}
SEQ = {"x": {"shape": [2, 3], "data": [[[1, 2, 3], [0, 0, 0]], [[4, 5, 6], [7, 8, 9]]]}}
DENSE = {"dense": {"type": "Dense", "output_dim": 2}}


def model(layers: dict | None = None, inputs: dict | None = None, **extra: Any) -> dict:
    return {"inputs": copy.deepcopy(inputs or X), "layers": copy.deepcopy(layers or DENSE), **extra}


def cfg(m: dict | None = None, **top: Any) -> dict:
    return {**top, "model": m if m is not None else model()}


def dense(**kw: Any) -> dict:
    return cfg(model({"dense": {"type": "Dense", "output_dim": 2, **kw}}))


def after_dense(layer: dict, inputs: dict | None = None) -> dict:
    return cfg(model({**DENSE, "bad": layer}, inputs))


def data(value: Any, shape: Any = (3,)) -> dict:
    spec = {"data": value} if shape is None else {"shape": list(shape), "data": value}
    return cfg(model(inputs={"x": spec}))


def on_seq(layers: dict) -> dict:
    return cfg(model(layers, SEQ))


@dataclass
class Case:
    id: str
    category: str
    config: dict
    path: str  # the config path a problem must name exactly
    fragments: list[str]  # regexes (case-insensitive): what was expected and what was found
    file: str | None = None
    needs: str | None = None  # a layer type that must be registered (parts still landing)
    others: list[str] = field(default_factory=list)  # further paths reported in the same run


C = Case
CASES: list[Case] = [
    # ---- types -------------------------------------------------------------------------
    C(
        "str-output-dim",
        "types",
        dense(output_dim="abc"),
        "model.layers.dense.output_dim",
        ["expected a valid integer", "found 'abc'"],
    ),
    C(
        "fractional-output-dim",
        "types",
        dense(output_dim=2.5),
        "model.layers.dense.output_dim",
        ["valid integer", "fractional", "found 2.5"],
    ),
    C("str-seed", "types", cfg(seed="abc"), "seed", ["valid integer", "found 'abc'"]),
    C(
        "layer-not-mapping",
        "types",
        cfg(model({"dense": 5})),
        "model.layers.dense",
        ["valid dictionary", "found 5"],
    ),
    C(
        "layers-as-list",
        "types",
        cfg(model() | {"layers": [{"type": "Dense"}]}),
        "model.layers",
        ["a mapping from a layer.s name", r"write layers: \{dense: \{type: Dense\}"],
    ),
    C(
        "inputs-as-list",
        "types",
        cfg(model() | {"inputs": ["x"]}),
        "model.inputs",
        ["valid dictionary", r"found \[\"x\"\]"],
    ),
    C(
        "shape-not-list",
        "types",
        cfg(model(inputs={"x": {"shape": 3, "data": [[1, 2, 3]]}})),
        "model.inputs.x.shape",
        ["valid list", "found 3"],
    ),
    C("data-scalar", "types", data(5), "model.inputs.x.data", ["valid list", "found 5"]),
    C(
        "plugins-not-list",
        "types",
        cfg(model(plugins="my_layers")),
        "model.plugins",
        ["list of module names", "found 'my_layers'"],
    ),
    C(
        "expect-values-str",
        "types",
        cfg(model(expect={"dense": {"values": "abc"}})),
        "model.expect.dense.values",
        ["valid list", "found 'abc'"],
    ),
    C(
        "batch-size-str",
        "types",
        cfg(batch_size="all"),
        "batch_size",
        ["valid integer", "found 'all'"],
    ),
    C(
        "training-not-bool",
        "types",
        cfg(training="maybe"),
        "training",
        ["valid boolean", "found 'maybe'"],
    ),
    C(
        "two-independent-problems",
        "types",
        dense(output_dim=-1, activation="rellu"),
        "model.layers.dense.output_dim",
        ["greater than 0", "found -1"],
        others=["model.layers.dense.activation"],
    ),
    C("model-null", "types", {"model": None}, "model", ["valid dictionary", "found null"]),
    # ---- ranges ------------------------------------------------------------------------
    C(
        "negative-output-dim",
        "ranges",
        dense(output_dim=-1),
        "model.layers.dense.output_dim",
        ["greater than 0", "found -1"],
    ),
    C(
        "dropout-p-above-1",
        "ranges",
        after_dense({"type": "Dropout", "p": 1.5}),
        "model.layers.bad.p",
        ["less than 1", "found 1.5"],
    ),
    C(
        "dropout-p-negative",
        "ranges",
        after_dense({"type": "Dropout", "p": -0.1}),
        "model.layers.bad.p",
        ["greater than or equal to 0", "found -0.1"],
    ),
    C("negative-seed", "ranges", cfg(seed=-1), "seed", ["greater than or equal to 0", "found -1"]),
    C(
        "negative-input-seed",
        "ranges",
        data({"random": {"rows": 2, "seed": -3}}),
        "model.inputs.x.data.random.seed",
        ["greater than or equal to 0", "found -3"],
    ),
    C("batch-size-zero", "ranges", cfg(batch_size=0), "batch_size", ["greater than 0", "found 0"]),
    C(
        "memory-limit-negative",
        "ranges",
        cfg(max_memory_mb=-5),
        "max_memory_mb",
        ["greater than 0", "found -5"],
    ),
    C(
        "shape-zero",
        "ranges",
        data([[1, 2, 3]], shape=[0]),
        "model.inputs.x.shape[0]",
        ["greater than 0", "found 0"],
    ),
    C(
        "repeat-n-zero",
        "ranges",
        after_dense({"type": "RepeatVector", "n": 0}),
        "model.layers.bad.n",
        ["greater than 0", "found 0"],
    ),
    C(
        "regularizer-negative",
        "ranges",
        dense(W_regularizer={"l1": -1}),
        "model.layers.dense.W_regularizer.l1",
        ["greater than or equal to 0", "found -1"],
    ),
    C(
        "activity-l2-negative",
        "ranges",
        after_dense({"type": "ActivityRegularization", "l2": -1}),
        "model.layers.bad.l2",
        ["greater than or equal to 0", "found -1"],
    ),
    C(
        "random-rows-zero",
        "ranges",
        data({"random": {"rows": 0}}),
        "model.inputs.x.data.random.rows",
        ["greater than 0", "found 0"],
    ),
    C(
        "random-low-above-high",
        "ranges",
        data({"random": {"rows": 2, "low": 1, "high": 0}}),
        "model.inputs.x.data.random",
        ["low must be below high", "low=1.0, high=0.0"],
    ),
    C(
        "expect-rtol-negative",
        "ranges",
        cfg(model(expect={"dense": {"shape": [2, 2], "rtol": -1}})),
        "model.expect.dense.rtol",
        ["greater than or equal to 0", "found -1"],
    ),
    # ---- unknown keys, types and choices -----------------------------------------------
    C(
        "typo-key",
        "unknown",
        dense(ouput_dim=3),
        "model.layers.dense.ouput_dim",
        ["unknown key 'ouput_dim'", "did you mean 'output_dim'"],
    ),
    C(
        "unknown-key-listed",
        "unknown",
        dense(colour="red"),
        "model.layers.dense.colour",
        ["unknown key 'colour'", "Dense accepts: .*output_dim"],
    ),
    C(
        "unknown-layer-type",
        "unknown",
        cfg(model({"dense": {"type": "Dence", "output_dim": 2}})),
        "model.layers.dense",
        ["unknown layer type 'Dence'", "did you mean 'Dense'", "known types: .*Dropout"],
    ),
    C(
        "missing-type",
        "unknown",
        cfg(model({"dense": {"output_dim": 2}})),
        "model.layers.dense",
        ["needs a 'type'", "type: Dense"],
    ),
    C(
        "missing-required",
        "unknown",
        cfg(model({"dense": {"type": "Dense"}})),
        "model.layers.dense.output_dim",
        ["required key 'output_dim' is missing", "Number of output units"],
    ),
    C(
        "top-level-typo",
        "unknown",
        cfg(sede=1),
        "sede",
        ["unknown key 'sede'", "did you mean 'seed'"],
    ),
    C(
        "file-ref-extra-key",
        "unknown",
        data({"path": "x.npy", "mmap": True}),
        "model.inputs.x.data.mmap",
        ["unknown key 'mmap'"],
    ),
    C(
        "unknown-activation",
        "unknown",
        dense(activation="rellu"),
        "model.layers.dense.activation",
        ["expected 'linear'", "did you mean 'relu'", "found 'rellu'"],
    ),
    C(
        "unknown-init",
        "unknown",
        dense(init="glorot"),
        "model.layers.dense.init",
        ["expected 'uniform'", "'glorot_uniform'", "found 'glorot'"],
    ),
    C(
        "unknown-floatx",
        "unknown",
        cfg(floatx="float16"),
        "floatx",
        ["expected 'float32' or 'float64'", "found 'float16'"],
    ),
    C(
        "unknown-task",
        "unknown",
        cfg(task="train"),
        "task",
        ["expected 'predict', 'validate', 'fit' or 'evaluate'", "found 'train'"],
    ),
    C(
        "unknown-distribution",
        "unknown",
        data({"random": {"rows": 2, "distribution": "gauss"}}),
        "model.inputs.x.data.random.distribution",
        ["expected 'uniform'", "found 'gauss'"],
    ),
    C(
        "path-and-random",
        "unknown",
        data({"random": {"rows": 2}, "path": "x.npy"}),
        "model.inputs.x.data.path",
        ["unknown key 'path'"],
    ),
    C(
        "reshape-two-unknowns",
        "unknown",
        after_dense({"type": "Reshape", "dims": [-1, -1]}),
        "model.layers.bad.dims",
        ["at most one entry may be -1", r"found \[-1, -1\]"],
    ),
    C(
        "permute-not-permutation",
        "unknown",
        after_dense({"type": "Permute", "dims": [1, 3]}),
        "model.layers.bad.dims",
        ["permutation of 1..2", r"found \[1, 3\]"],
    ),
    C(
        "no-inputs",
        "unknown",
        cfg(model() | {"inputs": {}}),
        "model.inputs",
        ["at least 1 entry", "found 0"],
    ),
    C(
        "no-layers",
        "unknown",
        cfg(model() | {"layers": {}}),
        "model.layers",
        ["at least 1 entry", "found 0"],
    ),
    C(
        "random-without-shape",
        "unknown",
        data({"random": {"rows": 2}}, shape=None),
        "model.inputs.x",
        ["random data needs a 'shape'", 'found .*"rows": 2'],
    ),
    # ---- wiring -------------------------------------------------------------------------
    C(
        "unknown-input-name",
        "wiring",
        dense(inputs=["y"]),
        "model.layers.dense.inputs",
        ["unknown name 'y'", r"known: \['x'\]"],
    ),
    C(
        "forward-reference",
        "wiring",
        cfg(
            model(
                {
                    "a": {"type": "Dense", "output_dim": 2, "inputs": ["b"]},
                    "b": {"type": "Dense", "output_dim": 2, "inputs": ["x"]},
                }
            )
        ),
        "model.layers.a.inputs",
        ["'b' is defined after this layer", "move it up"],
    ),
    C(
        "self-reference",
        "wiring",
        dense(inputs=["dense"]),
        "model.layers.dense.inputs",
        ["cannot read its own output"],
    ),
    C(
        "ambiguous-first-layer",
        "wiring",
        cfg(model(inputs={**X, "y": {"shape": [3], "data": [[1, 2, 3], [4, 5, 6]]}})),
        "model.layers.dense.inputs",
        [r"several inputs \['x', 'y'\]", "say which"],
    ),
    C(
        "two-inputs-into-dense",
        "wiring",
        cfg(
            model(
                {"dense": {"type": "Dense", "output_dim": 2, "inputs": ["x", "y"]}},
                {**X, "y": {"shape": [3], "data": [[1, 2, 3], [4, 5, 6]]}},
            )
        ),
        "model.layers.dense.inputs",
        ["takes exactly one input, got 2", "Merge"],
    ),
    C(
        "unknown-output",
        "wiring",
        cfg(model(outputs=["dens"])),
        "model.outputs",
        ["unknown name 'dens'", "did you mean 'dense'", r"known: \['dense'\]"],
    ),
    C(
        "unknown-expect-name",
        "wiring",
        cfg(model(expect={"dens": {"shape": [2, 2]}})),
        "model.expect.dens",
        ["unknown name 'dens'", "did you mean 'dense'"],
    ),
    C(
        "layer-named-like-input",
        "wiring",
        cfg(model({"x": {"type": "Dense", "output_dim": 2}})),
        "model.layers.x",
        ["already a model input", "rename"],
    ),
    # ---- shapes -------------------------------------------------------------------------
    C(
        "dense-on-sequence",
        "shapes",
        on_seq(DENSE),
        "model.layers.dense",
        [
            "expects 2D input",
            r"per-sample shape \(2, 3\)",
            "TimeDistributedDense",
            r"fed by model.inputs.x",
        ],
    ),
    C(
        "reshape-size",
        "shapes",
        after_dense({"type": "Reshape", "dims": [5]}),
        "model.layers.bad",
        [
            r"cannot reshape per-sample shape \(2,\)",
            "sizes 2 and 5 differ",
            "fed by model.layers.dense",
        ],
    ),
    C(
        "reshape-indivisible",
        "shapes",
        after_dense({"type": "Reshape", "dims": [-1, 3]}),
        "model.layers.bad",
        ["not divisible by 3"],
    ),
    C(
        "permute-rank",
        "shapes",
        after_dense({"type": "Permute", "dims": [2, 1]}),
        "model.layers.bad",
        [r"permute 2 axes", r"shape \(2,\) has 1"],
    ),
    C(
        "tdd-on-2d",
        "shapes",
        after_dense({"type": "TimeDistributedDense", "output_dim": 2}),
        "model.layers.bad",
        ["expects 3D input", r"per-sample shape \(2,\)"],
    ),
    C(
        "tdm-on-2d",
        "shapes",
        after_dense({"type": "TimeDistributedMerge"}),
        "model.layers.bad",
        ["expects 3D input", r"per-sample shape \(2,\)"],
    ),
    C(
        "repeat-on-3d",
        "shapes",
        on_seq({"bad": {"type": "RepeatVector", "n": 2}}),
        "model.layers.bad",
        ["expects 2D input", r"per-sample shape \(2, 3\)", "Flatten first"],
    ),
    C(
        "identity-init-not-square",
        "shapes",
        dense(init="identity"),
        "model.layers.dense.init",
        ["needs a square weight", r"W would be \(3, 2\)"],
    ),
    C(
        "softmax-rank",
        "shapes",
        cfg(
            model(
                {"bad": {"type": "Activation", "activation": "softmax"}},
                {"x": {"shape": [1, 1, 2], "data": [[[[1, 2]]]]}},
            )
        ),
        "model.layers.bad",
        ["softmax needs 2D or 3D input", r"\(1, 1, 2\)"],
    ),
    # ---- masks --------------------------------------------------------------------------
    C(
        "mask-into-flatten",
        "masks",
        on_seq({"m": {"type": "Masking"}, "bad": {"type": "Flatten"}}),
        "model.layers.bad",
        [
            "Flatten cannot take a masked input",
            "fed by model.layers.m",
            "insert a TimeDistributedMerge",
        ],
    ),
    C(
        "mask-into-reshape",
        "masks",
        on_seq({"m": {"type": "Masking"}, "bad": {"type": "Reshape", "dims": [6]}}),
        "model.layers.bad",
        ["Reshape cannot take a masked input", "masked"],
    ),
    C(
        "mask-into-permute",
        "masks",
        on_seq({"m": {"type": "Masking"}, "bad": {"type": "Permute", "dims": [2, 1]}}),
        "model.layers.bad",
        ["Permute cannot take a masked input", "remove the Masking layer"],
    ),
    C(
        "mask-through-dropout-into-flatten",
        "masks",
        on_seq(
            {
                "m": {"type": "Masking"},
                "d": {"type": "Dropout", "p": 0.1},
                "bad": {"type": "Flatten"},
            }
        ),
        "model.layers.bad",
        ["cannot take a masked input", r"fed by model.layers.d \(Dropout"],
    ),
    # ---- inline data --------------------------------------------------------------------
    C(
        "ragged-rows",
        "data",
        data([[1, 2, 3], [4, 5]], shape=None),
        "model.inputs.x.data",
        ["rectangular nested list of numbers", r"rows of different lengths \[3, 2\]"],
    ),
    C(
        "string-in-data",
        "data",
        data([[1, "b", 3]]),
        "model.inputs.x.data",
        ["rectangular nested list of numbers", r"found str 'b' at \[0\]\[1\]"],
    ),
    C(
        "nan-in-data",
        "data",
        data([[1, float("nan"), 3]]),
        "model.inputs.x.data",
        ["contains NaN or Inf"],
    ),
    C(
        "inf-in-data",
        "data",
        data([[1, 2, float("-inf")]]),
        "model.inputs.x.data",
        ["contains NaN or Inf"],
    ),
    C(
        "empty-data",
        "data",
        data([], shape=None),
        "model.inputs.x.data",
        [r"empty \(shape \(0,\)\)", "at least one row"],
    ),
    C(
        "flat-data-no-shape",
        "data",
        data([1, 2, 3], shape=None),
        "model.inputs.x.data",
        ["at least 2D, batch first", r"found shape \(3,\)"],
    ),
    C(
        "declared-shape-disagrees",
        "data",
        data([[1, 2, 3]], shape=[4]),
        "model.inputs.x.shape",
        [r"declared per-sample shape \(4,\)", r"data has shape \(1, 3\)"],
    ),
    C(
        "huge-int-in-data",
        "data",
        data([[10**400, 1, 2]]),
        "model.inputs.x.data",
        ["too large for a float", r"at \[0\]\[0\]"],
    ),
    C(
        "rows-differ",
        "data",
        cfg(
            model(
                {
                    "a": {"type": "Dense", "output_dim": 2, "inputs": ["x"]},
                    "b": {"type": "Dense", "output_dim": 2, "inputs": ["y"]},
                },
                {**X, "y": {"shape": [3], "data": [[1, 2, 3]]}},
                outputs=["a", "b"],
            )
        ),
        "model.inputs",
        ["same number of rows", r"'x': 2, 'y': 1"],
    ),
    # ---- data files ---------------------------------------------------------------------
    C(
        "missing-input-file",
        "files",
        data({"path": "nope.npy"}),
        "model.inputs.x.data",
        ["file not found", "nope.npy"],
        file="nope.npy",
    ),
    C(
        "nan-in-npy",
        "files",
        data({"path": "nan.npy"}),
        "model.inputs.x.data",
        ["contains NaN or Inf"],
        file="nan.npy",
    ),
    C(
        "empty-npy",
        "files",
        data({"path": "empty.npy"}),
        "model.inputs.x.data",
        [r"empty \(shape \(0, 3\)\)"],
        file="empty.npy",
    ),
    C(
        "npy-shape-disagrees",
        "files",
        data({"path": "x4.npy"}),
        "model.inputs.x.shape",
        [r"declared per-sample shape \(3,\)", r"data has shape \(2, 4\)"],
        file="x4.npy",
    ),
    C(
        "npy-of-strings",
        "files",
        data({"path": "str.npy"}),
        "model.inputs.x.data",
        ["expected numbers", "found dtype <U1"],
        file="str.npy",
    ),
    C(
        "npy-complex",
        "files",
        data({"path": "complex.npy"}),
        "model.inputs.x.data",
        ["expected numbers", "found dtype complex128"],
        file="complex.npy",
    ),
    C(
        "pickled-npy",
        "files",
        data({"path": "pickled.npy"}),
        "model.inputs.x.data",
        ["pickled Python objects", "never loaded", "numeric array"],
        file="pickled.npy",
    ),
    C(
        "pickled-npz",
        "files",
        data({"path": "pickled.npz", "key": "a"}),
        "model.inputs.x.data",
        ["pickled Python objects", "never loaded"],
        file="pickled.npz",
    ),
    C(
        "garbage-npy",
        "files",
        data({"path": "garbage.npy"}),
        "model.inputs.x.data",
        ["cannot read .npy file", "not a .npy file"],
        file="garbage.npy",
    ),
    C(
        "garbage-npz",
        "files",
        data({"path": "garbage.npz", "key": "a"}),
        "model.inputs.x.data",
        ["cannot read .npz file", "not a zip archive"],
        file="garbage.npz",
    ),
    C(
        "unsupported-suffix",
        "files",
        data({"path": "x.txt"}),
        "model.inputs.x.data",
        ["unsupported file type '.txt'", "expected .npy, .npz or .csv"],
        file="x.txt",
    ),
    C(
        "csv-ragged",
        "files",
        data({"path": "ragged.csv"}),
        "model.inputs.x.data",
        ["data row 2 has 2 columns, the first has 3"],
        file="ragged.csv",
    ),
    C(
        "csv-not-number",
        "files",
        data({"path": "words.csv"}),
        "model.inputs.x.data",
        ["line 3, column 2: not a number \\(data row 2\\)"],
        file="words.csv",
    ),
    C(
        "csv-header-only",
        "files",
        data({"path": "header.csv"}),
        "model.inputs.x.data",
        ["no data rows"],
        file="header.csv",
    ),
    C(
        "npz-needs-key",
        "files",
        data({"path": "two.npz"}),
        "model.inputs.x.data",
        [r"holds 2 arrays \['a', 'b'\]", "name one with 'key'"],
        file="two.npz",
    ),
    C(
        "npz-wrong-key",
        "files",
        data({"path": "two.npz", "key": "c"}),
        "model.inputs.x.data",
        ["no array 'c'", r"it holds \['a', 'b'\]"],
        file="two.npz",
    ),
    C(
        "key-on-npy",
        "files",
        data({"path": "x.npy", "key": "a"}),
        "model.inputs.x.data",
        ["'key' only applies to .npz", "'.npy'"],
        file="x.npy",
    ),
    C(
        "path-is-directory",
        "files",
        data({"path": "folder.npy"}),
        "model.inputs.x.data",
        ["file not found"],
        file="folder.npy",
    ),
    # ---- weights ------------------------------------------------------------------------
    C(
        "inline-w-wrong-shape",
        "weights",
        dense(weights={"W": [[1, 2]], "b": [0, 0]}),
        "model.layers.dense.weights.W",
        [r"expected shape \(3, 2\)", r"found \(1, 2\)"],
    ),
    C(
        "inline-w-nan",
        "weights",
        dense(weights={"W": [[float("nan")] * 2] * 3}),
        "model.layers.dense.weights.W",
        ["contains NaN or Inf"],
    ),
    C(
        "inline-w-ragged",
        "weights",
        dense(weights={"W": [[1, 2], [3]]}),
        "model.layers.dense.weights.W",
        ["inline weights must be a rectangular", r"different lengths \[2, 1\]"],
    ),
    C(
        "unknown-param",
        "weights",
        dense(weights={"w": [[1]]}),
        "model.layers.dense.weights.w",
        ["no parameter 'w'", r"it has \['W', 'b'\]"],
    ),
    C(
        "model-weights-wrong-shape",
        "weights",
        cfg(model(weights={"path": "w_shape.npz"})),
        "model.weights[dense/W]",
        [r"expected shape \(3, 2\)", r"found \(4, 2\)"],
        file="w_shape.npz",
    ),
    C(
        "model-weights-strings",
        "weights",
        cfg(model(weights={"path": "w_str.npz"})),
        "model.weights[dense/W]",
        ["expected numbers", "found dtype <U1"],
        file="w_str.npz",
    ),
    C(
        "model-weights-inf",
        "weights",
        cfg(model(weights={"path": "w_inf.npz"})),
        "model.weights[dense/W]",
        ["contains NaN or Inf"],
        file="w_inf.npz",
    ),
    C(
        "model-weights-missing-file",
        "weights",
        cfg(model(weights={"path": "nope.npz"})),
        "model.weights.path",
        ["file not found"],
        file="nope.npz",
    ),
    C(
        "model-weights-missing-arrays",
        "weights",
        cfg(model(weights={"path": "w_flat.npz"})),
        "model.weights.path",
        [r"no array dense/W \(shape \(3, 2\)\)"],
        file="w_flat.npz",
        others=["model.weights.path"],
    ),
    C(
        "model-weights-pickled",
        "weights",
        cfg(model(weights={"path": "pickled.npz"})),
        "model.weights.path",
        ["pickled Python objects", "never loaded"],
        file="pickled.npz",
    ),
    C(
        "model-weights-not-zip",
        "weights",
        cfg(model(weights={"path": "garbage.npz"})),
        "model.weights.path",
        ["not a zip archive"],
        file="garbage.npz",
    ),
    C(
        "layer-weights-file-shape",
        "weights",
        dense(weights={"path": "w_shape.npz"}),
        "model.layers.dense.weights[dense/W]",
        [r"expected shape \(3, 2\)", r"found \(4, 2\)"],
        file="w_shape.npz",
    ),
    C(
        "param-file-shape",
        "weights",
        dense(weights={"W": {"path": "x4.npy"}}),
        "model.layers.dense.weights.W",
        [r"expected shape \(3, 2\)", r"found \(2, 4\)"],
        file="x4.npy",
    ),
    C(
        "param-file-pickled",
        "weights",
        dense(weights={"W": {"path": "pickled.npy"}}),
        "model.layers.dense.weights.W",
        ["pickled Python objects"],
        file="pickled.npy",
    ),
    # ---- resource limits ----------------------------------------------------------------
    C(
        "dense-ten-billion",
        "limits",
        dense(output_dim=10_000_000_000),
        "max_memory_mb",
        [
            "needs about 228,882 MB",
            "limit of 4,096 MB",
            "largest is model.layers.dense",
            "raise max_memory_mb",
        ],
    ),
    C(
        "random-rows-trillion",
        "limits",
        data({"random": {"rows": 10**12}}),
        "max_memory_mb",
        ["limit of 4,096 MB", "set batch_size"],
    ),
    C(
        "random-input-drawn-whole",
        "limits",
        {**data({"random": {"rows": 10**9}}, shape=[100]), "batch_size": 1000, "task": "validate"},
        "max_memory_mb",
        ["largest is model.inputs.x", "random input of 1,000,000,000 rows", "drawn whole"],
    ),
    C(
        "below-own-limit",
        "limits",
        cfg(max_memory_mb=0.00001),
        "max_memory_mb",
        [r"needs about 6.87e-05 MB", "limit of 1e-05 MB"],
    ),
    # ---- code from config ---------------------------------------------------------------
    C(
        "target-in-layer",
        "security",
        dense(_target_="os.system"),
        "model.layers.dense._target_",
        ["'_target_' is not accepted", "cannot name code", "model.plugins"],
    ),
    C(
        "target-in-model",
        "security",
        cfg(model(_target_="os.system")),
        "model._target_",
        ["'_target_' is not accepted"],
    ),
    C(
        "target-in-data",
        "security",
        data({"_target_": "numpy.load", "path": "x.npy"}),
        "model.inputs.x.data._target_",
        ["'_target_' is not accepted"],
    ),
    C(
        "plugin-shell-text",
        "security",
        cfg(model(plugins=["os; rm -rf /"])),
        "model.plugins[0]",
        ["dotted module name", "found 'os; rm -rf /'"],
    ),
    C(
        "plugin-missing",
        "security",
        cfg(
            model(plugins=["no_such_plugin_module_xyz"]),
            allow_plugins=["no_such_plugin_module_xyz"],
        ),
        "model.plugins[0]",
        ["cannot import plugin module 'no_such_plugin_module_xyz'"],
    ),
    C(
        "plugin-not-allowed",
        "security",
        cfg(model(plugins=["os"])),
        "model.plugins[0]",
        ["plugin 'os' is not allowed", r"allow_plugins=\[os\]"],
    ),
    C(
        "name-with-slash",
        "security",
        cfg(model({"m/mask": {"type": "Dense", "output_dim": 1}})),
        "model.layers.m/mask",
        ["names of layers and inputs are identifiers"],
    ),
    C(
        "input-name-with-dot",
        "security",
        cfg(model(inputs={"x.0": {"data": [[1.0]]}})),
        "model.inputs.x.0",
        ["names of layers and inputs are identifiers"],
    ),
    # ---- Lambda (rows run once the Lambda layer is registered) --------------------------
    C(
        "lambda-unknown-function",
        "lambda",
        after_dense({"type": "Lambda", "function": "foo(x)"}),
        "model.layers.bad.function",
        ["foo"],
        needs="Lambda",
    ),
    C(
        "lambda-syntax",
        "lambda",
        after_dense({"type": "Lambda", "function": "x +"}),
        "model.layers.bad.function",
        ["syntax|invalid|parse"],
        needs="Lambda",
    ),
    C(
        "lambda-import",
        "lambda",
        after_dense({"type": "Lambda", "function": "__import__('os').system('true')"}),
        "model.layers.bad.function",
        ["__import__|not allowed|unknown"],
        needs="Lambda",
    ),
    C(
        "lambda-huge-power",
        "lambda",
        after_dense({"type": "Lambda", "function": "x ** 1e9"}),
        "model.layers.bad.function",
        ["exponent|power"],
        needs="Lambda",
    ),
    C(
        "lambda-overflow-at-run",
        "lambda",
        cfg(
            model(
                {"f": {"type": "Lambda", "function": "exp(x)"}},
                {"x": {"shape": [2], "data": [[1000, 1]]}},
            )
        ),
        "model.layers.f",
        [
            "overflow encountered in exp",
            "beyond what float32 holds",
            "largest input magnitude is 1e\\+03",
            "floatx=float64",
        ],
        needs="Lambda",
    ),
    C(
        "lambda-log-zero-at-run",
        "lambda",
        cfg(
            model(
                {"f": {"type": "Lambda", "function": "log(x)"}},
                {"x": {"shape": [2], "data": [[0, 1]]}},
            )
        ),
        "model.layers.f",
        ["divide by zero encountered in log", "undefined for some inputs"],
        needs="Lambda",
    ),
    C(
        "lambda-missing-function",
        "lambda",
        after_dense({"type": "Lambda"}),
        "model.layers.bad.function",
        ["required key 'function' is missing"],
        needs="Lambda",
    ),
    # ---- fit schedules and checkpoints -----------------------------------------------------
    C(
        "schedule-unknown-name",
        "fit",
        {**dense(), "fit": {"schedule": {"name": "cosin", "decay_steps": 3}}},
        "fit.schedule",
        ["unknown name 'cosin'", "did you mean 'cosine'", "known: step, exponential"],
    ),
    C(
        "schedule-warmup-without-target",
        "fit",
        {**dense(), "fit": {"schedule": {"name": "cosine", "decay_steps": 9, "warmup_steps": 3}}},
        "fit.schedule",
        ["warmup_steps: 3 needs warmup_target"],
    ),
    C(
        "schedule-plateau-factor",
        "fit",
        {**dense(), "fit": {"schedule": {"name": "plateau", "factor": 1.5}}},
        "fit.schedule.factor",
        ["expected less than 1", "found 1.5"],
    ),
    C(
        "checkpoint-negative-every",
        "fit",
        {**dense(), "fit": {"checkpoint": {"every": -1}}},
        "fit.checkpoint.every",
        ["greater than or equal to 0", "found -1"],
    ),
]


def _write_data_files(d: Path) -> None:
    np.save(d / "x.npy", np.ones((2, 3), np.float32))
    np.save(d / "x4.npy", np.ones((2, 4), np.float32))
    np.save(d / "nan.npy", np.array([[1, np.nan, 3]]))
    np.save(d / "empty.npy", np.ones((0, 3)))
    np.save(d / "str.npy", np.array([["a", "b", "c"]]))
    np.save(d / "complex.npy", np.ones((2, 3), complex))
    np.save(d / "pickled.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(
        d / "pickled.npz",
        a=np.array([{"a": 1}, None], dtype=object),
        **{"dense/W": np.array([None] * 6, dtype=object).reshape(3, 2)},
    )
    (d / "garbage.npy").write_bytes(b"this is not a numpy file")
    (d / "garbage.npz").write_bytes(b"PK but not really a zip")
    (d / "x.txt").write_text("1 2 3\n")
    (d / "ragged.csv").write_text("1,2,3\n4,5\n")
    (d / "words.csv").write_text("a,b,c\n1,2,3\n4,x,6\n")
    (d / "header.csv").write_text("a,b,c\n")
    np.savez(d / "two.npz", a=np.ones((2, 3)), b=np.ones((2, 3)))
    np.savez(d / "w_shape.npz", **{"dense/W": np.ones((4, 2)), "dense/b": np.zeros(2)})
    np.savez(d / "w_str.npz", **{"dense/W": np.array([["a", "b"]] * 3), "dense/b": np.zeros(2)})
    np.savez(d / "w_inf.npz", **{"dense/W": np.full((3, 2), np.inf), "dense/b": np.zeros(2)})
    np.savez(d / "w_flat.npz", W=np.ones((3, 2)), b=np.zeros(2))
    (d / "folder.npy").mkdir()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("catalog_data")
    _write_data_files(d)
    return d


def _check_case(case: Case, result: dict, exit_code: int, text: str = "") -> None:
    assert exit_code == 2, f"{case.id}: exit code {exit_code}, expected 2: {result}"
    assert result["status"] == "error"
    problems = result["error"]["problems"]
    at_path = [p for p in problems if p["path"] == case.path]
    assert at_path, f"{case.id}: no problem at {case.path}; got {[p['path'] for p in problems]}"
    problem = at_path[0]
    assert problem["file"] == case.file, f"{case.id}: file {problem['file']!r}"
    for fragment in case.fragments:
        assert re.search(fragment, problem["message"], re.IGNORECASE), (
            f"{case.id}: {fragment!r} not in {problem['message']!r}"
        )
    for p in problems:
        assert p["message"] and "Traceback" not in p["message"] and "<class " not in p["message"]
    for path in case.others:
        assert path in [p["path"] for p in problems]
        assert not text or f"{path}:" in text  # every problem reaches the terminal
    assert "Traceback" not in text


def test_catalog_is_big_and_distinct():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len([c for c in CASES if c.needs is None]) >= 50
    assert {c.category for c in CASES} >= {
        "types",
        "ranges",
        "unknown",
        "wiring",
        "shapes",
        "masks",
        "data",
        "files",
        "weights",
        "limits",
        "security",
        "lambda",
    }


def _param(case: Case):
    marks = []
    if case.needs and case.needs not in registry.registered():
        marks.append(pytest.mark.skip(reason=f"{case.needs} layer not registered yet"))
    return pytest.param(case, id=f"{case.category}-{case.id}", marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_catalog_case(case: Case, data_dir: Path, tmp_path: Path):
    out = tmp_path / "run"
    outcome = run(copy.deepcopy(case.config), out, cwd=data_dir)
    written = json.loads((out / "result.json").read_text())
    assert written == json.loads(json.dumps(outcome.result, default=str))
    _check_case(case, written, outcome.exit_code)
    assert not (out / "outputs.npz").exists()  # nothing computed for an invalid config


# ---- several independent problems, one run --------------------------------------------
def test_independent_schema_problems_reported_together(tmp_path):
    config = cfg(
        model(
            {
                "a": {"type": "Dense", "output_dim": -1, "activation": "rellu"},
                "b": {"type": "Dropout", "p": 2},
                "c": {"type": "Dence"},
                "d": {"type": "Dense", "output_dim": 2, "ouput": 1},
            }
        ),
        seed="abc",
        floatx="float16",
    )
    outcome = run(config, tmp_path)
    paths = [p["path"] for p in outcome.result["error"]["problems"]]
    assert outcome.exit_code == 2
    assert sorted(paths) == sorted(
        [
            "seed",
            "floatx",
            "model.layers.a.output_dim",
            "model.layers.a.activation",
            "model.layers.b.p",
            "model.layers.c",
            "model.layers.d.ouput",
        ]
    )


def test_independent_plan_problems_reported_together(data_dir, tmp_path):
    config = cfg(
        model(
            {
                "a": {"type": "Dense", "output_dim": 2, "inputs": ["x"], "weights": {"W": [[1]]}},
                "b": {"type": "Reshape", "dims": [5], "inputs": ["a"]},
                "c": {"type": "Dense", "output_dim": 2, "inputs": ["nowhere"]},
                "d": {"type": "TimeDistributedMerge", "inputs": ["x"]},
            },
            {"x": {"shape": [3], "data": [[1, 2, 3]]}, "y": {"data": {"path": "nope.npy"}}},
            outputs=["b", "c", "zz"],
        )
    )
    outcome = run(config, tmp_path, cwd=data_dir)
    problems = {p["path"]: p for p in outcome.result["error"]["problems"]}
    assert outcome.exit_code == 2
    assert set(problems) == {
        "model.inputs.y.data",
        "model.layers.a.weights.W",
        "model.layers.b",
        "model.layers.c.inputs",
        "model.layers.d",
        "model.outputs",
    }
    assert problems["model.inputs.y.data"]["file"] == "nope.npy"


# ---- the real CLI ---------------------------------------------------------------------
CLI_IDS = [
    "str-output-dim",
    "unknown-layer-type",
    "dense-on-sequence",
    "mask-into-flatten",
    "nan-in-data",
    "missing-input-file",
    "pickled-npy",
    "csv-ragged",
    "model-weights-wrong-shape",
    "dense-ten-billion",
    "plugin-not-allowed",
    "two-independent-problems",
]


def _cli(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
        "PYTHONPATH": str(ROOT),
    }  # this checkout's runner, not an installed copy
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _override(key: str, value: Any) -> str:
    return f"{key}={value}"


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory, data_dir):
    """Start every CLI case at once (they are independent), then collect them."""
    base = tmp_path_factory.mktemp("cli")
    (base / "conf" / "model").mkdir(parents=True)
    by_id = {c.id: c for c in CASES}
    procs = {}
    for case_id in CLI_IDS:
        case = by_id[case_id]
        name = case_id.replace("-", "_")
        (base / "conf" / "model" / f"{name}.yaml").write_text(
            yaml.safe_dump(case.config["model"], sort_keys=False)
        )
        top = [_override(k, v) for k, v in case.config.items() if k != "model"]
        out = base / "runs" / name
        procs[case_id] = (
            out,
            _cli(
                [
                    "--config-dir",
                    str(base / "conf"),
                    f"+model={name}",
                    *top,
                    f"hydra.run.dir={out}",
                ],
                data_dir,
            ),
        )
    results = {}
    for case_id, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        results[case_id] = (proc.returncode, stdout + stderr, out)
    return results


@pytest.mark.slow
@pytest.mark.parametrize("case_id", CLI_IDS)
def test_cli_case(case_id, cli_results):
    case = next(c for c in CASES if c.id == case_id)
    code, text, out = cli_results[case_id]
    result = json.loads((out / "result.json").read_text())
    _check_case(case, result, code, text)
    assert case.path in text  # the message reaches the terminal, not only result.json


@pytest.mark.slow
def test_cli_sweep_value_out_of_range(tmp_path):
    """A sweep with one bad value: that job fails with exit 2 and a clear message, the good
    one still runs, the process exits 2 without a traceback."""
    proc = _cli(
        [
            "-m",
            "+model=dense_example",
            "model.layers.dense.output_dim=3,-1",
            "seed=0",
            f"hydra.sweep.dir={tmp_path}",
        ],
        tmp_path,
    )
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in stdout + stderr
    good = json.loads((tmp_path / "0" / "result.json").read_text())
    bad = json.loads((tmp_path / "1" / "result.json").read_text())
    assert good["status"] == "ok" and good["outputs"]["dense"]["values"] == [[6.0, 12.0, 30.0]]
    assert bad["status"] == "error"
    (problem,) = bad["error"]["problems"]
    assert problem["path"] == "model.layers.dense.output_dim"
    assert problem["message"] == "expected greater than 0; found -1"
    assert "model.layers.dense.output_dim: expected greater than 0; found -1" in stdout + stderr

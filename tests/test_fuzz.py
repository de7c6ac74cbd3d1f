"""Fuzzing with Hypothesis.

1. Random layer stacks with random valid parameters plan and run, and every planned shape (and
   mask) equals the computed one.
2. Random invalid values put anywhere in a valid config, and random mutations of the shipped
   ``conf/model/*.yaml``, never raise anything but our ``UserError`` subclasses.

CI runs a few hundred examples per test, derandomized (the same examples every run). To fuzz
longer with fresh random examples::

    FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from layers import activations, registry
from runner.config.plugins import load_plugins
from runner.config.validate import validate
from runner.errors import UserError
from runner.graph.build import build
from runner.graph.execute import predict
from runner.graph.plan import make_plan

ROOT = Path(__file__).resolve().parent.parent
_LONG = os.environ.get("FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(_LONG) if _LONG else 300,
    deadline=None,
    derandomize=not _LONG,  # CI: the same examples every run; FUZZ_EXAMPLES: fresh ones
    database=None if not _LONG else settings.default.database,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ACTIVATIONS = sorted(activations.ACTIVATIONS)
INITS = [
    "uniform",
    "normal",
    "lecun_uniform",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "orthogonal",
    "zero",
    "one",
]
# bounded expressions: a stack of them cannot overflow
LAMBDAS = [
    "tanh(x) + 1",
    "maximum(x, 0.5)",
    "sigmoid(x) * 2",
    "clip(x, -1, 1)",
    "abs(x) / 2",
    "where(x > 0.5, x, -x)",
]
REDUCE = "mean(x, axis=-1)"  # drops the last axis (rank >= 2 only, so a feature axis remains)
PASS_MASK = {"Dropout", "Activation", "ActivityRegularization", "TimeDistributedDense"}


def _factorizations(n: int) -> list[list[int]]:
    out = [[n]]
    out += [[d, n // d] for d in range(2, n) if n % d == 0]
    return out


@st.composite
def layer_for(draw, shape: tuple[int, ...], masked: bool) -> dict[str, Any]:
    """One layer spec that accepts ``shape`` (and a mask, when ``masked``)."""
    rank = len(shape)
    options = ["Dropout", "Activation", "ActivityRegularization"]
    if not masked:
        options += ["Reshape", "Flatten", "Lambda"]
        if rank == 1:
            options += ["Dense", "RepeatVector"]
        if rank >= 2:
            options += ["Permute"]
    if rank == 2:
        options += ["TimeDistributedDense", "TimeDistributedMerge", "Masking"]
    kind = draw(st.sampled_from(options))
    small = st.integers(1, 6)
    if kind == "Dense" or kind == "TimeDistributedDense":
        spec = {
            "output_dim": draw(small),
            "activation": draw(st.sampled_from(ACTIVATIONS)),
            "init": draw(st.sampled_from(INITS)),
        }
        if draw(st.booleans()):
            spec["W_regularizer"] = {"l2": draw(st.floats(0, 0.1))}
        if draw(st.booleans()):
            spec["activity_regularizer"] = {"l1": draw(st.floats(0, 0.1))}
    elif kind == "Dropout":
        spec = {"p": draw(st.floats(0, 0.9))}
    elif kind == "Activation":
        choices = ACTIVATIONS if rank in (1, 2) else [a for a in ACTIVATIONS if a != "softmax"]
        spec = {"activation": draw(st.sampled_from(choices))}
    elif kind == "ActivityRegularization":
        spec = {"l1": draw(st.floats(0, 1)), "l2": draw(st.floats(0, 1))}
    elif kind == "Reshape":
        dims = draw(st.sampled_from(_factorizations(math.prod(shape))))
        if draw(st.booleans()):  # one entry inferred
            dims[draw(st.integers(0, len(dims) - 1))] = -1
        spec = {"dims": dims}
    elif kind == "Flatten":
        spec = {}
    elif kind == "Lambda":
        spec = {"function": draw(st.sampled_from(LAMBDAS + ([REDUCE] if rank >= 2 else [])))}
    elif kind == "RepeatVector":
        spec = {"n": draw(st.integers(1, 4))}
    elif kind == "Permute":
        spec = {"dims": [p + 1 for p in draw(st.permutations(range(rank)))]}
    elif kind == "TimeDistributedMerge":
        spec = {"mode": draw(st.sampled_from(["sum", "mul", "ave"]))}
    else:  # Masking
        spec = {"mask_value": draw(st.sampled_from([0.0, 0.5, 1.0]))}
    return {"type": kind, **spec}


def _next_shape(spec: dict, shape: tuple[int, ...], masked: bool) -> tuple[tuple[int, ...], bool]:
    """The expected per-sample shape and mask after ``spec``, written independently of the
    layers' own output_shape (the planner's answer is checked against the run anyway)."""
    kind = spec["type"]
    if kind in ("Dense", "TimeDistributedDense"):
        return (*shape[:-1], spec["output_dim"]), masked
    if kind == "RepeatVector":
        return (spec["n"], shape[0]), False
    if kind == "Reshape":
        dims = spec["dims"]
        known = math.prod(d for d in dims if d != -1)
        return tuple(math.prod(shape) // known if d == -1 else d for d in dims), False
    if kind == "Flatten":
        return (math.prod(shape),), False
    if kind == "Permute":
        return tuple(shape[d - 1] for d in spec["dims"]), False
    if kind == "TimeDistributedMerge":
        return (shape[1],), False
    if kind == "Masking":
        return shape, True
    if kind == "Lambda" and spec["function"] == REDUCE:
        return shape[:-1], False
    return shape, masked if kind in PASS_MASK else False


@st.composite
def stacks(draw) -> tuple[dict, dict[str, tuple[int, ...]], dict[str, bool]]:
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    rows = draw(st.integers(1, 5))
    config: dict[str, Any] = {
        "seed": draw(st.integers(0, 2**31)),
        "floatx": draw(st.sampled_from(["float32", "float64"])),
        "training": draw(st.booleans()),
        "batch_size": draw(st.none() | st.integers(1, 4)),
        "model": {
            "inputs": {
                "x": {
                    "shape": list(shape),
                    "data": {
                        "random": {
                            "rows": rows,
                            "distribution": draw(st.sampled_from(["uniform", "normal"])),
                        }
                    },
                }
            },
            "layers": {},
        },
    }
    expected: dict[str, tuple[int, ...]] = {}
    masks: dict[str, bool] = {}
    masked = False
    for i in range(draw(st.integers(1, 7))):
        spec = draw(layer_for(shape, masked))
        shape, masked = _next_shape(spec, shape, masked)
        name = f"l{i}_{spec['type'].lower()}"
        config["model"]["layers"][name] = spec
        expected[name], masks[name] = shape, masked
    config["model"]["outputs"] = list(config["model"]["layers"])
    return config, expected, masks


def _pipeline(config: dict, cwd: Path = ROOT):
    """What run() does, minus the run folder: only UserError may escape."""
    load_plugins(config)
    spec = validate(config)
    plan = make_plan(spec, cwd)
    build(plan)
    training = bool(spec.training if spec.training is not None else spec.model.training)
    return plan, predict(plan, training, set(plan.outputs) | set(spec.model.expect))


@FUZZ
@given(stacks())
def test_random_valid_stacks_plan_and_run_with_planned_shapes(case):
    config, expected, masks = case
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        plan, prediction = _pipeline(config)
    rows = config["model"]["inputs"]["x"]["data"]["random"]["rows"]
    dtype = np.dtype(config["floatx"])
    for name, shape in expected.items():
        node = plan.nodes[name]
        assert node.shape == shape, (name, node.shape, shape)
        assert node.masked == masks[name]
        value = prediction.values[name]
        assert value.shape == (rows, *shape) and value.dtype == dtype
        assert np.isfinite(value).all()
        if masks[name]:
            assert prediction.masks[name].shape == (rows, *shape[:-1])
        else:
            assert name not in prediction.masks
        # the plan's parameter shapes are the built ones
        assert {k: v.shape for k, v in node.layer.named_params().items()} == node.param_shapes


# ---- invalid values anywhere ---------------------------------------------------------------
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.just("${nope}"),
    st.just("_target_"),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.just([[1, 2], [3]]),
    st.just({"path": "missing.npy"}),
    st.just({"random": {"rows": 0}}),
).map(copy.deepcopy)  # a fresh object each time: mutations must not build cycles


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path (dict keys and list indexes) into a config."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:4]):
            out += _paths(v, (*prefix, i))
    return out


def _set(config: Any, path: tuple, value: Any) -> None:
    node = config
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _only_user_errors(config: dict, cwd: Path = ROOT) -> str:
    try:
        with np.errstate(all="ignore"):  # extreme junk may overflow; only exceptions matter
            _pipeline(config, cwd)
    except UserError as exc:
        assert exc.problems and all(p.path and p.message for p in exc.problems)
        return "error"
    return "ok"


@FUZZ
@given(stacks(), st.data())
def test_invalid_values_anywhere_give_only_user_errors(case, data):
    config = copy.deepcopy(case[0])
    paths = _paths(config)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        try:
            _set(config, path, data.draw(JUNK))
        except (TypeError, KeyError, IndexError):
            pass  # an earlier mutation replaced a parent
        paths = _paths(config) or [("model",)]
    _only_user_errors(config)


# ---- mutations of the shipped model configs --------------------------------------------------
SHIPPED = sorted((ROOT / "conf" / "model").glob("*.yaml"))
HEAVY = {"mlp_digits", "autoencoder_digits"}  # real data sets: mutated, but with fewer examples


def _load(path: Path) -> dict:
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    resolved = OmegaConf.to_container(OmegaConf.create({"model": raw}), resolve=True)
    return resolved  # type: ignore[return-value]


@st.composite
def mutations(draw, config: dict) -> dict:
    config = copy.deepcopy(config)
    types = sorted(registry.registered())
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(config)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = config
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        op = draw(
            st.sampled_from(["junk", "delete", "rename", "retype", "wrap", "duplicate", "reverse"])
        )
        try:
            if op == "junk":
                parent[key] = draw(JUNK)
            elif op == "delete":
                del parent[key]
            elif op == "rename" and isinstance(key, str):
                parent[key + draw(st.sampled_from(["_", "s", "x"]))] = parent.pop(key)
            elif op == "retype" and key == "type":
                parent[key] = draw(st.sampled_from(types))
            elif op == "wrap":
                parent[key] = [parent[key]]
            elif op == "duplicate" and isinstance(parent, dict):
                parent[f"{key}_copy"] = copy.deepcopy(parent[key])
            elif op == "reverse" and isinstance(
                parent.get(key) if isinstance(parent, dict) else None, dict
            ):
                parent[key] = dict(reversed(list(parent[key].items())))
        except (TypeError, KeyError, IndexError, AttributeError):
            pass
    return config


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_mutated_shipped_configs_give_only_user_errors(path):
    base = _load(path)
    assert _only_user_errors(copy.deepcopy(base)) == "ok"  # unmutated: runs
    examples = FUZZ.max_examples // (20 if path.stem in HEAVY else 6)

    @settings(FUZZ, max_examples=max(examples, 5))
    @given(mutations(base))
    def fuzz(config):
        assume(config != base)
        _only_user_errors(config)

    fuzz()

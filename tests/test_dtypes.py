"""float32 end to end: no float64 array on the hot path unless the config says floatx: float64.

Every shipped model and every benchmark workload runs with all intermediate values kept, in the
test phase and the train phase, once on the predict path (activations freed, bias and
activation in place) and once with caches kept (what fit uses); every array in the values,
masks, caches and weights is checked.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from layers.base import Context
from runner.api import Model, compose, load_model_file
from runner.errors import UserError
from runner.graph.execute import forward, input_arrays
from runner.streams import dropout_rng

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "conf" / "model").glob("*.yaml"))
WORKLOADS = sorted((ROOT / "benchmarks" / "configs").glob("*.yaml"))


class Everything(set):
    """A ``keep`` set that holds every name, so forward frees nothing."""

    def __contains__(self, item: object) -> bool:
        return True


def arrays_in(obj, where: str, depth: int = 0):
    """(path, array) for every ndarray inside caches: tuples, lists, dicts, dataclasses."""
    if depth > 8 or obj is None:
        return
    if isinstance(obj, np.ndarray):
        yield where, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from arrays_in(v, f"{where}.{k}", depth + 1)
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from arrays_in(v, f"{where}[{i}]", depth + 1)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from arrays_in(getattr(obj, f.name), f"{where}.{f.name}", depth + 1)
    elif hasattr(obj, "__dict__") and not callable(obj):
        for k, v in vars(obj).items():
            yield from arrays_in(v, f"{where}.{k}", depth + 1)


def wrong_float_dtypes(model: Model, feeds, expected: np.dtype) -> list[str]:
    """Every floating array (values, masks, caches, weights) whose dtype is not ``expected``."""
    found: list[tuple[str, np.ndarray]] = [(f"weights.{k}", v) for k, v in model.weights.items()]
    for training in (False, True):
        for keep_cache in (False, True):
            ctx = Context(
                training=training, rng=dropout_rng(0), dtype=model.plan.dtype, keep_cache=keep_cache
            )
            values, masks, caches = forward(model.plan, dict(feeds), ctx, Everything())
            tag = f"training={training}, keep_cache={keep_cache}"
            found += [(f"{tag}: values.{k}", v) for k, v in values.items()]
            found += [(f"{tag}: masks.{k}", v) for k, v in masks.items()]
            found += list(arrays_in(caches, f"{tag}: caches"))
            assert set(model.plan.outputs) <= set(values)
    assert found
    return [
        f"{where}: {a.dtype}"
        for where, a in found
        if isinstance(a, np.ndarray) and a.dtype.kind in "fc" and a.dtype != expected
    ]


def build(path: Path, floatx: str) -> Model:
    if path.parent.name == "model":  # shipped: composed as the CLI does (interpolations, defaults)
        config = compose(path.stem, [f"floatx={floatx}", "seed=0"])
    else:
        config = load_model_file(path, seed=0, floatx=floatx)
    try:
        return Model.from_config(config, cwd=ROOT)
    except UserError as exc:
        if "pip install" in str(exc):  # a model needing an optional extra (a dataset package)
            pytest.skip(f"{path.name}: {str(exc).splitlines()[-1]}")
        raise


def config_feeds(model: Model) -> dict[str, np.ndarray]:
    """The config's own data (random inputs drawn now), cast as the executor does."""
    return {
        k: np.asarray(v[:64], dtype=model.plan.dtype) for k, v in input_arrays(model.plan).items()
    }


def workload_feeds(model: Model) -> dict[str, np.ndarray]:
    """Eight rows per input; sequences get trailing all-zero steps (so Masking masks some)."""
    rng = np.random.default_rng(0)
    feeds = {}
    for name, node in model.plan.inputs.items():
        x = rng.uniform(-1, 1, (8, *node.shape)).astype(model.plan.dtype)
        if x.ndim == 3:
            x[::2, -3:] = 0
        feeds[name] = x
    return feeds


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_models_stay_float32(path):
    model = build(path, "float32")
    assert wrong_float_dtypes(model, config_feeds(model), np.dtype(np.float32)) == []


@pytest.mark.parametrize("path", WORKLOADS, ids=lambda p: p.stem)
def test_benchmark_workloads_stay_float32(path):
    model = build(path, "float32")
    assert wrong_float_dtypes(model, workload_feeds(model), np.dtype(np.float32)) == []


@pytest.mark.parametrize("path", WORKLOADS, ids=lambda p: p.stem)
def test_floatx_float64_is_float64_throughout(path):
    model = build(path, "float64")
    feeds = workload_feeds(model)
    assert all(v.dtype == np.float64 for v in feeds.values())
    assert wrong_float_dtypes(model, feeds, np.dtype(np.float64)) == []


def test_the_check_sees_a_float64_intermediate(monkeypatch):
    """The checker itself: a layer that silently promotes to float64 is reported."""
    from layers.dense import AffineLayer

    model = build(ROOT / "conf" / "model" / "dense_example.yaml", "float32")
    original = AffineLayer.forward

    def promoting(self, x, mask, ctx):
        y, m, cache = original(self, x, mask, ctx)
        return y.astype(np.float64), m, cache

    monkeypatch.setattr(AffineLayer, "forward", promoting)
    problems = wrong_float_dtypes(model, config_feeds(model), np.dtype(np.float32))
    assert problems and all("values.dense: float64" in p for p in problems)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_activations_match_the_reference_forward(dtype):
    """The predict path (bias + activation in place, blocked, on threads) computes the same
    numbers as ``activation(z + b)``, for every activation, extreme inputs included."""
    from layers import activations

    rng = np.random.default_rng(3)
    z = rng.normal(0, 4, (700, 600)).astype(dtype)  # above the size that goes on threads
    z[0, :6] = [1e4, -1e4, 0.0, -0.0, 88.0, -104.0]
    b = rng.normal(0, 1, 600).astype(dtype)
    for name, act in activations.ACTIVATIONS.items():
        expected = act.forward(z + b)
        got = activations.apply_(name, z.copy(), b)
        assert got.dtype == dtype and got.shape == z.shape
        np.testing.assert_allclose(
            got, expected, rtol=2 * np.finfo(dtype).eps, atol=0, err_msg=name
        )
        if name in ("linear", "relu", "tanh", "sigmoid", "softmax"):
            np.testing.assert_array_equal(got, expected, err_msg=name)  # bit for bit
    z3 = z.reshape(70, 10, 600)  # 3D (TimeDistributedDense): the same numbers
    np.testing.assert_array_equal(activations.apply_("tanh", z3.copy(), b), np.tanh(z3 + b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_training_forward_and_derivatives_match_the_reference(dtype):
    """The training path: ``forward_saving`` gives the output of ``get(name).forward``, bit for
    bit, and ``backward_from`` the gradient of ``get(name).backward`` (bit for bit but for
    sigmoid, whose t * y * y form is checked against float64 sigma * (1 - sigma) instead),
    extreme inputs included."""
    from layers import activations

    rng = np.random.default_rng(4)
    z = rng.normal(0, 4, (70, 60)).astype(dtype)
    z[0, :9] = [1e4, -1e4, 0.0, -0.0, 88.0, -104.0, -88.5, 30.0, -30.0]
    dy = rng.normal(0, 1, z.shape).astype(dtype)
    for name, act in activations.ACTIVATIONS.items():
        y_ref = act.forward(z)
        y, saved = activations.forward_saving(name, z.copy())
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, y_ref, err_msg=name)
        out, tmp = np.full_like(z, np.nan), np.full_like(z, np.nan)
        got = activations.backward_from(name, saved, y, dy, out, tmp)
        assert got.dtype == dtype
        if name != "sigmoid":
            np.testing.assert_array_equal(got, act.backward(z, y_ref, dy), err_msg=name)
    # sigmoid'(z) = e^-|z| / (1 + e^-|z|)^2, in float64 from the same (rounded) z
    y, saved = activations.forward_saving("sigmoid", z.copy())
    got = activations.backward_from("sigmoid", saved, y, dy, np.empty_like(z), np.empty_like(z))
    z64 = z.astype(np.float64)
    e = np.exp(-np.abs(z64))
    exact = dy.astype(np.float64) * e / (1 + e) ** 2
    tiny = np.finfo(dtype).tiny  # below it (z < -87 in float32) the values are subnormal
    normal = np.abs(exact) >= tiny
    np.testing.assert_allclose(got[normal], exact[normal], rtol=8 * np.finfo(dtype).eps)
    np.testing.assert_allclose(got[~normal], exact[~normal], rtol=0, atol=4 * tiny)
    assert not np.isnan(got).any()
    assert got[0, 7] != 0  # at z = 30, y rounds to 1: y * (1 - y) would give 0

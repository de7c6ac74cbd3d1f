"""The plan's speed decisions (runner.graph.fusion): which layers defer their steps, and that a
deferred pass gives the numbers of an independent float64 NumPy formulation, masked steps,
empty samples and chained layers included; visible values are never deferred."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import model_config

from layers import kernels, steps
from runner.api import Model

STEPS, FEATURES, UNITS = 7, 3, 4


def sequences() -> np.ndarray:
    """4 samples of 7 steps; trailing padding (zeros) of 0, 2, 7 (all) and 3 steps."""
    x = np.random.default_rng(5).uniform(-1, 1, (4, STEPS, FEATURES)).astype(np.float32)
    for i, pad in enumerate([0, 2, 7, 3]):
        if pad:
            x[i, STEPS - pad :] = 0.0
    x[0, 1] = 0.0  # an inner padded step too
    return x


def masked_model(mode: str = "ave", outputs=None, tdd_extra=None, chain=False) -> Model:
    layers = {
        "mask": {"type": "Masking", "mask_value": 0.0},
        "tdd": {
            "type": "TimeDistributedDense",
            "output_dim": UNITS,
            "activation": "tanh",
            **(tdd_extra or {}),
        },
    }
    if chain:
        layers["tdd2"] = {"type": "TimeDistributedDense", "output_dim": 2, "activation": "relu"}
    layers["pool"] = {"type": "TimeDistributedMerge", "mode": mode}
    layers["out"] = {"type": "Dense", "output_dim": 2}
    inputs = {"x": {"shape": [STEPS, FEATURES], "data": sequences().tolist()}}
    extra = {"outputs": outputs} if outputs else {}
    return Model.from_config(model_config(layers, inputs, **extra))


def reference(model: Model, x: np.ndarray, mode: str, chain: bool = False) -> dict:
    """float64 NumPy of Masking -> TDD tanh [-> TDD relu] -> masked reduction -> Dense."""
    w = {k: v.astype(np.float64) for k, v in model.weights.items()}
    keep = np.any(x != 0, axis=-1)
    h = np.tanh(np.einsum("nsd,du->nsu", x * keep[..., None], w["tdd/W"]) + w["tdd/b"])
    tdd = h
    if chain:
        h = np.maximum(np.einsum("nsd,du->nsu", h, w["tdd2/W"]) + w["tdd2/b"], 0)
    k = keep[..., None]
    if mode == "mul":
        pooled = np.where(k, h, 1.0).prod(axis=1)
    else:
        pooled = (h * k).sum(axis=1)
        if mode == "ave":
            pooled = pooled / np.maximum(keep.sum(axis=1, keepdims=True), 1)
    return {"tdd": tdd, "pool": pooled, "out": pooled @ w["out/W"] + w["out/b"]}


def deferred(model: Model) -> dict[str, str]:
    return {n.name: n.deferred for n in model.plan.nodes.values() if n.deferred}


@pytest.mark.parametrize("mode", ["ave", "sum", "mul"])
def test_masked_steps_are_deferred_and_give_the_masked_reduction(mode):
    model = masked_model(mode)
    assert deferred(model) == {"mask": "steps", "tdd": "steps"}  # recorded on the nodes
    x = sequences()
    got = model.predict({"x": x})["out"]
    expected = reference(model, x.astype(np.float64), mode)["out"]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # sample 2 has every step masked: its pooled value is the reduction's neutral element
    pooled = model.predict({"x": x}, keep={"pool"})["pool"]
    np.testing.assert_array_equal(pooled[2], np.full(UNITS, 1.0 if mode == "mul" else 0.0))


def test_a_chain_of_per_step_layers_is_deferred_as_a_whole():
    model = masked_model("ave", chain=True)
    assert deferred(model) == {"mask": "steps", "tdd": "steps", "tdd2": "steps"}
    x = sequences()
    expected = reference(model, x.astype(np.float64), "ave", chain=True)["out"]
    np.testing.assert_allclose(model.predict({"x": x})["out"], expected, rtol=1e-5, atol=1e-6)


def test_visible_values_are_never_deferred():
    x = sequences()
    shown = masked_model(outputs=["tdd", "out"])  # the per-step output is a model output
    assert deferred(shown) == {}
    ref = reference(shown, x.astype(np.float64), "ave")
    got = shown.predict({"x": x})
    np.testing.assert_allclose(got["tdd"], ref["tdd"], rtol=1e-5, atol=1e-6)
    # masked steps went through the layer as zeros (legacy): tanh(b) there
    np.testing.assert_allclose(got["tdd"][2], np.tanh(np.tile(shown.weights["tdd/b"], (7, 1))))
    # a caller asking for the value at run time gets it too, from a model that defers it
    model = masked_model()
    asked = model.predict({"x": x}, keep={"tdd", "out"})
    np.testing.assert_allclose(asked["tdd"], ref["tdd"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(asked["out"], ref["out"], rtol=1e-5, atol=1e-6)


def test_an_activity_penalty_keeps_the_layer_whole():
    model = masked_model(tdd_extra={"activity_regularizer": {"l2": 0.1}})
    assert deferred(model) == {}


def test_blocks_cover_every_sample_once_with_only_its_kept_steps(monkeypatch):
    monkeypatch.setattr(steps, "BLOCK_ELEMENTS", 2 * STEPS * FEATURES)  # 2 samples per block
    x = sequences()
    keep = np.any(x != 0, axis=-1)
    chain = steps.DeferredSteps(x, keep)
    seen = []
    for lo, hi, rows, counts in chain.blocks():
        seen.append((lo, hi))
        np.testing.assert_array_equal(counts, keep[lo:hi].sum(axis=1))
        np.testing.assert_array_equal(rows, x[lo:hi][keep[lo:hi]])
    assert seen == [(0, 2), (2, 4)]


def test_the_bias_goes_into_the_gemm_as_a_row_of_w_with_and_without_a_mask(monkeypatch):
    """Large enough for the one-pass gather (layers.kernels): the kept rows get a column of
    ones and W gets b as its last row; masked or not, and with numba off (NumPy's gather,
    bias added after), the numbers are the float64 reference's."""
    rng = np.random.default_rng(9)
    x = rng.uniform(-1, 1, (64, 50, 16)).astype(np.float32)
    pads = rng.integers(0, 40, 64)
    for i, pad in enumerate(pads):
        if pad:
            x[i, 50 - pad :] = 0.0
    folded = []
    with_bias_row = steps.Affine.with_bias_row
    monkeypatch.setattr(
        steps.Affine, "with_bias_row", lambda a: folded.append(a) or with_bias_row(a)
    )
    for masked in (True, False):
        layers = {"mask": {"type": "Masking", "mask_value": 0.0}} if masked else {}
        layers |= {
            "tdd": {"type": "TimeDistributedDense", "output_dim": 24, "activation": "tanh"},
            "pool": {"type": "TimeDistributedMerge", "mode": "ave"},
        }
        inputs = {"x": {"shape": [50, 16], "data": {"random": {"rows": 64}}}}
        model = Model.from_config(model_config(layers, inputs))
        model.weights["tdd/b"][:] = rng.normal(0, 1, 24)  # b starts at zeros: make it count
        w = {k: v.astype(np.float64) for k, v in model.weights.items()}
        keep = np.any(x != 0, axis=-1) if masked else np.ones(x.shape[:2], bool)
        h = np.tanh(x.astype(np.float64) @ w["tdd/W"] + w["tdd/b"])
        expected = (h * keep[..., None]).sum(axis=1) / np.maximum(keep.sum(axis=1), 1)[:, None]
        folded.clear()
        np.testing.assert_allclose(model.predict({"x": x})["pool"], expected, atol=2e-6)
        assert len(folded) == 1  # the chain ran with the bias row
        if masked:  # NumPy's gather: the bias is added after the GEMM, same numbers
            monkeypatch.setattr(kernels, "ENABLED", False)
            folded.clear()
            np.testing.assert_allclose(model.predict({"x": x})["pool"], expected, atol=2e-6)
            assert folded == []
            monkeypatch.setattr(kernels, "ENABLED", True)


def test_kept_rows_with_ones_is_the_gather_and_a_ones_column():
    rng = np.random.default_rng(10)
    x = rng.normal(0, 1, (3000, 16)).astype(np.float32)
    keep = rng.random(3000) < 0.7
    got = kernels.kept_rows_with_ones(x, keep)
    np.testing.assert_array_equal(got, np.concatenate([x[keep], np.ones((keep.sum(), 1))], 1))
    assert got.dtype == np.float32
    assert kernels.kept_rows_with_ones(x[:10], keep[:10]) is None  # small: NumPy's gather
    assert kernels.kept_rows_with_ones(x, keep[:-1]) is None  # a mask of the wrong length
    assert kernels.kept_rows_with_ones(x, keep.astype(np.int8)) is None  # not a bool mask


# ---- deferred concat: a Siamese concat read by a Dense ------------------------------------


def siamese_model(reader: dict, outputs=None) -> Model:
    rng = np.random.default_rng(8)
    inputs = {
        name: {"shape": [5], "data": rng.uniform(-1, 1, (6, 5)).round(3).tolist()}
        for name in ("a", "b")
    }
    layers = {
        "siam": {
            "type": "Siamese",
            "inputs": ["a", "b"],
            "layer": {"type": "Dense", "output_dim": 3, "activation": "relu"},
            "merge_mode": "concat",
        },
        "out": reader,
    }
    extra = {"outputs": outputs} if outputs else {}
    return Model.from_config(model_config(layers, inputs, **extra))


def test_a_siamese_concat_read_by_a_dense_is_never_copied_and_gives_the_same_numbers():
    model = siamese_model({"type": "Dense", "output_dim": 2, "activation": "tanh"})
    assert deferred(model) == {"siam": "concat"}
    w = {k: v.astype(np.float64) for k, v in model.weights.items()}
    a, b = (np.asarray(model.plan.inputs[k].array, dtype=np.float64) for k in ("a", "b"))

    def head(v):
        return np.maximum(v @ w["siam/layer/W"] + w["siam/layer/b"], 0)

    expected = np.tanh(np.concatenate([head(a), head(b)], axis=1) @ w["out/W"] + w["out/b"])
    np.testing.assert_allclose(model.predict()["out"], expected, rtol=1e-5, atol=1e-6)
    both = model.predict(keep={"siam", "out"})  # asked for: computed whole
    np.testing.assert_allclose(both["siam"], np.concatenate([head(a), head(b)], 1), rtol=1e-6)


def test_a_concat_is_kept_whole_for_other_readers_and_when_shown():
    assert deferred(siamese_model({"type": "Activation", "activation": "tanh"})) == {}
    shown = siamese_model({"type": "Dense", "output_dim": 2}, outputs=["siam", "out"])
    assert deferred(shown) == {}

"""AutoEncoder: both output modes against a NumPy formula, weights keyed ae/encoder/<name>/<p>
(saved by one run, loaded by another), inner-layer errors with their config paths, nested
composites, summary rows and finite-difference gradients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import model_config

import layers  # noqa: F401
from layers.autoencoder import AutoEncoder, AutoEncoderSpec
from layers.base import Context
from runner.api import Model
from runner.errors import ConfigError
from tests.helpers import numeric_gradient

RNG = np.random.default_rng(5)
X = RNG.uniform(-1, 1, size=(6, 5)).round(3)


def ae_layer(reconstruction: bool = True, **extra) -> dict:
    return {
        "type": "AutoEncoder",
        "output_reconstruction": reconstruction,
        "encoder": {
            "enc": {"type": "Dense", "output_dim": 3, "activation": "tanh"},
            "code": {"type": "Dense", "output_dim": 2},
        },
        "decoder": {
            "dec": {"type": "Dense", "output_dim": 3, "activation": "relu"},
            "out": {"type": "Dense", "output_dim": 5},
        },
        **extra,
    }


def config(reconstruction: bool = True, **extra) -> dict:
    inputs = {"x": {"shape": [5], "data": X.tolist()}}
    return model_config({"ae": ae_layer(reconstruction)}, inputs, **extra)


def numpy_autoencoder(w: dict[str, np.ndarray], x: np.ndarray):
    """Independent formula: the four affine maps written out."""
    h = np.tanh(x @ w["ae/encoder/enc/W"] + w["ae/encoder/enc/b"])
    code = h @ w["ae/encoder/code/W"] + w["ae/encoder/code/b"]
    d = np.maximum(code @ w["ae/decoder/dec/W"] + w["ae/decoder/dec/b"], 0)
    return code, d @ w["ae/decoder/out/W"] + w["ae/decoder/out/b"]


@pytest.mark.parametrize("reconstruction", [True, False])
def test_both_modes_against_numpy(reconstruction):
    model = Model.from_config(config(reconstruction))
    weights = {k: v.astype(np.float64) for k, v in model.weights.items()}
    assert sorted(weights) == [
        "ae/decoder/dec/W",
        "ae/decoder/dec/b",
        "ae/decoder/out/W",
        "ae/decoder/out/b",
        "ae/encoder/code/W",
        "ae/encoder/code/b",
        "ae/encoder/enc/W",
        "ae/encoder/enc/b",
    ]
    assert weights["ae/decoder/out/W"].shape == (3, 5)
    code, recon = numpy_autoencoder(weights, X)
    out = model.predict()["ae"]
    np.testing.assert_allclose(out, recon if reconstruction else code, rtol=1e-5, atol=1e-6)
    assert model.plan.nodes["ae"].shape == ((5,) if reconstruction else (2,))


def test_weights_saved_by_one_run_load_into_the_other_mode(run_config, tmp_path):
    outcome, result = run_config(config(True))
    assert result["status"] == "ok"
    saved = Path(outcome.result["output_dir"]) / "weights.npz"
    second = config(False, weights={"path": str(saved)})
    model = Model.from_config(second, cwd=tmp_path)
    with np.load(saved) as npz:
        code, recon = numpy_autoencoder({k: npz[k].astype(np.float64) for k in npz.files}, X)
    np.testing.assert_allclose(model.predict()["ae"], code, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outcome.values["ae"], recon, rtol=1e-5, atol=1e-6)


def test_inline_weights_of_inner_layers():
    layer = {
        "type": "AutoEncoder",
        "encoder": {
            "enc": {"type": "Dense", "output_dim": 1, "weights": {"W": [[1], [2]], "b": [0.5]}}
        },
        "decoder": {
            "dec": {"type": "Dense", "output_dim": 2, "weights": {"W": [[2, -1]], "b": [0, 1]}}
        },
    }
    inputs = {"x": {"shape": [2], "data": [[1, 1], [0, 2]]}}
    out = Model.from_config(model_config({"ae": layer}, inputs)).predict()["ae"]
    # code = x1 + 2 x2 + 0.5 = [3.5, 4.5]; recon = [2c, 1 - c]
    np.testing.assert_array_equal(out, [[7, -2.5], [9, -3.5]])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda l: l["encoder"]["enc"].update(weights={"W": [[1, 2, 3]]}),
            r"model.layers.ae.encoder.enc.weights.W: expected shape \(5, 3\)",
        ),
        (
            lambda l: l["decoder"]["out"].update(weights={"V": [[1]]}),
            r"model.layers.ae.decoder.out.weights.V: Dense has no parameter 'V'",
        ),
        (
            lambda l: l["encoder"]["code"].update(inputs=["x"]),
            r"model.layers.ae.encoder: inner layer 'code' sets 'inputs'",
        ),
        (
            lambda l: l["decoder"].update(m={"type": "Merge"}),
            r"model.layers.ae.decoder: inner layer 'm' is a Merge, which takes several inputs",
        ),
        (
            lambda l: l["decoder"]["dec"].update(output_dim=0),
            r"model.layers.ae.decoder.dec.output_dim: expected greater than 0",
        ),
        (
            lambda l: l["decoder"].update(pool={"type": "TimeDistributedMerge"}),
            r"model.layers.ae: in decoder.pool \(TimeDistributedMerge\): TimeDistributedMerge "
            r"expects 3D input \(batch, steps, features\), got per-sample shape \(5,\) "
            r"\(fed by model.inputs.x",
        ),
        (lambda l: l.update(encoder={}), r"model.layers.ae.encoder: expected at least 1 entry"),
        (
            lambda l: l["encoder"].update(bad={"type": "Denze"}),
            r"model.layers.ae.encoder.bad: unknown layer type 'Denze' \(did you mean 'Dense'\?\)",
        ),
    ],
)
def test_inner_errors_name_the_inner_path(mutate, message):
    cfg = config()
    mutate(cfg["model"]["layers"]["ae"])
    with pytest.raises(ConfigError, match=message):
        Model.from_config(cfg)


def test_summary_rows_and_graph_show_inner_layers(run_config):
    outcome, result = run_config(config(False))
    folder = Path(outcome.result["output_dir"])
    summary = (folder / "summary.txt").read_text()
    rows = {line.split()[0]: line.split() for line in summary.splitlines()[2:-2]}
    assert rows["ae/encoder/enc"] == ["ae/encoder/enc", "Dense", "input", "(None,", "3)", "(18)"]
    assert rows["ae/decoder/dec"][2:5] == ["encoder/code", "(not", "run)"]  # left out of output
    assert rows["ae"][-1] == "55" and "total params: 55" in summary  # 18 + 8 + 9 + 20, once
    graph = (folder / "graph.mmd").read_text()
    assert 'subgraph n0["ae: AutoEncoder (None, 2)"]' in graph
    assert 'n0_0["encoder/enc: Dense (None, 3)"]' in graph and "n0_0 --> n0_1" in graph
    assert "n0_1 --> n0_2" not in graph  # the decoder is not run


def test_autoencoder_inside_siamese_keys_and_values():
    inputs = {
        "a": {"shape": [5], "data": X[:3].tolist()},
        "b": {"shape": [5], "data": X[3:].tolist()},
    }
    layers_ = {
        "s": {
            "type": "Siamese",
            "inputs": ["a", "b"],
            "merge_mode": "none",
            "layer": ae_layer(True),
        }
    }
    model = Model.from_config(model_config(layers_, inputs))
    w = {k.replace("s/layer/", "ae/"): v.astype(np.float64) for k, v in model.weights.items()}
    assert len(w) == 8 and "ae/decoder/out/b" in w
    out = model.predict()
    np.testing.assert_allclose(out["s.0"], numpy_autoencoder(w, X[:3])[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["s.1"], numpy_autoencoder(w, X[3:])[1], rtol=1e-5, atol=1e-6)


def test_masks_travel_through_the_stacks():
    spec = AutoEncoderSpec.model_validate(
        {
            "type": "AutoEncoder",
            "encoder": {"t": {"type": "TimeDistributedDense", "output_dim": 2}},
            "decoder": {"m": {"type": "TimeDistributedMerge", "mode": "ave"}},
        }
    )
    ae = AutoEncoder(spec, "ae")
    assert ae.output_mask((3, 4), True) is False  # consumed by the TimeDistributedMerge
    ae.init_params((3, 4), np.random.default_rng(0), np.dtype(np.float32))
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    mask = np.array([[True, False, False], [True, True, True]])
    y, out_mask, _ = ae.forward(x, mask, Context())
    w, b = ae.named_params()["encoder/t/W"], ae.named_params()["encoder/t/b"]
    np.testing.assert_allclose(y[0], x[0, 0] @ w + b, rtol=1e-6)  # only the kept step
    np.testing.assert_allclose(y[1], (x[1] @ w + b).mean(axis=0), rtol=1e-5)
    assert out_mask is None


@pytest.mark.parametrize("reconstruction", [True, False])
def test_backward_matches_finite_differences(reconstruction):
    spec = AutoEncoderSpec.model_validate(ae_layer(reconstruction))
    ae = AutoEncoder(spec, "ae")
    ae.init_params((5,), np.random.default_rng(1), np.dtype(np.float64))
    for p in ae.named_params().values():  # non-zero biases, clear of relu's kink
        p += np.random.default_rng(2).uniform(0.05, 0.3, size=p.shape)
    x = X[:3].copy()
    ctx = Context(keep_cache=True, dtype=np.dtype(np.float64))
    y, _, cache = ae.forward(x, None, ctx)
    r = np.random.default_rng(3).normal(size=y.shape)
    dx, grads = ae.backward(r, cache, ctx)
    assert set(grads) == set(ae.named_params())

    def loss():
        return float(np.sum(r * ae.forward(x, None, Context(dtype=np.dtype(np.float64)))[0]))

    for name, a, g in [("x", x, dx), *((k, v, grads[k]) for k, v in ae.named_params().items())]:
        np.testing.assert_allclose(g, numeric_gradient(loss, a), rtol=1e-5, atol=1e-8, err_msg=name)
    if not reconstruction:  # the decoder is frozen in this mode
        assert not any(grads[k].any() for k in grads if k.startswith("decoder/"))

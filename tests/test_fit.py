"""task=fit end to end: a step by hand, determinism, early stopping and restore-best, history
files, trained weights reused by another config, validation data, errors, the digits models."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from layers.base import Context
from runner.api import compose
from runner.config.schema import DatasetSpec
from runner.config.validate import validate
from runner.data import datasets
from runner.graph import backprop
from runner.graph.build import build
from runner.graph.execute import forward
from runner.graph.plan import make_plan
from runner.run import run

BLOBS = {"dataset": {"name": "blobs", "rows": 120, "features": 4, "classes": 3, "seed": 1}}


def classifier(**fit) -> dict:
    return {
        "task": "fit",
        "seed": 3,
        "progress": False,
        "fit": {
            "epochs": 4,
            "batch_size": 16,
            "validation_split": 0.25,
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["loss", "accuracy"],
            "optimizer": {"name": "adam", "lr": 0.01},
            **fit,
        },
        "model": {
            "inputs": {"x": {"data": BLOBS}},
            "layers": {
                "h": {
                    "type": "Dense",
                    "output_dim": 8,
                    "activation": "tanh",
                    "W_regularizer": {"l2": 0.001},
                },
                "drop": {"type": "Dropout", "p": 0.3},
                "out": {"type": "Dense", "output_dim": 3, "activation": "softmax"},
            },
            "targets": {"out": {"dataset": {**BLOBS["dataset"], "part": "labels"}}},
        },
    }


def fit_run(tmp_path: Path, config: dict, name: str = "run"):
    folder = tmp_path / name
    outcome = run(copy.deepcopy(config), folder, tmp_path)
    return outcome, json.loads((folder / "result.json").read_text()), folder


def weights(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "weights.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def test_one_sgd_step_by_hand(tmp_path):
    """Linear Dense, mse, one full batch, no shuffle: W -= lr * 2/(N*D) x^T (y - t)."""
    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    t = np.array([[1.0], [0.0], [2.0]])
    w0 = np.array([[0.1], [-0.2]])
    config = {
        "task": "fit",
        "floatx": "float64",
        "progress": False,
        "fit": {
            "epochs": 1,
            "batch_size": 3,
            "shuffle": False,
            "loss": "mse",
            "optimizer": {"name": "sgd", "lr": 0.1},
        },
        "model": {
            "inputs": {"x": {"data": x.tolist()}},
            "layers": {
                "d": {"type": "Dense", "output_dim": 1, "weights": {"W": w0.tolist(), "b": [0.5]}}
            },
            "targets": {"d": t.tolist()},
        },
    }
    outcome, result, folder = fit_run(tmp_path, config)
    assert outcome.exit_code == 0, result.get("error")
    y = x @ w0 + 0.5
    grad = 2 / 3 * (y - t)  # d mean((y - t)^2) / dy
    trained = weights(folder)
    np.testing.assert_allclose(trained["d/W"], w0 - 0.1 * x.T @ grad, rtol=1e-12)
    np.testing.assert_allclose(trained["d/b"], 0.5 - 0.1 * grad.sum(axis=0), rtol=1e-12)
    assert result["metrics"]["loss"] == pytest.approx(float(np.mean((y - t) ** 2)), rel=1e-12)
    assert result["metrics"]["objective"] == result["metrics"]["loss"]  # no validation: loss


def test_same_config_and_seed_are_bit_identical(tmp_path):
    config = classifier()
    _, r1, f1 = fit_run(tmp_path, config, "a")
    _, r2, f2 = fit_run(tmp_path, config, "b")
    assert (f1 / "history.csv").read_bytes() == (f2 / "history.csv").read_bytes()
    w1, w2 = weights(f1), weights(f2)
    assert w1.keys() == w2.keys() == {"h/W", "h/b", "out/W", "out/b"}
    for k in w1:
        assert w1[k].dtype == np.float32
        np.testing.assert_array_equal(w1[k], w2[k])
    other = copy.deepcopy(config)
    other["seed"] = 4
    _, _, f3 = fit_run(tmp_path, other, "c")
    assert not np.array_equal(weights(f3)["h/W"], w1["h/W"])


def test_training_learns_and_history_files_agree(tmp_path):
    outcome, result, folder = fit_run(tmp_path, classifier(epochs=8))
    assert outcome.exit_code == 0, result.get("error")
    history = result["history"]
    assert [r["epoch"] for r in history] == list(range(1, 9))
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    assert result["metrics"]["val_accuracy"] > 0.8  # three well-separated blobs
    assert result["metrics"]["weight_penalty"] > 0  # the l2 on h/W is in the training loss
    lines = (folder / "history.csv").read_text().splitlines()
    assert lines[0] == (
        "epoch,loss,weight_penalty,activity_penalty,accuracy,val_loss,val_accuracy,lr"
    )
    assert [float(line.split(",")[-1]) for line in lines[1:]] == [0.01] * 8  # no schedule
    assert len(lines) == 9
    assert float(lines[-1].split(",")[5]) == history[-1]["val_loss"]  # exact floats
    assert (folder / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert outcome.metric == result["metrics"]["objective"] == history[-1]["val_loss"]
    assert result["objective_mode"] == "min"
    assert result["fit"]["train_rows"] == 90 and result["fit"]["val_rows"] == 30


def test_early_stopping_and_restore_best(tmp_path):
    # min_delta so large that no epoch after the first improves: stop after `patience` more
    config = classifier(
        epochs=10, patience=2, min_delta=1e9, restore_best=True, monitor="val_accuracy"
    )
    _, result, folder = fit_run(tmp_path, config, "stopped")
    assert len(result["history"]) == 3
    assert result["fit"]["stopped_early"] and result["fit"]["restored_best"]
    assert result["metrics"]["best_epoch"] == 1
    assert result["metrics"]["objective"] == result["history"][0]["val_accuracy"]
    assert result["objective_mode"] == "max"
    _, _, one = fit_run(tmp_path, classifier(epochs=1), "one_epoch")
    for key, value in weights(one).items():  # restored = exactly the weights after epoch 1
        np.testing.assert_array_equal(weights(folder)[key], value)


def test_trained_weights_predict_via_model_level_weights(tmp_path):
    _, result, folder = fit_run(tmp_path, classifier(epochs=6))
    config = classifier()
    config["task"] = "predict"
    config["model"]["weights"] = {"path": str(folder / "weights.npz")}
    outcome = run(config, tmp_path / "predict", tmp_path)
    assert outcome.exit_code == 0
    probs = outcome.values["out"]
    labels = datasets.load(DatasetSpec(**BLOBS["dataset"], part="labels"), "t")
    val_accuracy = float(np.mean(probs[90:].argmax(axis=1) == labels[90:]))
    assert val_accuracy == pytest.approx(result["metrics"]["val_accuracy"])


def test_validation_data_and_autoencoder_default_target(tmp_path):
    rows = {"dataset": {"name": "blobs", "rows": 64, "features": 6, "seed": 2}}
    held_out = {"dataset": {"name": "blobs", "rows": 64, "features": 6, "seed": 2, "shuffle": True}}
    config = {
        "task": "fit",
        "progress": False,
        "fit": {
            "epochs": 40,
            "batch_size": 8,
            "loss": "mse",
            "optimizer": {"name": "adam", "lr": 0.01},
            "validation_data": {"inputs": {"x": held_out}},
        },
        "model": {
            "inputs": {"x": {"data": rows}},
            "layers": {
                "ae": {
                    "type": "AutoEncoder",
                    "encoder": {"e": {"type": "Dense", "output_dim": 3, "activation": "tanh"}},
                    "decoder": {"d": {"type": "Dense", "output_dim": 6}},
                }
            },
        },
    }
    outcome, result, _ = fit_run(tmp_path, config)
    assert outcome.exit_code == 0, result.get("error")
    metrics = result["metrics"]
    assert result["fit"]["val_rows"] == 64
    assert metrics["val_loss"] < 0.5 * metrics["baseline_val_loss"]  # beats predicting the mean


def test_masked_timesteps_do_not_train(tmp_path):
    x = np.array([[[1.0, 2.0], [0.0, 0.0], [3.0, 1.0]], [[2.0, 1.0], [1.0, 1.0], [0.0, 0.0]]])
    target = np.array([[[1.0], [5.0], [0.0]], [[2.0], [1.0], [7.0]]])
    other = target.copy()
    other[0, 1], other[1, 2] = -40.0, 99.0  # only masked steps differ

    def trained(t):
        config = {
            "task": "fit",
            "floatx": "float64",
            "progress": False,
            "fit": {"epochs": 2, "batch_size": 2, "loss": "mse"},
            "model": {
                "inputs": {"x": {"data": x.tolist()}},
                "layers": {
                    "m": {"type": "Masking"},
                    "td": {"type": "TimeDistributedDense", "output_dim": 1},
                },
                "targets": {"td": t.tolist()},
            },
        }
        _, result, folder = fit_run(tmp_path, config, f"mask{t[1, 2, 0]}")
        return result, weights(folder)

    r1, w1 = trained(target)
    r2, w2 = trained(other)
    np.testing.assert_array_equal(w1["td/W"], w2["td/W"])
    assert r1["history"] == r2["history"]


def test_graph_backward_accumulates_where_a_value_feeds_two_layers():
    """x -> h -> (a, b) both outputs: dh = da W_a^T + db W_b^T; checked by finite differences."""
    config = {
        "floatx": "float64",
        "model": {
            "inputs": {"x": {"shape": [3], "data": [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]]}},
            "layers": {
                "h": {"type": "Dense", "output_dim": 4, "activation": "tanh"},
                "a": {"type": "Dense", "output_dim": 2, "inputs": ["h"]},
                "b": {"type": "Dense", "output_dim": 3, "activation": "sigmoid", "inputs": ["h"]},
            },
            "outputs": ["a", "b"],
        },
    }
    plan = build(make_plan(validate(config)))
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
    rng = np.random.default_rng(0)
    r = {"a": rng.normal(size=(2, 2)), "b": rng.normal(size=(2, 3))}

    def objective():
        values, _, _ = forward(plan, {"x": x}, Context(dtype=np.dtype(np.float64)), {"a", "b"})
        return sum(float(np.sum(values[k] * r[k])) for k in r)

    ctx = Context(dtype=np.dtype(np.float64), keep_cache=True)
    _, _, caches = forward(plan, {"x": x}, ctx, {"a", "b"})
    grads, inputs = backprop.backward(plan, caches, r, ctx, input_grads=True)
    params = {
        f"{n}/{k}": v
        for n, node in plan.nodes.items()
        for k, v in node.layer.named_params().items()
    }
    for key, array in [*params.items(), ("x", x)]:
        numeric = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            keep = array[idx]
            array[idx] = keep + 1e-6
            plus = objective()
            array[idx] = keep - 1e-6
            minus = objective()
            array[idx] = keep
            numeric[idx] = (plus - minus) / 2e-6
        analytic = inputs["x"] if key == "x" else grads[key]
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9, err_msg=key)


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        (
            {"fit": {"monitor": "val_loss", "validation_split": 0.0}},
            "fit.monitor",
            "needs validation data",
        ),
        (
            {"fit": {"optimizer": {"name": "adam", "momentum": 0.9}}},
            "fit.optimizer.momentum",
            "not a setting of adam",
        ),
        ({"fit": {"loss": "mse"}}, "fit.metrics", "accuracy needs a classification loss"),
        (
            {"fit": {"validation_data": {"inputs": {"x": [[1, 2, 3, 4]]}}}},
            "fit.validation_data",
            "not both",
        ),
        ({"fit": {"loss": {"outt": "mse"}}}, "fit.loss.outt", "did you mean 'out'"),
        ({"model": {"targets": {}}}, "model.targets", "no target for output 'out'"),
        (
            {"model": {"targets": {"out": {"dataset": {**BLOBS["dataset"], "part": "onehot"}}}}},
            "model.targets.out",
            "one integer class label per sample",
        ),
    ],
)
def test_config_errors_name_the_path(tmp_path, change, path, fragment):
    config = classifier()
    for section, values in change.items():
        config[section].update(values)
    outcome, result, _ = fit_run(tmp_path, config)
    assert outcome.exit_code == 2
    problems = result["error"]["problems"]
    assert any(p["path"] == path and fragment in p["message"] for p in problems), problems


def test_forward_only_layer_is_a_config_error(tmp_path, monkeypatch):
    from typing import Literal

    from layers import Layer, registry
    from layers.base import SpecBase

    class FrozenStepSpec(SpecBase):
        type: Literal["FrozenStep"] = "FrozenStep"

    class FrozenStep(Layer):
        Spec = FrozenStepSpec
        differentiable = False

        def output_shape(self, input_shape):
            return input_shape

        def forward(self, x, mask, ctx):
            return np.round(x), mask, None

    # Registered for this test only: the registry (and its schema cache key) is restored after.
    monkeypatch.setitem(registry._LAYERS, "FrozenStep", FrozenStep)
    monkeypatch.setattr(registry, "_version", registry._version + 10**6)
    config = classifier()
    config["model"]["layers"] = {"step": {"type": "FrozenStep"}, **config["model"]["layers"]}
    outcome, result, _ = fit_run(tmp_path, config)
    assert outcome.exit_code == 2
    (problem,) = result["error"]["problems"]
    assert problem["path"] == "model.layers.step"
    assert "forward-only" in problem["message"] and "task=fit" in problem["message"]


def test_model_fit_block_is_overridden_by_top_level(tmp_path):
    config = classifier()
    config["model"]["fit"] = {"epochs": 2, "optimizer": {"name": "sgd", "momentum": 0.5}}
    config["fit"].pop("epochs")
    config["fit"].pop("optimizer")
    _, result, _ = fit_run(tmp_path, config, "model_level")
    assert len(result["history"]) == 2
    assert result["fit"]["optimizer"]["name"] == "sgd"
    assert result["fit"]["optimizer"]["momentum"] == 0.5
    config["fit"]["optimizer"] = {"name": "adam"}  # another optimizer drops the model's settings
    _, result, _ = fit_run(tmp_path, config, "top_level")
    assert result["fit"]["optimizer"] == {
        "name": "adam",
        "lr": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-8,
    }


@pytest.mark.slow
def test_digits_classifier_reaches_095(tmp_path):
    config = compose("mlp_digits", ["task=fit", "progress=false"])
    outcome, result, _ = fit_run(tmp_path, config)
    assert outcome.exit_code == 0, result.get("error")
    assert result["metrics"]["objective"] > 0.95  # best validation accuracy (restored)
    assert result["metrics"]["val_accuracy"] > 0.95


@pytest.mark.slow
def test_digits_autoencoder_beats_the_mean(tmp_path):
    config = compose("autoencoder_digits", ["task=fit", "progress=false"])
    outcome, result, _ = fit_run(tmp_path, config)
    assert outcome.exit_code == 0, result.get("error")
    assert result["metrics"]["objective"] < 0.3 * result["metrics"]["baseline_val_loss"]


@pytest.mark.slow
def test_cli_fit_prints_epochs_and_returns_the_score(cli):
    res = cli("+model=mlp_digits", "task=fit", "fit.epochs=2", "fit.patience=null")
    assert res.returncode == 0, res.stderr
    assert "epoch 1/2" in res.stdout and "val_accuracy" in res.stdout
    assert {p.name for p in res.folder.iterdir()} >= {
        "history.csv",
        "history.png",
        "weights.npz",
        "result.json",
    }
    assert res.result["metrics"]["objective"] == max(
        r["val_accuracy"] for r in res.result["history"]
    )


def test_api_fit_trains_in_place_like_the_task(tmp_path):
    from runner.api import Model

    config = compose("mlp_digits", ["task=fit", "fit.epochs=2"])
    model = Model.from_config(config)
    before = {k: v.copy() for k, v in model.weights.items()}
    result = model.fit()
    assert len(result.history) == 2
    assert any(not np.array_equal(before[k], v) for k, v in model.weights.items())
    outcome = run(config, tmp_path / "task", tmp_path)  # the task gives the same history
    task_history = json.loads((tmp_path / "task" / "result.json").read_text())["history"]
    assert [r["loss"] for r in task_history] == [r["loss"] for r in result.history]
    assert outcome.exit_code == 0


def test_fit_through_siamese_heads(tmp_path):
    """Outputs that are heads of a Siamese (merge_mode none) get targets and gradients."""
    config = {
        "task": "fit",
        "seed": 0,
        "fit": {"epochs": 40, "batch_size": 8, "optimizer": {"name": "sgd", "lr": 0.1}},
        "model": {
            "inputs": {
                "a": {"shape": [2], "data": {"random": {"rows": 32, "seed": 1}}},
                "b": {"shape": [2], "data": {"random": {"rows": 32, "seed": 2}}},
            },
            "layers": {
                "siam": {
                    "type": "Siamese",
                    "inputs": ["a", "b"],
                    "merge_mode": "none",
                    "layer": {"type": "Dense", "output_dim": 2},
                }
            },
            "outputs": ["siam.0", "siam.1"],
            "targets": {
                "siam.0": {"random": {"rows": 32, "seed": 1}},  # = a: learn identity
                "siam.1": {"random": {"rows": 32, "seed": 2}},
            },
        },
    }  # = b
    config["model"]["targets"]["siam.0"]["random"]["distribution"] = "uniform"
    outcome = run(config, tmp_path / "r", tmp_path)
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert outcome.exit_code == 0, result.get("error")
    losses = [r["loss"] for r in result["history"]]
    assert losses[-1] < 0.2 * losses[0]  # the shared Dense moves towards the identity

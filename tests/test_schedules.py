"""Learning-rate schedules: Keras semantics, learning rates computed by hand per epoch and per
update, the rate actually used by an update, history.csv's lr column and config errors."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from test_fit import classifier

from runner.api import compose
from runner.run import run
from runner.train import schedules


# ---- the formulas, by hand -------------------------------------------------------------------
def test_step_decay_per_epoch():
    s = schedules.StepDecay(0.1, factor=0.5, drop_every=2)
    # epochs 0..5 (Keras counts from 0): 0.1, 0.1, 0.05, 0.05, 0.025, 0.025
    assert [s.begin_epoch(e, 123.0) for e in range(6)] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]


@pytest.fixture(autouse=True)
def _no_history_plot(monkeypatch):
    """history.png takes about a second per fit (matplotlib); these tests read history.csv."""
    monkeypatch.setattr("runner.train.history.plot_history", lambda history, path: None)


def test_exponential_decay_per_epoch():
    s = schedules.ExponentialDecay(0.2, decay_rate=0.25, decay_epochs=2)
    # 0.2 * 0.25 ** (e / 2): 0.2, 0.1, 0.05, 0.025
    assert [s.begin_epoch(e, 1.0) for e in range(4)] == pytest.approx(
        [0.2, 0.1, 0.05, 0.025], rel=1e-15
    )


def test_cosine_decay_without_warmup():
    s = schedules.CosineDecay(0.1, decay_steps=4, alpha=0.0, warmup_target=None, warmup_steps=0)
    # 0.1 * 0.5 * (1 + cos(pi * k / 4)), then held at the end (k > 4 counts as 4)
    c = math.sqrt(0.5)
    expected = [0.1, 0.05 * (1 + c), 0.05, 0.05 * (1 - c), 0.0, 0.0]
    assert [s.before_step(k, 9.0) for k in range(6)] == pytest.approx(expected, abs=1e-17)


def test_cosine_decay_with_warmup_and_alpha():
    s = schedules.CosineDecay(0.0, decay_steps=2, alpha=0.1, warmup_target=0.4, warmup_steps=4)
    # warm-up 0 -> 0.4 over 4 updates: 0, 0.1, 0.2, 0.3; then 0.4 * (0.9 * cosine + 0.1):
    # step 4: 0.4; step 5: 0.4 * (0.9 * 0.5 + 0.1) = 0.22; step 6 and later: 0.4 * 0.1 = 0.04
    expected = [0.0, 0.1, 0.2, 0.3, 0.4, 0.22, 0.04, 0.04]
    assert [s.before_step(k, 9.0) for k in range(8)] == pytest.approx(expected, rel=1e-12)


def _plateau(values, lr=1.0, **kw):
    options = {
        "monitor": "val_loss",
        "mode": "auto",
        "factor": 0.5,
        "patience": 2,
        "min_delta": 0.0,
        "cooldown": 0,
        "min_lr": 0.0,
    }
    s = schedules.ReduceOnPlateau(**{**options, **kw})
    rates = []
    for v in values:
        lr = s.end_epoch({s.monitor: v}, lr)
        rates.append(lr)
    return rates


def test_plateau_reduces_after_patience_epochs_without_improvement():
    # best 1.0 at epoch 1; epochs 2, 3 do not improve -> halve after epoch 3; wait restarts
    assert _plateau([1.0, 1.0, 1.2, 1.1, 1.1, 0.5, 0.6]) == [1, 1, 0.5, 0.5, 0.25, 0.25, 0.25]


def test_plateau_min_delta_cooldown_and_min_lr():
    # min_delta 0.1: 0.95 is no improvement on 1.0. patience 1, cooldown 2: the counter is
    # decremented at the start of each later epoch (as Keras does), so epoch 3 is skipped and
    # epoch 4 counts again; min_lr 0.3 floors 0.5 * 0.5 = 0.25 to 0.3, and a rate at
    # float32(min_lr) is never reduced again.
    rates = _plateau(
        [1.0, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95], patience=1, min_delta=0.1, cooldown=2, min_lr=0.3
    )
    assert rates == [1.0, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3]


def test_plateau_auto_mode_maximises_accuracy():
    rates = _plateau([0.5, 0.6, 0.6, 0.6], monitor="val_accuracy", patience=2)
    assert rates == [1.0, 1.0, 1.0, 0.5]
    rates = _plateau([0.5, 0.6, 0.6, 0.6], monitor="val_accuracy", patience=2, mode="min")
    assert rates == [1.0, 1.0, 0.5, 0.5]  # 'min' on accuracy: 0.6 never improves on 0.5


def test_plateau_state_round_trips_through_json():
    s = schedules.ReduceOnPlateau("loss", "auto", 0.5, 3, 0.0, 1, 0.0)
    s.end_epoch({"loss": 2.0}, 1.0)
    s.end_epoch({"loss": 3.0}, 1.0)
    t = schedules.ReduceOnPlateau("loss", "auto", 0.5, 3, 0.0, 1, 0.0)
    t.load(json.loads(json.dumps(s.state())))
    assert t.state() == s.state() == {"best": 2.0, "wait": 1, "cooldown_counter": 0}


# ---- in a fit ------------------------------------------------------------------------------
def _fit(tmp_path, config, name="run"):
    folder = tmp_path / name
    outcome = run(copy.deepcopy(config), folder, tmp_path)
    result = json.loads((folder / "result.json").read_text())
    assert outcome.exit_code == 0, result.get("error")
    return result, folder


def _history_lr(folder):
    lines = (folder / "history.csv").read_text().splitlines()
    column = lines[0].split(",").index("lr")
    return [float(line.split(",")[column]) for line in lines[1:]]


C = math.sqrt(0.5)


@pytest.mark.parametrize(
    ("schedule", "batch", "rates"),
    [
        # per epoch: one full batch per epoch, 0.1 halved every epoch
        ({"name": "step", "factor": 0.5, "drop_every": 1}, 4, [0.1, 0.05, 0.025]),
        # per update: two batches per epoch, cosine over 4 updates, 0.1 * (1 + cos(pi k / 4)) / 2
        (
            {"name": "cosine", "decay_steps": 4},
            2,
            [0.1, 0.05 * (1 + C), 0.05, 0.05 * (1 - C), 0.0, 0.0],
        ),
    ],
)
def test_the_scheduled_rate_is_the_rate_sgd_uses(tmp_path, schedule, batch, rates):
    """Linear Dense, mse, no shuffle, float64: each update W -= lr_k * grad on its batch."""
    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5], [-1.0, 1.0]])
    t = np.array([[1.0], [0.0], [2.0], [1.0]])
    w, b = np.array([[0.1], [-0.2]]), np.array([0.5])
    config = {
        "task": "fit",
        "floatx": "float64",
        "progress": False,
        "fit": {
            "epochs": 3,
            "batch_size": batch,
            "shuffle": False,
            "optimizer": {"name": "sgd", "lr": 0.1},
            "schedule": schedule,
        },
        "model": {
            "inputs": {"x": {"data": x.tolist()}},
            "layers": {
                "d": {
                    "type": "Dense",
                    "output_dim": 1,
                    "weights": {"W": w.tolist(), "b": b.tolist()},
                }
            },
            "targets": {"d": t.tolist()},
        },
    }
    result, folder = _fit(tmp_path, config)
    for k, lr in enumerate(rates):
        rows = slice((k * batch) % 4, (k * batch) % 4 + batch)
        grad = 2 / batch * (x[rows] @ w + b - t[rows])
        w, b = w - lr * x[rows].T @ grad, b - lr * grad.sum(axis=0)
    with np.load(folder / "weights.npz", allow_pickle=False) as trained:
        np.testing.assert_allclose(trained["d/W"], w, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(trained["d/b"], b, rtol=1e-12, atol=1e-15)
    first_of_epoch = rates[:: 4 // batch]
    assert _history_lr(folder) == pytest.approx(first_of_epoch, rel=1e-15, abs=1e-18)
    assert [r["lr"] for r in result["history"]] == _history_lr(folder)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ({"name": "exponential", "decay_rate": 0.5}, [0.01, 0.005, 0.0025, 0.00125]),
        # 90 training rows / batch 16 = 6 updates per epoch; the column shows each epoch's
        # first update: steps 0, 6, 12, 18 of a 12-update decay held at its end
        (
            {"name": "cosine", "decay_steps": 12, "alpha": 0.2},
            [0.01, 0.01 * (0.8 * 0.5 + 0.2), 0.01 * 0.2, 0.01 * 0.2],
        ),
    ],
)
def test_history_records_each_epochs_rate(tmp_path, schedule, expected):
    _, folder = _fit(tmp_path, classifier(schedule=schedule))
    assert _history_lr(folder) == pytest.approx(expected, rel=1e-12)


def test_plateau_in_a_fit_follows_the_monitored_history(tmp_path):
    schedule = {
        "name": "plateau",
        "monitor": "val_loss",
        "patience": 1,
        "factor": 0.5,
        "min_delta": 0.5,
    }
    result, folder = _fit(tmp_path, classifier(epochs=6, schedule=schedule))
    # replay Keras' rule on the recorded val_loss by hand
    best, wait, lr, expected = math.inf, 0, 0.01, []
    for row in result["history"]:
        expected.append(lr)
        if row["val_loss"] < best - 0.5:
            best, wait = row["val_loss"], 0
        else:
            wait += 1
            if wait >= 1:
                lr, wait = lr * 0.5, 0
    assert _history_lr(folder) == expected
    assert expected[-1] < 0.01  # the plateau was reached in these 6 epochs


def test_schedule_from_the_command_line():
    config = compose(
        "mlp_digits",
        [
            "task=fit",
            "fit.schedule={name:cosine,decay_steps:100,warmup_target:0.01,warmup_steps:10}",
        ],
    )
    assert config["fit"]["schedule"] == {
        "name": "cosine",
        "decay_steps": 100,
        "warmup_target": 0.01,
        "warmup_steps": 10,
    }


@pytest.mark.parametrize(
    ("schedule", "path", "fragment"),
    [
        ({"name": "cosin", "decay_steps": 3}, "fit.schedule", "did you mean 'cosine'"),
        ({"decay_steps": 3}, "fit.schedule", "needs a 'name'"),
        ({"name": "cosine"}, "fit.schedule.decay_steps", "required key 'decay_steps'"),
        ({"name": "step", "factor": 2, "drop_every": 1}, "fit.schedule.factor", "less than 1"),
        ({"name": "plateau", "patiense": 3}, "fit.schedule.patiense", "did you mean 'patience'"),
        (
            {"name": "cosine", "decay_steps": 5, "warmup_steps": 2},
            "fit.schedule",
            "warmup_steps: 2 needs warmup_target",
        ),
        (
            {"name": "plateau", "monitor": "val_loss"},
            "fit.schedule.monitor",
            "'val_loss' needs validation data",
        ),
    ],
)
def test_schedule_errors_name_the_path(tmp_path, schedule, path, fragment):
    config = classifier(schedule=schedule, validation_split=None)
    config["fit"]["metrics"] = ["loss"]
    config["fit"]["loss"] = "sparse_categorical_crossentropy"
    config["fit"]["monitor"] = "loss"
    folder = tmp_path / "bad"
    outcome = run(config, folder, tmp_path)
    result = json.loads((folder / "result.json").read_text())
    assert outcome.exit_code == 2
    problems = result["error"]["problems"]
    assert any(p["path"] == path and fragment in p["message"] for p in problems), problems

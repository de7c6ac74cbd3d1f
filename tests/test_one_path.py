"""Every entry point goes the same way: the CLI/``run()`` and the Python API agree on the phase
and the numbers, and task=validate checks what task=fit would check."""

from __future__ import annotations

import numpy as np
import pytest

from runner.api import Model, compose
from runner.run import run


def test_api_predict_uses_the_models_own_training_phase(tmp_path):
    """dropout_example says ``training: true``: the API drops 30% as the CLI does."""
    config = compose("dropout_example")
    via_run = run(config, tmp_path / "r", tmp_path).values["drop"]
    via_api = Model.from_config(config, tmp_path).predict()["drop"]
    np.testing.assert_array_equal(via_api, via_run)
    assert 0.29 < float(np.mean(via_api == 0)) < 0.31


def test_api_predict_with_given_inputs_uses_the_same_phase_and_stream(tmp_path):
    config = compose("dropout_example")
    model = Model.from_config(config, tmp_path)
    x = np.ones((4, 100), np.float32)
    a, b = model.predict({"x": x})["drop"], model.predict({"x": x})["drop"]
    np.testing.assert_array_equal(a, b)  # each call starts the run's dropout stream afresh
    assert 0 < float(np.mean(a == 0)) < 1
    np.testing.assert_array_equal(model.predict({"x": x}, training=False)["drop"], x)


def _task(model: str, task: str, overrides: list[str], tmp_path):
    config = compose(model, [f"task={task}", *overrides])
    folder = tmp_path / f"{task}-{len(list(tmp_path.iterdir()))}"
    return run(config, folder, tmp_path)


FIT_ONLY_PROBLEMS = [
    # monitoring a validation score without validation data
    ("dense_example", ["fit.monitor=val_loss", "fit.metrics=[accuracy]"]),
    ("dense_example", ["fit.monitor=val_loss"]),
    # accuracy with a regression loss
    ("dense_example", ["fit.metrics=[accuracy]"]),
    # a loss for an output the model does not have
    ("dense_example", ["+fit.loss={nope: mse}"]),
    # a target of the wrong shape
    ("dense_example", ["+model.targets={dense: [[1.0, 2.0]]}"]),
    # a target for an output the model does not have
    ("dense_example", ["+model.targets={nope: [[1.0, 2.0, 3.0]]}"]),
    # validation data for an input the model does not have
    (
        "dense_example",
        [
            "+model.targets={dense: [[1.0, 2.0, 3.0]]}",
            "fit.validation_data={inputs: {y: [[1.0]]}, targets: {}}",
        ],
    ),
    # a validation split that leaves no training row
    ("dense_example", ["+model.targets={dense: [[1.0, 2.0, 3.0]]}", "fit.validation_split=0.5"]),
    # an optimizer setting the chosen optimizer does not take
    ("mlp_digits", ["fit.optimizer.name=sgd", "fit.optimizer.beta_1=0.5"]),
]


@pytest.mark.parametrize(("model", "overrides"), FIT_ONLY_PROBLEMS)
def test_validate_refuses_what_fit_refuses(model, overrides, tmp_path):
    fit = _task(model, "fit", overrides, tmp_path)
    validate = _task(model, "validate", overrides, tmp_path)
    assert fit.exit_code == 2, fit.result
    assert validate.exit_code == fit.exit_code, validate.result
    assert validate.result["error"]["problems"] == fit.result["error"]["problems"]


def test_validate_accepts_fit_settings_of_a_model_without_targets(tmp_path):
    """Nothing to train on and nothing impossible asked: a predict model validates."""
    outcome = _task("dense_example", "validate", ["fit.epochs=3", "fit.batch_size=2"], tmp_path)
    assert outcome.exit_code == 0, outcome.result


def test_fit_settings_and_data_are_part_of_the_plan(tmp_path):
    outcome = _task("mlp_digits", "validate", [], tmp_path)
    assert outcome.exit_code == 0, outcome.result
    fit = outcome.plan.fit
    assert fit.settings.monitor == "val_accuracy" and fit.data.val_rows > 0
    assert set(fit.data.targets) == set(outcome.plan.outputs)

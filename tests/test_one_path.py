"""Every entry point goes the same way: the CLI/``run()`` and the Python API agree on the phase
and the numbers, and task=validate checks what task=fit would check."""

from __future__ import annotations

import numpy as np

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

"""What a run shows on the console and keeps in run.log: masks and activity penalties of small
outputs, a one-line summary of large ones, and no third-party DEBUG lines in run.log."""

from __future__ import annotations

import re

import numpy as np
import pytest

from runner.run import CONSOLE_OUTPUT

pytestmark = pytest.mark.slow


def test_masks_are_printed_under_small_outputs(cli):
    res = cli("+model=masking_example")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    start = lines.index("mask =")
    assert lines[start + 1 : start + 4] == ["[[[1. 1. 0.]", "  [0. 0. 0.]]]", "mask = [[1 0]]"]


def test_activity_penalties_are_printed_per_layer(cli):
    res = cli("+model=activity_regularization_example")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    shown = {}
    for name in ("l1", "l2", "l1l2"):
        at = lines.index(f"{name} =")
        assert lines[at + 1 : at + 6] == ["[[1.]", " [2.]", " [3.]", " [4.]", " [5.]]"]
        shown[name] = lines[at + 6]
    assert shown == {
        "l1": "activity penalty: 0.03",
        "l2": "activity penalty: 0.11",
        "l1l2": "activity penalty: 0.14",
    }


def test_penalty_of_a_layer_that_is_not_an_output_is_named(cli, tmp_path):
    conf = tmp_path / "userconf" / "model"
    conf.mkdir(parents=True)
    (conf / "hidden_penalty.yaml").write_text(
        "inputs:\n  x: {shape: [1], data: [[1], [2], [3], [4], [5]]}\n"
        "layers:\n"
        "  reg: {type: ActivityRegularization, l1: 0.01}\n"
        "  out: {type: Activation, activation: linear}\n"
    )
    res = cli(f"hydra.searchpath=[file://{conf.parent}]", "+model=hidden_penalty")
    assert res.returncode == 0, res.stderr
    assert "activity penalty of reg: 0.03" in res.stdout.splitlines()


def _summary_line(stdout: str, name: str) -> re.Match:
    pattern = (
        rf"^{name}: shape \((\d+), (\d+)\) float32, min (\S+), mean (\S+), max (\S+); "
        r"values in (\S+)$"
    )
    found = re.search(pattern, stdout, re.MULTILINE)
    assert found, stdout
    return found


@pytest.mark.parametrize("on_disk", [False, True])
def test_large_outputs_are_summarised_not_dumped(cli, on_disk):
    extra = ["batch_size=250", "outputs_to_disk=true"] if on_disk else []
    res = cli("+model=dropout_example", *extra)
    assert res.returncode == 0, res.stderr
    assert "drop =" not in res.stdout and "[[" not in res.stdout  # no array dump
    found = _summary_line(res.stdout, "drop")
    if on_disk:
        assert found[6] == "outputs/drop.npy"
        values = np.load(res.folder / "outputs" / "drop.npy")
    else:
        assert found[6] == "outputs.npz"
        with np.load(res.folder / "outputs.npz") as z:
            values = z["drop"]
    assert (int(found[1]), int(found[2])) == values.shape == (1000, 100)
    assert values.size > CONSOLE_OUTPUT
    assert float(found[3]) == pytest.approx(float(values.min()), rel=1e-5)
    assert float(found[4]) == pytest.approx(float(values.mean(dtype=np.float64)), rel=1e-5)
    assert float(found[5]) == pytest.approx(float(values.max()), rel=1e-5)


def test_run_log_of_a_fit_holds_no_third_party_debug_lines(cli):
    res = cli("+model=mlp_digits", "task=fit", "fit.epochs=1")
    assert res.returncode == 0, res.stderr
    log = (res.folder / "run.log").read_text()
    lines = log.splitlines()
    assert any("[runner" in ln and "][DEBUG]" in ln for ln in lines)  # ours keep DEBUG
    assert "fit done:" in log
    for line in lines:
        if "][DEBUG]" in line or "][INFO]" in line:
            assert line.split("][")[1].startswith(("runner", "hydra")), line
    assert not [ln for ln in lines if "matplotlib" in ln or "PIL" in ln]

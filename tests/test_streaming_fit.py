"""Fit streams memory-mapped .npy files: the block shuffle's order, training on it checked
against plain NumPy SGD, streamed == in memory, the budget, and bounded RSS in a child."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from runner.api import Model
from runner.data.feed import WINDOW_BYTES, Column, Feeder, epoch_segments
from runner.errors import ConfigError
from runner.run import run
from runner.streams import SHUFFLE

REPO = Path(__file__).resolve().parent.parent


def _order(segments) -> np.ndarray:
    return np.concatenate(
        [s.lo + (np.arange(s.hi - s.lo) if s.perm is None else s.perm) for s in segments]
    )


def test_block_shuffle_draws_block_order_then_rows_within_each_block():
    rows, block, seed = 23, 5, 4
    rng = np.random.default_rng([seed, SHUFFLE])
    got = [_order(epoch_segments(rows, True, block, rng)) for _ in range(2)]
    # the documented draws, written out: blocks [0,5) [5,10) ... [20,23)
    ref = np.random.default_rng([seed, SHUFFLE])
    for epoch in got:
        expected = []
        for k in ref.permutation(5):
            lo, hi = 5 * k, min(rows, 5 * k + 5)
            expected.extend(lo + ref.permutation(hi - lo))
        assert epoch.tolist() == expected
        assert sorted(epoch.tolist()) == list(range(rows))  # every row once
        # each block's rows sit together: 5 runs of one block each
        blocks = epoch // block
        assert (np.diff(blocks) != 0).sum() == 4
    assert got[0].tolist() != got[1].tolist()  # a new order every epoch


def test_row_shuffle_and_no_shuffle_keep_their_orders():
    rng = np.random.default_rng([1, SHUFFLE])
    (seg,) = epoch_segments(10, True, None, rng)
    assert seg.perm.tolist() == np.random.default_rng([1, SHUFFLE]).permutation(10).tolist()
    (seg,) = epoch_segments(10, False, 3, rng)
    assert (seg.lo, seg.hi, seg.perm) == (0, 10, None)


def test_batches_are_consecutive_slices_of_the_order_across_blocks():
    rows = 23
    x = np.arange(rows, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    feeder = Feeder({"x": Column(x, np.dtype(np.float32), "x")}, {}, batch_size=7)
    segments = epoch_segments(rows, True, 5, np.random.default_rng(0))
    order = _order(segments)
    batches = list(feeder.batches(segments))
    assert [n for n, _, _ in batches] == [7, 7, 7, 2]
    flat = np.concatenate([b["x"][:, 0] for _, b, _ in batches])
    assert flat.astype(int).tolist() == order.tolist()


def _data(tmp_path: Path, rows: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(rows, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, 2)) + 0.5).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return x, y


W0 = [[0.1, -0.2], [0.3, 0.0], [-0.1, 0.2], [0.05, 0.05]]


def _fit_config(x_source, y_source, block, seed=3, epochs=2, batch=8) -> dict:
    return {
        "task": "fit",
        "seed": seed,
        "fit": {
            "epochs": epochs,
            "batch_size": batch,
            "shuffle_block": block,
            "loss": "mse",
            "optimizer": {"name": "sgd", "lr": 0.05},
        },
        "model": {
            "inputs": {"x": {"data": x_source}},
            "layers": {"d": {"type": "Dense", "output_dim": 2, "weights": {"W": W0, "b": [0, 0]}}},
            "targets": {"d": y_source},
        },
    }


def test_streamed_fit_trains_in_the_block_order_as_numpy_sgd_does(tmp_path):
    x, y = _data(tmp_path)
    model = Model.from_config(
        _fit_config({"path": "x.npy"}, {"path": "y.npy"}, block=10), cwd=tmp_path
    )
    assert isinstance(model.plan.inputs["x"].array, np.memmap)  # it streams
    model.fit()
    # the same training written with NumPy alone: mse, plain SGD, the documented order
    w, b = np.array(W0, np.float64), np.zeros(2)
    rng = np.random.default_rng([3, SHUFFLE])
    for _ in range(2):
        order = []
        for k in rng.permutation(6):
            order.extend(10 * k + rng.permutation(10))
        for lo in range(0, 60, 8):
            rows = np.array(order[lo : lo + 8])
            xb, yb = x[rows].astype(np.float64), y[rows].astype(np.float64)
            dy = 2 * (xb @ w + b - yb) / yb.size
            w, b = w - 0.05 * xb.T @ dy, b - 0.05 * dy.sum(axis=0)
    np.testing.assert_allclose(model.weights["d/W"], w, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(model.weights["d/b"], b, rtol=2e-5, atol=1e-6)


def test_streamed_fit_equals_in_memory_fit_with_the_same_block_shuffle(tmp_path):
    x, y = _data(tmp_path)
    for i in range(3):  # the same rows as three shards
        np.save(tmp_path / f"xs-{i}.npy", x[20 * i : 20 * i + 20])
        np.save(tmp_path / f"ys-{i}.npy", y[20 * i : 20 * i + 20])
    fitted = {}
    for name, xs, ys in (
        ("memory", x.tolist(), y.tolist()),
        ("mapped", {"path": "x.npy"}, {"path": "y.npy"}),
        ("shards", {"path": "xs-*.npy"}, {"path": "ys-*.npy"}),
    ):
        config = _fit_config(xs, ys, block=16, epochs=3)
        config["fit"]["validation_split"] = 0.25
        model = Model.from_config(config, cwd=tmp_path)
        kind = type(model.plan.inputs["x"].array).__name__
        assert kind == {"memory": "ndarray", "mapped": "memmap", "shards": "ShardedArray"}[name]
        result = model.fit()
        fitted[name] = (result.history, model.weights)
    for name in ("mapped", "shards"):
        assert fitted[name][0] == fitted["memory"][0]  # every loss and val_loss, exactly
        for key, w in fitted["memory"][1].items():
            assert fitted[name][1][key].tobytes() == w.tobytes()


def test_block_shuffle_is_seeded(tmp_path):
    _data(tmp_path)

    def weights(seed: int) -> bytes:
        config = _fit_config({"path": "x.npy"}, {"path": "y.npy"}, block=10, seed=seed)
        model = Model.from_config(config, cwd=tmp_path)
        model.fit()
        return model.weights["d/W"].tobytes()

    assert weights(1) == weights(1)
    assert weights(1) != weights(2)  # another seed, another order (the weights are given)


def test_streamed_nan_is_found_while_streaming(tmp_path):
    x, y = _data(tmp_path)
    x[41, 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    outcome = run(
        _fit_config({"path": "x.npy"}, {"path": "y.npy"}, block=10), tmp_path / "r", tmp_path
    )
    (problem,) = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and problem["path"] == "model.inputs.x.data"
    assert problem["file"] == "x.npy"
    assert problem["message"].startswith("contains NaN or Inf values (found while streaming")


def _sparse_npy(path: Path, rows: int, width: int) -> None:
    """A float32 (rows, width) .npy of zeros, sparse on disk."""
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (rows, width)}
        )
        f.truncate(f.tell() + rows * width * 4)


def test_budget_counts_a_mapped_input_as_a_read_window_not_its_rows(tmp_path):
    _sparse_npy(tmp_path / "big.npy", 20_000_000, 2)  # 152.6 MB, above the 100 MB budget
    config = {
        "task": "fit",
        "max_memory_mb": 100,
        "fit": {"batch_size": 32},
        "model": {
            "inputs": {"x": {"data": {"path": "big.npy"}}},
            "layers": {"d": {"type": "Dense", "output_dim": 2}},
            "targets": {"d": {"path": "big.npy"}},
        },
    }
    model = Model.from_config(config, cwd=tmp_path)  # plans the fit; trains nothing
    # 4 copies of the 6 parameters, activations of one fit batch (input 2 + output 2 per
    # row), the read window, and one float32 batch of each streamed array (x and the target)
    expected = (4 * 6 + 32 * (2 + 2)) * 4 + WINDOW_BYTES + 2 * 32 * 2 * 4
    assert model.plan.memory_bytes == expected
    config["max_memory_mb"] = 30  # below the read window: refused at max_memory_mb
    with pytest.raises(ConfigError) as caught:
        Model.from_config(config, cwd=tmp_path)
    (problem,) = caught.value.problems
    assert problem.path == "max_memory_mb"
    assert problem.message.startswith(
        "this model needs about 32 MB (parameters, activations of one batch, random inputs; "
        "32 MB of it reads memory-mapped files), above the limit of 30 MB"
    )


# Fits in this (fresh) process and prints its peak RSS (VmHWM, KiB) last.
CHILD = textwrap.dedent(
    """
    import sys
    from runner.api import Model
    cwd, block = sys.argv[1], int(sys.argv[2])
    config = {
        "task": "fit", "seed": 0, "max_memory_mb": 100,
        "fit": {"epochs": 1, "batch_size": 1024, "shuffle_block": block, "loss": "mse",
                "optimizer": {"name": "sgd"}},
        "model": {
            "inputs": {"x": {"data": {"path": "x.npy"}}},
            "layers": {"d": {"type": "Dense", "output_dim": 1}},
            "targets": {"d": {"path": "y.npy"}},
        },
    }
    model = Model.from_config(config, cwd=cwd)
    result = model.fit()
    with open("/proc/self/status") as f:
        peak = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    print(result.history[-1]["loss"], peak)
    """
)


def _peak_rss_mb(folder: Path, block: int) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(block)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loss, peak = proc.stdout.split()[-2:]
    return float(loss), int(peak) / 1024


@pytest.mark.slow
def test_streamed_fit_keeps_rss_bounded_on_a_file_above_the_budget(tmp_path):
    width, rows = 512, 100_000  # 195 MB of float32, above max_memory_mb=100
    big, small = tmp_path / "big", tmp_path / "small"
    for folder, n in ((big, rows), (small, 2_000)):
        folder.mkdir()
        x = np.lib.format.open_memmap(folder / "x.npy", "w+", np.float32, (n, width))
        for lo in range(0, n, 10_000):
            x[lo : lo + 10_000] = 1.0 / (1 + np.arange(lo, min(n, lo + 10_000)))[:, None]
        x.flush()
        del x
        np.save(folder / "y.npy", np.ones((n, 1), np.float32))
    loss_big, peak_big = _peak_rss_mb(big, block=4096)
    loss_small, peak_small = _peak_rss_mb(small, block=4096)
    assert math.isfinite(loss_big) and math.isfinite(loss_small)
    # the 195 MB file streamed through a process that grew far less than the file
    assert peak_big - peak_small < 90, (peak_big, peak_small)

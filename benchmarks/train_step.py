"""One training step of the 784-256-64-256-784 autoencoder: the runner vs hand-written NumPy.

    python benchmarks/train_step.py             # batch 256, 30 interleaved repetitions
    python benchmarks/train_step.py --reps 60
    python benchmarks/train_step.py --tiny      # sizes / 32, a few repetitions (smoke run)

The step is forward (relu, relu, relu, sigmoid) + MSE against the input + backward + one Adam
update, in float32. The runner's step goes through the project's API: the model config
``benchmarks/configs/w5_autoencoder.yaml`` (an AutoEncoder layer) through
``Model.from_config``, then ``runner.train.fit.Trainer.step`` (forward with caches, ``losses``,
``backprop.backward``, ``optim``). The NumPy step is written by hand, idiomatically, from the
same initial weights; the first step of both is compared (same loss, same updated weights)
before anything is timed. Repetitions alternate runner / NumPy / NumPy / runner ... after a
warm-up, in one process; the script prints medians, minimums and the ratio of medians.
Nothing here asserts a time. ``benchmark_functions`` is what benchmarks/run.py calls for W6.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.api import Model, load_model_file  # noqa: E402
from runner.train.fit import Trainer  # noqa: E402
from runner.train.settings import resolve  # noqa: E402

CONFIG = ROOT / "benchmarks" / "configs" / "w5_autoencoder.yaml"
BATCH = 256


def _shrink(model: dict, divisor: int) -> dict:
    """--tiny: every width divided by ``divisor`` (rounded up)."""
    model["inputs"]["x"]["shape"] = [math.ceil(784 / divisor)]
    for part in ("encoder", "decoder"):
        for spec in model["layers"]["ae"][part].values():
            spec["output_dim"] = math.ceil(spec["output_dim"] / divisor)
    return model


def build(tiny: bool = False) -> tuple[Trainer, dict[str, np.ndarray], np.ndarray]:
    """The runner's trainer, its initial weights (copies) and one batch."""
    config = load_model_file(
        CONFIG,
        task="fit",
        seed=0,
        progress=False,
        fit={"loss": "mse", "optimizer": {"name": "adam"}, "batch_size": BATCH},
    )
    if tiny:
        _shrink(config["model"], 32)
    model = Model.from_config(config)
    trainer = Trainer(model.plan, resolve(model.plan.spec, model.plan.outputs))
    weights = {k: v.copy() for k, v in model.weights.items()}
    width = model.plan.inputs["x"].shape[0]
    x = np.random.default_rng(1).uniform(0, 1, (BATCH, width)).astype(np.float32)
    return trainer, weights, x


class NumpyStep:
    """The same step written by hand: four Dense layers, MSE, backward, Adam (legacy rule)."""

    KEYS = ("ae/encoder/enc1", "ae/encoder/enc2", "ae/decoder/dec1", "ae/decoder/dec2")

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.W = [weights[f"{k}/W"].copy() for k in self.KEYS]
        self.b = [weights[f"{k}/b"].copy() for k in self.KEYS]
        self.m = [np.zeros_like(p) for p in self.W + self.b]
        self.v = [np.zeros_like(p) for p in self.W + self.b]
        self.t = 0

    def __call__(self, x: np.ndarray) -> float:
        W, b = self.W, self.b
        h1 = np.maximum(x @ W[0] + b[0], 0)
        h2 = np.maximum(h1 @ W[1] + b[1], 0)
        h3 = np.maximum(h2 @ W[2] + b[2], 0)
        y = 1 / (1 + np.exp(-(h3 @ W[3] + b[3])))
        diff = y - x
        loss = float(np.mean(diff * diff))
        dz4 = (2 / diff.size) * diff * y * (1 - y)
        dz3 = (dz4 @ W[3].T) * (h3 > 0)
        dz2 = (dz3 @ W[2].T) * (h2 > 0)
        dz1 = (dz2 @ W[1].T) * (h1 > 0)
        grads = [
            x.T @ dz1,
            h1.T @ dz2,
            h2.T @ dz3,
            h3.T @ dz4,
            dz1.sum(0),
            dz2.sum(0),
            dz3.sum(0),
            dz4.sum(0),
        ]
        self.t += 1
        lr_t = 0.001 * math.sqrt(1 - 0.999**self.t) / (1 - 0.9**self.t)
        for p, g, m, v in zip(W + b, grads, self.m, self.v):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * (g * g)
            p -= lr_t * m / (np.sqrt(v) + 1e-8)
        return loss


def benchmark_functions(tiny: bool = False) -> dict[str, Callable[[], object]]:
    """{"runner": step, "numpy": step} on the same batch (for benchmarks/run.py, W6)."""
    trainer, weights, x = build(tiny)
    numpy_step = NumpyStep(weights)
    feeds, targets = {"x": x}, {"ae": x}
    return {"runner": lambda: trainer.step(feeds, targets), "numpy": lambda: numpy_step(x)}


def check_same_step(tiny: bool) -> tuple[float, float]:
    """Loss difference and largest weight difference after one step of each, from the same start."""
    trainer, weights, x = build(tiny)
    numpy_step = NumpyStep(weights)
    loss_runner = trainer.step({"x": x}, {"ae": x})["loss"]
    loss_numpy = numpy_step(x)
    ours = trainer.params
    worst = 0.0
    for i, key in enumerate(NumpyStep.KEYS):
        worst = max(
            worst,
            float(np.abs(ours[f"{key}/W"] - numpy_step.W[i]).max()),
            float(np.abs(ours[f"{key}/b"] - numpy_step.b[i]).max()),
        )
    return abs(loss_runner - loss_numpy), worst


def interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int) -> dict[str, list]:
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args(argv)
    reps = args.reps or (5 if args.tiny else 30)
    loss_diff, weight_diff = check_same_step(args.tiny)
    print(
        f"first step, runner vs NumPy: |loss difference| {loss_diff:.2e}, "
        f"max |weight difference| {weight_diff:.2e}"
    )
    times = interleaved(benchmark_functions(args.tiny), reps, args.warmup)
    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}
    threads = (
        os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or "default"
    )
    print(
        f"train step, batch {BATCH}, {'tiny sizes' if args.tiny else '784-256-64-256-784'}, "
        f"float32, MSE + Adam; {reps} interleaved repetitions; BLAS threads: {threads}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print("| step | median ms | min ms |")
    print("|---|---:|---:|")
    for name in times:
        print(f"| {name} | {1000 * med[name]:.2f} | {1000 * low[name]:.2f} |")
    print(
        f"ratio runner / NumPy: {med['runner'] / med['numpy']:.3f} (medians), "
        f"{low['runner'] / low['numpy']:.3f} (minimums)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

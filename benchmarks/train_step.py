"""One training step of the 784-256-64-256-784 autoencoder: the runner, NumPy by hand, torch.

    python benchmarks/train_step.py             # batch 256, SGD and Adam, 30 interleaved reps
    python benchmarks/train_step.py --reps 60 --optimizer adam
    python benchmarks/train_step.py --tiny      # sizes / 32, a few repetitions (smoke run)

The step is forward (relu, relu, relu, sigmoid) + MSE against the input + backward + one
optimizer update (SGD lr 0.01, or Adam with the legacy Keras rule), in float32. The runner's
step goes through the project's API: ``benchmarks/configs/w5_autoencoder.yaml`` through
``Model.from_config``, then ``runner.train.fit.Trainer.step``. The hand-written step is NumPy
written for speed (2D GEMMs, in-place element-wise work and updates, preallocated optimizer
state); torch's is eager autograd with ``torch.optim``. All start from the same weights; the
first step of each is compared (loss, gradients, updated weights) before anything is timed.
Nothing here asserts a time. ``benchmark_functions`` is what benchmarks/run.py calls for W6.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # hand_numpy, however the script is started

from hand_numpy import gemm, gemm_floor  # noqa: E402

from runner.api import Model, load_model_file  # noqa: E402
from runner.train.fit import Trainer  # noqa: E402
from runner.train.settings import resolve  # noqa: E402

CONFIG = ROOT / "benchmarks" / "configs" / "w5_autoencoder.yaml"
BATCH = 256
KEYS = ("ae/encoder/enc1", "ae/encoder/enc2", "ae/decoder/dec1", "ae/decoder/dec2")
SETTINGS = {"sgd": {"name": "sgd", "lr": 0.01}, "adam": {"name": "adam", "lr": 0.001}}


def _shrink(model: dict, divisor: int) -> dict:
    """--tiny: every width divided by ``divisor`` (rounded up)."""
    model["inputs"]["x"]["shape"] = [math.ceil(784 / divisor)]
    for part in ("encoder", "decoder"):
        for spec in model["layers"]["ae"][part].values():
            spec["output_dim"] = math.ceil(spec["output_dim"] / divisor)
    return model


def build(optimizer: str, tiny: bool = False) -> tuple[Trainer, dict[str, np.ndarray], np.ndarray]:
    """The runner's trainer, its initial weights (copies) and one batch."""
    config = load_model_file(
        CONFIG,
        task="fit",
        seed=0,
        progress=False,
        fit={"loss": "mse", "optimizer": SETTINGS[optimizer], "batch_size": BATCH},
    )
    if tiny:
        _shrink(config["model"], 32)
    model = Model.from_config(config)
    trainer = Trainer(model.plan, resolve(model.plan.spec, model.plan.outputs))
    weights = {k: v.copy() for k, v in model.weights.items()}
    width = model.plan.inputs["x"].shape[0]
    x = np.random.default_rng(1).uniform(0, 1, (BATCH, width)).astype(np.float32)
    return trainer, weights, x


class HandStep:
    """The step written by hand for speed: four Dense layers, MSE, backward, SGD or Adam."""

    def __init__(self, weights: dict[str, np.ndarray], optimizer: str) -> None:
        self.params = [weights[f"{k}/W"].copy() for k in KEYS] + [
            weights[f"{k}/b"].copy() for k in KEYS
        ]
        self.optimizer = optimizer
        if optimizer == "adam":  # m, v and a scratch array per parameter
            self.slots = [tuple(np.zeros_like(p) for _ in range(3)) for p in self.params]
        self.t = 0
        self.grads: list[np.ndarray] = []

    def __call__(self, x: np.ndarray) -> float:
        W, b = self.params[:4], self.params[4:]
        hs = [x]
        for i in range(4):  # forward: one GEMM per layer, bias and activation in place
            z = gemm(hs[-1], W[i])
            z += b[i]
            if i < 3:
                np.maximum(z, 0, out=z)
            else:  # sigmoid as 0.5 * tanh(z / 2) + 0.5
                z *= np.float32(0.5)
                np.tanh(z, out=z)
                z *= np.float32(0.5)
                z += np.float32(0.5)
            hs.append(z)
        y = hs[-1]
        d = y - x
        flat = d.ravel()
        loss = float(flat @ flat) / d.size
        d *= np.float32(2 / d.size)  # dloss/dy, then through the sigmoid: * y * (1 - y)
        d *= y
        np.subtract(np.float32(1), y, out=y)
        d *= y
        gw, gb = [None] * 4, [None] * 4
        for i in range(3, -1, -1):
            gw[i] = gemm(hs[i].T, d)
            gb[i] = d.sum(axis=0)
            if i > 0:
                d = gemm(d, W[i].T)
                d *= hs[i] > 0  # relu'
        self.grads = gw + gb
        self.t += 1
        if self.optimizer == "sgd":
            for p, g in zip(self.params, self.grads):
                g *= np.float32(0.01)
                p -= g
        else:
            self._adam()
        return loss

    def _adam(self) -> None:
        lr_t = np.float32(0.001 * math.sqrt(1 - 0.999**self.t) / (1 - 0.9**self.t))
        for p, g, (m, v, tmp) in zip(self.params, self.grads, self.slots):
            m *= np.float32(0.9)
            np.multiply(g, np.float32(0.1), out=tmp)
            m += tmp
            v *= np.float32(0.999)
            np.square(g, out=tmp)
            tmp *= np.float32(0.001)
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += np.float32(1e-8)
            np.divide(m, tmp, out=tmp)
            tmp *= lr_t
            p -= tmp


def torch_step(weights: dict[str, np.ndarray], optimizer: str, threads: int):
    """The same step in torch eager: autograd, F.mse_loss, torch.optim (whose Adam puts
    epsilon outside the bias correction; the steps differ where |gradient| is near 1e-8)."""
    from frameworks import torch_module  # type: ignore[import-not-found]

    torch = torch_module(threads)
    ws = [torch.tensor(weights[f"{k}/W"], requires_grad=True) for k in KEYS]
    bs = [torch.tensor(weights[f"{k}/b"], requires_grad=True) for k in KEYS]
    params = ws + bs
    opt = (
        torch.optim.SGD(params, lr=0.01)
        if optimizer == "sgd"
        else torch.optim.Adam(params, lr=0.001, betas=(0.9, 0.999), eps=1e-8)
    )
    functional = torch.nn.functional

    def step(x) -> float:
        opt.zero_grad(set_to_none=True)
        h = x
        for i in range(4):
            h = torch.addmm(bs[i], h, ws[i])
            h = torch.relu(h) if i < 3 else torch.sigmoid(h)
        loss = functional.mse_loss(h, x)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step, params, torch


def benchmark_functions(
    tiny: bool = False, optimizer: str = "adam", columns: tuple[str, ...] = (), threads: int = 2
) -> dict[str, Callable[[], object]]:
    """{"ours": step, "hand": step, "floor": the hand step's GEMMs alone, ["torch": step]} on
    the same batch (benchmarks/run.py, W6)."""
    trainer, weights, x = build(optimizer, tiny)
    hand = HandStep(weights, optimizer)
    feeds, targets = {"x": x}, {"ae": x}
    fns: dict[str, Callable[[], object]] = {
        "ours": lambda: trainer.step(feeds, targets),
        "hand": lambda: hand(x),
        "floor": gemm_floor(HandStep(weights, optimizer), x),
    }
    if "torch" in columns:
        step, _, torch = torch_step(weights, optimizer, threads)
        tx = torch.from_numpy(x)
        fns["torch"] = lambda: step(tx)
    return fns


def check_same_step(
    optimizer: str, tiny: bool, columns: tuple[str, ...] = (), threads: int = 2
) -> float:
    """Largest difference after one step from the same start: the runner's and torch's
    updated weights (torch Adam: its gradients) against the hand-written step's."""
    trainer, weights, x = build(optimizer, tiny)
    hand = HandStep(weights, optimizer)
    loss_ours = trainer.step({"x": x}, {"ae": x})["loss"]
    loss_hand = hand(x)
    ours = [trainer.params[f"{k}/W"] for k in KEYS] + [trainer.params[f"{k}/b"] for k in KEYS]
    worst = max(float(np.abs(a - h).max()) for a, h in zip(ours, hand.params))
    if not math.isclose(loss_ours, loss_hand, rel_tol=1e-5) or worst > 1e-5:
        raise AssertionError(
            f"W6 {optimizer}: the runner's step differs from the hand-written one "
            f"(loss {loss_ours} vs {loss_hand}, max weight difference {worst:.3g})"
        )
    if "torch" in columns:
        step, params, _ = torch_step(weights, optimizer, threads)
        import torch

        loss_torch = step(torch.from_numpy(x))
        if optimizer == "sgd":
            theirs = [p.detach().numpy() for p in params]
            diff = max(float(np.abs(a - h).max()) for a, h in zip(theirs, hand.params))
        else:
            theirs = [p.grad.numpy() for p in params]
            diff = max(float(np.abs(a - h).max()) for a, h in zip(theirs, hand.grads))
        if not math.isclose(loss_torch, loss_hand, rel_tol=1e-5) or diff > 1e-5:
            raise AssertionError(
                f"W6 {optimizer}: torch's step differs from the hand-written one "
                f"(loss {loss_torch} vs {loss_hand}, max difference {diff:.3g})"
            )
    return worst


def interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int) -> dict[str, list]:
    """Wall seconds per call, repetitions alternating the order (run.py has its own)."""
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
    parser.add_argument("--optimizer", choices=("sgd", "adam"), nargs="*", default=None)
    args = parser.parse_args(argv)
    reps = args.reps or (5 if args.tiny else 30)
    for optimizer in args.optimizer or ("sgd", "adam"):
        diff = check_same_step(optimizer, args.tiny)
        times = interleaved(benchmark_functions(args.tiny, optimizer), reps, args.warmup)
        med = {k: statistics.median(v) for k, v in times.items()}
        low = {k: min(v) for k, v in times.items()}
        print(
            f"{optimizer}: ours {1e3 * med['ours']:.2f} ms (min {1e3 * low['ours']:.2f}), "
            f"hand {1e3 * med['hand']:.2f} ms (min {1e3 * low['hand']:.2f}), ratio "
            f"{med['ours'] / med['hand']:.3f} (mins {low['ours'] / low['hand']:.3f}), GEMM floor "
            f"{med['floor'] / med['hand']:.3f}; "
            f"max weight difference after one step {diff:.1e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

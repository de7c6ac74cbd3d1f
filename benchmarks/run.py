"""Speed of the runtime against hand-written NumPy of the same graph, in one process.

    python benchmarks/run.py            # full sizes (the issue's W1-W5, W6 if train_step.py exists)
    python benchmarks/run.py --tiny     # tiny sizes, a few repetitions (CI runs this once)
    python benchmarks/run.py --reps 30 --only W1 W5

Each workload is built from its YAML in ``benchmarks/configs/`` through the project's own API
(``Model.from_config(load_model_file(path))`` then ``Model.predict(inputs)``) and timed against
NumPy written by hand from the same weights:

- *NumPy* is the idiomatic one-liner form (``np.maximum(x @ W + b, 0)``, ``np.tanh(x @ W + b)``):
  the reference of the targets;
- *tuned NumPy* is the same graph written for speed (2D GEMMs, bias and activation in place):
  printed for honesty, so a ratio below 1 can be read against the best one can write by hand.

Repetitions are interleaved (runner, NumPy, tuned, ... then reversed), after warm-up; the table
gives median and min times and ratios of medians (ratio < 1: the runner is faster). Thread
counts, the load average and the float32 GEMM rate are measured and printed in the same run.
torch and Keras columns appear only when those packages are installed. Nothing here asserts a
time: ``tests/test_benchmarks_tiny.py`` only checks that the table has every row.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from layers import registry
from runner.api import Model, load_model_file

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
TINY_DIVISOR = 32  # --tiny: every per-sample size and output_dim divided by this (rounded up)


# ---- workloads: config, feeds, hand-written NumPy ------------------------------------------


def param(weights: dict[str, np.ndarray], layer: str, name: str) -> np.ndarray:
    """The parameter ``name`` of the layer called ``layer`` (composites nest their keys)."""
    found = [
        k for k, v in weights.items() if k.split("/")[-1] == name and layer in k.split("/")[:-1]
    ]
    if len(found) != 1:
        raise KeyError(f"expected one weight {layer}/.../{name}, found {found} in {list(weights)}")
    return weights[found[0]]


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def numpy_w1(w, x):
    h = _relu(x @ param(w, "fc1", "W") + param(w, "fc1", "b"))
    h = _relu(h @ param(w, "fc2", "W") + param(w, "fc2", "b"))
    return _softmax(h @ param(w, "out", "W") + param(w, "out", "b"))


def numpy_w2(w, x):
    h = np.tanh(x @ param(w, "tdd", "W") + param(w, "tdd", "b"))
    return h.mean(axis=1) @ param(w, "out", "W") + param(w, "out", "b")


def numpy_w3(w, x):
    keep = (x != 0).any(axis=-1)
    h = np.tanh((x * keep[..., None]) @ param(w, "tdd", "W") + param(w, "tdd", "b"))
    count = np.maximum(keep.sum(axis=1, keepdims=True), 1)
    pooled = (h * keep[..., None]).sum(axis=1) / count
    return pooled @ param(w, "out", "W") + param(w, "out", "b")


def numpy_w4(w, a, b):
    shared_w, shared_b = param(w, "shared", "W"), param(w, "shared", "b")
    ha = _relu(a @ shared_w + shared_b)
    hb = _relu(b @ shared_w + shared_b)
    return np.concatenate([ha, hb], axis=1) @ param(w, "out", "W") + param(w, "out", "b")


def numpy_w5(w, x):
    h = x
    for name in ("enc1", "enc2", "dec1"):
        h = _relu(h @ param(w, name, "W") + param(w, name, "b"))
    with np.errstate(over="ignore"):  # exp(-z) overflows to inf for z << 0: sigmoid is then 0
        return 1 / (1 + np.exp(-(h @ param(w, "dec2", "W") + param(w, "dec2", "b"))))


# The same graphs written for speed: one 2D GEMM per layer, bias and activation in place.


def _dense_fast(x2: np.ndarray, w: np.ndarray, b: np.ndarray, act: str) -> np.ndarray:
    z = x2 @ w
    z += b
    if act == "relu":
        np.maximum(z, 0, out=z)
    elif act == "tanh":
        np.tanh(z, out=z)
    return z


def tuned_w1(w, x):
    h = _dense_fast(x, param(w, "fc1", "W"), param(w, "fc1", "b"), "relu")
    h = _dense_fast(h, param(w, "fc2", "W"), param(w, "fc2", "b"), "relu")
    z = _dense_fast(h, param(w, "out", "W"), param(w, "out", "b"), "linear")
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def tuned_w2(w, x):
    n, steps, d = x.shape
    h = _dense_fast(x.reshape(n * steps, d), param(w, "tdd", "W"), param(w, "tdd", "b"), "tanh")
    pooled = h.reshape(n, steps, -1).sum(axis=1)
    pooled /= steps
    return _dense_fast(pooled, param(w, "out", "W"), param(w, "out", "b"), "linear")


def tuned_w3(w, x):
    n, steps, d = x.shape
    keep = (x != 0).any(axis=-1)  # masked steps are zero already, so x needs no zeroing
    h = _dense_fast(x.reshape(n * steps, d), param(w, "tdd", "W"), param(w, "tdd", "b"), "tanh")
    weights = keep.astype(x.dtype)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1)
    pooled = (weights[:, None, :] @ h.reshape(n, steps, -1))[:, 0]  # masked mean as a matmul
    return _dense_fast(pooled, param(w, "out", "W"), param(w, "out", "b"), "linear")


def tuned_w4(w, a, b):
    shared_w, shared_b = param(w, "shared", "W"), param(w, "shared", "b")
    h = _dense_fast(np.concatenate([a, b]), shared_w, shared_b, "relu")  # one GEMM for both
    n = a.shape[0]
    out_w = param(w, "out", "W")
    half = out_w.shape[0] // 2
    z = h[:n] @ out_w[:half]
    z += h[n:] @ out_w[half:]
    z += param(w, "out", "b")
    return z


def tuned_w5(w, x):
    h = x
    for name in ("enc1", "enc2", "dec1"):
        h = _dense_fast(h, param(w, name, "W"), param(w, name, "b"), "relu")
    z = _dense_fast(h, param(w, "dec2", "W"), param(w, "dec2", "b"), "linear")
    np.multiply(z, 0.5, out=z)  # sigmoid(z) = 0.5 * tanh(z / 2) + 0.5: one transcendental
    np.tanh(z, out=z)
    z *= 0.5
    z += 0.5
    return z


@dataclass
class Workload:
    key: str
    title: str
    config: str
    rows: int
    needs: tuple[str, ...]  # layer types that must be registered
    numpy: Callable[..., np.ndarray]
    tuned: Callable[..., np.ndarray]
    target: float  # ratio to hand-written NumPy the issue asks for (at most)
    masked_fraction: float = 0.0  # share of timesteps zeroed (trailing padding)
    notes: list[str] = field(default_factory=list)


WORKLOADS = [
    Workload(
        "W1",
        "MLP 784-1024-1024-10",
        "w1_mlp.yaml",
        4096,
        ("Dense", "Dropout"),
        numpy_w1,
        tuned_w1,
        1.05,
    ),
    Workload(
        "W2",
        "TDD 256 tanh, ave",
        "w2_tdd.yaml",
        256,
        ("TimeDistributedDense", "TimeDistributedMerge"),
        numpy_w2,
        tuned_w2,
        0.80,
    ),
    Workload(
        "W3",
        "W2 + Masking, 30% padded",
        "w3_masked.yaml",
        256,
        ("Masking", "TimeDistributedDense", "TimeDistributedMerge"),
        numpy_w3,
        tuned_w3,
        0.80,
        masked_fraction=0.3,
    ),
    Workload(
        "W4",
        "Siamese Dense 512, concat",
        "w4_siamese.yaml",
        4096,
        ("Siamese",),
        numpy_w4,
        tuned_w4,
        1.05,
    ),
    Workload(
        "W5",
        "AutoEncoder 784-256-64-256-784",
        "w5_autoencoder.yaml",
        4096,
        ("AutoEncoder",),
        numpy_w5,
        tuned_w5,
        0.80,
    ),
]


def shrink(value: Any, key: str | None = None) -> Any:
    """--tiny: divide per-sample sizes and output_dim everywhere in a model config."""
    if isinstance(value, dict):
        return {k: shrink(v, k) for k, v in value.items()}
    if key == "shape" and isinstance(value, list):
        return [math.ceil(d / TINY_DIVISOR) for d in value]
    if key == "output_dim" and isinstance(value, int):
        return max(2, math.ceil(value / TINY_DIVISOR))
    if key == "rows" and isinstance(value, int):
        return max(4, math.ceil(value / TINY_DIVISOR))
    return value


def load_workload(w: Workload, tiny: bool) -> Model:
    config = load_model_file(CONFIGS / w.config, seed=0, floatx="float32")
    if tiny:
        config["model"] = shrink(config["model"])
    return Model.from_config(config, cwd=CONFIGS)


def make_feeds(model: Model, w: Workload, rows: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, node in model.plan.inputs.items():
        x = rng.uniform(-1.0, 1.0, (rows, *node.shape)).astype(np.float32)
        if w.masked_fraction and x.ndim == 3:  # trailing padding, mean share = masked_fraction
            steps = x.shape[1]
            pads = rng.integers(0, int(2 * w.masked_fraction * steps) + 1, rows)
            for i, pad in enumerate(pads):
                if pad:
                    x[i, steps - pad :] = 0.0
        feeds[name] = x
    return feeds


# ---- optional frameworks ----------------------------------------------------------------------


def torch_fn(w: Workload, weights, feeds) -> Callable[[], Any] | None:
    """The same graph in torch eager (inference mode), or None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
    f = {k: torch.from_numpy(v) for k, v in feeds.items()}

    def p(layer, name):
        key = [k for k in t if k.split("/")[-1] == name and layer in k.split("/")[:-1]][0]
        return t[key]

    def dense(x, layer, act=None):
        z = (
            torch.addmm(p(layer, "b"), x, p(layer, "W"))
            if x.dim() == 2
            else x @ p(layer, "W") + p(layer, "b")
        )
        return act(z) if act else z

    relu, tanh, sigmoid = torch.relu, torch.tanh, torch.sigmoid
    graphs = {
        "W1": lambda: torch.softmax(
            dense(dense(dense(f["x"], "fc1", relu), "fc2", relu), "out"), dim=-1
        ),
        "W2": lambda: dense(dense(f["x"], "tdd", tanh).mean(dim=1), "out"),
        "W3": lambda: _torch_masked(torch, f["x"], dense, tanh),
        "W4": lambda: dense(
            torch.cat([dense(f["a"], "shared", relu), dense(f["b"], "shared", relu)], dim=1), "out"
        ),
        "W5": lambda: dense(
            dense(dense(dense(f["x"], "enc1", relu), "enc2", relu), "dec1", relu), "dec2", sigmoid
        ),
    }
    graph = graphs[w.key]

    def run():
        with torch.inference_mode():
            return graph().numpy()

    return run


def _torch_masked(torch, x, dense, tanh):
    keep = (x != 0).any(dim=-1)
    h = dense(x * keep[..., None], "tdd", tanh)
    count = keep.sum(dim=1, keepdim=True).clamp(min=1)
    return dense((h * keep[..., None]).sum(dim=1) / count, "out")


def keras_fn(w: Workload, weights, feeds) -> Callable[[], Any] | None:
    """The same graph as a Keras 3 functional model (backend as configured), if installed."""
    try:
        import keras
    except ImportError:
        return None
    L = keras.layers

    def dense(x, layer, act=None):
        d = L.Dense(param(weights, layer, "W").shape[1], activation=act)
        y = d(x)
        d.set_weights([param(weights, layer, "W"), param(weights, layer, "b")])
        return y

    ins = {k: keras.Input(shape=v.shape[1:]) for k, v in feeds.items()}
    if w.key == "W1":
        out = dense(dense(dense(ins["x"], "fc1", "relu"), "fc2", "relu"), "out", "softmax")
    elif w.key == "W2":
        out = dense(L.GlobalAveragePooling1D()(dense(ins["x"], "tdd", "tanh")), "out")
    elif w.key == "W3":
        m = L.Masking(0.0)(ins["x"])
        out = dense(L.GlobalAveragePooling1D()(dense(m, "tdd", "tanh")), "out")
    elif w.key == "W4":
        out = dense(
            L.Concatenate()([dense(ins["a"], "shared", "relu"), dense(ins["b"], "shared", "relu")]),
            "out",
        )
    else:
        h = ins["x"]
        for name in ("enc1", "enc2", "dec1"):
            h = dense(h, name, "relu")
        out = dense(h, "dec2", "sigmoid")
    model = keras.Model(list(ins.values()), out)
    arrays = list(feeds.values())
    return lambda: model(arrays if len(arrays) > 1 else arrays[0], training=False)


# ---- timing ---------------------------------------------------------------------------------


def interleaved(
    fns: dict[str, Callable[[], Any]], reps: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds per call for each function; repetitions alternate the order (ABC, CBA, ...)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(reps):
            for k in order if r % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                fns[k]()
                times[k].append(time.perf_counter() - start)
    finally:
        if enabled:
            gc.enable()
    return times


GEMM_SHAPE = (4096, 1024, 1024)  # m, k, n: W1's second layer
GEMM_SHAPE_TINY = (256, 128, 128)


def gemm_fn(tiny: bool) -> Callable[[], Any]:
    m, k, n = GEMM_SHAPE_TINY if tiny else GEMM_SHAPE
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    return lambda: a @ b


def gemm_rate(tiny: bool, times: list[float]) -> tuple[float, float]:
    """float32 GEMM rate (GFLOP/s) at the median and at the best of ``times``."""
    m, k, n = GEMM_SHAPE_TINY if tiny else GEMM_SHAPE
    flops = 2.0 * m * k * n
    return flops / statistics.median(times) / 1e9, flops / min(times) / 1e9


def mlp_flops(model: Model, rows: int) -> float:
    """2 flops per multiply-add of every GEMM of a model of Dense layers on 2D input (W1)."""
    return sum(2.0 * rows * v.size for k, v in model.weights.items() if k.endswith("/W"))


def thread_report() -> list[str]:
    lines = []
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            lines.append(
                f"{info.get('internal_api')} {info.get('version')} "
                f"({info.get('architecture')}): {info.get('num_threads')} threads"
            )
    except ImportError:
        lines.append("threadpoolctl not installed; BLAS threads from the environment only")
    env = {
        k: os.environ[k]
        for k in (
            "OMP_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "MKL_NUM_THREADS",
            "OPENBLAS_CORETYPE",
            "OPENBLAS_L2_SIZE",
        )
        if k in os.environ
    }
    lines.append(f"environment: {env or 'no thread variables set'}")
    lines.append(f"cores: {os.cpu_count()}")
    return lines


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny sizes, few repetitions (CI)")
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions per workload")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--only", nargs="*", default=None, help="workload keys, e.g. W1 W5")
    args = ap.parse_args(argv)
    reps = args.reps or (3 if args.tiny else 15)
    tiny = args.tiny

    print(f"# runner benchmarks ({'tiny' if tiny else 'full'} sizes)\n")
    if tiny:
        print(
            "(tiny sizes check that every workload builds and matches NumPy; their times are "
            "per-call overhead, not a measure of speed)\n"
        )
    print(f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(
        f"- python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()} {_cpu_name()}"
    )
    for line in thread_report():
        print(f"- {line}")
    load_start = os.getloadavg()[0]
    print(f"- load average (1 min) at start: {load_start:.2f}")
    gemm_med, gemm_best = gemm_rate(
        tiny, interleaved({"gemm": gemm_fn(tiny)}, max(reps, 5), 2)["gemm"]
    )
    print(
        f"- float32 GEMM rate ({'x'.join(map(str, GEMM_SHAPE_TINY if tiny else GEMM_SHAPE))}"
        f"): {gemm_med:.1f} GFLOP/s median, {gemm_best:.1f} best (at start; W1's share uses "
        "the GEMM timed between W1's repetitions)"
    )
    print(
        f"- repetitions: {reps} interleaved, warm-up {args.warmup}; ratio = median runner / "
        "median NumPy (below 1: the runner is faster)\n"
    )

    registered = registry.registered()
    optional = {"torch": torch_fn, "Keras": keras_fn}
    columns_present: list[str] = []
    rows: list[dict[str, Any]] = []
    for w in WORKLOADS:
        if args.only and w.key not in args.only:
            continue
        missing = [t for t in w.needs if t not in registered]
        if missing:
            print(f"note: {w.key} skipped: layer type {', '.join(missing)} not registered yet")
            rows.append({"w": w, "skipped": f"needs {', '.join(missing)}"})
            continue
        model = load_workload(w, tiny)
        n = max(4, math.ceil(w.rows / TINY_DIVISOR)) if tiny else w.rows
        feeds = make_feeds(model, w, n)
        weights = model.weights
        args_in = [feeds[k] for k in model.plan.inputs]
        out_name = model.outputs[0]
        fns: dict[str, Callable[[], Any]] = {  # called within this iteration only
            "runner": lambda: model.predict(feeds)[out_name],  # noqa: B023
            "numpy": lambda: w.numpy(weights, *args_in),  # noqa: B023
            "tuned": lambda: w.tuned(weights, *args_in),  # noqa: B023
        }
        if w.key == "W1":  # the GEMM rate, interleaved with W1 itself (same load, same run)
            fns["gemm"] = gemm_fn(tiny)
        for label, make in optional.items():
            try:
                fn = make(w, weights, feeds)
            except Exception as exc:  # an optional column must never break the table
                print(f"note: {label} column for {w.key} unavailable: {type(exc).__name__}: {exc}")
                fn = None
            if fn is not None:
                fns[label] = fn
                if label not in columns_present:
                    columns_present.append(label)
        ours, ref, fast = fns["runner"](), fns["numpy"](), fns["tuned"]()
        diff = float(np.max(np.abs(ours.astype(np.float64) - ref)))
        diff_tuned = float(np.max(np.abs(fast.astype(np.float64) - ref)))
        if not np.allclose(ours, ref, rtol=1e-4, atol=1e-5) or diff_tuned > 1e-4:
            print(
                f"error: {w.key}: outputs differ from hand-written NumPy (max |diff| {diff:.3g},"
                f" tuned {diff_tuned:.3g})"
            )
            return 1
        if ours.dtype != np.float32:
            print(f"error: {w.key}: runner output is {ours.dtype}, expected float32")
            return 1
        times = interleaved(fns, reps, args.warmup)
        row = {
            "w": w,
            "times": times,
            "diff": diff,
            "flops": mlp_flops(model, n) if w.key == "W1" else 0.0,
        }
        rows.append(row)

    if not args.only or "W6" in args.only:
        rows.append(_train_step_row(tiny, reps, args))

    print()
    print(table(rows, columns_present, gemm_med, tiny))
    load_end = os.getloadavg()[0]
    print(f"\nload average (1 min) at end: {load_end:.2f}")
    return 0


def table(rows, optional_columns: list[str], gemm: float, tiny: bool = False) -> str:
    head = [
        "workload",
        "runner ms (median / min)",
        "NumPy ms (median / min)",
        "ratio",
        "ratio of mins",
        "target",
        "met",
        "tuned NumPy ratio",
        *[f"{c} ratio" for c in optional_columns],
        "max abs diff",
    ]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for row in rows:
        w = row["w"]
        name = f"{w.key} {w.title}"
        if "skipped" in row:
            cells = [name, f"skipped ({row['skipped']})"] + [""] * (len(head) - 2)
            lines.append("| " + " | ".join(cells) + " |")
            continue
        t = row["times"]
        med = {k: statistics.median(v) for k, v in t.items()}
        mn = {k: min(v) for k, v in t.items()}
        ratio = med["runner"] / med["numpy"]
        runner_cell = f"{fmt_ms(med['runner'])} / {fmt_ms(mn['runner'])}"
        if w.key == "W1" and row.get("flops"):
            rate = row["flops"] / med["runner"] / 1e9
            if "gemm" in t:
                gemm = gemm_rate(tiny, t["gemm"])[0]
            runner_cell += (
                f" ({rate:.0f} GFLOP/s, {100 * rate / gemm:.0f}% of the {gemm:.0f} GFLOP/s GEMM)"
            )
        cells = [
            name,
            runner_cell,
            f"{fmt_ms(med['numpy'])} / {fmt_ms(mn['numpy'])}",
            f"{ratio:.2f}",
            f"{mn['runner'] / mn['numpy']:.2f}",
            f"<= {w.target:.2f}",
            "yes" if ratio <= w.target else "no",
            f"{med['tuned'] / med['numpy']:.2f}" if "tuned" in med else "—",
        ]
        cells += [f"{med[c] / med['numpy']:.2f}" if c in med else "—" for c in optional_columns]
        cells.append(f"{row['diff']:.1e}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _train_step_row(tiny: bool, reps: int, args) -> dict[str, Any]:
    """W6 from benchmarks/train_step.py (owned by the training work), when it exists."""
    w = Workload(
        "W6", "train step: W5, batch 256, MSE, Adam", "", 256, (), numpy_w5, tuned_w5, 1.20
    )
    sys.path.insert(0, str(HERE))
    try:
        import train_step  # type: ignore[import-not-found]
    except ImportError:
        print("note: W6 skipped: benchmarks/train_step.py is not there yet")
        return {"w": w, "skipped": "needs benchmarks/train_step.py"}
    finally:
        sys.path.remove(str(HERE))
    bench = getattr(train_step, "benchmark_functions", None)
    if bench is None:
        print("note: W6 skipped: train_step.py has no benchmark_functions(tiny) to call")
        return {"w": w, "skipped": "train_step.py has no benchmark_functions"}
    check = getattr(train_step, "check_same_step", None)
    diff = check(tiny)[1] if check is not None else float("nan")  # weights after one step
    fns = bench(tiny=tiny)  # {"runner": fn, "numpy": fn}
    times = interleaved(fns, reps, args.warmup)
    return {"w": w, "times": times, "diff": diff, "flops": 0.0}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())

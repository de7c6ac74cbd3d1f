"""Speed of the runtime against NumPy written by hand for speed, torch and onnxruntime.

    python benchmarks/run.py            # full sizes, W1-W6 (needs the bench extra)
    python benchmarks/run.py --tiny     # tiny sizes, a few repetitions (CI runs this once)
    python benchmarks/run.py --reps 30 --only W1 W5 --skip ort

Each workload is built from its YAML in ``benchmarks/configs/`` through the project's own API
(``Model.from_config(load_model_file(path))`` then ``Model.predict(inputs)``) and run, in the
same process, by:

- *hand NumPy* (``benchmarks/hand_numpy.py``), the reference of every ratio: the graph written
  by hand for speed (one 2D GEMM per layer, bias and activation in place, masked steps
  gathered, the Siamese concat folded into the next GEMM);
- *GEMM floor*: the GEMM calls the hand-written code made, replayed alone with the same
  operands (``hand_numpy.gemm_floor``): how fast any implementation on this BLAS could be
  without doing fewer multiply-adds; a target below it is out of reach here;
- *torch* (CPU, eager, inference mode) and *onnxruntime* (an ONNX graph drawn with
  ``onnx.helper`` in ``benchmarks/frameworks.py``), from the same weights.

Before anything is timed, every column's output is checked against the idiomatic NumPy form
of the same math (an independent formulation); the script stops if one differs. Every
library runs on ``--threads`` threads (2 by default: OpenBLAS through threadpoolctl, torch,
onnxruntime). Repetitions are interleaved (ours, hand, torch, ort, then reversed, ...) after a
warm-up, with the garbage collector off and a pause before each timed call (``--settle``,
0.15 s) so that no library's worker threads are still spinning from the previous column.
The table gives medians and minimums, and the ratio to the hand-written NumPy (below 1:
faster). The load average and the float32 GEMM rate are
measured in the same run. Missing torch/onnxruntime stops a full run (install the ``bench``
extra) and only drops their columns with ``--tiny``, which is what
``tests/test_benchmarks_tiny.py`` runs; nothing here asserts a time.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling modules below, however the script is started

from frameworks import BUILDERS  # noqa: E402
from hand_numpy import HAND, PLAIN, gemm_floor  # noqa: E402

from layers import registry  # noqa: E402
from runner.api import Model, load_model_file  # noqa: E402

CONFIGS = HERE / "configs"
TINY_DIVISOR = 32  # --tiny: every per-sample size and output_dim divided by this (rounded up)
FRAMEWORKS = ("torch", "ort")
PACKAGES = {"torch": "torch", "ort": "onnxruntime and onnx"}


@dataclass
class Workload:
    key: str
    title: str
    config: str
    rows: int
    needs: tuple[str, ...]  # layer types that must be registered
    target: float  # the ratio to hand-written NumPy issue 15 asks for (at most)
    masked_fraction: float = 0.0  # share of timesteps zeroed (trailing padding)


WORKLOADS = [
    Workload("W1", "MLP 784-1024-1024-10, batch 4096", "w1_mlp.yaml", 4096, ("Dense",), 0.92),
    Workload(
        "W2",
        "TDD 256 tanh + TDMerge ave, (256,100,128)",
        "w2_tdd.yaml",
        256,
        ("TimeDistributedDense", "TimeDistributedMerge"),
        0.70,
    ),
    Workload(
        "W3",
        "W2 with Masking, 30% of steps masked",
        "w3_masked.yaml",
        256,
        ("Masking", "TimeDistributedDense", "TimeDistributedMerge"),
        0.75,
        masked_fraction=0.3,
    ),
    Workload(
        "W4", "Siamese shared Dense 512, 2x(4096,256)", "w4_siamese.yaml", 4096, ("Siamese",), 0.90
    ),
    Workload(
        "W5",
        "AutoEncoder 784-256-64-256-784, batch 4096",
        "w5_autoencoder.yaml",
        4096,
        ("AutoEncoder",),
        0.75,
    ),
]
TRAIN_TARGETS = {"sgd": 0.85, "adam": 0.95}  # W6
SETTLE = 0.15  # s before each timed call: longer than OpenBLAS's default spin (2^28 cycles)


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


# ---- timing ---------------------------------------------------------------------------------


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter  # --clock cpu: CPU seconds of the whole process (all its threads)


def interleaved(
    fns: dict[str, Callable[[], Any]], reps: int, warmup: int, settle: float = 0.0
) -> dict[str, list[float]]:
    """Seconds per call for each function; repetitions alternate the order (ABC, CBA, ...).

    ``settle`` seconds of sleep come before every timed call: after a call, a library's
    worker threads keep spinning on the cores for a while (OpenBLAS up to about 0.1 s by
    default, onnxruntime's and OpenMP's pools for less), and the next column would share the
    cores with them. With the pause every call starts on idle cores, as in a process that runs
    that library alone.
    """
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
                if settle:
                    time.sleep(settle)
                start = clock()
                fns[k]()
                times[k].append(clock() - start)
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


# ---- threads ----------------------------------------------------------------------------


def pin_threads(threads: int):
    """Limit NumPy's BLAS to ``threads`` (the returned limiter must stay alive); torch and
    onnxruntime get the same number where their columns are built."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def thread_report() -> list[str]:
    lines = []
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            detail = info.get("architecture") or info.get("threading_layer") or info.get("prefix")
            lines.append(
                f"{info.get('internal_api')} {info.get('version') or ''} ({detail}): "
                f"{info.get('num_threads')} threads"
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


def versions(columns: list[str]) -> str:
    out = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    if "torch" in columns:
        import torch

        out.append(f"torch {torch.__version__}")
    if "ort" in columns:
        import onnx
        import onnxruntime

        out += [f"onnxruntime {onnxruntime.__version__}", f"onnx {onnx.__version__}"]
    return ", ".join(out)


def available_columns(skip: list[str], tiny: bool) -> tuple[list[str], str | None]:
    """The framework columns to run, or an error when a full run misses a package."""
    columns = []
    for name in FRAMEWORKS:
        if name in skip:
            continue
        try:
            if name == "torch":
                import torch  # noqa: F401
            else:
                import onnx  # noqa: F401
                import onnxruntime  # noqa: F401
        except ImportError:
            if not tiny:
                return [], (
                    f"{PACKAGES[name]} not installed: install the bench extra "
                    "(pip install -e '.[bench]' -c constraints.txt) or pass --skip "
                    f"{name}"
                )
            print(f"note: {name} column left out: {PACKAGES[name]} not installed (tiny mode)")
            continue
        columns.append(name)
    return columns, None


# ---- the run --------------------------------------------------------------------------------


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def with_switch(fn: Callable[[], Any], module: Any, enabled: bool) -> Callable[[], Any]:
    """``fn`` with ``module.ENABLED`` set to ``enabled`` for the call (an A/B column)."""

    def run() -> Any:
        before, module.ENABLED = module.ENABLED, enabled
        try:
            return fn()
        finally:
            module.ENABLED = before

    return run


def measure_workload(
    w: Workload,
    tiny: bool,
    columns: list[str],
    reps: int,
    warmup: int,
    threads: int,
    ab_split: bool = False,
    settle: float = 0.0,
    ab_kernels: bool = False,
) -> dict[str, Any]:
    model = load_workload(w, tiny)
    n = max(4, math.ceil(w.rows / TINY_DIVISOR)) if tiny else w.rows
    feeds = make_feeds(model, w, n)
    weights = model.weights
    args_in = [feeds[k] for k in model.plan.inputs]
    out_name = model.outputs[0]
    hand = HAND[w.key]
    fns: dict[str, Callable[[], Any]] = {
        "ours": lambda: model.predict(feeds)[out_name],
        "hand": lambda: hand(weights, *args_in),
    }
    if ab_split:  # layers.parallel on (off by default: LAYERS_ROW_BLOCKS=1)
        from layers import parallel

        fns["ours1"] = with_switch(fns["ours"], parallel, True)
    if ab_kernels:  # layers.kernels off (as LAYERS_KERNELS=0): NumPy's passes only
        from layers import kernels

        fns["ours0"] = with_switch(fns["ours"], kernels, False)
    fns["floor"] = gemm_floor(hand, weights, *args_in)
    for name in columns:
        fns[name] = BUILDERS[name](w.key, weights, feeds, threads)
    if w.key == "W1":  # the GEMM rate, interleaved with W1 itself (same load, same run)
        fns["gemm"] = gemm_fn(tiny)
    reference = PLAIN[w.key](weights, *args_in)
    diffs = {}
    for name, fn in fns.items():
        if name in ("gemm", "floor"):
            continue
        out = np.asarray(fn())
        diffs[name] = float(np.max(np.abs(out.astype(np.float64) - reference)))
        if out.shape != reference.shape or not np.allclose(out, reference, rtol=1e-4, atol=1e-5):
            raise AssertionError(
                f"{w.key}: the {name} column's output differs from the idiomatic NumPy "
                f"(max |diff| {diffs[name]:.3g}, shape {out.shape} vs {reference.shape})"
            )
        if name == "ours" and out.dtype != np.float32:
            raise AssertionError(f"{w.key}: the runner's output is {out.dtype}, not float32")
    times = interleaved(fns, reps, warmup, settle)
    flops = mlp_flops(model, n) if w.key == "W1" else 0.0
    return {
        "key": w.key,
        "title": w.title,
        "target": w.target,
        "times": times,
        "diff": diffs,
        "flops": flops,
    }


def measure_train_step(
    optimizer: str,
    tiny: bool,
    columns: list[str],
    reps: int,
    warmup: int,
    threads: int,
    settle: float = 0.0,
) -> dict[str, Any]:
    import train_step

    cols = tuple(c for c in columns if c == "torch")  # onnxruntime has no training step here
    diff = train_step.check_same_step(optimizer, tiny, cols, threads)
    fns = train_step.benchmark_functions(tiny, optimizer, cols, threads)
    times = interleaved(fns, reps, warmup, settle)
    name = {"sgd": "SGD", "adam": "Adam"}[optimizer]
    title = f"train step of W5, batch {train_step.BATCH}, {name}"
    return {
        "key": "W6",
        "title": title,
        "target": TRAIN_TARGETS[optimizer],
        "times": times,
        "diff": {"ours": diff},
        "flops": 0.0,
    }


def table(rows: list[dict[str, Any]], columns: list[str], tiny: bool) -> str:
    names = {
        "torch": "torch",
        "ort": "onnxruntime",
        "ours1": "ours with row blocks on threads",
        "ours0": "ours without fused kernels",
    }
    for extra in ("ours1", "ours0"):
        if any(extra in row["times"] for row in rows):
            columns = [extra, *columns]
    head = [
        "workload",
        "ours ms (median / min)",
        "hand NumPy ms (median / min)",
        *[f"{names[c]} ms (median / min)" for c in columns],
        "ratio",
        "ratio of mins",
        *[f"{names[c]} ratio" for c in columns],
        "GEMM floor ratio",
        "target",
        "met",
        "max abs diff",
    ]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for row in rows:
        t = row["times"]
        med = {k: statistics.median(v) for k, v in t.items()}
        low = {k: min(v) for k, v in t.items()}

        def cell(k: str, t=t, med=med, low=low) -> str:
            return f"{fmt_ms(med[k])} / {fmt_ms(low[k])}" if k in t else "—"

        ours = cell("ours")
        if row["flops"]:
            rate = row["flops"] / med["ours"] / 1e9
            gemm = gemm_rate(tiny, t["gemm"])[0]
            ours += f" ({rate:.0f} GFLOP/s; GEMM {gemm:.0f})"
        ratio = med["ours"] / med["hand"]
        floor = med["floor"] / med["hand"]
        cells = [
            f"{row['key']} {row['title']}",
            ours,
            cell("hand"),
            *[cell(c) for c in columns],
            f"{ratio:.2f}",
            f"{low['ours'] / low['hand']:.2f}",
            *[f"{med[c] / med['hand']:.2f}" if c in t else "—" for c in columns],
            f"{floor:.2f}",
            f"<= {row['target']:.2f}",
            met(ratio, floor, row["target"]),
            f"{row['diff']['ours']:.1e}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def met(ratio: float, floor: float, target: float) -> str:
    """yes / no, and whether the target asks for less time than the GEMMs alone take."""
    if ratio <= target:
        return "yes"
    return "no (target below the GEMM floor)" if target < floor else "no"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny sizes, few repetitions (CI)")
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions per workload")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="threads of every library")
    ap.add_argument("--only", nargs="*", default=None, help="workload keys, e.g. W1 W5 W6")
    ap.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="cpu: CPU time of the process instead of wall time (on a busy machine it leaves "
        "out the time spent waiting for a core; threads' CPU seconds add up)",
    )
    ap.add_argument(
        "--ab-split",
        action="store_true",
        help="add a column: ours with layers.parallel on (row blocks on two one-thread BLAS calls)",
    )
    ap.add_argument(
        "--ab-kernels",
        action="store_true",
        help="add a column: ours with layers.kernels off (NumPy's passes, as without numba)",
    )
    ap.add_argument(
        "--skip", nargs="*", default=[], choices=FRAMEWORKS, help="columns to leave out"
    )
    ap.add_argument(
        "--settle",
        type=float,
        default=None,
        help="seconds of sleep before every timed call, so no library's spinning worker "
        "threads are still on the cores (default 0.15; 0 with --tiny)",
    )
    args = ap.parse_args(argv)
    reps = args.reps or (3 if args.tiny else 15)
    settle = args.settle if args.settle is not None else (0.0 if args.tiny else SETTLE)
    if settle < 0:
        ap.error(f"--settle must be 0 or more seconds, got {settle}")
    global clock
    clock = CLOCKS[args.clock]
    tiny = args.tiny
    limiter = pin_threads(args.threads)  # noqa: F841 (kept alive for the whole run)
    columns, error = available_columns(args.skip, tiny)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    print(f"# runner benchmarks ({'tiny' if tiny else 'full'} sizes)\n")
    if tiny:
        print(
            "(tiny sizes check that every workload builds and matches NumPy; their times are "
            "per-call overhead, not a measure of speed)\n"
        )
    print(f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"- {versions(columns)}; {platform.machine()} {_cpu_name()}")
    print(f"- threads: {args.threads} for every library; clock: {args.clock}")
    for line in thread_report():
        print(f"- {line}")
    print(f"- load average (1 min) at start: {os.getloadavg()[0]:.2f}")
    gemm_med, gemm_best = gemm_rate(
        tiny, interleaved({"gemm": gemm_fn(tiny)}, max(reps, 5), 2)["gemm"]
    )
    shape = "x".join(map(str, GEMM_SHAPE_TINY if tiny else GEMM_SHAPE))
    print(
        f"- float32 GEMM rate ({shape}, NumPy): {gemm_med:.1f} GFLOP/s median, "
        f"{gemm_best:.1f} best (at start; W1's cell gives the rate timed between its "
        "repetitions)"
    )
    print(
        f"- repetitions: {reps} interleaved, warm-up {args.warmup}, {settle:g} s pause before "
        "each timed call (no other library's threads still spinning); ratio = median ours / "
        "median hand NumPy (below 1: faster); GEMM floor ratio = median time of the hand "
        "code's GEMM calls alone (same operands, nothing else) / median hand NumPy: no "
        "implementation on this BLAS goes below it without doing fewer multiply-adds\n"
    )

    registered = registry.registered()
    rows: list[dict[str, Any]] = []
    for w in WORKLOADS:
        if args.only and w.key not in args.only:
            continue
        missing = [t for t in w.needs if t not in registered]
        if missing:
            print(f"error: {w.key} needs layer type {', '.join(missing)}", file=sys.stderr)
            return 1
        try:
            rows.append(
                measure_workload(
                    w,
                    tiny,
                    columns,
                    reps,
                    args.warmup,
                    args.threads,
                    args.ab_split,
                    settle,
                    args.ab_kernels,
                )
            )
        except AssertionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if not args.only or "W6" in args.only:
        for optimizer in ("sgd", "adam"):
            try:
                rows.append(
                    measure_train_step(
                        optimizer, tiny, columns, reps, args.warmup, args.threads, settle
                    )
                )
            except AssertionError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1

    print()
    print(table(rows, columns, tiny))
    print(f"\nload average (1 min) at end: {os.getloadavg()[0]:.2f}")
    return 0


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

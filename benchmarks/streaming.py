"""Streaming: a .npy input larger than the memory budget, predicted and trained on in batches.

    python benchmarks/streaming.py              # a 4 GiB float32 input (1,369,569 rows of 784)
    python benchmarks/streaming.py --gib 2 --batch-size 8192
    python benchmarks/streaming.py --tiny       # 4 MiB, a few seconds (CI)

The input is written into a temporary folder and deleted at the end (``--dir DIR`` keeps it
there and reuses it). Child processes then run the project's own API:

*predict* (the W1 layers, ``benchmarks/configs/w1_mlp.yaml``, with ``batch_size`` set):

- *streaming*: the input memory-mapped, outputs written into a memory-mapped ``.npy``
  (``outputs_to_disk``), progress bar on stderr;
- *in memory*: the first rows of the same file copied into RAM, outputs in RAM, same batches.

*fit* (the W5 autoencoder, ``benchmarks/configs/w5_autoencoder.yaml``, fitted to its input:
MSE, Adam, ``fit.batch_size`` 256, ``fit.shuffle_block`` 8192 rows):

- *streaming*: one epoch over the whole memory-mapped file, through ``runner.train.fit``;
- *in memory*: the same fit on a slice of the file copied into RAM (512 MiB, smaller than
  RAM), with the same block shuffle.

Each child reports rows per second and its peak resident memory (VmHWM, which counts mapped
file pages too). Throughput ratios come from paired runs in one process: segments of the
mapped file alternate with as many rows from RAM, so both see the same machine load. Predict
outputs are checked (first and last rows) against ``Model.predict``; a fit segment from the
file and the same rows from RAM are checked to train the same weights. Targets: throughput
ratio at least 0.9, peak RSS under 600 MB. With ``--cold`` the input is evicted from the page
cache first (posix_fadvise), so streaming reads the disk; by default the file is warm.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "configs" / "w1_mlp.yaml"
FIT_CONFIG = HERE / "configs" / "w5_autoencoder.yaml"
FEATURES = 784
RSS_LIMIT_MB = 600.0
THROUGHPUT_TARGET = 0.9
FIT_BATCH = 256
FIT_PAIRS = 40  # interleaved fit segments (each 32 batches), spread over the file
IN_MEMORY_SLICE_BYTES = 512 * 2**20  # the in-memory fit's slice of the file


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_input(path: Path, rows: int) -> None:
    """Seeded uniform float32 rows, written in chunks (never the whole array in memory)."""
    if path.exists():
        try:
            existing = np.load(path, mmap_mode="r", allow_pickle=False)
            if existing.shape == (rows, FEATURES) and existing.dtype == np.float32:
                return
        except ValueError:
            pass
    from runner.graph.execute import release_rows

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(rows, FEATURES))
    rng = np.random.default_rng(0)
    chunk = 16384
    for lo in range(0, rows, chunk):
        hi = min(rows, lo + chunk)
        out[lo:hi] = rng.random((hi - lo, FEATURES), dtype=np.float32)
        out.flush()
        release_rows(out, lo, hi)
    del out
    os.replace(tmp, path)


def child(
    mode: str, path: Path, batch_size: int, out_dir: Path, in_memory_rows: int, cold: bool
) -> dict:
    """One measured run in this (fresh) process; returns what the parent prints."""
    from runner.api import Model, load_model_file
    from runner.graph.execute import predict

    config = load_model_file(CONFIG, seed=0, batch_size=batch_size, data_dirs=[str(path.parent)])
    config["model"]["inputs"]["x"]["data"] = {"path": str(path)}
    model = Model.from_config(config)
    plan = model.plan
    keep = set(plan.outputs)
    if mode == "memory":
        node = plan.inputs["x"]
        node.array = np.array(node.array[:in_memory_rows])  # a plain in-RAM copy
        node.rows = in_memory_rows
    elif cold and hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    rows = plan.inputs["x"].array.shape[0]
    start = time.perf_counter()
    prediction = predict(
        plan, False, keep, progress=True, out_dir=out_dir, outputs_to_disk=(mode == "stream")
    )
    seconds = time.perf_counter() - start
    out = prediction.values[plan.outputs[0]]
    on_disk = isinstance(out, np.memmap)
    # Spot checks against the in-process API on the first and last rows.
    x = plan.inputs["x"].array
    n = min(256, rows)
    worst = 0.0
    for sl in (slice(0, n), slice(rows - n, rows)):
        ref = model.predict({"x": np.asarray(x[sl], dtype=np.float32)})[plan.outputs[0]]
        worst = max(worst, float(np.max(np.abs(np.asarray(out[sl]) - ref))))
    peak_mb = peak_rss_mb()
    return {
        "mode": mode,
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "peak_rss_mb": peak_mb,
        "batches": prediction.batches,
        "output_on_disk": on_disk,
        "output_dtype": str(out.dtype),
        "max_abs_diff": worst,
        "input_mb": x.nbytes / 2**20,
    }


def compare(path: Path, batch_size: int, out_dir: Path, segment_rows: int) -> dict:
    """Paired throughput: segments of the memory-mapped file streamed (outputs to disk)
    alternate with the same number of rows from RAM (outputs in RAM), so both see the same
    machine load; returns seconds per row of each."""
    from runner.api import Model, load_model_file
    from runner.graph.execute import predict

    config = load_model_file(CONFIG, seed=0, batch_size=batch_size, data_dirs=[str(path.parent)])
    config["model"]["inputs"]["x"]["data"] = {"path": str(path)}
    model = Model.from_config(config)
    plan = model.plan
    node = plan.inputs["x"]
    mapped = node.array
    in_ram = np.array(mapped[:segment_rows])
    seconds = {"stream": 0.0, "memory": 0.0}
    rows = {"stream": 0, "memory": 0}
    starts = range(0, mapped.shape[0] - segment_rows + 1, segment_rows)
    node.array, node.rows = in_ram, segment_rows
    predict(plan, False, set(plan.outputs))  # warm-up: thread pool, first allocations
    for k, lo in enumerate(starts):
        for mode in ("stream", "memory") if k % 2 == 0 else ("memory", "stream"):
            node.array = mapped[lo : lo + segment_rows] if mode == "stream" else in_ram
            node.rows = segment_rows
            start = time.perf_counter()
            predict(
                plan,
                False,
                set(plan.outputs),
                out_dir=out_dir / mode,
                outputs_to_disk=(mode == "stream"),
            )
            seconds[mode] += time.perf_counter() - start
            rows[mode] += segment_rows
    return {
        "segments": len(starts),
        "segment_rows": segment_rows,
        "seconds": seconds,
        "rows": rows,
        "peak_rss_mb": peak_rss_mb(),
    }


def fit_model_of(path: Path, block: int, tiny: bool = False):
    """The W5 autoencoder planned for task=fit on the mapped file (nothing trained yet)."""
    from runner.api import Model, load_model_file

    config = load_model_file(
        FIT_CONFIG,
        task="fit",
        seed=0,
        progress=False,
        data_dirs=[str(path.parent)],
        fit={
            "epochs": 1,
            "batch_size": FIT_BATCH,
            "shuffle_block": block,
            "loss": "mse",
            "optimizer": {"name": "adam"},
        },
    )
    config["model"]["inputs"]["x"]["data"] = {"path": str(path)}
    return Model.from_config(config)


def fit_child(path: Path, block: int, cold: bool) -> dict:
    """One epoch over the whole mapped file, as task=fit runs it."""
    from runner.train.fit import fit_model

    model = fit_model_of(path, block)
    plan = model.plan
    if cold and hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    data = plan.fit.data
    start = time.perf_counter()
    result = fit_model(plan, plan.fit.settings, data)
    seconds = time.perf_counter() - start
    return {
        "rows": data.rows,
        "seconds": seconds,
        "rows_per_s": data.rows / seconds,
        "batches": math.ceil(data.rows / FIT_BATCH),
        "peak_rss_mb": peak_rss_mb(),
        "loss": result.history[-1]["loss"],
        "streamed": type(data.inputs["x"].array).__name__,
        "plan_mb": plan.memory_bytes / 2**20,
        "input_mb": data.inputs["x"].array.nbytes / 2**20,
    }


def fit_compare(path: Path, block: int, segment_rows: int, memory_rows: int) -> dict:
    """Paired fit throughput: one-epoch fits on segments of the mapped file alternate with
    fits on as many rows of an in-RAM copy of its first ``memory_rows`` rows."""
    import dataclasses

    import numpy as np

    from runner.data.feed import Column
    from runner.train.data import FitData
    from runner.train.fit import fit_model

    model = fit_model_of(path, block)
    plan, settings = model.plan, model.plan.fit.settings
    mapped = plan.fit.data.inputs["x"]
    in_ram = dataclasses.replace(mapped, array=np.array(mapped.array[:memory_rows]))

    def data_of(column: Column, lo: int) -> FitData:
        part = column.part(lo, lo + segment_rows)
        return FitData({"x": part}, {"ae": part}, shuffle=True, shuffle_block=block)

    # the same rows from the file and from RAM train the same weights (same initial weights)
    start_weights = {k: v.copy() for k, v in model.weights.items()}
    trained = []
    for column in (mapped, in_ram):
        for key, value in start_weights.items():
            model.weights[key][...] = value
        fit_model(plan, settings, data_of(column, 0))
        trained.append({k: v.copy() for k, v in model.weights.items()})
    same = all(trained[0][k].tobytes() == trained[1][k].tobytes() for k in trained[0])
    seconds = {"stream": 0.0, "memory": 0.0}
    rows = {"stream": 0, "memory": 0}
    # at most FIT_PAIRS segments, spread over the file after the first (checked above)
    every = range(segment_rows, mapped.rows - segment_rows + 1, segment_rows)
    starts = every[:: max(math.ceil(len(every) / FIT_PAIRS), 1)]
    memory_starts = max(memory_rows // segment_rows, 1)
    for k, lo in enumerate(starts):
        for mode in ("stream", "memory") if k % 2 == 0 else ("memory", "stream"):
            if mode == "stream":
                data = data_of(mapped, lo)
            else:
                data = data_of(in_ram, (k % memory_starts) * segment_rows)
            t = time.perf_counter()
            fit_model(plan, dataclasses.replace(settings, epochs=1), data)
            seconds[mode] += time.perf_counter() - t
            rows[mode] += segment_rows
    return {
        "segments": len(starts),
        "segment_rows": segment_rows,
        "memory_rows": memory_rows,
        "seconds": seconds,
        "rows": rows,
        "same_weights": same,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_child(mode: str, args, path: Path, out_dir: Path, in_memory_rows: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--path",
        str(path),
        "--batch-size",
        str(args.batch_size),
        "--out-dir",
        str(out_dir),
        "--in-memory-rows",
        str(in_memory_rows),
        "--block",
        str(args.block),
        "--segment-rows",
        str(args.segment_rows),
    ] + (["--cold"] if args.cold else [])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="a 4 MiB input (CI)")
    ap.add_argument("--gib", type=float, default=4.0, help="input size in GiB (default 4)")
    ap.add_argument("--batch-size", type=int, default=None, help="predict's batch_size")
    ap.add_argument("--block", type=int, default=None, help="fit.shuffle_block (8192 rows)")
    ap.add_argument("--dir", type=Path, help="keep (and reuse) the input here, not in a temp dir")
    ap.add_argument("--only", choices=["predict", "fit"], help="run one part only")
    ap.add_argument("--cold", action="store_true", help="evict the input from the page cache")
    ap.add_argument(
        "--child",
        choices=["stream", "memory", "compare", "fit"],
        help=argparse.SUPPRESS,
    )
    ap.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--in-memory-rows", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--segment-rows", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        if args.child == "compare":
            out = compare(args.path, args.batch_size, args.out_dir, args.in_memory_rows)
        elif args.child == "fit":  # the whole file first: its peak RSS, then the pairs
            out = {"whole": fit_child(args.path, args.block, args.cold)}
            out["paired"] = fit_compare(
                args.path, args.block, args.segment_rows, args.in_memory_rows
            )
        else:
            out = child(
                args.child,
                args.path,
                args.batch_size,
                args.out_dir,
                args.in_memory_rows,
                args.cold,
            )
        print(json.dumps(out))
        return 0

    gib = 4 / 1024 if args.tiny else args.gib
    args.batch_size = args.batch_size or (256 if args.tiny else 4096)
    args.block = args.block or (512 if args.tiny else 8192)
    rows = math.ceil(gib * 2**30 / (FEATURES * 4))
    print(f"# streaming benchmark ({'tiny' if args.tiny else 'full'})\n")
    print(f"- load average (1 min) at start: {os.getloadavg()[0]:.2f}")
    if args.dir is not None:
        return measure(args, args.dir / f"stream_x_{rows}x{FEATURES}.npy", rows)
    with tempfile.TemporaryDirectory(prefix="runner-stream-input-") as tmp:
        return measure(args, Path(tmp) / f"stream_x_{rows}x{FEATURES}.npy", rows)


def measure(args, path: Path, rows: int) -> int:
    print(
        f"- input: {path.name} ({rows:,} rows x {FEATURES} float32 = "
        f"{rows * FEATURES * 4 / 2**30:.2f} GiB), {'cold' if args.cold else 'warm'} page cache"
    )
    t = time.perf_counter()
    make_input(path, rows)
    print(f"- input ready in {time.perf_counter() - t:.1f} s")
    code = 0
    if args.only != "fit":
        code = max(code, measure_predict(args, path, rows))
    if args.only != "predict":
        code = max(code, measure_fit(args, path, rows))
    print(f"\n- load average (1 min) at end: {os.getloadavg()[0]:.2f}")
    return code


def measure_predict(args, path: Path, rows: int) -> int:
    segment_rows = min(rows, (2 if args.tiny else 8) * args.batch_size)
    args.segment_rows = segment_rows
    with tempfile.TemporaryDirectory(prefix="runner-stream-") as tmp:
        stream = run_child("stream", args, path, Path(tmp) / "stream", segment_rows)
        paired = run_child("compare", args, path, Path(tmp) / "compare", segment_rows)
    results = [stream]
    print(f"\n## predict: W1 layers, batch_size {args.batch_size}\n")
    print("| run | rows | batches | seconds | rows/s | peak RSS MB | output | max abs diff |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    r = stream
    where = "memory-mapped .npy" if r["output_on_disk"] else "RAM"
    print(
        f"| stream, whole file | {r['rows']:,} | {r['batches']} | {r['seconds']:.2f} | "
        f"{r['rows_per_s']:,.0f} | {r['peak_rss_mb']:.0f} | {where} ({r['output_dtype']}) | "
        f"{r['max_abs_diff']:.1e} |"
    )
    rate = {}
    for mode, label, where in (
        ("stream", "stream, interleaved", "memory-mapped .npy"),
        ("memory", "in memory, interleaved", "RAM"),
    ):
        n, sec = paired["rows"][mode], paired["seconds"][mode]
        rate[mode] = n / sec
        rss = "—" if mode == "stream" else f"{paired['peak_rss_mb']:.0f}"
        print(
            f"| {label} | {n:,} | {n // args.batch_size} | {sec:.2f} | {rate[mode]:,.0f} | "
            f"{rss} | {where} | — |"
        )
    ratio = rate["stream"] / rate["memory"]
    print(
        f"\nthroughput streaming / in memory: {ratio:.2f} over {paired['segments']} pairs of "
        f"{paired['segment_rows']:,}-row segments, alternating (target >= {THROUGHPUT_TARGET}: "
        f"{'met' if ratio >= THROUGHPUT_TARGET else 'not met'})"
    )
    print(
        f"peak RSS streaming the whole file: {stream['peak_rss_mb']:.0f} MB for a "
        f"{stream['input_mb']:,.0f} MB input (target < {RSS_LIMIT_MB:.0f} MB: "
        f"{'met' if stream['peak_rss_mb'] < RSS_LIMIT_MB else 'not met'})"
    )
    bad = [r for r in results if not r["max_abs_diff"] <= 1e-5]
    if bad or not stream["output_on_disk"]:
        print("error: outputs differ from Model.predict, or the output is not on disk")
        return 1
    return 0


def measure_fit(args, path: Path, rows: int) -> int:
    memory_rows = min(rows, IN_MEMORY_SLICE_BYTES // (FEATURES * 4))
    args.segment_rows = min(rows // 3, (2 if args.tiny else 32) * FIT_BATCH)
    both = run_child("fit", args, path, path.parent, memory_rows)
    whole, paired = both["whole"], both["paired"]
    print(
        f"\n## fit: W5 autoencoder to its input, MSE, Adam, batch_size {FIT_BATCH}, "
        f"shuffle_block {args.block}\n"
    )
    print("| run | rows | batches | seconds | rows/s | peak RSS MB | input |")
    print("|---|---:|---:|---:|---:|---:|---|")
    print(
        f"| fit stream, whole file | {whole['rows']:,} | {whole['batches']:,} | "
        f"{whole['seconds']:.2f} | {whole['rows_per_s']:,.0f} | {whole['peak_rss_mb']:.0f} | "
        f"memory-mapped .npy ({whole['input_mb']:,.0f} MB) |"
    )
    rate = {}
    for mode, label, where in (
        ("stream", "fit stream, interleaved", "memory-mapped .npy"),
        ("memory", "fit in memory, interleaved", f"RAM ({memory_rows:,}-row slice)"),
    ):
        n, sec = paired["rows"][mode], paired["seconds"][mode]
        rate[mode] = n / sec
        rss = "—" if mode == "stream" else f"{paired['peak_rss_mb']:.0f}"
        print(
            f"| {label} | {n:,} | {math.ceil(n / FIT_BATCH):,} | {sec:.2f} | "
            f"{rate[mode]:,.0f} | {rss} | {where} |"
        )
    ratio = rate["stream"] / rate["memory"]
    print(
        f"\nfit throughput streaming / in memory: {ratio:.2f} over {paired['segments']} pairs "
        f"of {paired['segment_rows']:,}-row segments, alternating (target >= "
        f"{THROUGHPUT_TARGET}: {'met' if ratio >= THROUGHPUT_TARGET else 'not met'})"
    )
    print(
        f"fit peak RSS streaming the whole file: {whole['peak_rss_mb']:.0f} MB for a "
        f"{whole['input_mb']:,.0f} MB input; the plan estimated {whole['plan_mb']:.0f} MB "
        f"(target < {RSS_LIMIT_MB:.0f} MB: "
        f"{'met' if whole['peak_rss_mb'] < RSS_LIMIT_MB else 'not met'})"
    )
    if (
        whole["streamed"] != "memmap"
        or not paired["same_weights"]
        or not math.isfinite(whole["loss"])
    ):
        print("error: the fit did not stream, or streamed and in-memory fits trained differently")
        return 1
    print("fit check: the same rows from the file and from RAM trained bit-identical weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())

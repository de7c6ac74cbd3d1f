"""Streaming: a .npy input larger than the memory budget, through W1-sized layers, in batches.

    python benchmarks/streaming.py              # a 2 GiB float32 input (684,000 rows of 784)
    python benchmarks/streaming.py --gib 4 --batch-size 8192
    python benchmarks/streaming.py --tiny       # 4 MiB, a few seconds (CI)

The input is written once (and reused) under the system temp folder. Two child processes then
run the W1 layers (``benchmarks/configs/w1_mlp.yaml``) through the project's own API and
executor with ``batch_size`` set:

- *streaming*: the input memory-mapped, outputs written into a memory-mapped ``.npy``
  (``outputs_to_disk``), progress bar on stderr;
- *in memory*: the first rows of the same file copied into RAM, outputs in RAM, same batches.

Each child reports rows per second and its peak resident memory (``ru_maxrss``, which counts
mapped file pages too), and checks its first and last rows against ``Model.predict``. The
table gives the throughput ratio (target: at least 0.9) and the peak RSS (target: under
600 MB). With ``--cold`` the input is evicted from the page cache first (posix_fadvise), so
the streaming run reads the disk; by default the file is warm in the page cache.
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
FEATURES = 784
RSS_LIMIT_MB = 600.0
THROUGHPUT_TARGET = 0.9


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
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux
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
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
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
    ] + (["--cold"] if args.cold else [])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="a 4 MiB input (CI)")
    ap.add_argument("--gib", type=float, default=2.0, help="input size in GiB (default 2)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "runner-bench")
    ap.add_argument("--cold", action="store_true", help="evict the input from the page cache")
    ap.add_argument("--child", choices=["stream", "memory", "compare"], help=argparse.SUPPRESS)
    ap.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--in-memory-rows", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child == "compare":
        print(json.dumps(compare(args.path, args.batch_size, args.out_dir, args.in_memory_rows)))
        return 0
    if args.child:
        print(
            json.dumps(
                child(
                    args.child,
                    args.path,
                    args.batch_size,
                    args.out_dir,
                    args.in_memory_rows,
                    args.cold,
                )
            )
        )
        return 0

    gib = 4 / 1024 if args.tiny else args.gib
    args.batch_size = args.batch_size or (256 if args.tiny else 4096)
    rows = math.ceil(gib * 2**30 / (FEATURES * 4))
    path = args.dir / f"stream_x_{rows}x{FEATURES}.npy"
    print(f"# streaming benchmark ({'tiny' if args.tiny else 'full'})\n")
    print(
        f"- input: {path} ({rows:,} rows x {FEATURES} float32 = "
        f"{rows * FEATURES * 4 / 2**30:.2f} GiB), batch_size {args.batch_size}, "
        f"{'cold' if args.cold else 'warm'} page cache"
    )
    print(f"- load average (1 min) at start: {os.getloadavg()[0]:.2f}")
    t = time.perf_counter()
    make_input(path, rows)
    print(f"- input ready in {time.perf_counter() - t:.1f} s")
    segment_rows = min(rows, (2 if args.tiny else 8) * args.batch_size)
    with tempfile.TemporaryDirectory(prefix="runner-stream-") as tmp:
        stream = run_child("stream", args, path, Path(tmp) / "stream", segment_rows)
        paired = run_child("compare", args, path, Path(tmp) / "compare", segment_rows)
    results = [stream]
    print(f"- load average (1 min) at end: {os.getloadavg()[0]:.2f}\n")
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


if __name__ == "__main__":
    sys.exit(main())

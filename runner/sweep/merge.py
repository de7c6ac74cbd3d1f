"""Join the outputs of a shard fan-out: one job per shard (``-m shard=0,1,2,3``, docs/sweeps.md).

    python -m runner.sweep.merge SWEEP_DIR [--out DIR]

Reads every job folder under SWEEP_DIR (as ``runner.sweep.report`` does) and checks, before
writing anything, that

- every job finished ok and recorded which shard it read (``shard`` in its result.json);
- every job ran the same config (the resolved config without ``shard``, hashed), with the same
  weights (sha256 of its weights.npz), over the same number of shards, and with the same
  outputs (names, per-sample shapes, dtypes);
- each shard 0..N-1 was read by exactly one job.

Then it concatenates every output (and its mask) in shard order into ``DIR/NAME.npy``
(default DIR: ``SWEEP_DIR/merged``), copying one window of rows at a time, checks each job's
arrays against the sha256 its result.json recorded, and writes ``DIR/merged.json`` (the shards,
their jobs and rows, and the sha256 of every merged output, computed as a single run's
result.json computes it). The sweep callback runs the same merge at the end of a sweep whose
jobs read shards.

Exit code: 0 when merged, 2 with one line naming the problem (the missing shard, the job that
failed or ran another config).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runner.data.mapped import release_rows
from runner.output import artifacts
from runner.output.artifacts import write_text
from runner.sweep.jobs import Job, collect

WINDOW_BYTES = 32 * 2**20  # rows copied (and hashed) at a time


class MergeError(Exception):
    """The sweep's shard outputs cannot be joined (missing, failed or mismatched jobs)."""


@dataclass
class Merged:
    out_dir: Path
    count: int
    rows: int
    outputs: dict[str, dict[str, Any]]
    jobs: list[Job]

    def lines(self) -> list[str]:
        names = ", ".join(self.outputs)
        return [
            f"merged: {self.count} shards, {self.rows:,} rows of {names} "
            f"(jobs {', '.join(j.name for j in self.jobs)} in shard order)",
            f"merged outputs: {self.out_dir}",
        ]


def is_sharded(jobs: list[Job]) -> bool:
    """Whether a sweep fanned shards out (some job recorded the shard it read)."""
    return any(isinstance(j.result.get("shard"), dict) for j in jobs)


def merge(sweep_dir: Path | str, out_dir: Path | str | None = None) -> Merged:
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise MergeError(f"{sweep_dir}: no such folder")
    jobs = collect(sweep_dir)
    if not jobs:
        raise MergeError(f"{sweep_dir}: no job folders (a job folder holds .hydra/ or result.json)")
    by_shard = _jobs_by_shard(jobs)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir / "merged"
    out_dir.mkdir(parents=True, exist_ok=True)
    ordered = [by_shard[i] for i in sorted(by_shard)]
    outputs = {}
    for name, entry in ordered[0].result["outputs"].items():
        outputs[name] = _merge_output(name, entry, ordered, out_dir)
    rows = next(iter(outputs.values()))["shape"][0] if outputs else 0
    record = {
        "sweep_dir": str(sweep_dir),
        "shards": len(ordered),
        "rows": rows,
        "config_hash": ordered[0].result["shard"]["config_hash"],
        "jobs": [
            {
                "shard": i,
                "job": job.name,
                "folder": str(job.folder),
                "rows": _rows_of(job),
                "sources": job.result["shard"].get("sources", {}),
            }
            for i, job in enumerate(ordered)
        ],
        "outputs": outputs,
    }
    write_text(out_dir / "merged.json", json.dumps(record, indent=2) + "\n")
    return Merged(out_dir, len(ordered), rows, outputs, ordered)


def _jobs_by_shard(jobs: list[Job]) -> dict[int, Job]:
    """Every shard's job, after the checks of the module docstring."""
    for job in jobs:
        if job.status != "ok":
            shard = _override(job, "shard")
            which = f" (shard={shard})" if shard is not None else ""
            raise MergeError(
                f"job {job.name}{which} did not finish ok ({job.status}: {job.error}): "
                "run it again, e.g. with hydra.callbacks.sweep.resume_from=SWEEP_DIR"
            )
        if not isinstance(job.result.get("shard"), dict):
            raise MergeError(
                f"job {job.name} read no shard (its result.json has no 'shard'): merge the "
                "jobs of one shard fan-out, run with -m shard=0,1,... (docs/sweeps.md)"
            )
    first = jobs[0]
    reference = (first.result["shard"], first.result.get("files", {}).get("weights.npz"))
    by_shard: dict[int, Job] = {}
    for job in jobs:
        shard, weights = job.result["shard"], job.result.get("files", {}).get("weights.npz")
        index, count = shard.get("index"), shard.get("count")
        if count != reference[0].get("count"):
            raise MergeError(
                f"job {job.name} read shard {index} of {count}, but job {first.name} read "
                f"shard {reference[0].get('index')} of {reference[0].get('count')}: the jobs "
                "read different sets of shards"
            )
        if shard.get("config_hash") != reference[0].get("config_hash"):
            raise MergeError(
                f"job {job.name} (shard {index}) ran another config than job {first.name} "
                f"(shard {reference[0].get('index')}): their resolved configs differ beyond "
                "'shard'; merge the jobs of one sweep"
            )
        if weights != reference[1]:
            raise MergeError(
                f"job {job.name} (shard {index}) ran with other weights than job {first.name} "
                "(the sha256 of their weights.npz differ)"
            )
        if index in by_shard:
            raise MergeError(
                f"shard {index} was read by two jobs, {by_shard[index].name} and {job.name}"
            )
        _check_outputs(job, first)
        by_shard[index] = job
    count = reference[0].get("count")
    missing = [i for i in range(count) if i not in by_shard]
    if missing:
        found = ", ".join(str(i) for i in sorted(by_shard))
        raise MergeError(
            f"shard {missing[0]} of {count} is missing{_more(missing)}: no job read it (the "
            f"jobs read shards {found}); run shard={missing[0]} into this sweep, e.g. "
            "-m shard=... hydra.callbacks.sweep.resume_from=SWEEP_DIR"
        )
    return by_shard


def _more(missing: list[int]) -> str:
    return f" (and {', '.join(str(i) for i in missing[1:])})" if len(missing) > 1 else ""


def _override(job: Job, key: str) -> str | None:
    for item in job.overrides:
        name, _, value = item.partition("=")
        if name.lstrip("+") == key:
            return value
    return None


def _check_outputs(job: Job, first: Job) -> None:
    def layout(j: Job) -> dict[str, tuple]:
        outputs = j.result.get("outputs") or {}
        return {n: (tuple(e["shape"][1:]), e["dtype"]) for n, e in outputs.items()}

    if layout(job) != layout(first):
        raise MergeError(
            f"job {job.name}'s outputs {layout(job)} differ from job {first.name}'s "
            f"{layout(first)} (names, per-sample shapes, dtypes)"
        )


def _rows_of(job: Job) -> int:
    outputs = job.result.get("outputs") or {}
    return int(next(iter(outputs.values()))["shape"][0]) if outputs else 0


def _job_array(job: Job, name: str, entry: dict[str, Any]) -> np.ndarray:
    """One job's output: its memory-mapped outputs/NAME.npy, or its key in outputs.npz."""
    try:
        if "file" in entry:
            return np.load(job.folder / entry["file"], mmap_mode="r", allow_pickle=False)
        with np.load(job.folder / "outputs.npz", allow_pickle=False) as z:
            return z[name]
    except (OSError, KeyError, ValueError) as exc:
        raise MergeError(f"job {job.name}: cannot read output {name!r}: {exc}") from None


def _file_name(name: str) -> str:
    """'d' -> d.npy, its mask 'd/mask' -> d.mask.npy (as outputs_to_disk names them)."""
    base = name[: -len("/mask")] + ".mask" if name.endswith("/mask") else name
    return base.replace("/", "__") + ".npy"


def _merge_output(
    name: str, entry: dict[str, Any], jobs: list[Job], out_dir: Path
) -> dict[str, Any]:
    arrays = []
    for job in jobs:
        a = _job_array(job, name, job.result["outputs"][name])
        if artifacts.array_digest(a) != job.result["outputs"][name].get("sha256"):
            raise MergeError(
                f"job {job.name}: output {name!r} does not match the sha256 in its "
                "result.json (the file changed after the run)"
            )
        arrays.append(a)
    rows = sum(a.shape[0] for a in arrays)
    shape = (rows, *arrays[0].shape[1:])
    path = out_dir / _file_name(name)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=arrays[0].dtype, shape=shape)
    at = 0
    for a in arrays:
        step = _window(a)
        for lo in range(0, a.shape[0], step):
            hi = min(a.shape[0], lo + step)
            out[at + lo : at + hi] = a[lo:hi]
            release_rows(a, lo, hi)
            release_rows(out, at + lo, at + hi)
        at += a.shape[0]
    out.flush()
    digest = artifacts.array_digest(out)
    del out
    return {"file": path.name, "shape": list(shape), "dtype": entry["dtype"], "sha256": digest}


def _window(a: np.ndarray) -> int:
    return artifacts.rows_per_window(a, WINDOW_BYTES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runner.sweep.merge",
        description="Join the per-shard outputs of a shard fan-out sweep in shard order.",
    )
    parser.add_argument("sweep_dir", type=Path, help="the sweep folder (one job per shard)")
    parser.add_argument("--out", type=Path, help="where to write (default: SWEEP_DIR/merged)")
    args = parser.parse_args(argv)
    try:
        merged = merge(args.sweep_dir, args.out)
    except MergeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(merged.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

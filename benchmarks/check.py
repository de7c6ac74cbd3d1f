"""The check command on a repository of 100 model files, against one bare ``--help``.

    python benchmarks/check.py            # 7 interleaved runs of each
    python benchmarks/check.py --tiny     # one run of each (CI smoke)

The 100 files are copies of the shipped examples (the digits ones left out: they read
scikit-learn's dataset) in a temporary ``conf/model``. Target: the whole check process in
under 5 s on 2 cores; the ratio to ``python -m runner --help`` (Hydra's start-up with every
installed plugin) says how much of that is our own work.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 5.0


def make_repo(folder: Path, n: int = 100) -> Path:
    model = folder / "conf" / "model"
    model.mkdir(parents=True)
    shipped = sorted(p for p in (ROOT / "conf" / "model").glob("*.yaml") if "digits" not in p.name)
    for i in range(n):
        shutil.copy(shipped[i % len(shipped)], model / f"m{i:03d}.yaml")
    return model


def wall(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="one run of each")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    runs = 1 if args.tiny else args.runs
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = make_repo(folder)
        check = [sys.executable, "-m", "runner", "check", str(model)]
        help_ = [sys.executable, "-m", "runner", "--help"]
        times: dict[str, list[float]] = {"check": [], "help": []}
        for _ in range(runs):  # interleaved, so both see the same machine load
            times["check"].append(wall(check, folder))
            times["help"].append(wall(help_, folder))
    check_s, help_s = (statistics.median(times[k]) for k in ("check", "help"))
    print(
        f"check, 100 model files: median {check_s:.2f} s (min {min(times['check']):.2f}, "
        f"max {max(times['check']):.2f}; target < {TARGET_SECONDS:.0f} s: "
        f"{'met' if check_s < TARGET_SECONDS else 'NOT met'})"
    )
    print(f"python -m runner --help: median {help_s:.2f} s")
    print(f"ratio check / --help: {check_s / help_s:.2f}")


if __name__ == "__main__":
    main()

"""Start-up: the whole ``python -m runner +model=dense_example`` process against a bare Hydra app.

    python benchmarks/startup.py            # 10 interleaved runs of each
    python benchmarks/startup.py --tiny     # one run of each, no warm-up (CI)

The bare app (``benchmarks/bare_app.py``) composes the same ``conf/`` with the same overrides
(without the runner's own callbacks, which are runner code), lets Hydra write its run folder,
and validates the config with a small Pydantic model: the floor any Hydra + Pydantic app pays.
The runner on top imports NumPy, builds its schema, plans, builds, runs the model and writes
its run folder. Targets: runner / bare app at most 1.15, and ``runner --help`` no slower than
``bare_app.py --help`` (the same help template), both as medians of whole-process wall time.

Every command runs without ``PYTHONDONTWRITEBYTECODE``, so the warm-up leaves ``.pyc`` files as
an installed package has them (with the variable set, each run would compile the runner's
sources anew and the figures would measure the compiler).

Also checked here, and as tests in ``tests/test_startup.py``: ``--help`` and ``--cfg job`` do
not import NumPy, Pydantic or the runner's schema. Run folders go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.15
HEAVY = ("numpy", "pydantic", "runner.config.schema", "layers", "runner.run")
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def runner_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "runner", *args]


def bare_cmd(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks" / "bare_app.py"), *args]


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return seconds


def imported(cmd: list[str]) -> dict[str, float]:
    """Modules the command imports, with cumulative import seconds (-X importtime; modules
    loaded through importlib, such as Hydra's plugins, are not listed)."""
    proc = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    out: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [p.strip() for p in line.split(":", 1)[1].split("|")]
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        out[parts[2].strip()] = int(parts[1]) / 1e6  # a module is imported once, anywhere
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="one run of each (CI)")
    ap.add_argument("--reps", type=int, default=None)
    args = ap.parse_args(argv)
    reps = args.reps or (1 if args.tiny else 10)

    print(f"# start-up benchmark ({'tiny' if args.tiny else 'full'})\n")
    print(
        f"- python {sys.version.split()[0]}; load average (1 min) at start: "
        f"{os.getloadavg()[0]:.2f}"
    )
    ok = True
    with tempfile.TemporaryDirectory(prefix="runner-startup-") as tmp:

        def run_dir(tag: str, i: int) -> str:
            return f"hydra.run.dir={tmp}/{tag}{i}"

        commands = {
            "runner +model=dense_example": lambda i: runner_cmd(
                "+model=dense_example", run_dir("r", i)
            ),
            "bare Hydra + Pydantic app": lambda i: bare_cmd(
                "+model=dense_example", run_dir("b", i)
            ),
            "runner --help": lambda i: runner_cmd("--help"),
            "bare app --help": lambda i: bare_cmd("--help"),
            "runner +model=dense_example --cfg job": lambda i: runner_cmd(
                "+model=dense_example", "--cfg", "job"
            ),
        }
        if args.tiny:  # CI: the two whole runs only, once each
            commands = dict(list(commands.items())[:2])
        else:
            for make in commands.values():  # warm the file cache and .pyc files
                wall(make(0))
        times: dict[str, list[float]] = {k: [] for k in commands}
        names = list(commands)
        for r in range(1, reps + 1):
            for name in names if r % 2 else names[::-1]:
                times[name].append(wall(commands[name](r)))
        heavy = {}
        for label, cmd in (
            ("--help", runner_cmd("--help")),
            ("--cfg job", runner_cmd("+model=dense_example", "--cfg", "job")),
        ):
            mods = imported(cmd)
            heavy[label] = [m for m in HEAVY if m in mods]
        run_imports = imported(runner_cmd("+model=dense_example", run_dir("i", 0)))
        bare_imports = imported(bare_cmd("+model=dense_example", run_dir("j", 0)))

    print(f"- load average (1 min) at end: {os.getloadavg()[0]:.2f}; {reps} interleaved runs\n")
    print("| command | median s | min s |")
    print("|---|---:|---:|")
    for name, ts in times.items():
        print(f"| `{name}` | {statistics.median(ts):.3f} | {min(ts):.3f} |")
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["runner +model=dense_example"] / med["bare Hydra + Pydantic app"]
    ratio_min = min(times["runner +model=dense_example"]) / min(times["bare Hydra + Pydantic app"])
    print(
        f"\nrunner / bare app: {ratio:.2f} (medians), {ratio_min:.2f} (mins); target <= "
        f"{TARGET}: {'met' if ratio <= TARGET else 'not met'}"
    )
    if "runner --help" in med:
        help_ratio = med["runner --help"] / med["bare app --help"]
        print(
            f"runner --help / bare app --help: {help_ratio:.2f} (medians); target <= 1: "
            f"{'met' if help_ratio <= 1 else 'not met'}"
        )
    for label, mods in heavy.items():
        print(f"`{label}` imports {', '.join(mods) if mods else 'none'} of {', '.join(HEAVY)}")
        ok = ok and not mods
    print("\nimport time (cumulative s, one run with -X importtime):")
    print("| module | runner | bare app |")
    print("|---|---:|---:|")
    for mod in (
        "hydra",
        "omegaconf",
        "pydantic",
        "numpy",
        "runner.cli",
        "runner.run",
        "runner.config.schema",
        "layers",
    ):
        if mod in run_imports or mod in bare_imports:
            print(f"| {mod} | {run_imports.get(mod, 0.0):.3f} | {bare_imports.get(mod, 0.0):.3f} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

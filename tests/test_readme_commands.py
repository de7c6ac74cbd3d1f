"""Every runner command in README.md's code blocks and tables runs as written.

Commands come from the ```bash blocks (each ``&&`` part on its own) and from the backticked
cells of the tables. Each runs from the repository root, in parallel, with its run and sweep
folders in tmp_path so nothing is written into the repository, and must exit with 0 (or the
code the README documents). A command in a bash block that is not a runner command must be
listed in NOT_RUN with the reason; placeholders are replaced as PLACEHOLDERS says.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
RUNNER = re.compile(r"^(python -m runner(?=[ .]|$)|layer-runner )")

# bash-block commands that are not run, by prefix, with the reason
NOT_RUN = {
    "pip install": "installs packages",
    "python -m pytest": "the whole test suite, which this test is part of",
    "python benchmarks/": "benchmarks take minutes",
}
# placeholders in the table's generic commands, in order
PLACEHOLDERS = [
    ("+model=NAME task=fit", "+model=mlp_digits task=fit"),  # a model with targets
    ("+model=NAME task=evaluate", "+model=mlp_digits task=evaluate"),
    ("+model=NAME", "+model=dense_example"),
    ("key=value …", "seed=3"),
    ("PATH…", "conf/model"),
    (  # a Keras fixture, checked and not written (the README test writes nothing in the repo)
        "SRC [WEIGHTS] --out conf/model/NAME.yaml",
        "tests/fixtures/keras/k2/mlp.json tests/fixtures/keras/k2/mlp_weights.h5 "
        "--out conf/model/mlp_imported.yaml --dry-run",
    ),
]
EXIT_CODES = {"python -m runner": 2}  # no model chosen: lists the models, exit 2 (README)
REPORT = "outputs/multirun/DATE/TIME"  # the sweep report of a sweep: run on the first sweep


def readme_commands() -> tuple[list[str], list[str]]:
    """(runner commands, other bash-block commands) of README.md."""
    text = README.read_text(encoding="utf-8")
    commands: list[str] = []
    others: list[str] = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
        if lang != "bash":
            continue
        for line in body.splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            for part in filter(None, (p.strip() for p in line.split("&&"))):
                (commands if RUNNER.match(part) else others).append(part)
    for row in re.findall(r"^\|(.*)\|\s*$", text, re.M):
        for cell in row.split("|"):
            base = None
            for code in re.findall(r"`([^`]+)`", cell):
                match = RUNNER.match(code)
                if match:
                    base = match.group(1).strip()
                    commands.append(code)
                elif base and code.startswith("-"):  # `python -m runner --help` / `--cfg job`
                    commands.append(f"{base} {code}")
    return list(dict.fromkeys(commands)), others


def _concrete(command: str) -> str:
    for placeholder, value in PLACEHOLDERS:
        command = command.replace(placeholder, value)
    return command


def _argv(command: str, tmp: Path, n: int) -> list[str]:
    args = shlex.split(command)
    if args[0] == "layer-runner":
        exe = shutil.which("layer-runner")
        args = [exe] + args[1:] if exe else [sys.executable, "-m", "runner", *args[1:]]
    else:
        args = [sys.executable, *args[1:]]
    if "export-onnx" in args:  # the .onnx file it writes goes to tmp, not the repository
        i = args.index("--out") + 1
        args[i] = str(tmp / f"out{n}" / Path(args[i]).name)
    if command.startswith("python -m runner ") or command == "python -m runner":
        args += [f"hydra.run.dir={tmp}/run{n}", f"hydra.sweep.dir={tmp}/sweep{n}"]
        if "tracking=mlflow" in args and not any(a.startswith("tracking_uri=") for a in args):
            args.append(f"tracking_uri={tmp}/mlruns{n}")  # not the default ./mlruns: the repo
    return args


def _repo_files() -> set[str]:
    outputs = REPO / "outputs"
    found = {p.name for p in REPO.iterdir()}
    if outputs.is_dir():
        found |= {str(p) for p in outputs.rglob("*")}
    return found


def test_readme_commands_run_as_written(tmp_path):
    commands, others = readme_commands()
    assert len(commands) >= 10, commands
    unexplained = [c for c in others if not c.startswith(tuple(NOT_RUN))]
    assert not unexplained, f"README commands neither run nor listed in NOT_RUN: {unexplained}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("HYDRA_FULL_ERROR", None)
    before = _repo_files()

    def start(batch: list[str]) -> dict[str, tuple[subprocess.Popen, list[str]]]:
        procs = {}
        for command in batch:
            n = len(started)
            started.append(command)
            argv = _argv(_concrete(command), tmp_path, n)
            sweeps[command] = tmp_path / f"sweep{n}"
            procs[command] = (
                subprocess.Popen(
                    argv,
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
                argv,
            )
        return procs

    def finish(procs) -> list[str]:
        failures = []
        for command, (proc, argv) in procs.items():
            out, err = proc.communicate(timeout=180)
            expected = EXIT_CODES.get(command, 0)
            if proc.returncode != expected:
                failures.append(
                    f"{command}\n  ran: {shlex.join(argv)}\n  exit {proc.returncode}, "
                    f"expected {expected}\n  {err.strip()[-1500:] or out.strip()[-1500:]}"
                )
        return failures

    started: list[str] = []
    sweeps: dict[str, Path] = {}
    first = [c for c in commands if REPORT not in c]
    later = [c for c in commands if REPORT in c]
    failures = finish(start(first))
    sweep = next(sweeps[c] for c in first if "-m" in c.split()[3:])  # python -m runner -m …
    later = [c.replace(REPORT, str(sweep)) for c in later]
    failures += finish(start(later))
    assert not failures, "README commands failed:\n" + "\n".join(failures)
    assert _repo_files() == before, "a README command wrote into the repository"


def test_extraction_finds_each_kind():
    commands, others = readme_commands()
    assert "python -m runner +model=dense_example" in commands  # a bash block, after `pip &&`
    assert "python -m runner --cfg job" in commands  # a table cell continued by `--cfg job`
    assert "layer-runner check PATH…" in commands
    assert any(c.startswith("python -m runner.sweep.report") for c in commands)
    assert any(c.startswith("pip install") for c in others)

"""What start-up loads: `--help` and `--cfg job` no NumPy, Pydantic or schema; a plain run
nothing it does not use (plotting, progress bars, launcher plugins, the libraries of other
subcommands). Behaviour, not timing: the modules loaded, read from the process itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "pydantic", "runner.config.schema", "layers", "runner.run")
# Never needed by `python -m runner +model=dense_example`: plotting (sweep summaries), the
# progress bar (off when stderr is no terminal) and the lock it builds, the Lambda parser,
# training, Hydra's launcher and sweeper plugins, and what other commands and extras bring.
NOT_IN_A_PLAIN_RUN = (
    "matplotlib",
    "tqdm",
    "multiprocessing",
    "layers.expressions",
    "runner.train.fit",
    "runner.sweep.report",
    "hydra_plugins.hydra_joblib_launcher",
    "hydra_plugins.hydra_ray_launcher",
    "hydra_plugins.hydra_submitit_launcher",
    "hydra_plugins.hydra_optuna_sweeper",
    "joblib",
    "ray",
    "submitit",
    "optuna",
    "scipy",
    "sklearn",
    "pandas",
    "onnx",
    "onnxruntime",
    "mlflow",
    "h5py",
    "keras",
    "tensorflow",
    "torch",
    "numba",  # layers.kernels compiles on the first large layer only
    "llvmlite",
)

# Runs the CLI as `python -m runner` does and prints the modules loaded by its end.
_PROBE = """
import atexit, runpy, sys
atexit.register(lambda: sys.__stderr__.write("MODULES " + " ".join(sorted(sys.modules)) + "\\n"))
sys.argv = ["runner", *sys.argv[1:]]
runpy.run_module("runner", run_name="__main__", alter_sys=True)
"""


def loaded_modules(*args: str, cwd: Path = ROOT) -> tuple[set[str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("MODULES ")]
    return set(line.split()[1:]), proc.stdout


def under(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.slow
@pytest.mark.parametrize(
    "args", [("--help",), ("+model=dense_example", "--cfg", "job"), ("--cfg", "job")]
)
def test_help_and_cfg_import_no_numpy_and_no_schema(args):
    modules, stdout = loaded_modules(*args)
    assert "hydra" in modules and "omegaconf" in modules  # the probe saw the real process
    assert under(modules, HEAVY) == []
    assert under(modules, NOT_IN_A_PLAIN_RUN) == []
    if "--cfg" in args:
        assert "floatx: float32" in stdout  # the composed config was printed
    if args == ("--help",):  # the fit defaults are static text: no schema needed
        assert "  fit.epochs: 10\n" in stdout
    if args == ("+model=dense_example", "--cfg", "job"):
        assert "output_dim: 3" in stdout


@pytest.mark.slow
def test_a_plain_run_loads_nothing_it_does_not_use(tmp_path):
    modules, stdout = loaded_modules("+model=dense_example", cwd=tmp_path)
    assert "[[ 6. 12. 30.]]" in stdout and "expect: 1 of 1 checks passed" in stdout
    assert {"numpy", "runner.run", "layers.dense"} <= modules  # the probe saw the run
    assert under(modules, NOT_IN_A_PLAIN_RUN) == []
    assert "layers.expressions" in loaded_modules("+model=lambda_example", cwd=tmp_path)[0]


@pytest.mark.slow
def test_commands_that_can_use_launchers_still_load_them(tmp_path):
    """A sweep, Hydra's own help and a launcher chosen on the command line scan every
    installed plugin, as stock Hydra does."""
    modules, stdout = loaded_modules("--hydra-help", cwd=tmp_path)
    assert "hydra_plugins.hydra_joblib_launcher.joblib_launcher" in modules
    assert "hydra/launcher: basic, joblib" in stdout
    modules, _ = loaded_modules(
        "hydra/launcher=joblib", "+model=dense_example", "--cfg", "hydra", cwd=tmp_path
    )
    assert "hydra_plugins.hydra_joblib_launcher.joblib_launcher" in modules


@pytest.mark.slow
def test_help_is_the_same_text_whether_or_not_plugins_are_scanned():
    """`--help` of a plain command skips the launcher plugins; choosing the default launcher
    on the command line makes the same command scan them all: the text must not change."""
    plain = subprocess.run(
        [sys.executable, "-m", "runner", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    scanned = subprocess.run(
        [sys.executable, "-m", "runner", "--help", "hydra/launcher=basic"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert plain.returncode == scanned.returncode == 0
    assert "Models (choose one with +model=NAME):\n" in plain.stdout
    assert "dense_example" in plain.stdout and "fit.epochs: 10" in plain.stdout
    assert plain.stdout == scanned.stdout

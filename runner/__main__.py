"""The thin Hydra adapter: compose, convert to plain data, hand off, exit with the run's code.

NumPy and the schema are imported inside the task, so --help and --cfg stay fast.
"""

from __future__ import annotations

import gc
import os
import sys

# (runner/__init__.py, imported first, has dropped the current directory from sys.path)
import hydra
from omegaconf import DictConfig

from runner.config.conf_dir import config_dir
from runner.errors import find_in_chain

_exit_codes: list[int] = []


@hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")
def _task(cfg: DictConfig) -> float | None:
    from runner.cli import run_job

    code, metric = run_job(cfg)
    _exit_codes.append(code)
    return metric


def main() -> None:
    if sys.argv[1:2] == ["check"]:  # layer-runner check PATH...: many model files, no Hydra run
        from runner.check import main as check

        sys.exit(check(sys.argv[2:]))
    if sys.argv[1:2] == ["import-keras"]:  # a Keras model -> model YAML + .npz, no Hydra run
        from runner.interop.keras_import.cli import main as import_keras

        sys.exit(import_keras(sys.argv[2:]))
    if sys.argv[1:2] == ["layers"]:  # layer-runner layers [TYPE...]: the registry, no Hydra run
        from runner.layer_list import main as list_layers

        sys.exit(list_layers(sys.argv[2:]))
    if sys.argv[1:2] == ["export-onnx"]:  # a model or run folder to ONNX (runner/interop)
        from runner.interop.onnx_export.cli import main as export_onnx

        sys.exit(export_onnx(sys.argv[2:]))
    # Start-up (Hydra, its configs, the schema) makes long-lived objects and little garbage:
    # the collector stays off until runner.cli starts the run (it turns it back on there).
    gc.disable()
    # Errors raised while Hydra composes the config (malformed YAML, an unknown config name, a
    # bad override) reach us instead of Hydra's traceback printer, so they get one clear
    # message and exit code 2. HYDRA_FULL_ERROR=1 still shows the full traceback.
    wants_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    from runner.config import guard, hydra_startup

    try:
        # Before Hydra reads a file: every config file it loads passes the guard, so a model
        # file cannot configure Hydra or the run (nothing is instantiated before the check).
        hydra_startup.install(sys.argv[1:])  # first: it decides which plugins Hydra scans
        guard.install(guard.command_line_list(sys.argv[1:], "allow_resolvers"))
        _task()
    except KeyboardInterrupt:
        # Ctrl-C: the run wrote result.json with status "interrupted" (or had not started).
        if wants_traceback:
            raise
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except FileExistsError as exc:  # the run or sweep folder is finished or claimed by another run
        if wants_traceback:
            raise
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except Exception as exc:
        if wants_traceback:
            raise
        from runner.output.artifacts import machine_error

        machine = machine_error(exc)
        if machine is not None:  # a full disk or read-only file system, not a config mistake
            sys.stderr.write(f"error: cannot write the run folder: {machine}\n")
            sys.exit(1)
        from runner.config import overrides

        refused = find_in_chain(exc, guard.ModelFileError)
        message = refused or overrides.describe(exc) or _describe(exc)
        sys.stderr.write(f"invalid config: {message}\n")
        sys.exit(2)
    finally:
        gc.enable()  # (already on if the run started)
    from runner.sweep.callbacks import sweep_exit_code  # a sweep's code comes from its job folders

    sys.exit(max([*_exit_codes, sweep_exit_code()]))


def _describe(exc: BaseException) -> str:
    """The message of a composition error and of its cause, without Python frames."""
    parts = [str(exc).strip()]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause).strip() not in parts[0]:
        parts.append(str(cause).strip())
    return "\n".join(p for p in parts if p)


if __name__ == "__main__":
    main()

"""The thin Hydra adapter: compose, convert to plain data, hand off, exit with the run's code.

NumPy and the schema are imported inside the task, so --help and --cfg stay fast.
"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

from runner.conf_dir import config_dir

_exit_codes: list[int] = []


@hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")
def _task(cfg: DictConfig) -> float | None:
    from runner.cli import run_job

    code, metric = run_job(cfg)
    _exit_codes.append(code)
    return metric


def main() -> None:
    # Errors raised while Hydra composes the config (malformed YAML, an unknown config name, a
    # bad override) reach us instead of Hydra's traceback printer, so they get one clear
    # message and exit code 2. HYDRA_FULL_ERROR=1 still shows the full traceback.
    wants_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _task()
    except Exception as exc:
        if wants_traceback:
            raise
        sys.stderr.write(f"invalid config: {_describe(exc)}\n")
        sys.exit(2)
    from runner.callbacks import sweep_exit_code  # a sweep's code comes from its job folders

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

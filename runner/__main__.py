"""The thin Hydra adapter: compose, convert to plain data, hand off, exit with the run's code.

NumPy and the schema are imported inside the task, so --help and --cfg stay fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

_exit_codes: list[int] = []


def config_dir() -> str:
    """Live conf/ of a checkout or editable install; else the copy packaged as runner.conf."""
    env = os.environ.get("RUNNER_CONFIG_DIR")
    if env:
        return str(Path(env).resolve())
    repo_conf = Path(__file__).resolve().parent.parent / "conf"
    if (repo_conf / "config.yaml").is_file():
        return str(repo_conf)
    return "pkg://runner.conf"


@hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")
def _task(cfg: DictConfig) -> float | None:
    from runner.cli import run_job

    code, metric = run_job(cfg)
    _exit_codes.append(code)
    return metric


def main() -> None:
    _task()
    sys.exit(max(_exit_codes, default=0))


if __name__ == "__main__":
    main()

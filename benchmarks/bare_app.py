"""The baseline of benchmarks/startup.py: a bare Hydra app, no NumPy, no runner.

It composes the same ``conf/`` with the same overrides as ``python -m runner`` and validates
the result with a small hand-written Pydantic model of the dense example's config: what any
Hydra + Pydantic app pays before doing its own work. Hydra writes its run folder as usual
(``.hydra/``, the job log). The runner's own callbacks in ``conf/config.yaml`` are switched
off: they are runner code (they import the runner's artifact writer and NumPy), not the floor.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

import hydra
from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict

CONF = str(Path(__file__).resolve().parent.parent / "conf")
# Not the runner's folder claim and sweep summary: a bare app has no callbacks of its own.
NO_RUNNER_CALLBACKS = ["~hydra.callbacks.claim", "~hydra.callbacks.sweep"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Input(Strict):
    shape: list[int] | None = None
    data: list[list[float]]


class Dense(Strict):
    type: Literal["Dense"]
    output_dim: int
    init: str = "glorot_uniform"
    activation: str = "linear"
    weights: dict[str, list[Any]] | None = None


class Expect(Strict):
    values: list[Any]
    rtol: float = 1e-6


class ModelConfig(Strict):
    inputs: dict[str, Input]
    layers: dict[str, Dense]
    expect: dict[str, Expect] = {}


class Config(Strict):
    task: Literal["predict", "validate", "fit"] = "predict"
    training: bool | None = None
    seed: int = 0
    floatx: Literal["float32", "float64"] = "float32"
    batch_size: int | None = None
    max_memory_mb: float = 4096
    progress: bool | None = None
    fit: dict[str, Any] = {}
    model: ModelConfig


@hydra.main(config_path=CONF, config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> None:
    data = OmegaConf.to_container(cfg, resolve=True)
    known = set(Config.model_fields)
    Config.model_validate({k: v for k, v in data.items() if k in known})  # type: ignore[union-attr]


if __name__ == "__main__":
    sys.argv += NO_RUNNER_CALLBACKS
    app()

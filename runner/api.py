"""The Python API, for notebooks, tests and benchmarks: no Hydra CLI involved.

    from runner.api import compose, Model
    model = Model.from_config(compose("dense_example"))
    model.predict()                      # {"dense": array([[ 6., 12., 30.]], dtype=float32)}
    model.predict({"x": my_array})       # other rows, same per-sample shape
    model.fit()                          # task=fit in place (history, best epoch, score)

``compose`` uses Hydra's compose API on ``conf/`` (so defaults and interpolations behave as on
the command line); ``load_model_file`` reads any model YAML with OmegaConf alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from runner.config.file_access import allowed_dirs, check_paths
from runner.config.plugins import load_plugins
from runner.config.run_folders import with_run_weights
from runner.config.validate import validate
from runner.data.shards import choose_shard
from runner.errors import DataError
from runner.graph.build import build, named_weights
from runner.graph.context import pass_context, phase
from runner.graph.execute import forward, predict
from runner.graph.plan import Plan, make_plan
from runner.run import run
from runner.train.plan import plan_fit, plan_task

__all__ = ["Model", "compose", "compose_model", "load_model_file", "run", "validate"]


def compose(
    model: str, overrides: list[str] | None = None, config_dir: str | Path | None = None
) -> dict[str, Any]:
    """The config ``python -m runner [--config-dir DIR] +model=MODEL [overrides]`` would run,
    as a plain dict. ``config_dir`` (a folder holding ``model/NAME.yaml`` files) is searched
    after the shipped ``conf/``; what is read from it must be model files (runner.config.guard).
    """
    return compose_model(model, overrides, config_dir)[0]


def compose_model(
    model: str, overrides: list[str] | None = None, config_dir: str | Path | None = None
) -> tuple[dict[str, Any], list[Path]]:
    """``compose``, and every file of the search path that holds ``model/MODEL.yaml``, in
    search order: the first is the one composed; more than one is the clash the command line
    refuses (``runner.cli.model_name_clash``)."""
    from hydra import compose as hydra_compose
    from omegaconf import open_dict

    from runner.cli import model_files
    from runner.config import guard
    from runner.config.conf_dir import initialize, searchpath_override, sets_searchpath

    extra = []
    if config_dir is not None:
        if not Path(config_dir).is_dir():
            raise NotADirectoryError(f"config_dir {str(config_dir)!r} is not a folder")
        if sets_searchpath(overrides or []):
            raise ValueError("give config_dir or a hydra.searchpath override, not both")
        extra.append(searchpath_override(Path(config_dir)))
    guard.install(guard.command_line_list(overrides or [], "allow_resolvers"))
    with initialize():
        cfg = hydra_compose(
            "config",
            overrides=[f"+model={model}", *(overrides or []), *extra],
            return_hydra_config=True,  # its record of the sources: where model/MODEL.yaml is
        )
    files = model_files(cfg.hydra)
    with open_dict(cfg):
        del cfg["hydra"]  # the run's config only, as Hydra hands it to a run
    return OmegaConf.to_container(cfg, resolve=True), files  # type: ignore[return-value]


def load_model_file(path: str | Path, **settings: Any) -> dict[str, Any]:
    """A config from a model YAML file alone (run settings as keyword arguments). The file
    passes the same checks as one chosen with ``+model=`` (runner.config.guard)."""
    from runner.config import guard

    guard.check_model_file(Path(path), settings.get("allow_resolvers") or ())
    model = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    return {**settings, "model": model}


class Model:
    """A validated, planned and built model."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    @classmethod
    def from_config(cls, config: dict[str, Any], cwd: str | Path | None = None) -> Model:
        load_plugins(config)
        spec = validate(config)
        where = Path(cwd) if cwd else Path.cwd()
        check_paths(spec, where, allowed_dirs(where, None, spec.data_dirs))
        spec = with_run_weights(spec, where)  # task=evaluate's evaluate.run=DIR, as a run does
        spec, shard = choose_shard(spec, where)
        plan = plan_task(spec, make_plan(spec, where))
        plan.shard = shard
        return cls(build(plan))

    @property
    def outputs(self) -> list[str]:
        return [str(ref) for ref in self.plan.outputs]

    @property
    def weights(self) -> dict[str, np.ndarray]:
        return named_weights(self.plan)

    def fit(self, progress: bool = False):
        """Train in place with the config's ``fit:`` settings (``task=fit`` without the run
        folder); returns the history, best epoch and monitored score (``FitResult``)."""
        from runner.train.fit import fit_model

        fit_plan = (
            self.plan.fit if self.plan.fit is not None else plan_fit(self.plan.spec, self.plan)
        )
        return fit_model(
            self.plan, fit_plan.settings, fit_plan.data, progress, resume=fit_plan.resume
        )

    def predict(
        self,
        inputs: dict[str, np.ndarray] | None = None,
        training: bool | None = None,
        keep: set[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Outputs by name. Without ``inputs``, the config's own data (in its batches).

        ``training`` chooses the phase; None (the default) is the config's own choice, as on
        the command line: the run's ``training``, else the model's, else the test phase."""
        keep = set(self.plan.outputs) if keep is None else set(keep)
        training = phase(self.plan.spec, training)
        if inputs is None:
            return predict(self.plan, training, keep).values
        feeds = {}
        for name, node in self.plan.inputs.items():
            if name not in inputs:
                raise DataError.one(f"model.inputs.{name}", "no array given for this input")
            a = np.asarray(inputs[name], dtype=self.plan.dtype)
            if a.shape[1:] != node.shape:
                raise DataError.one(
                    f"model.inputs.{name}",
                    f"expected per-sample shape {node.shape}, got array of shape {a.shape}",
                )
            feeds[name] = a
        values, _, _ = forward(self.plan, feeds, pass_context(self.plan, training), keep)
        return _by_name(values)


def _by_name(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Values keyed by plain names ('siam.0'), as the config spells them."""
    return {str(ref): a for ref, a in values.items()}

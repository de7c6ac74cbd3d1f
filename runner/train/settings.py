"""The fit settings of one run: top-level ``fit:`` over the model's own ``fit:`` over defaults.

Every top-level setting defaults to null, meaning "the model's own, else the default", so a
model file can carry its training recipe and the command line still overrides any part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from layers.registry import did_you_mean
from runner.errors import ConfigError, Problem
from runner.train import losses, optim

DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 32,
    "shuffle": True,
    "shuffle_block": None,
    "loss": "mse",
    "metrics": ["loss"],
    "patience": None,
    "min_delta": 0.0,
    "restore_best": False,
}


@dataclass
class FitSettings:
    """Fit settings with every inheritance resolved; ``origin`` maps a field to its config path."""

    epochs: int
    batch_size: int
    shuffle: bool
    validation_split: float
    validation_data: Any
    losses: dict[str, str]  # output -> loss name
    optimizer: str
    optimizer_options: dict[str, Any]
    metrics: list[str]
    monitor: str
    patience: int | None
    min_delta: float
    restore_best: bool
    origin: dict[str, str] = field(default_factory=dict)
    shuffle_block: int | None = None  # rows per shuffled block (runner.data.feed)
    schedule: Any = None  # a validated fit.schedule spec (runner.config.fit_schema), or None
    checkpoint_every: int = 0  # epochs between checkpoints (0: none)
    checkpoint_best: bool = False
    checkpoint_monitor: str = "loss"
    resume_from: str | None = None  # a run folder, as written on the command line

    @property
    def mode(self) -> str:
        return "max" if self.monitor.endswith("accuracy") else "min"


def resolve(spec: Any, outputs: list[str]) -> FitSettings:
    """Top-level ``fit`` over the model's ``fit`` over the defaults; ConfigError if invalid."""
    top, own = spec.fit, spec.model.fit
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, default in DEFAULTS.items():
        for block, where in ((top, "fit"), (own, "model.fit")):
            value = getattr(block, key, None) if block is not None else None
            if value is not None:
                values[key], origin[key] = value, f"{where}.{key}"
                break
        else:
            values[key], origin[key] = default, f"fit.{key}"
    # Validation is chosen as a unit: a top-level choice replaces the model's.
    split, vdata, where = 0.0, None, "fit"
    for block, path in ((top, "fit"), (own, "model.fit")):
        if block is not None and (
            block.validation_split is not None or block.validation_data is not None
        ):
            split, vdata, where = block.validation_split or 0.0, block.validation_data, path
            break
    origin["validation_split"] = f"{where}.validation_split"
    origin["validation_data"] = f"{where}.validation_data"
    problems: list[Problem] = []
    if split > 0 and vdata is not None:
        problems.append(
            Problem(
                f"{where}.validation_data", "give validation_split or validation_data, not both"
            )
        )
    name, options, opt_origin = _resolve_optimizer(top, own)
    origin.update(opt_origin)
    for key, value in options.items():
        if value is not None and key not in optim.DEFAULTS[name] and key not in optim.COMMON:
            takes = [*optim.DEFAULTS[name], *optim.COMMON]
            problems.append(
                Problem(
                    opt_origin.get(key, f"fit.optimizer.{key}"),
                    f"{key!r} is not a setting of {name} (it takes {takes})",
                )
            )
    loss_map = _resolve_losses(values["loss"], outputs, origin["loss"], problems)
    metrics = list(dict.fromkeys(["loss", *values["metrics"]]))
    monitor_origin = next(
        (
            f"{w}.monitor"
            for b, w in ((top, "fit"), (own, "model.fit"))
            if b is not None and b.monitor is not None
        ),
        "fit.monitor",
    )
    monitor = next((b.monitor for b in (top, own) if b is not None and b.monitor is not None), None)
    has_validation = split > 0 or vdata is not None
    if monitor is None:
        monitor = "val_loss" if has_validation else "loss"
    if monitor.startswith("val_") and not has_validation:
        problems.append(
            Problem(
                monitor_origin,
                f"monitor {monitor!r} needs validation data: "
                "set fit.validation_split (e.g. 0.2) or fit.validation_data, "
                f"or monitor {monitor[4:]!r}",
            )
        )
    if monitor.endswith("accuracy") and "accuracy" not in metrics:
        metrics.append("accuracy")  # monitoring accuracy implies computing it
    if "accuracy" in metrics:
        regression = {o: n for o, n in loss_map.items() if n not in losses.CLASSIFICATION}
        if regression:
            problems.append(
                Problem(
                    origin["metrics"] if "accuracy" in values["metrics"] else monitor_origin,
                    f"accuracy needs a classification loss "
                    f"{list(losses.CLASSIFICATION)}, but {regression} "
                    "is a regression loss",
                )
            )
    schedule, checkpoint = _schedule_and_checkpoint(
        top, own, monitor, metrics, has_validation, origin, problems
    )
    if own is not None and own.resume_from is not None:
        problems.append(
            Problem(
                "model.fit.resume_from",
                "resume_from is a run setting, not part of a model: give it on the command "
                "line (fit.resume_from=RUN_DIR)",
            )
        )
    resume_from = top.resume_from if top is not None else None
    origin["resume_from"] = "fit.resume_from"
    if problems:
        raise ConfigError(problems)
    settings = FitSettings(
        values["epochs"],
        values["batch_size"],
        values["shuffle"],
        split,
        vdata,
        loss_map,
        name,
        options,
        metrics,
        monitor,
        values["patience"],
        values["min_delta"],
        values["restore_best"],
        origin,
        values["shuffle_block"],
        schedule,
        *checkpoint,
        resume_from,
    )
    return settings


def _schedule_and_checkpoint(
    top, own, monitor: str, metrics: list[str], has_validation: bool, origin, problems
) -> tuple[Any, tuple[int, bool, str]]:
    """fit.schedule (a unit: the top-level one replaces the model's) and fit.checkpoint
    (field by field: top-level over the model's over off)."""
    schedule, where = None, "fit.schedule"
    for block, path in ((top, "fit"), (own, "model.fit")):
        if block is not None and block.schedule is not None:
            schedule, where = block.schedule, f"{path}.schedule"
            break
    origin["schedule"] = where
    watched: list[tuple[str, str]] = []
    if schedule is not None and schedule.name == "plateau" and schedule.monitor is not None:
        watched.append((schedule.monitor, f"{where}.monitor"))
    chosen: dict[str, Any] = {"every": 0, "best": False, "monitor": None}
    for key in chosen:
        for block, path in ((top, "fit"), (own, "model.fit")):
            value = getattr(block.checkpoint, key) if block and block.checkpoint else None
            if value is not None:
                chosen[key], origin[f"checkpoint.{key}"] = value, f"{path}.checkpoint.{key}"
                break
    if chosen["monitor"] is not None:
        watched.append((chosen["monitor"], origin["checkpoint.monitor"]))
    for name, path in watched:
        if name.startswith("val_") and not has_validation:
            problems.append(
                Problem(
                    path,
                    f"{name!r} needs validation data: set fit.validation_split (e.g. 0.2) "
                    f"or fit.validation_data, or watch {name[4:]!r}",
                )
            )
        if name.endswith("accuracy") and "accuracy" not in metrics:
            problems.append(Problem(path, f"{name!r} needs metrics: [loss, accuracy]"))
    return schedule, (chosen["every"], chosen["best"], chosen["monitor"] or monitor)


def _resolve_optimizer(top, own) -> tuple[str, dict[str, Any], dict[str, str]]:
    top_opt = top.optimizer if top is not None else None
    own_opt = own.optimizer if own is not None else None
    name = (top_opt and top_opt.name) or (own_opt and own_opt.name) or "adam"
    # The model's settings apply only to the optimizer the model chose.
    blocks = [(top_opt, "fit.optimizer")]
    if own_opt is not None and (own_opt.name or "adam") == name:
        blocks.append((own_opt, "model.fit.optimizer"))
    options: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key in (*{k for d in optim.DEFAULTS.values() for k in d}, *optim.COMMON):
        for block, where in blocks:
            value = getattr(block, key, None) if block is not None else None
            if value is not None:
                options[key], origin[key] = value, f"{where}.{key}"
                break
    return name, options, origin


def _resolve_losses(
    loss: Any, outputs: list[str], where: str, problems: list[Problem]
) -> dict[str, str]:
    # outputs are the plan's Refs; a key matches one by its spelling ('siam.0')
    if isinstance(loss, str):
        return {str(o): loss for o in outputs}
    for key in loss:
        if key not in outputs:
            problems.append(
                Problem(
                    f"{where}.{key}",
                    f"{key!r} is not a model output"
                    f"{did_you_mean(key, outputs)}; outputs: {outputs}",
                )
            )
    missing = [o for o in outputs if o not in loss]
    if missing:
        problems.append(Problem(where, f"no loss for output(s) {missing}: name one per output"))
    return {str(o): loss.get(o, "mse") for o in outputs}

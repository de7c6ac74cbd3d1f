"""The fit part of the plan: settings, trainability, targets and validation data, checked
before anything is built or trained.

``task=fit`` needs all of it. ``task=validate`` checks the same things whenever the config
carries training data (``model.targets``, validation data, or a model ``fit:`` block); without
them it still checks that the fit settings can work together (for instance, monitoring
``val_loss`` needs validation data; accuracy needs a classification loss).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from runner.errors import ConfigError, Problem
from runner.graph.nodes import Plan
from runner.graph.plan import check_memory
from runner.train.data import FitData, prepare_data
from runner.train.settings import FitSettings, resolve


@dataclass
class FitPlan:
    settings: FitSettings
    data: FitData
    seconds: float = 0.0  # time spent loading and checking the data
    resume: Any = None  # the checked checkpoint of fit.resume_from (runner.train.checkpoints)


def check_trainable(plan: Plan) -> None:
    """Every layer on a path to an output must have a backward pass."""
    needed = {ref.node for ref in plan.outputs}  # a head 'siam.0' needs the layer 'siam'
    problems = []
    for node in reversed(list(plan.nodes.values())):
        if node.name not in needed:
            continue
        needed.update(ref.node for ref in node.inputs)
        if not node.layer.differentiable:
            problems.append(
                Problem(
                    node.path,
                    f"{node.layer.spec.type} is forward-only (it "
                    "declares differentiable = False), so task=fit cannot "
                    "train through it: remove it from the path to the "
                    "outputs, or use task=predict",
                )
            )
    if problems:
        raise ConfigError(list(reversed(problems)))


def plan_fit(spec: Any, plan: Plan) -> FitPlan:
    """Everything task=fit checks before training; ConfigError/DataError if any fails."""
    settings = resolve(spec, plan.outputs)
    check_trainable(plan)
    start = time.perf_counter()
    data = prepare_data(plan, settings)
    # the memory of training steps of fit's batch_size, plus the read windows of mapped files
    check_memory(plan, settings.batch_size, data.stream_bytes(settings.batch_size))
    resume = None
    if settings.resume_from is not None:
        from runner.train import checkpoints

        resume = checkpoints.load(
            settings, spec, data, plan.cwd, max_bytes=spec.max_memory_mb * 2**20
        )
    return FitPlan(settings, data, time.perf_counter() - start, resume)


def carries_training_data(spec: Any) -> bool:
    """Whether the config says what to train on (so that it is meant to be fittable)."""
    model = spec.model
    return (
        bool(model.targets)
        or model.fit is not None
        or any(
            block is not None
            and (block.validation_data is not None or block.validation_split is not None)
            for block in (spec.fit, model.fit)
        )
    )


def plan_task(spec: Any, plan: Plan) -> Plan:
    """The task's own part of the plan, the same for the CLI, ``run()`` and the API.

    task=fit: the whole fit plan (kept as ``plan.fit``). task=validate: the same, when the
    config carries training data, else the fit settings alone. task=predict: nothing more.
    """
    if spec.task == "fit" or (spec.task == "validate" and carries_training_data(spec)):
        plan.fit = plan_fit(spec, plan)
    elif spec.task == "validate":
        resolve(spec, plan.outputs)
    return plan

"""The schema of ``fit.schedule`` and ``fit.checkpoint``: learning-rate schedules (Keras
semantics, computed in ``runner.train.schedules``) and checkpoints (``runner.train.checkpoints``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, NonNegativeInt, PositiveInt, model_validator

from layers.base import ConfigModel as Strict

Monitor = Literal["loss", "val_loss", "accuracy", "val_accuracy"]


class StepDecay(Strict):
    """Per epoch: lr * factor ** floor(epoch / drop_every), epoch counted from 0."""

    name: Literal["step"]
    factor: float = Field(gt=0, lt=1, description="Multiplies the learning rate at each drop.")
    drop_every: PositiveInt = Field(description="Epochs between two drops.")


class ExponentialDecay(Strict):
    """Per epoch: lr * decay_rate ** (epoch / decay_epochs), epoch counted from 0."""

    name: Literal["exponential"]
    decay_rate: float = Field(gt=0, lt=1, description="Factor per decay_epochs epochs.")
    decay_epochs: PositiveInt = Field(default=1, description="Epochs per factor decay_rate (1).")


class CosineDecay(Strict):
    """Per update (keras.optimizers.schedules.CosineDecay): an optional linear warm-up from
    initial_learning_rate to warmup_target over warmup_steps updates, then a cosine decay to
    alpha times its start over decay_steps updates."""

    name: Literal["cosine"]
    decay_steps: PositiveInt = Field(description="Updates the cosine decay lasts.")
    alpha: float = Field(
        default=0.0, ge=0, le=1, description="Final learning rate, as a fraction of the start (0)."
    )
    initial_learning_rate: float | None = Field(
        default=None, ge=0, description="Start of the schedule (null: fit.optimizer.lr)."
    )
    warmup_target: float | None = Field(
        default=None, gt=0, description="Learning rate the warm-up reaches (null: no warm-up)."
    )
    warmup_steps: NonNegativeInt = Field(default=0, description="Updates the warm-up lasts (0).")

    @model_validator(mode="after")
    def _warmup_needs_target(self) -> CosineDecay:
        if self.warmup_steps > 0 and self.warmup_target is None:
            raise ValueError(
                f"warmup_steps: {self.warmup_steps} needs warmup_target (the learning rate "
                "the warm-up reaches); Keras would skip the warm-up silently"
            )
        return self


class ReduceOnPlateau(Strict):
    """At the end of each epoch (keras.callbacks.ReduceLROnPlateau): lr * factor once the
    monitored value has not improved for patience epochs."""

    name: Literal["plateau"]
    monitor: Monitor | None = Field(default=None, description="Value watched (fit.monitor).")
    factor: float = Field(default=0.1, gt=0, lt=1, description="new lr = lr * factor (0.1).")
    patience: NonNegativeInt = Field(
        default=10, description="Epochs without improvement before a reduction (10)."
    )
    min_delta: float = Field(
        default=1e-4, ge=0, description="Smallest change that counts as an improvement (1e-4)."
    )
    cooldown: NonNegativeInt = Field(
        default=0, description="Epochs after a reduction during which none is counted (0)."
    )
    min_lr: float = Field(default=0.0, ge=0, description="Lower bound of the learning rate (0).")
    mode: Literal["auto", "min", "max"] = Field(
        default="auto", description="auto: max for accuracy, else min."
    )


Schedule = Annotated[
    StepDecay | ExponentialDecay | CosineDecay | ReduceOnPlateau, Discriminator("name")
]
SCHEDULES = ("step", "exponential", "cosine", "plateau")


class CheckpointSpec(Strict):
    """When a fit writes checkpoints into its run folder's ``checkpoints/``; null = inherit."""

    every: NonNegativeInt | None = Field(
        default=None, description="Write one every this many epochs (0: none; default 0)."
    )
    best: bool | None = Field(
        default=None, description="Also keep the best epoch by monitor (false)."
    )
    monitor: Monitor | None = Field(
        default=None, description="Value that decides the best epoch (fit.monitor)."
    )

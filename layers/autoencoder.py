"""AutoEncoder: an encoder stack and a decoder stack, each an ordered mapping of layers.

Input shape: what the first encoder layer takes. Output: ``decoder(encoder(x))`` with
``output_reconstruction: true`` (default), else the code ``encoder(x)``. The decoder is planned
and built in both modes (so one weights file fits both), but only run, trained and regularized
when it is part of the output. Weights are keyed ``<name>/encoder/<layer>/<param>``. Masks
travel through the stacks by each inner layer's own rules.

    ae:
      type: AutoEncoder
      encoder: {enc: {type: Dense, output_dim: 2}}
      decoder: {dec: {type: Dense, output_dim: 4}}
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
from pydantic import Field, field_validator

from layers.base import Context, Layer, Name, Shape, SpecBase, SummaryRow, add_penalties
from layers.composite import add_grads, check_children, child_layer, child_rows, in_child, prefixed
from layers.registry import AnyLayerSpec, register


class AutoEncoderSpec(SpecBase):
    """Encoder and decoder stacks; inner layers are wired in order (no ``inputs``)."""

    nested_layers: ClassVar[bool] = True
    type: Literal["AutoEncoder"] = "AutoEncoder"
    encoder: dict[Name, AnyLayerSpec] = Field(
        min_length=1, description="Encoder layers by name, in order."
    )
    decoder: dict[Name, AnyLayerSpec] = Field(
        min_length=1, description="Decoder layers by name, in order."
    )
    output_reconstruction: bool = Field(
        default=True,
        description="true: output decoder(encoder(x)); false: output the code encoder(x).",
    )

    @field_validator("encoder", "decoder")
    @classmethod
    def _stack(cls, value):
        return check_children("an AutoEncoder", value)


class AutoEncoderCache(NamedTuple):
    children: list[Any]  # each running child's cache, in order
    penalties: dict[str, float]  # the running children's activity penalties


@register
class AutoEncoder(Layer):
    Spec = AutoEncoderSpec

    def __init__(self, spec: AutoEncoderSpec, name: str) -> None:
        super().__init__(spec, name)
        self.stacks = {
            part: {
                key: child_layer(s, f"{name}/{part}/{key}")
                for key, s in getattr(spec, part).items()
            }
            for part in ("encoder", "decoder")
        }
        self.differentiable = all(c.differentiable for _, c, _ in self.children())
        # _plan results by (input shape, mask): output_shape, output_mask and param_shapes
        # each need them, and a nested AutoEncoder would otherwise re-plan its whole subtree
        # for each of them (time doubling with every level of nesting).
        self._plans: dict[tuple[Shape, bool], list[tuple[Shape, bool]]] = {}

    def children(self) -> list[tuple[str, Layer, str]]:
        return [
            (f"{part}/{key}/", layer, f"{part}.{key}")
            for part, stack in self.stacks.items()
            for key, layer in stack.items()
        ]

    def running_children(self) -> list[tuple[str, Layer, str]]:
        """The children the forward pass runs, in order: the encoder, then the decoder when
        ``output_reconstruction`` is true. ``(prefix, layer, config path)`` as ``children``.
        The one rule for what this layer computes: forward, backward, penalties, the summary
        and the ONNX exporter all read it."""
        kids = self.children()
        return kids if self.spec.output_reconstruction else kids[: len(self.stacks["encoder"])]

    def _plan(self, input_shape: Shape, has_mask: bool) -> list[tuple[Shape, bool]]:
        """(input shape, input mask) of every child, then the final (shape, mask)."""
        key = (tuple(input_shape), bool(has_mask))
        if key not in self._plans:
            self._plans[key] = self._plan_steps(*key)
        return self._plans[key]

    def _plan_steps(self, input_shape: Shape, has_mask: bool) -> list[tuple[Shape, bool]]:
        steps = [(input_shape, has_mask)]
        for _, child, where in self.children():
            shape, mask = steps[-1]
            out = in_child(where, child, child.output_shape, shape)
            steps.append((tuple(out), in_child(where, child, child.output_mask, shape, mask)))
        return steps

    def output_shape(self, input_shape: Shape) -> Shape:
        steps = self._plan(input_shape, False)
        return steps[len(self.running_children())][0]

    def output_mask(self, input_shape: Shape, has_mask: bool) -> bool:
        return self._plan(input_shape, has_mask)[len(self.running_children())][1]

    def inner_elements(self, input_shape: Shape) -> int:
        """Per sample: every running child's output but the last (the AutoEncoder's own
        output), plus what each child holds inside itself."""
        steps, running = self._plan(input_shape, False), len(self.running_children())
        total = sum(math.prod(shape) for shape, _ in steps[1:running])
        for (_, child, where), (shape, _) in zip(self.running_children(), steps):
            total += in_child(where, child, child.inner_elements, shape)
        return total

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        out: dict[str, Shape] = {}
        for (prefix, child, where), (shape, _) in zip(
            self.children(), self._plan(input_shape, False)
        ):
            out.update(prefixed(prefix, in_child(where, child, child.param_shapes, shape)))
        return out

    def init_params(self, input_shape, rng, dtype) -> None:
        for (_, child, _), (shape, _) in zip(self.children(), self._plan(input_shape, False)):
            child.init_params(shape, rng, dtype)
        self.params = {}

    def named_params(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for prefix, child, _ in self.children():
            out.update(prefixed(prefix, child.named_params()))
        return out

    def summary_rows(self, input_shape: Shape) -> list[SummaryRow]:
        """(key, type, reads, output shape, params) of every inner layer, for the summary."""
        steps, running = self._plan(input_shape, False), len(self.running_children())
        rows, reads = [], "input"
        for i, (prefix, child, _) in enumerate(self.children()):
            note = "" if i < running else " (not run)"
            rows += child_rows(
                prefix.rstrip("/"), child, reads + note, steps[i][0], steps[i + 1][0]
            )
            reads = prefix.rstrip("/")
        return rows

    def weight_penalty(self) -> float:
        return sum(child.weight_penalty() for _, child, _ in self.running_children())

    def weight_penalty_grads(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for prefix, child, _ in self.running_children():
            out.update(prefixed(prefix, child.weight_penalty_grads()))
        return out

    def forward(self, x, mask, ctx: Context):
        caches = []
        penalties: dict[str, float] = {}
        for _, child, _ in self.running_children():
            x, mask, cache = child.forward(x, mask, ctx)
            add_penalties(penalties, child.activity_penalties(x, cache))
            caches.append(cache)
        return x, mask, AutoEncoderCache(caches, penalties)

    def activity_penalties(self, y, cache: AutoEncoderCache) -> dict[str, float]:
        return cache.penalties

    def backward(self, dy, cache: AutoEncoderCache, ctx: Context):
        grads: dict[str, np.ndarray] = {}
        inner = replace(ctx, need_input_grad=True)  # only the first child's dx may be skipped
        running = list(enumerate(zip(self.running_children(), cache.children)))
        for i, ((prefix, child, _), c) in reversed(running):
            dy, g = child.backward(dy, c, inner if i > 0 else ctx)
            add_grads(grads, prefixed(prefix, g))
        # A decoder left out of the output is frozen: zero gradients (legacy: not trainable).
        for key, value in self.named_params().items():
            if key not in grads:
                grads[key] = np.zeros_like(value)
        return dy, grads

"""Dense: ``y = activation(x @ W + b)`` on 2D input, W laid out (input_dim, output_dim)."""

from __future__ import annotations

from functools import partial
from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field, PositiveInt

from layers import activations, parallel, regularizers
from layers.activations import ActivationName
from layers.base import Context, Layer, PlanError, Shape, SpecBase
from layers.deferred import DeferredConcat
from layers.initializers import InitName, initialize
from layers.registry import register
from layers.regularizers import Regularizer


class DenseSpec(SpecBase):
    """Fully connected layer. Input shape (input_dim,); output shape (output_dim,)."""

    type: Literal["Dense"] = "Dense"
    output_dim: PositiveInt = Field(description="Number of output units.")
    init: InitName = Field(default="glorot_uniform", description="Initializer of W (b is zeros).")
    activation: ActivationName = Field(default="linear", description="Applied after x @ W + b.")
    W_regularizer: Regularizer | None = Field(default=None, description="l1/l2 penalty on W.")
    b_regularizer: Regularizer | None = Field(default=None, description="l1/l2 penalty on b.")
    activity_regularizer: Regularizer | None = Field(
        default=None, description="l1/l2 penalty on the output, divided by the batch size."
    )


class AffineCache(NamedTuple):
    """What backward reads from a training forward pass."""

    x: np.ndarray  # the input
    saved: np.ndarray | None  # what the activation's derivative needs besides y (activations)
    y: np.ndarray  # the output


class AffineLayer(Layer):
    """Shared math of Dense and TimeDistributedDense: the last axis goes through x @ W + b."""

    def __init__(self, spec: SpecBase, name: str) -> None:
        super().__init__(spec, name)
        self._backward_buffers: tuple[np.ndarray, np.ndarray] | None = None

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        return {"W": (input_shape[-1], self.spec.output_dim), "b": (self.spec.output_dim,)}

    def init_params(self, input_shape, rng, dtype) -> None:
        shapes = self.param_shapes(input_shape)
        self.params = {
            "W": initialize(self.spec.init, shapes["W"], rng, dtype),
            "b": np.zeros(shapes["b"], dtype=dtype),  # legacy Keras: biases always start at 0
        }

    def weight_penalty(self) -> float:
        return regularizers.weight_penalty(
            self.spec.W_regularizer, self.params["W"]
        ) + regularizers.weight_penalty(self.spec.b_regularizer, self.params["b"])

    def weight_penalty_grads(self) -> dict[str, np.ndarray]:
        regs = {"W": self.spec.W_regularizer, "b": self.spec.b_regularizer}
        return {
            k: regularizers.weight_penalty_grad(r, self.params[k])
            for k, r in regs.items()
            if r is not None
        }

    def forward(self, x, mask, ctx: Context):
        if isinstance(x, DeferredConcat):  # the plan's choice (runner.graph.fusion)
            return self._forward_parts(x, mask)
        w, b = self.params["W"], self.params["b"]
        # One 2D GEMM whatever the rank, (batch * steps, input_dim) @ W: a 3D matmul would
        # run one small GEMM per sample.
        x2 = x.reshape(-1, x.shape[-1])  # (batch * steps, input_dim)
        if ctx.keep_cache:  # fit: backward reads y and what the activation saved
            z = (x2 @ w).reshape(*x.shape[:-1], w.shape[1])
            y, saved = activations.forward_saving(self.spec.activation, z, b)
            return y, mask, AffineCache(x, saved, y)
        # predict: bias and activation in place in z, the fresh array this layer owns, by
        # row blocks on two threads when large (layers.parallel)
        z2 = np.empty((x2.shape[0], w.shape[1]), dtype=np.result_type(x2, w))
        parallel.split_rows(z2.shape[0], z2.shape[1], partial(self._rows_into, [x2], z2))
        return z2.reshape(*x.shape[:-1], w.shape[1]), mask, None

    def _rows_into(self, parts: list[np.ndarray], z2: np.ndarray, lo: int, hi: int) -> None:
        """Rows [lo, hi) of the output, from the input's parts along its last axis."""
        w, out = self.params["W"], z2[lo:hi]
        start = 0
        for i, part in enumerate(parts):  # concat(a, b) @ W == a @ W[:n] + b @ W[n:]
            w_part = w[start : start + part.shape[1]]
            start += part.shape[1]
            if i == 0:
                np.matmul(part[lo:hi], w_part, out=out)
            else:
                out += part[lo:hi] @ w_part
        activations.apply_(self.spec.activation, out, self.params["b"])

    def _scratch(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two arrays of y's shape for backward's element-wise work, kept from one training
        step to the next (nothing returned by backward points into them)."""
        kept = self._backward_buffers
        if kept is None or kept[0].shape != y.shape or kept[0].dtype != y.dtype:
            kept = self._backward_buffers = (np.empty_like(y), np.empty_like(y))
        return kept

    def _rows(self, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """activation(rows @ W + b) for 2D rows, into ``out`` (a DeferredSteps step)."""
        np.matmul(rows, self.params["W"], out=out)
        return activations.apply_(self.spec.activation, out, self.params["b"])

    def reads_deferred(self, kind: str) -> bool:
        return kind == "concat"  # the parts of a concat along the last axis

    def _forward_parts(self, x: DeferredConcat, mask):
        """Predict on a deferred concat: each part times its own rows of W, never copied."""
        parts = [p.reshape(-1, p.shape[-1]) for p in x.parts]  # (batch * steps, part width)
        w = self.params["W"]
        z2 = np.empty((parts[0].shape[0], w.shape[1]), dtype=np.result_type(parts[0], w))
        parallel.split_rows(z2.shape[0], z2.shape[1], partial(self._rows_into, parts, z2))
        return z2.reshape(*x.shape[:-1], w.shape[1]), mask, None

    def activity_penalties(self, y, cache) -> dict[str, float]:
        reg = self.spec.activity_regularizer
        if reg is None:
            return {}
        return {f"{self.name}/activity": regularizers.activity_penalty(reg, y)}

    def backward(self, dy, cache: AffineCache, ctx: Context):
        """Chain rule only: the weight regularizers' gradient is the trainer's to add."""
        x, y = cache.x, cache.y
        if self.spec.activity_regularizer is not None:
            dy = dy + regularizers.activity_penalty_grad(self.spec.activity_regularizer, y)
        dz = activations.backward_from(self.spec.activation, cache.saved, y, dy, *self._scratch(y))
        w = self.params["W"]
        x2 = x.reshape(-1, x.shape[-1])  # (batch * steps, input_dim)
        dz2 = dz.reshape(-1, dz.shape[-1])  # (batch * steps, output_dim)
        grads = {"W": x2.T @ dz2, "b": dz2.sum(axis=0)}
        return (dz @ w.T if ctx.need_input_grad else None), grads


@register
class Dense(AffineLayer):
    Spec = DenseSpec

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise PlanError(
                f"Dense expects 2D input (batch, features), got per-sample shape {input_shape}: "
                "use TimeDistributedDense for sequences, or Flatten first"
            )
        return (self.spec.output_dim,)

"""Run an exported model in onnxruntime and measure how far it lands from our runtime.

The deviation of one value is ``|onnx - ours| / (|ours| + M)``, M the largest magnitude in
that output: relative for values near the output's scale, and measured against that scale for
values far below it (where float32 rounding of a sum that cancels is no fault of either
runtime). The largest over every output is compared with ``RTOL``; masks must be equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runner.graph.execute import input_arrays, predict
from runner.graph.nodes import Plan

RTOL = 1e-5


@dataclass
class Agreement:
    rows: int
    deviations: dict[str, float] = field(default_factory=dict)  # by output (and NAME/mask)
    max_abs: dict[str, float] = field(default_factory=dict)

    @property
    def worst(self) -> tuple[str, float]:
        name = max(self.deviations, key=lambda k: self.deviations[k])
        return name, self.deviations[name]

    @property
    def ok(self) -> bool:
        return self.worst[1] <= RTOL


def deviation(got: np.ndarray, ours: np.ndarray) -> float:
    """max |got - ours| / (|ours| + max |ours|); NaN where ours has NaN is agreement."""
    got, ours = np.asarray(got, np.float64), np.asarray(ours, np.float64)
    if got.shape != ours.shape:
        return float("inf")
    both_nan = np.isnan(got) & np.isnan(ours)
    diff = np.where(both_nan, 0.0, np.abs(got - ours))
    if np.isnan(diff).any():
        return float("inf")
    finite = np.abs(ours[np.isfinite(ours)])
    scale = float(finite.max()) if finite.size else 0.0
    denominator = np.maximum(np.abs(ours) + scale, np.finfo(np.float32).tiny)
    with np.errstate(invalid="ignore"):  # inf - inf where both are the same infinity
        rel = np.where(got == ours, 0.0, diff / denominator)
    return float(np.max(rel, initial=0.0))


def session(model_bytes: bytes):  # noqa: ANN201 (an onnxruntime.InferenceSession)
    """An onnxruntime session on the CPU, one thread (small graphs: threads only cost)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def run_onnx(model: bytes | Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every output of the model (bytes, or a session) by name, computed by onnxruntime."""
    runner = session(model) if isinstance(model, bytes) else model
    names = [o.name for o in runner.get_outputs()]
    return dict(zip(names, runner.run(names, feeds)))


def compare(plan: Plan, model_bytes: bytes) -> Agreement:
    """The model in onnxruntime against our test-phase pass, on the run's own inputs, both
    in the run's batches (``batch_size``), so memory stays what the plan allowed."""
    arrays = input_arrays(plan)
    ours = predict(plan, False, set(plan.outputs), outputs_to_disk=False)
    rows = plan.rows
    step = plan.spec.batch_size or max(rows, 1)
    onnx_session = session(model_bytes)
    parts: dict[str, list[np.ndarray]] = {}
    for lo in range(0, rows, step):
        feeds = {n: np.asarray(a[lo : lo + step], plan.dtype) for n, a in arrays.items()}
        for name, value in run_onnx(onnx_session, feeds).items():
            parts.setdefault(name, []).append(value)
    got = {name: np.concatenate(values) for name, values in parts.items()}
    agreement = Agreement(rows)
    for ref in plan.outputs:
        name = str(ref)
        value = ours.values[name]
        agreement.deviations[name] = deviation(got[name], value)
        if got[name].shape == value.shape:
            agreement.max_abs[name] = float(np.max(np.abs(got[name] - value), initial=0.0))
        if name in ours.masks:
            same = np.array_equal(got[f"{name}/mask"], ours.masks[name])
            agreement.deviations[f"{name}/mask"] = 0.0 if same else float("inf")
    return agreement

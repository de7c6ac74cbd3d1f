"""Execute a built plan on NumPy arrays, batch by batch.

Values are kept only while a later layer still needs them; outputs are written into
preallocated arrays so batches stream through with flat memory.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from layers.base import Context
from runner import sources
from runner.errors import DataError
from runner.plan import Plan


def dropout_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 1])


@dataclass
class Prediction:
    values: dict[str, np.ndarray]  # outputs and every layer an expectation names
    masks: dict[str, np.ndarray]
    penalties: dict[str, float]  # "layer/activity" -> penalty over all rows
    seconds: float = 0.0
    batches: int = 0
    extras: dict[str, Any] = field(default_factory=dict)


def forward(plan: Plan, feeds: dict[str, np.ndarray], ctx: Context, keep: set[str],
            feed_masks: dict[str, np.ndarray] | None = None):
    """One forward pass of the graph. Returns (values, masks, caches) of the kept names."""
    values: dict[str, Any] = dict(feeds)
    masks: dict[str, Any] = dict(feed_masks or {})
    caches: dict[str, Any] = {}
    last_use = _last_use(plan)
    for index, node in enumerate(plan.nodes.values()):
        layer = node.layer
        if layer.multi_input:
            x = [values[r] for r in node.inputs]
            m = [masks.get(r) for r in node.inputs]
        else:
            x = values[node.inputs[0]]
            m = masks.get(node.inputs[0])
        y, mask, cache = layer.forward(x, m, ctx)
        values[node.name] = y
        if mask is not None:
            masks[node.name] = mask
        if ctx.keep_cache:
            caches[node.name] = cache
        else:
            for ref in node.inputs:  # free what no later layer reads
                if last_use.get(ref) == index and ref not in keep:
                    values.pop(ref, None)
                    masks.pop(ref, None)
    kept = {k: v for k, v in values.items() if k in keep}
    kept_masks = {k: v for k, v in masks.items() if k in keep}
    return kept, kept_masks, caches


def _last_use(plan: Plan) -> dict[str, int]:
    last: dict[str, int] = {}
    for index, node in enumerate(plan.nodes.values()):
        for ref in node.inputs:
            last[ref] = index
    return last


def input_arrays(plan: Plan) -> dict[str, np.ndarray]:
    """Every input as an array (random ones drawn now; .npy files stay memory-mapped)."""
    out = {}
    for name, node in plan.inputs.items():
        if node.array is None:
            out[name] = sources.random_array(node.spec.data.random, node.shape, plan.spec.seed,
                                             plan.dtype)
        else:
            out[name] = node.array
    return out


def predict(plan: Plan, training: bool, keep: set[str], progress: bool = False) -> Prediction:
    """Run every row through the graph, in batches of ``spec.batch_size`` (all at once if null)."""
    start = time.perf_counter()
    arrays = input_arrays(plan)
    rows = _common_rows(plan, arrays)
    batch = plan.spec.batch_size or rows
    dtype = plan.dtype
    ctx = Context(training=training, rng=dropout_rng(plan.spec.seed), dtype=dtype)
    results: dict[str, np.ndarray] = {}
    result_masks: dict[str, np.ndarray] = {}
    penalties: dict[str, float] = {}
    n_batches = math.ceil(rows / batch)
    for b in range(n_batches):
        lo, hi = b * batch, min(rows, (b + 1) * batch)
        feeds = {name: _checked_batch(plan, name, a[lo:hi], dtype) for name, a in arrays.items()}
        ctx.penalties = {}
        values, masks, _ = forward(plan, feeds, ctx, keep)
        for name, v in values.items():
            out = results.get(name)
            if out is None:
                out = results[name] = np.empty((rows, *v.shape[1:]), dtype=v.dtype)
            out[lo:hi] = v
        for name, m in masks.items():
            out = result_masks.get(name)
            if out is None:
                out = result_masks[name] = np.empty((rows, *m.shape[1:]), dtype=bool)
            out[lo:hi] = m
        for key, value in ctx.penalties.items():  # per-batch means -> mean over all rows
            penalties[key] = penalties.get(key, 0.0) + value * (hi - lo) / rows
        if progress:
            _progress(b + 1, n_batches, start)
    if progress:
        sys.stderr.write("\n")
    return Prediction(results, result_masks, penalties, time.perf_counter() - start, n_batches)


def _common_rows(plan: Plan, arrays: dict[str, np.ndarray]) -> int:
    counts = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(counts.values())) > 1:
        raise DataError.one("model.inputs", f"inputs have different numbers of rows: {counts}")
    return next(iter(counts.values()))


def _checked_batch(plan: Plan, name: str, a: np.ndarray, dtype) -> np.ndarray:
    batch = np.asarray(a, dtype=dtype)
    if not np.isfinite(batch).all():
        node = plan.inputs[name]
        file = getattr(node.spec.data, "path", None)
        raise DataError.one(f"model.inputs.{name}.data", "contains NaN or Inf values; clean the "
                            "data or use Masking with a finite mask_value for padding", file)
    return batch


def _progress(done: int, total: int, start: float) -> None:
    width = 30
    filled = int(width * done / total)
    elapsed = time.perf_counter() - start
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} batches "
                     f"{elapsed:.1f}s")
    sys.stderr.flush()

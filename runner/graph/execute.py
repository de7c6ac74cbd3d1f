"""Execute a built plan on NumPy arrays, batch by batch.

Values are kept only while a later layer still needs them; outputs are written into
preallocated arrays so batches stream through with flat memory.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from layers.base import Context, add_penalties
from layers.deferred import Deferred
from runner.data import sources
from runner.data.mapped import release_rows
from runner.errors import DataError
from runner.graph import fusion
from runner.graph.context import pass_context
from runner.graph.plan import Plan


@dataclass
class Prediction:
    values: dict[str, np.ndarray]  # outputs and every layer an expectation names
    masks: dict[str, np.ndarray]
    penalties: dict[str, float]  # "layer/activity" -> penalty over all rows
    seconds: float = 0.0
    batches: int = 0


def forward(
    plan: Plan,
    feeds: dict[str, np.ndarray],
    ctx: Context,
    keep: set[str],
    feed_masks: dict[str, np.ndarray] | None = None,
    penalties: dict[str, float] | None = None,
):
    """One forward pass of the graph. Returns (values, masks, caches) of the kept names.
    With ``penalties``, every layer's activity penalties are added into it."""
    values: dict[str, Any] = dict(feeds)
    masks: dict[str, Any] = dict(feed_masks or {})
    caches: dict[str, Any] = {}
    last_use = _last_use(plan)
    deferred = {} if ctx.keep_cache else fusion.deferring(plan, keep)
    for index, node in enumerate(plan.nodes.values()):
        layer = node.layer
        if layer.multi_input:
            x = [values[r] for r in node.inputs]
            m = [masks.get(r) for r in node.inputs]
        else:
            x = values[node.inputs[0]]
            m = masks.get(node.inputs[0])
        kind = deferred.get(node.name)  # the plan's choice (runner.graph.fusion)
        # deferred inputs this layer cannot take are computed (a safety net: the plan's
        # choice never hands a reader a kind it does not read)
        x = _materialized(x, kind.__eq__ if kind else layer.reads_deferred)
        try:  # overflow, 0/0, log(0): say which layer, never return inf/NaN silently
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                if kind:
                    y, mask, cache = layer.forward_deferred(x, m, ctx)
                else:
                    y, mask, cache = layer.forward(x, m, ctx)
                if penalties is not None:
                    add_penalties(penalties, layer.activity_penalties(y, cache))
        except FloatingPointError as exc:
            raise DataError.one(node.path, _numeric_problem(exc, node, x, ctx.dtype)) from None
        # several outputs (node.outputs: "<name>.0", "<name>.1", ...): a list of each
        outs = zip(node.outputs, y, mask) if node.heads else [(node.outputs[0], y, mask)]
        for out_name, value, out_mask in outs:
            values[out_name] = value
            if out_mask is not None:
                masks[out_name] = out_mask
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


def _materialized(x: Any, readable) -> Any:
    """x with every deferred value whose kind is not ``readable`` computed."""
    if isinstance(x, list):
        return [_materialized(v, readable) for v in x]
    return x.materialize() if isinstance(x, Deferred) and not readable(x.kind) else x


def _numeric_problem(exc: FloatingPointError, node, x, dtype) -> str:
    arrays = [a for a in (x if isinstance(x, list) else [x]) if isinstance(a, np.ndarray)]
    peak = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    where = f"{exc} in the forward pass of {node.layer.spec.type}"
    if "overflow" in str(exc):
        return (
            f"{where}: results beyond what {np.dtype(dtype).name} holds (up to "
            f"{np.finfo(dtype).max:.3g}; the largest input magnitude is {peak:.3g}): scale "
            "the inputs, use floatx=float64, or change the layer"
        )
    return (
        f"{where}: the math is undefined for some inputs (for example log or division by "
        "0, sqrt of a negative number): check the data or the expression"
    )


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
            out[name] = sources.random_array(
                node.spec.data.random, node.shape, plan.spec.seed, plan.dtype
            )
        else:
            out[name] = node.array
    return out


DISK_OUTPUT_BYTES = 64 * 2**20  # automatic outputs_to_disk: batched runs with larger outputs


def predict(
    plan: Plan,
    training: bool,
    keep: set[str],
    progress: bool = False,
    out_dir: Path | None = None,
    outputs_to_disk: bool | None = None,
    arrays: dict[str, np.ndarray] | None = None,
) -> Prediction:
    """Run every row through the graph, in batches of ``spec.batch_size`` (all at once if null).

    With ``out_dir``, outputs can go into memory-mapped ``<name>.npy`` files there instead of
    RAM (``outputs_to_disk``: True always, False never, None when ``batch_size`` is set and
    the outputs add up to more than ``DISK_OUTPUT_BYTES``). Rows of memory-mapped inputs and
    outputs already processed are dropped from this process's resident memory after each
    batch (the page cache keeps them), so memory stays flat however large the files are.
    ``arrays`` (every input by name) replaces the config's own data (task=evaluate's rows).
    """
    start = time.perf_counter()
    arrays = input_arrays(plan) if arrays is None else arrays
    rows = _common_rows(plan, arrays)
    batch = plan.spec.batch_size or rows
    if outputs_to_disk is None:
        per_row = (
            sum(math.prod(plan.shape_of(n)) for n in keep if n in plan.refs) * plan.dtype.itemsize
        )
        outputs_to_disk = bool(plan.spec.batch_size) and per_row * rows > DISK_OUTPUT_BYTES
    disk = out_dir if outputs_to_disk else None
    if outputs_to_disk and out_dir is None:
        raise ValueError("outputs_to_disk needs out_dir, the folder of the .npy files")
    dtype = plan.dtype
    ctx = pass_context(plan, training)
    results: dict[str, np.ndarray] = {}
    result_masks: dict[str, np.ndarray] = {}
    penalties: dict[str, float] = {}
    n_batches = math.ceil(rows / batch)
    bar = _progress_bar(n_batches, progress)
    for b in range(n_batches):
        lo, hi = b * batch, min(rows, (b + 1) * batch)
        feeds = {name: _checked_batch(plan, name, a[lo:hi], dtype) for name, a in arrays.items()}
        batch_penalties: dict[str, float] = {}
        values, masks, _ = forward(plan, feeds, ctx, keep, penalties=batch_penalties)
        for name, v in values.items():  # by plain names: Prediction leaves the graph
            out = results.get(name)
            if out is None:
                out = results[str(name)] = _allocate(disk, name, (rows, *v.shape[1:]), v.dtype)
            out[lo:hi] = v
        for name, m in masks.items():
            out = result_masks.get(name)
            if out is None:
                out = result_masks[str(name)] = _allocate(
                    disk, f"{name}.mask", (rows, *m.shape[1:]), np.dtype(bool)
                )
            out[lo:hi] = m
        if n_batches > 1:
            for a in (*arrays.values(), *results.values(), *result_masks.values()):
                release_rows(a, lo, hi)
        for key, value in batch_penalties.items():  # per-batch means -> mean over all rows
            penalties[key] = penalties.get(key, 0.0) + value * (hi - lo) / rows
        bar.update()
    bar.close()
    return Prediction(results, result_masks, penalties, time.perf_counter() - start, n_batches)


class _NoBar:
    """What predict calls on its bar when none is shown."""

    def update(self) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, progress: bool) -> Any:
    """A tqdm bar on stderr, or a stand-in: a disabled tqdm still imports tqdm and builds a
    multiprocessing lock, which a plain run pays at start-up for nothing."""
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="batch", file=sys.stderr)


def _allocate(disk: Path | None, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    if disk is None:
        return np.empty(shape, dtype=dtype)
    disk.mkdir(parents=True, exist_ok=True)
    safe = name.replace("/", "__")
    return np.lib.format.open_memmap(disk / f"{safe}.npy", mode="w+", dtype=dtype, shape=shape)


def _common_rows(plan: Plan, arrays: dict[str, np.ndarray]) -> int:
    counts = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(counts.values())) > 1:
        raise DataError.one("model.inputs", f"inputs have different numbers of rows: {counts}")
    return next(iter(counts.values()))


def _checked_batch(plan: Plan, name: str, a: np.ndarray, dtype) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to Inf is reported below
        batch = np.asarray(a, dtype=dtype)
    if not np.isfinite(batch).all():
        node = plan.inputs[name]
        file = getattr(node.spec.data, "path", None)
        raise DataError.one(
            f"model.inputs.{name}.data",
            "contains NaN or Inf values; clean the "
            "data or use Masking with a finite mask_value for padding",
            file,
        )
    return batch

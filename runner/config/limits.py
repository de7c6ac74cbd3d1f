"""Limits of the machine that a config can exceed, checked on the plain config before anything
else, so each is a named problem at its config path (exit 2), never an internal error:

- an integer too large for int64 (a 400-digit ``output_dim``);
- random data whose ``low``/``high`` range overflows a float (``high - low`` is infinite);
- a shape with more dimensions than NumPy arrays hold (64, the batch axis included);
- expected ``values`` that are not numbers.

The planned shapes are checked too (``plan_ranks``): a layer can add axes. What a predict will
write is checked against ``max_disk_mb`` (``check_disk``) before anything is computed: a model
file chooses its rows and output sizes, the command line the disk it may fill.
"""

from __future__ import annotations

import math
from typing import Any

from runner.errors import ConfigError, Problem

MAX_INT = 2**63 - 1
MAX_RANK = 64  # numpy.ndarray's limit; per-sample shapes get one axis less (the batch)
_SHAPE_KEYS = ("shape", "dims")
_ARRAY_KEYS = ("data", "weights", "values")  # numbers read as float arrays, checked there


def config_limits(config: Any) -> list[Problem]:
    problems: list[Problem] = []
    _walk(config, "", problems)
    model = config.get("model") if isinstance(config, dict) else None
    expect = model.get("expect") if isinstance(model, dict) else None
    if isinstance(expect, dict):
        for name, spec in expect.items():
            if isinstance(spec, dict) and isinstance(spec.get("values"), list):
                bad = _first_non_number(spec["values"], f"model.expect.{name}.values")
                if bad:
                    problems.append(Problem(bad[0], f"expected a number, found {bad[1]!r}"))
    return problems


def plan_ranks(plan: Any) -> list[Problem]:
    """Layers (and inputs) whose output would have more axes than an array can hold."""
    problems = []
    for node in list(getattr(plan, "inputs", {}).values()) + list(plan.nodes.values()):
        shape = getattr(node, "shape", None)
        if shape is not None and len(shape) + 1 > MAX_RANK:
            problems.append(Problem(node.path, _rank_message(len(shape))))
    return problems


def _rank_message(n: int) -> str:
    return (
        f"{n} dimensions per sample (plus the batch axis): NumPy arrays hold at most "
        f"{MAX_RANK}, so at most {MAX_RANK - 1} per sample"
    )


def _walk(value: Any, path: str, problems: list[Problem]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if key in _SHAPE_KEYS and isinstance(item, list) and len(item) > MAX_RANK - 1:
                problems.append(Problem(sub, _rank_message(len(item))))
                continue
            if key == "random" and isinstance(item, dict):
                _check_range(item, sub, problems)
            if key in _ARRAY_KEYS and isinstance(item, list):
                continue
            _walk(item, sub, problems)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", problems)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        digits = len(str(abs(value)))
        problems.append(
            Problem(
                path or "(config)",
                f"integer of {digits} digits is too large (at most {MAX_INT}, the int64 limit)",
            )
        )


def _check_range(random: dict[str, Any], path: str, problems: list[Problem]) -> None:
    low, high = random.get("low"), random.get("high")
    numbers = [v for v in (low, high) if _is_number(v)]
    for key, v in (("low", low), ("high", high)):
        if _is_number(v) and not math.isfinite(float(v)):
            problems.append(Problem(f"{path}.{key}", f"expected a finite number, found {v!r}"))
            return
    if len(numbers) == 2:
        try:
            span = float(high) - float(low)
        except OverflowError:
            span = math.inf
        if not math.isfinite(span):
            problems.append(
                Problem(
                    f"{path}.high",
                    f"the range high - low ({high!r} - {low!r}) "
                    "overflows a float: keep |high - low| below 1.7e308",
                )
            )


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _first_non_number(values: Any, path: str) -> tuple[str, Any] | None:
    if isinstance(values, list):
        for i, item in enumerate(values):
            bad = _first_non_number(item, f"{path}[{i}]")
            if bad:
                return bad
        return None
    if _is_number(values):
        return None
    return path, values


# Longest value save_csv writes, with its comma: '%.9g' of a float32 ('-1.17549435e-38'),
# '%.17g' of a float64; a row index has at most 19 digits.
_CSV_VALUE_CHARS = {4: 16, 8: 25}
_CSV_ROW_CHARS = 21


def predict_writes(plan: Any) -> list[tuple[str, str, int]]:
    """(config path, what, bytes at most) of each file a predict writes: every output and
    expected layer (outputs.npz or outputs/NAME.npy) with its mask, its CSV with save_csv, and
    weights.npz. Bounds from the plan alone, before anything is computed."""
    itemsize = plan.dtype.itemsize
    rows = plan.rows
    kept = list(dict.fromkeys([*plan.outputs, *plan.expect]))
    out = []
    for ref in kept:
        shape = plan.shape_of(ref)
        node = plan.nodes.get(ref.node)
        path = node.path if node is not None else plan.inputs[ref.node].path
        values = rows * math.prod(shape)
        size = values * itemsize
        if node is not None and node.masked:
            size += rows * math.prod(shape[:-1])  # a bool per timestep
        out.append((path, f"output {ref} of {rows:,} rows of {shape}", size))
        if plan.spec.save_csv and ref in plan.outputs and len(shape) <= 1:
            chars = _CSV_ROW_CHARS + values // max(rows, 1) * _CSV_VALUE_CHARS.get(itemsize, 25)
            out.append((path, f"outputs/{ref}.csv of {rows:,} rows", rows * chars))
    params = sum(n.n_params for n in plan.nodes.values())
    out.append(("model.layers", "weights.npz", params * itemsize))
    return out


def check_disk(plan: Any) -> None:
    """A ConfigError naming the largest file when a predict would write more than
    ``max_disk_mb``."""
    limit = plan.spec.max_disk_mb * 2**20
    writes = predict_writes(plan)
    total = sum(size for _, _, size in writes)
    if total <= limit:
        return
    path, what, size = max(writes, key=lambda w: w[2])
    raise ConfigError.one(
        path,
        f"this predict would write about {total / 2**20:,.0f} MB, above max_disk_mb "
        f"({plan.spec.max_disk_mb:,.6g} MB); the largest is {what} "
        f"({size / 2**20:,.0f} MB): use fewer rows or smaller outputs, or raise max_disk_mb "
        "on the command line",
    )

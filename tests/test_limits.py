"""Resource limits: the plan estimates memory from the config alone and refuses a model above
``max_memory_mb`` before allocating anything; Lambda expressions cannot blow up or hang."""

from __future__ import annotations

import tracemalloc

import pytest

from runner.config.validate import validate
from runner.errors import ConfigError
from runner.graph.plan import make_plan
from runner.run import run


def _balanced(leaves: int) -> str:
    """x + x + ... as a balanced tree (depth log2(leaves)), 2*leaves - 1 nodes."""
    return "x" if leaves == 1 else f"({_balanced(leaves // 2)} + {_balanced(leaves // 2)})"


def _model(layers: dict, inputs: dict | None = None, **top) -> dict:
    return {
        **top,
        "model": {"inputs": inputs or {"x": {"shape": [3], "data": [[1, 2, 3]]}}, "layers": layers},
    }


def test_ten_billion_units_refused_before_any_allocation(tmp_path):
    config = _model({"dense": {"type": "Dense", "output_dim": 10_000_000_000}})
    tracemalloc.start()
    try:
        outcome = run(config, tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (problem,) = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and problem["path"] == "max_memory_mb"
    # (3*1e10 + 1e10 parameters + 1e10 outputs + 3 inputs) float32 values
    assert f"needs about {(5e10 + 3) * 4 / 2**20:,.0f} MB" in problem["message"]
    assert "limit of 4,096 MB" in problem["message"]
    assert "largest is model.layers.dense" in problem["message"]
    assert peak < 20 * 2**20  # nothing near the 190 GB was ever allocated
    assert "build" not in outcome.result["timings"]


def test_memory_estimate_by_hand():
    """params + batch * (every activation and input per sample), times the item size."""
    config = _model(
        {"a": {"type": "Dense", "output_dim": 4}, "b": {"type": "Dense", "output_dim": 2}},
        {"x": {"shape": [3], "data": [[1, 2, 3], [4, 5, 6]]}},
    )
    plan = make_plan(validate(config))
    params = (3 * 4 + 4) + (4 * 2 + 2)
    assert plan.memory_bytes == (params + 2 * (3 + 4 + 2)) * 4
    plan64 = make_plan(validate({**config, "floatx": "float64", "batch_size": 1}))
    assert plan64.memory_bytes == (params + 1 * (3 + 4 + 2)) * 8


def test_random_inputs_count_whole_and_batch_size_bounds_activations():
    big = {"x": {"shape": [100], "data": {"random": {"rows": 2_000_000}}}}
    layers = {"d": {"type": "Dense", "output_dim": 1000}}
    no_batch = make_plan(validate(_model(layers, big, max_memory_mb=1e9)))
    batched = make_plan(validate(_model(layers, big, batch_size=100, max_memory_mb=1e9)))
    params = 100 * 1000 + 1000
    drawn = 2_000_000 * 100 * (8 + 4)  # drawn in float64, cast to float32
    assert no_batch.memory_bytes == (params + 2_000_000 * 1100) * 4 + drawn
    assert batched.memory_bytes == (params + 100 * 1100) * 4 + drawn
    with pytest.raises(ConfigError) as info:  # the default limit, 4096 MB
        make_plan(validate(_model(layers, big)))
    assert info.value.problems[0].path == "max_memory_mb"
    make_plan(validate(_model(layers, big, batch_size=100)))  # 2.3 GB: within the default


@pytest.mark.parametrize("limit, ok", [(0.0001, False), (0.001, True)])
def test_the_limit_is_configurable(limit, ok, tmp_path):
    # 3 inputs + 2*3+2 parameters + 2 outputs = 13 float32 values = 52 bytes ~ 0.0000496 MB
    config = _model({"d": {"type": "Dense", "output_dim": 2}}, max_memory_mb=limit / 10)
    outcome = run(config, tmp_path)
    assert (outcome.exit_code == 0) is ok
    if not ok:
        assert "above the limit of 1e-05 MB" in outcome.result["error"]["problems"][0]["message"]


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("x ** 1e9", "|exponent| <= 16"),
        ("x ** 1e300", "|exponent| <= 16"),
        ("x ** -1e9", "|exponent| <= 16"),
        ("x ** (1 + 1e9)", "number literal"),
        ("2 ** 2 ** 2 ** 2 ** 2 ** 2", "number literal"),
        ("exp(" * 40 + "x" + ")" * 40, "nested deeper than"),
        ("x" + " + x" * 40, "nested deeper than"),
        (_balanced(128), "nodes"),
        ("x" * 1001, "characters long"),
    ],
    ids=range(9),
)
def test_lambda_work_is_bounded_at_validation(expression, fragment, tmp_path):
    config = _model(
        {"f": {"type": "Lambda", "function": expression}},
        {"x": {"shape": [3], "data": {"random": {"rows": 10}}}},
    )
    outcome = run(config, tmp_path)
    (problem,) = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and problem["path"] == "model.layers.f.function"
    assert fragment in problem["message"]
    assert "plan" not in outcome.result["timings"]


def test_largest_allowed_lambda_runs_and_is_right(tmp_path):
    """At the size limits an expression is still only a few array passes per batch."""
    expression = _balanced(64)  # 127 nodes, depth 7: under both limits
    config = _model(
        {
            "f": {"type": "Lambda", "function": expression},
            "g": {"type": "Lambda", "function": "x ** 16", "inputs": ["x"]},
        },
        {"x": {"shape": [2], "data": [[1, 2]]}},
    )
    outcome = run(config, tmp_path)
    assert outcome.exit_code == 0, outcome.result.get("error")
    assert outcome.result["outputs"]["g"]["values"] == [[1.0, 2.0**16]]
    assert "f" not in outcome.result["outputs"]  # only the last layer is the output
    config["model"]["outputs"] = ["f"]
    outcome = run(config, tmp_path / "f")
    assert outcome.result["outputs"]["f"]["values"] == [[64.0, 128.0]]

"""Configs from strangers: the time spent checking a config and reporting its problems grows
linearly with the config (counted in work done, never timed)."""

from __future__ import annotations

import yaml

from runner.run import run


def _many_bad_layers(n: int) -> str:
    return "inputs:\n  x: {shape: [1], data: [[1]]}\nlayers:\n" + "".join(
        f"  d{i}: {{type: Dense, output_dim: -1}}\n" for i in range(n)
    )


def test_many_problems_compose_the_model_file_once(tmp_path, monkeypatch):
    """Each problem is placed at file:line:col; the file was composed again for every problem,
    so 2,000 bad layers took 60 s to report (20,000: about 100 minutes)."""
    n = 300
    model_file = tmp_path / "many.yaml"
    model_file.write_text(_many_bad_layers(n))
    composed = []
    compose = yaml.compose
    monkeypatch.setattr(yaml, "compose", lambda *a, **k: composed.append(1) or compose(*a, **k))
    config = {"task": "validate", "model": yaml.safe_load(model_file.read_text())}
    outcome = run(config, tmp_path / "run", cwd=tmp_path, model_file=model_file)
    problems = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and len(problems) == n
    assert len(composed) == 1
    for p in problems:  # layer i sits on line 4 + i, its output_dim at column 32 (+ digits)
        i = int(p["path"].split(".")[2][1:])
        assert p["path"] == f"model.layers.d{i}.output_dim"
        assert (p["line"], p["column"]) == (4 + i, 32 + len(str(i))), p

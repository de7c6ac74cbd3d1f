"""Config repos day to day: the file that ran is named, and a name found twice is refused."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_a_users_copy_of_a_shipped_model_is_refused_naming_both_files(cli, tmp_path):
    mine = tmp_path / "my_conf" / "model"
    mine.mkdir(parents=True)
    text = (
        (REPO / "conf/model/dense_example.yaml").read_text().replace("b: [0, 0, 0]", "b: [1, 1, 1]")
    )
    (mine / "dense_example.yaml").write_text(text)
    res = cli("--config-dir", "my_conf", "+model=dense_example")
    assert res.returncode == 2
    out = res.stdout + res.stderr
    assert "found in 2 places" in out and "my_conf/model/dense_example.yaml" in out
    assert "conf/model/dense_example.yaml" in out


@pytest.mark.slow
def test_the_summary_and_result_name_the_model_file_and_its_hash(cli, tmp_path):
    mine = tmp_path / "my_conf" / "model"
    mine.mkdir(parents=True)
    (mine / "mine.yaml").write_text(
        "inputs: {x: {data: [[1.0, 2.0]]}}\nlayers: {d: {type: Dense, output_dim: 1, init: one}}\n"
    )
    res = cli("--config-dir", "my_conf", "+model=mine")
    assert res.returncode == 0, res.stdout + res.stderr
    digest = hashlib.sha256((mine / "mine.yaml").read_bytes()).hexdigest()
    assert res.result["model_file"] == {"path": "my_conf/model/mine.yaml", "sha256": digest}
    assert f"model file: my_conf/model/mine.yaml (sha256 {digest[:16]})" in res.stdout
    assert res.result["outputs"]["d"]["values"] == [[3.0]]


@pytest.mark.slow
def test_config_errors_of_a_run_name_file_line_and_column(cli, tmp_path):
    mine = tmp_path / "my_conf" / "model"
    mine.mkdir(parents=True)
    (mine / "bad.yaml").write_text(
        "inputs: {x: {data: [[1.0]]}}\nlayers:\n  d: {type: Dense, output_dim: -2}\n"
    )
    res = cli("--config-dir", "my_conf", "+model=bad", "task=validate")
    assert res.returncode == 2
    assert (
        "my_conf/model/bad.yaml:3:32: model.layers.d.output_dim: expected greater than 0; found -2"
    ) in res.stdout + res.stderr
    (problem,) = res.result["error"]["problems"]
    assert (problem["line"], problem["column"]) == (3, 32)


@pytest.mark.slow
def test_a_model_names_its_sizes_once_in_vars_and_a_sweep_changes_them(cli, tmp_path):
    mine = tmp_path / "my_conf" / "model"
    mine.mkdir(parents=True)
    (mine / "sized.yaml").write_text(
        "vars: {hidden: 4}\n"
        "inputs: {x: {data: [[1.0, 2.0]]}}\n"
        "layers:\n"
        "  a: {type: Dense, output_dim: '${model.vars.hidden}', init: one}\n"
        "  b: {type: Dense, output_dim: 1, init: one}\n"
        "outputs: [a, b]\n"
        "expect: {a: {shape: [1, '${model.vars.hidden}']}}\n"
    )
    res = cli("--config-dir", "my_conf", "+model=sized")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.result["outputs"]["b"]["values"] == [[12.0]]  # 4 units of 1 + 2, summed
    res = cli(
        "-m",
        "--config-dir",
        "my_conf",
        "+model=sized",
        "model.vars.hidden=2,3",
        "hydra.sweep.dir=sweep",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    import json

    for job, hidden in ((0, 2), (1, 3)):
        result = json.loads((tmp_path / "sweep" / str(job) / "result.json").read_text())
        assert result["outputs"]["a"]["shape"] == [1, hidden]
        assert result["outputs"]["b"]["values"] == [[3.0 * hidden]]


@pytest.mark.slow
def test_a_users_own_layers_folder_in_the_current_directory_does_not_shadow_ours(cli, tmp_path):
    """python -m runner puts the current directory first on sys.path; the runner drops it
    before importing anything else, so a config repo's own layers/ (or numpy.py) is not ours."""
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers" / "__init__.py").write_text("raise SystemExit('the user layers ran')\n")
    res = cli("+model=dense_example")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.result["outputs"]["dense"]["values"] == [[6.0, 12.0, 30.0]]


@pytest.mark.slow
@pytest.mark.parametrize(
    "module, args",
    [("runner.check", ["conf/model"]), ("runner.sweep.report", ["sweep"])],
)
def test_a_planted_library_module_is_not_imported_by_the_runner_s_other_commands(
    tmp_path, module, args
):
    """python -m runner.check (or runner.sweep.report, run where the sweep ran) puts the
    current directory first on sys.path like python -m runner: a config repo's numpy.py or
    yaml.py would run before the command read a single file."""
    pwned = tmp_path / "PWNED"
    for name in ("numpy", "yaml"):
        (tmp_path / f"{name}.py").write_text(f"open({str(pwned)!r}, 'w').write('{name}')\n")
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "m.yaml").write_text(
        "inputs: {x: {data: [[1.0, 2.0]]}}\nlayers: {d: {type: Dense, output_dim: 1}}\n"
    )
    (tmp_path / "sweep").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert not pwned.exists(), f"{pwned.read_text()}.py from the current directory ran"
    expected = "1 model file checked: all valid" if module == "runner.check" else "no job folders"
    assert expected in proc.stdout + proc.stderr, proc.stdout + proc.stderr

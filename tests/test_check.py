"""layer-runner check: many model files in one process, the checks of task=validate, no run
folders, problems as file:line:col, GitHub annotations or JSON, exit 0 or 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BAD = """\
inputs: {x: {data: [[1.0, 2.0]]}}
layers:
  d: {type: Dense, output_dim: -1}
  e: {type: Dnse}
"""


def _check(*args: str, cwd: Path, script: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = (
        [sys.executable, "-m", "runner", "check"]
        if script
        else [sys.executable, "-m", "runner.check"]
    )
    return subprocess.run(
        [*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def repo(tmp_path):
    model = tmp_path / "conf" / "model"
    model.mkdir(parents=True)
    (model / "good.yaml").write_text((REPO / "conf/model/dense_example.yaml").read_text())
    (model / "bad.yaml").write_text(BAD)
    (model / "evil.yaml").write_text("# @package _global_\nseed: 1\n")
    (model / "fit_bad.yaml").write_text(
        (REPO / "conf/model/dense_example.yaml").read_text() + "fit: {monitor: val_loss}\n"
    )
    return tmp_path


@pytest.mark.slow
def test_problems_as_file_line_col_and_exit_2(repo):
    proc = _check("conf/model", cwd=repo)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stdout.splitlines()
    assert (
        "conf/model/bad.yaml:3:32: model.layers.d.output_dim: expected greater than 0; "
        "found -1" in lines
    )
    assert any(
        line.startswith(
            "conf/model/bad.yaml:4:3: model.layers.e: unknown layer type "
            "'Dnse' (did you mean 'Dense'?)"
        )
        for line in lines
    )
    assert any(
        line.startswith("conf/model/evil.yaml:1:1: (file): '# @package _global_'") for line in lines
    )
    # task=validate's fit checks: monitor=val_loss without validation data
    assert any(
        line.startswith("conf/model/fit_bad.yaml:") and "val_loss" in line for line in lines
    ), lines
    assert not any("good.yaml" in line for line in lines)
    assert "4 model files checked: 3 with" in proc.stderr
    assert not (repo / "outputs").exists()  # no run folders


@pytest.mark.slow
def test_valid_files_exit_0_through_the_console_script_form(repo):
    proc = _check("conf/model/good.yaml", "conf/model/nothing*.yaml", cwd=repo, script=True)
    assert proc.returncode == 2 and "conf/model/nothing*.yaml:1:1: (path)" in proc.stdout
    proc = _check("conf/model/good.yaml", cwd=repo, script=True)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "1 model file checked: all valid" in proc.stderr


@pytest.mark.slow
def test_github_and_json_formats(repo):
    proc = _check("conf/model/bad.yaml", "--format", "github", cwd=repo)
    assert proc.returncode == 2
    first = proc.stdout.splitlines()[0]
    assert first == (
        "::error file=conf/model/bad.yaml,line=3,col=32::"
        "model.layers.d.output_dim: expected greater than 0; found -1"
    )
    proc = _check("conf/model/bad.yaml", "--format", "json", cwd=repo)
    report = json.loads(proc.stdout)
    assert report["files"] == 1 and report["ok"] is False
    assert report["problems"][0] == {
        "file": "conf/model/bad.yaml",
        "line": 3,
        "column": 32,
        "path": "model.layers.d.output_dim",
        "message": "expected greater than 0; found -1",
    }


@pytest.mark.slow
def test_run_settings_on_the_command_line_apply(repo):
    """A plugin is allowed for the whole check by allow_plugins, as for a run."""
    (repo / "conf/model/plug.yaml").write_text(
        "plugins: [examples.custom_masking]\n"
        + (REPO / "conf/model/custom_masking_example.yaml")
        .read_text()
        .split("plugins:")[1]
        .split("\n", 1)[1]
    )
    proc = _check("conf/model/plug.yaml", cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (repo / "conf/model/plug.yaml").write_text(
        "plugins: [my_plug]\n"
        + BAD.split("layers")[0]
        + "layers: {d: {type: Dense, output_dim: 1}}\n"
    )
    (repo / "my_plug.py").write_text("")
    assert _check("conf/model/plug.yaml", cwd=repo).returncode == 2
    proc = _check("conf/model/plug.yaml", "allow_plugins=[my_plug]", cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_positions_of_config_paths():
    from runner.config.positions import locate

    text = (REPO / "conf/model/dense_example.yaml").read_text()
    lines = text.splitlines()
    line, col = locate(text, "model.layers.dense.output_dim")
    assert lines[line - 1][col - 1 :] == "3"
    line, col = locate(text, "model.layers.dense.weights.W[1][2]")
    assert lines[line - 1][col - 1 : col + 2] == "0.5"
    assert locate(text, "model.layers.nothing") == locate(text, "model.layers")
    assert locate(text, "seed") == (1, 1)


@pytest.mark.slow
def test_options_and_run_settings_mix_in_any_order(repo):
    proc = _check(
        "conf/model/good.yaml",
        "--format",
        "json",
        "allow_plugins=[examples.custom_masking]",
        cwd=repo,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout) == {"files": 1, "ok": True, "problems": []}


@pytest.mark.slow
def test_a_symlink_leading_out_of_the_folder_is_never_read(tmp_path):
    """A link planted in conf/model/ that leads to a private file elsewhere: the check reports
    the link and never reads (or prints values of) the file it leads to."""
    private = tmp_path / "private.json"
    secret = "topsecret-4711"
    private.write_text(
        json.dumps(
            {
                "inputs": {"x": {"data": [[1.0]]}},
                "layers": {"d": {"type": "Dense", "output_dim": secret}},
            }
        )
    )
    model = tmp_path / "repo" / "conf" / "model"
    model.mkdir(parents=True)
    (model / "good.yaml").write_text((REPO / "conf/model/dense_example.yaml").read_text())
    (model / "priv.yaml").symlink_to(private)
    proc = _check("conf/model", cwd=tmp_path / "repo")
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.splitlines() == [
        "conf/model/priv.yaml:1:1: (path): a symlink that leads outside the folder checked: "
        "never read"
    ]
    assert secret not in proc.stdout + proc.stderr
    assert "2 model files checked: 1 with 1 problem(s)" in proc.stderr

"""Configs from strangers: every attack a model file (and what it pulls in) can make is refused.

The attacker writes any file a config names: the model file, files it pulls in through
``defaults:``, files beside it (plugins, data), other files in the config directory. The person
running types only ``python -m runner --config-dir DIR +model=NAME [task=validate]``. Each
attack must end with exit 2 and a message naming the file (and line), and nothing may be
written outside the run folder, no code may run and no secret may reach any output.

CLI cases start together (one process each) and are collected once, to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-Token-9f8e7d"
GOOD_MODEL = "inputs: {x: {data: [[1.0, 2.0]]}}\nlayers: {d: {type: Dense, output_dim: 1}}\n"


def _touch(target: Path) -> str:
    return f"{{_target_: pathlib.Path.touch, self: {target}}}"


def attacks(root: Path) -> dict[str, dict]:
    """name -> {files: {relative path: text}, args: [...], expect: [fragments of the message]}."""
    pwned = root / "PWNED"
    return {
        "global-package-callback": {
            "files": {
                "model/evil.yaml": f"# @package _global_\nhydra:\n  callbacks:\n"
                f"    evil: {_touch(pwned)}\n"
            },
            "expect": ["model/evil.yaml:1:1", "@package _global_", "model only"],
        },
        "global-package-run-settings": {
            "files": {
                "model/evil.yaml": "# @package _global_\nseed: 7\nmax_memory_mb: 1e9\n"
                "hydra: {run: {dir: /tmp/elsewhere}}\n" + GOOD_MODEL
            },
            "expect": ["model/evil.yaml:1:1", "@package _global_"],
        },
        "other-package": {
            "files": {"model/evil.yaml": f"# @package hydra.callbacks\nevil: {_touch(pwned)}\n"},
            "expect": ["model/evil.yaml:1:1", "@package hydra.callbacks"],
        },
        "hydra-key": {
            "files": {"model/evil.yaml": GOOD_MODEL + "hydra:\n  run: {dir: /tmp/elsewhere}\n"},
            "expect": ["model/evil.yaml:3:1", "cannot configure Hydra"],
        },
        "defaults-into-hydra-group": {
            "files": {
                "model/evil.yaml": "defaults:\n  - /hydra/callbacks: evil\n  - _self_\n"
                + GOOD_MODEL,
                "hydra/callbacks/evil.yaml": f"evil: {_touch(pwned)}\n",
            },
            "expect": ["model/evil.yaml:2:5", "only pull in other model files"],
        },
        "defaults-override": {
            "files": {
                "model/evil.yaml": "defaults:\n  - override /hydra/launcher: basic\n" + GOOD_MODEL
            },
            "expect": ["model/evil.yaml:2:5", "cannot override"],
        },
        "defaults-global-package": {
            "files": {
                "model/evil.yaml": "defaults:\n  - base@_global_\n" + GOOD_MODEL,
                "model/base.yaml": f"hydra:\n  callbacks:\n    evil: {_touch(pwned)}\n",
            },
            "expect": ["model/evil.yaml:2:5", "_global_"],
        },
        "pulled-in-file-global": {
            "files": {
                "model/evil.yaml": "defaults:\n  - base\n  - _self_\n" + GOOD_MODEL,
                "model/base.yaml": "# @package _global_\nhydra:\n  callbacks:\n"
                f"    evil: {_touch(pwned)}\n",
            },
            "expect": ["model/base.yaml:1:1", "@package _global_"],
        },
        "target-deep": {
            "files": {
                "model/evil.yaml": "inputs: {x: {data: [[1.0]]}}\nlayers:\n  d:\n"
                "    type: Dense\n    output_dim: 1\n"
                "    init: {_target_: os.system, _args_: [id]}\n"
            },
            "expect": ["model/evil.yaml:6:12", "'_target_' is not accepted"],
        },
        "non-model-file-from-config-dir": {
            "files": {
                "model/ok.yaml": GOOD_MODEL,
                "hydra/callbacks/evil.yaml": f"evil: {_touch(pwned)}\n",
            },
            "model": "ok",
            "args": ["hydra/callbacks=evil"],
            "expect": ["hydra/callbacks/evil.yaml", "not a model file"],
        },
        "experiment-from-config-dir": {
            "files": {
                "model/ok.yaml": GOOD_MODEL,
                "experiment/evil.yaml": "# @package _global_\nseed: 9\n",
            },
            "model": "ok",
            "args": ["+experiment=evil"],
            "expect": ["experiment/evil.yaml", "not a model file"],
        },
        "env-secret": {
            "files": {
                "model/evil.yaml": "inputs: {x: {data: [[1.0]]}}\nlayers:\n"
                "  d: {type: '${oc.env:RUNNER_TEST_SECRET}'}\n"
            },
            "expect": [
                "model/evil.yaml:3:13",
                "resolver 'oc.env' is not allowed",
                "allow_resolvers=[oc.env]",
            ],
        },
        "env-secret-nested": {
            "files": {
                "model/evil.yaml": "inputs: {x: {data: [[1.0]]}}\nlayers:\n"
                "  d: {type: Dense, output_dim: 1, name2: "
                "'${oc.decode:${oc.env:RUNNER_TEST_SECRET}}'}\n"
            },
            "expect": ["model/evil.yaml:3", "is not allowed"],
        },
        "env-secret-composed-name": {  # OmegaConf's grammar lets a resolver name interpolate
            "files": {
                "model/evil.yaml": "inputs: {x: {data: [[1.0]]}}\nlayers:\n"
                "  d: {type: Dense, activation: env, output_dim: "
                "'${oc.${model.layers.d.activation}:RUNNER_TEST_SECRET}'}\n"
            },
            "expect": [
                "model/evil.yaml:3:49",
                "the resolver name 'oc.${model.layers.d.activation}' is built from an "
                "interpolation",
            ],
        },
        "hydra-resolver": {
            "files": {
                "model/evil.yaml": "inputs: {x: {data: [[1.0]]}}\nlayers:\n"
                "  d: {type: '${hydra:runtime.cwd}'}\n"
            },
            "expect": ["model/evil.yaml:3", "resolver 'hydra' is not allowed"],
        },
        "alias-bomb": {
            "files": {
                "model/evil.yaml": "a: &a [1,1,1,1,1,1,1,1,1,1]\n"
                + "".join(
                    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
                    for p, c in zip("abcdefgh", "bcdefghi")
                )
            },
            "expect": ["model/evil.yaml", "expands to more than"],
        },
        "deep-nesting": {
            "files": {
                "model/evil.yaml": "inputs: {x: {data: " + "[" * 60 + "1" + "]" * 60 + "}}\n"
            },
            "expect": ["model/evil.yaml:1", "nesting deeper than"],
        },
        "plugin-beside-model": {
            "files": {"model/evil.yaml": "plugins: [evil_plugin]\n" + GOOD_MODEL},
            "cwd_files": {"evil_plugin.py": f"open({str(pwned)!r}, 'w').write('x')\n"},
            "expect": ["model.plugins[0]", "is not allowed", "allow_plugins=[evil_plugin]"],
            "run_folder": True,
        },
        "library-shadowing-in-cwd": {
            "files": {"model/ok.yaml": GOOD_MODEL},
            "cwd_files": {
                "yaml.py": f"open({str(pwned)!r}, 'w').write('x')\n",
                "numpy.py": f"open({str(pwned)!r}, 'w').write('x')\n",
            },
            "model": "ok",
            "code": 0,
            "expect": [],
        },
        "data-outside": {
            "files": {
                "model/evil.yaml": "inputs: {x: {data: {path: ../private/key.csv}}}\n"
                "layers: {d: {type: Dense, output_dim: 1}}\n"
            },
            "expect": ["model.inputs.x.data", "outside the directories", "data_dirs=[DIR]"],
            "secret_file": True,
            "run_folder": True,
        },
        "data-symlink": {
            "files": {
                "model/evil.yaml": "inputs: {x: {data: {path: key.csv}}}\n"
                "layers: {d: {type: Dense, output_dim: 1}}\n"
            },
            "cwd_symlinks": {"key.csv": "../private/key.csv"},
            "expect": ["model.inputs.x.data", "outside the directories"],
            "secret_file": True,
            "run_folder": True,
        },
        "defaults-symlink-outside": {  # a planted link pulls a private JSON file into model
            "files": {
                "model/evil.yaml": "defaults:\n  - creds\n  - _self_\n"
                "inputs: {x: {data: [[1.0]]}}\n"
                "layers: {d: {type: Dense, output_dim: '${model.token}'}}\n"
            },
            "conf_symlinks": {"model/creds.yaml": "../../private/creds.json"},
            "expect": ["model/creds.yaml leads outside its config folder"],
        },
        "defaults-symlink-beside": {  # the link stays in the config folder, not in model/
            "files": {
                "model/evil.yaml": "defaults:\n  - creds\n  - _self_\n"
                "inputs: {x: {data: [[1.0]]}}\n"
                "layers: {d: {type: Dense, output_dim: '${model.token}'}}\n",
                "creds.json": json.dumps({"token": SECRET}),  # e.g. at a repository's root
            },
            "conf_symlinks": {"model/creds.yaml": "../creds.json"},
            "expect": ["model/creds.yaml leads outside its config folder model/"],
        },
        "weights-outside": {
            "files": {"model/evil.yaml": GOOD_MODEL + "weights: {path: ~/../../etc/w.npz}\n"},
            "expect": ["model.weights", "outside the directories"],
            "run_folder": True,
        },
    }


@pytest.fixture(scope="module")
def attack_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("strangers")
    cases = attacks(root)
    procs = {}
    for name, case in cases.items():
        base = root / name
        conf, cwd = base / "conf", base / "work"
        (base / "private").mkdir(parents=True)
        (base / "private" / "key.csv").write_text(f"{SECRET},1\n2,3\n")
        cwd.mkdir()
        for rel, text in case["files"].items():
            (conf / rel).parent.mkdir(parents=True, exist_ok=True)
            (conf / rel).write_text(text)
        (base / "private" / "creds.json").write_text(json.dumps({"token": SECRET}))
        for rel, target in case.get("conf_symlinks", {}).items():
            (conf / rel).symlink_to(target)
        for rel, text in case.get("cwd_files", {}).items():
            (cwd / rel).write_text(text)
        for rel, target in case.get("cwd_symlinks", {}).items():
            (cwd / rel).symlink_to(target)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "RUNNER_TEST_SECRET": SECRET,
            "PYTHONWARNINGS": "ignore::DeprecationWarning",
        }
        env.pop("HYDRA_FULL_ERROR", None)
        cmd = [
            sys.executable,
            "-m",
            "runner",
            "--config-dir",
            str(conf),
            f"+model={case.get('model', 'evil')}",
            *case.get("args", []),
            "task=validate",
        ]
        procs[name] = (
            base,
            subprocess.Popen(
                cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            ),
        )
    results = {}
    for name, (base, proc) in procs.items():
        out, err = proc.communicate(timeout=240)
        results[name] = (base, proc.returncode, out + err)
    return root, cases, results


def _all_bytes(folder: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(attacks(Path("/x"))))
def test_attack_is_refused(attack_results, name):
    root, cases, results = attack_results
    case = cases[name]
    base, code, text = results[name]
    assert code == case.get("code", 2), text
    for fragment in case["expect"]:
        assert fragment in text, (fragment, text)
    assert "Traceback" not in text
    assert not (root / "PWNED").exists(), "attacker code ran"
    work = base / "work"
    if case.get("code", 2) == 2:
        outputs = work / "outputs"
        if case.get("run_folder"):  # refused by the run: its folder says so
            (result_file,) = outputs.rglob("result.json")
            result = json.loads(result_file.read_text())
            assert result["status"] == "error"
        else:  # refused while Hydra loaded the file: nothing was created at all
            assert not outputs.exists(), sorted(outputs.rglob("*"))
    assert SECRET not in text
    if work.exists():
        assert SECRET.encode() not in _all_bytes(work)
    assert not Path("/tmp/elsewhere").exists()


@pytest.mark.slow
def test_cfg_job_is_refused_too(tmp_path):
    """--cfg job and --cfg hydra load the model file: the guard refuses before printing."""
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "evil.yaml").write_text("# @package _global_\nseed: 7\n" + GOOD_MODEL)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for flag in ("job", "hydra"):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "runner",
                "--config-dir",
                str(tmp_path / "conf"),
                "+model=evil",
                "--cfg",
                flag,
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2 and "model/evil.yaml:1:1" in proc.stderr


@pytest.mark.slow
def test_command_line_opens_the_doors_it_names(tmp_path):
    """What the person running allows works: a plugin from the current folder, oc.env (whose
    value is then masked everywhere), and a data directory outside the project."""
    conf, work, data = tmp_path / "conf" / "model", tmp_path / "work", tmp_path / "data"
    for d in (conf, work, data):
        d.mkdir(parents=True)
    (work / "double_plugin.py").write_text(
        textwrap.dedent("""
        from typing import Literal
        from layers.base import Layer, SpecBase
        from layers.registry import register

        class DoubleSpec(SpecBase):
            type: Literal["Double"] = "Double"

        @register
        class Double(Layer):
            Spec = DoubleSpec
            def output_shape(self, input_shape):
                return input_shape
            def forward(self, x, mask, ctx):
                return 2 * x, mask, None
            def backward(self, dy, cache, ctx):
                return 2 * dy, {}
    """)
    )
    (data / "x.csv").write_text("1,2\n3,4\n")
    (conf / "ok.yaml").write_text(
        textwrap.dedent("""
        plugins: [double_plugin]
        inputs: {x: {data: {path: ../data/x.csv}}}
        layers:
          d: {type: Double}
          e: {type: '${oc.env:RUNNER_TEST_LAYER}', output_dim: 1, init: one}
        outputs: [d, e]
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "RUNNER_TEST_LAYER": "Dense"}
    base = [sys.executable, "-m", "runner", "--config-dir", str(tmp_path / "conf"), "+model=ok"]
    opened = ["allow_plugins=[double_plugin]", "allow_resolvers=[oc.env]", f"data_dirs=[{data}]"]
    proc = subprocess.run(
        [*base, *opened], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result_file,) = (work / "outputs").rglob("result.json")
    result = json.loads(result_file.read_text())
    assert result["outputs"]["d"]["values"] == [[2.0, 4.0], [6.0, 8.0]]
    assert result["outputs"]["e"]["values"] == [[6.0], [14.0]]  # init one, reads d: 2+4, 6+8
    # The resolved environment value is masked in the files the run wrote.
    config_text = (result_file.parent / "config.yaml").read_text()
    assert "type: '***'" in config_text and "type: Dense" not in config_text
    # Each door closes again when its setting is left out.
    for left_out in opened:
        rest = [o for o in opened if o != left_out]
        proc = subprocess.run(
            [*base, *rest, "task=validate"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, (left_out, proc.stdout + proc.stderr)
        assert left_out.split("=")[0] in proc.stdout + proc.stderr


def test_control_characters_in_names_never_reach_the_terminal(run_config):
    for name in [
        "a\nmodel.layers.x: forged line",
        "\x1b[31mred",
        "nul\x00name",
        "m/mask",
        "s.0",
        "ae/encoder/enc",
        "\u202eevil",
    ]:
        layers = {name: {"type": "Dense", "output_dim": 1}}
        outcome, result = run_config(
            {"model": {"inputs": {"x": {"data": [[1.0]]}}, "layers": layers}}
        )
        assert outcome.exit_code == 2
        (problem,) = result["error"]["problems"]
        assert "names of layers and inputs are identifiers" in problem["message"]
        shown = str(outcome.result["error"]["message"])
        from runner.errors import ConfigError, Problem

        text = str(ConfigError([Problem(**problem)]))
        assert text.isprintable() and "\n" not in text, repr(text)
        assert shown  # result.json keeps the raw path (JSON escapes it)


def test_inner_layer_names_are_identifiers_too(run_config):
    layer = {
        "type": "AutoEncoder",
        "encoder": {"enc/W": {"type": "Dense", "output_dim": 1}},
        "decoder": {"dec": {"type": "Dense", "output_dim": 1}},
    }
    outcome, result = run_config(
        {"model": {"inputs": {"x": {"data": [[1.0]]}}, "layers": {"ae": layer}}}
    )
    assert outcome.exit_code == 2
    (problem,) = result["error"]["problems"]
    assert problem["path"] == "model.layers.ae.encoder.enc/W"


def test_weights_that_overflow_floatx_are_refused(run_config):
    dense = {"type": "Dense", "output_dim": 1, "weights": {"W": [[1e300]], "b": [0.0]}}
    config = {"model": {"inputs": {"x": {"data": [[1.0]]}}, "layers": {"d": dense}}}
    outcome, result = run_config(config)
    assert outcome.exit_code == 2
    (problem,) = result["error"]["problems"]
    assert problem["path"] == "model.layers.d.weights.W"
    assert "float32" in problem["message"] and "Inf" in problem["message"]
    outcome, result = run_config({**config, "floatx": "float64"})  # finite in float64: runs
    assert outcome.exit_code == 0 and result["outputs"]["d"]["values"] == [[1e300]]


def test_inputs_that_overflow_floatx_are_refused_at_plan_time(run_config):
    config = {
        "task": "validate",
        "model": {
            "inputs": {"x": {"data": [[1.0, 4e38]]}},
            "layers": {"d": {"type": "Dense", "output_dim": 1}},
        },
    }
    outcome, result = run_config(config)
    assert outcome.exit_code == 2
    (problem,) = result["error"]["problems"]
    assert problem["path"] == "model.inputs.x.data" and "(0, 1)" in problem["message"]


def test_load_model_file_applies_the_guard(tmp_path):
    from runner.api import load_model_file
    from runner.config.guard import ModelFileError

    evil = tmp_path / "evil.yaml"
    evil.write_text("# @package _global_\n" + GOOD_MODEL)
    with pytest.raises(ModelFileError, match="evil.yaml:1:1"):
        load_model_file(evil)
    evil.write_text(GOOD_MODEL + "extra: ${oc.env:HOME}\n")
    with pytest.raises(ModelFileError, match="oc.env"):
        load_model_file(evil)


@pytest.mark.parametrize(
    "value, refused",
    [
        ("${my-env:HOME}", "resolver 'my-env' is not allowed"),  # OmegaConf names may hold '-'
        ("${oc.select:a,${oc.${b}:HOME}}", "resolver name 'oc.${b}' is built from"),
        ("${ oc.select : a , ${ now : %Y } }", "resolver 'now' is not allowed"),
    ],
)
def test_every_resolver_name_omegaconf_reads_is_checked(tmp_path, value, refused):
    from runner.config.guard import ModelFileError, check_model_file

    model = tmp_path / "m.yaml"
    model.write_text(GOOD_MODEL + f"extra: '{value}'\n")
    with pytest.raises(ModelFileError, match=re.escape(refused)):
        check_model_file(model)
    model.write_text(GOOD_MODEL + "extra: '${oc.select:a,${b}} ${oc.dict.keys:c}'\n")
    check_model_file(model)  # the allowed ones, nested, stay allowed


def test_messages_about_file_contents_give_positions_not_data(run_config, tmp_path):
    """A CSV value or a .npy header that cannot be read: the message says where, never what."""
    (tmp_path / "x.csv").write_text(f"1,2\n3,{SECRET}\n")
    (tmp_path / "x.npy").write_bytes(
        b"\x93NUMPY\x01\x00\x20\x00{'descr': '"
        + SECRET.encode()
        + b"', 'fortran_order': False, 'shape': (1,)}    \n"
    )
    for name, fragment in (("x.csv", "line 2, column 2: not a number"), ("x.npy", "")):
        config = {
            "model": {
                "inputs": {"x": {"data": {"path": name}}},
                "layers": {"d": {"type": "Dense", "output_dim": 1}},
            }
        }
        outcome, result = run_config(config, cwd=tmp_path)
        assert outcome.exit_code == 2
        (problem,) = result["error"]["problems"]
        assert fragment in problem["message"] and SECRET not in json.dumps(result), problem


def test_a_broken_installed_plugin_fails_only_the_models_that_name_it(
    run_config, tmp_path, monkeypatch
):
    """An installed entry point whose module is broken: models that don't name it run; one
    that names it gets a message."""
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[runner.layers]\nbroken = broken_plugin_mod\n")
    (tmp_path / "broken_plugin_mod.py").write_text("raise RuntimeError('broken on import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plain = {
        "model": {
            "inputs": {"x": {"data": [[1.0]]}},
            "layers": {"d": {"type": "Dense", "output_dim": 1}},
        }
    }
    outcome, _ = run_config(plain)
    assert outcome.exit_code == 0
    outcome, result = run_config({"model": {**plain["model"], "plugins": ["broken"]}})
    assert outcome.exit_code == 2
    (problem,) = result["error"]["problems"]
    assert problem["path"] == "model.plugins[0]"
    assert "RuntimeError: broken on import" in problem["message"]


def test_the_guards_run_settings_are_the_schemas():
    from runner.config.guard import RUN_SETTINGS
    from runner.config.schema import run_spec_class

    fields = run_spec_class().model_fields
    model_fields = fields["model"].annotation.model_fields
    assert RUN_SETTINGS == set(fields) - set(model_fields) - {"model"}


def test_a_run_setting_in_a_model_file_is_refused_with_its_line(tmp_path):
    from runner.api import load_model_file
    from runner.config.guard import ModelFileError

    evil = tmp_path / "evil.yaml"
    evil.write_text(GOOD_MODEL + "max_memory_mb: 1.0e+9\n")
    with pytest.raises(ModelFileError, match=r"evil.yaml:3:1: 'max_memory_mb' is a run setting"):
        load_model_file(evil)


def test_a_config_file_above_one_mebibyte_is_refused_before_it_is_parsed(tmp_path):
    """100,000 inline rows (1.4 MB of YAML) took minutes through OmegaConf; now one message."""
    from runner.api import load_model_file
    from runner.config.guard import ModelFileError

    rows = ",".join("[1.0,2.0,3.0]" for _ in range(100_000))
    big = tmp_path / "rows.yaml"
    big.write_text(f"inputs: {{x: {{data: [{rows}]}}}}\nlayers: {{d: {{type: Dense}}}}\n")
    with pytest.raises(ModelFileError) as info:
        load_model_file(big)
    assert "more than 1,048,576 bytes" in str(info.value)
    assert "{path: data/x.npy}" in str(info.value)


def test_every_file_a_config_names_is_confined_wherever_it_sits(run_config, tmp_path):
    """Targets, validation data, per-parameter weights and model weights: one walk over the
    validated config finds every path, so a new place for a file cannot be forgotten."""
    outside = tmp_path.parent / "outside.npy"
    np.save(outside, np.ones((1, 1), dtype=np.float32))
    far = str(outside)
    model = {
        "inputs": {"x": {"data": [[1.0]]}},
        "layers": {"d": {"type": "Dense", "output_dim": 1, "weights": {"W": {"path": far}}}},
        "targets": {"d": {"path": far}},
        "weights": {"path": "../outside.npz", "strict": False},
        "fit": {
            "validation_data": {"inputs": {"x": {"path": far}}, "targets": {"d": {"path": far}}}
        },
    }
    outcome, result = run_config({"task": "validate", "model": model}, cwd=tmp_path)
    assert outcome.exit_code == 2
    paths = {p["path"] for p in result["error"]["problems"]}
    assert paths == {
        "model.layers.d.weights.W",
        "model.targets.d",
        "model.weights",
        "model.fit.validation_data.inputs.x",
        "model.fit.validation_data.targets.d",
    }
    assert all("outside the directories" in p["message"] for p in result["error"]["problems"])


def test_paths_the_system_cannot_look_up_are_named_problems(run_config, tmp_path):
    """A name too long, a NUL character or a symlink loop, wherever a file is named (data,
    targets, weights, shard globs): each is a named problem (exit 2), not an internal error."""
    (tmp_path / "loop1.npy").symlink_to("loop2.npy")
    (tmp_path / "loop2.npy").symlink_to("loop1.npy")
    model = {
        "inputs": {"x": {"shape": [1], "data": {"path": "a" * 300 + ".npy"}}},
        "layers": {"d": {"type": "Dense", "output_dim": 1, "weights": {"path": "x\0.npz"}}},
        "targets": {"d": {"path": "loop1.npy"}},
        "fit": {"validation_data": {"inputs": {"x": {"path": "b" * 300 + "-*.npy"}}}},
    }
    outcome, result = run_config({"task": "validate", "model": model}, cwd=tmp_path)
    assert outcome.exit_code == 2
    found = {p["path"]: p["message"] for p in result["error"]["problems"]}
    assert found == {
        "model.inputs.x.data": "cannot use this path: file name too long",
        "model.layers.d.weights": "cannot use this path: the path holds a NUL character",
        "model.targets.d": "cannot use this path: its symlinks form a loop",
        "model.fit.validation_data.inputs.x": "cannot use this path: file name too long",
    }


# Values oc.env hands out, in the shapes a message changes them: long (messages shorten a value
# to 57 characters and '...'), with backslashes and both quotes (repr and JSON escape them), and
# digits only (read as a number, which result.json would otherwise keep as one).
_ENV_SECRETS = {
    "long": "tok-" + "".join(f"{i:02d}Xq" for i in range(40)),
    "escaped": "ab\\cd\"ef'gh-0123456789",
    "number": "98765",
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(_ENV_SECRETS))
def test_an_allowed_environment_value_is_masked_in_every_form_a_message_shows(cli, tmp_path, kind):
    secret = _ENV_SECRETS[kind]
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "m.yaml").write_text(
        "inputs: {x: {shape: [3], data: [[1, 2, 3]]}}\n"
        "layers: {d: {type: Dense, output_dim: '${oc.env:RUNNER_TEST_SECRET}', inputs: [x]}}\n"
    )
    res = cli(
        "--config-dir",
        str(tmp_path / "conf"),
        "+model=m",
        "allow_resolvers=[oc.env]",
        "task=validate",
        "hydra.run.dir=run",
        env={"RUNNER_TEST_SECRET": secret},
    )
    assert res.returncode == (0 if kind == "number" else 2), res.stdout + res.stderr
    if kind != "number":
        assert "found '***" in res.stdout + res.stderr  # the message still says what it found
    shown = (res.stdout + res.stderr).encode() + _all_bytes(tmp_path / "run")
    pieces = {secret[i : i + 8] for i in range(len(secret) - 7)} | {secret}
    pieces |= {repr(secret)[1:-1], json.dumps(secret)[1:-1]}
    # (standing alone: a hash or a timestamp may hold the digits of a short number)
    found = [p for p in pieces if re.search(rb"(?<![\w.])" + re.escape(p.encode()), shown)]
    assert not found


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["runner.check", "conf/model"],
        ["runner", "export-onnx", "+model=m", "--config-dir", "conf", "--out", "m.onnx"],
    ],
)
def test_the_other_commands_mask_an_allowed_environment_value_too(tmp_path, command):
    """layer-runner check and export-onnx read model files as a run does, so values oc.env
    hands out are masked in their messages as in a run's."""
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "m.yaml").write_text(
        "inputs: {x: {data: [[1.0, 2.0]]}}\n"
        "layers: {d: {type: '${oc.env:RUNNER_TEST_SECRET}', output_dim: 1}}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "RUNNER_TEST_SECRET": SECRET}
    proc = subprocess.run(
        [sys.executable, "-m", *command, "allow_resolvers=[oc.env]"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    shown = proc.stdout + proc.stderr
    assert proc.returncode == 2, shown
    assert "model.layers.d: unknown layer type '***'" in shown
    assert SECRET not in shown

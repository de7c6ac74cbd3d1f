"""layer-runner export-onnx: a run folder's trained weights, and every refusal with its message
(exit 2, nothing written)."""

from __future__ import annotations

import copy
import textwrap

import numpy as np
import onnx
import pytest
import yaml
from onnx import numpy_helper

from runner.errors import ConfigError
from runner.interop.onnx_export import cli
from runner.interop.onnx_export.verify import deviation, run_onnx
from runner.run import run
from tests.test_onnx_export import ROOT, _exported

X = np.random.default_rng(0).normal(size=(12, 3)).round(3)
T = np.stack([X.sum(axis=1), X[:, 0] - X[:, 2]], axis=1)
FIT = {
    "task": "fit",
    "seed": 0,
    "progress": False,
    "fit": {"epochs": 5, "batch_size": 4, "loss": "mse", "optimizer": {"name": "sgd", "lr": 0.1}},
    "model": {
        "inputs": {"x": {"shape": [3], "data": X.tolist()}},
        "layers": {
            "h": {"type": "Dense", "output_dim": 4, "activation": "tanh"},
            "drop": {"type": "Dropout", "p": 0.5},
            "out": {"type": "Dense", "output_dim": 2},
        },
        "targets": {"out": T.tolist()},
    },
}


def _predicted(tmp_path, name: str, **model) -> np.ndarray:
    """Our predict run of FIT's model (test phase), as outputs.npz gives it."""
    config = {"seed": 0, "model": {**copy.deepcopy(FIT["model"]), **model}}
    del config["model"]["targets"]
    assert run(config, tmp_path / name, tmp_path).exit_code == 0
    with np.load(tmp_path / name / "outputs.npz", allow_pickle=False) as npz:
        return npz["out"]


@pytest.mark.slow
def test_a_run_folder_exports_with_its_trained_weights(tmp_path, monkeypatch, capsys):
    assert run(copy.deepcopy(FIT), tmp_path / "fit", tmp_path).exit_code == 0
    monkeypatch.chdir(tmp_path)
    assert cli.main(["fit", "--out", "model.onnx"]) == 0
    printed = capsys.readouterr().out
    assert "onnxruntime vs our runtime on 12 row(s): largest deviation" in printed
    assert "wrote model.onnx (opset 18" in printed
    data = (tmp_path / "model.onnx").read_bytes()
    # the initializers are the trained arrays of weights.npz, bit for bit
    with np.load(tmp_path / "fit" / "weights.npz", allow_pickle=False) as npz:
        trained = {k: npz[k] for k in npz.files}
    initializers = {
        t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(data).graph.initializer
    }
    for key, array in trained.items():
        np.testing.assert_array_equal(initializers[key], array)
    # and the outputs are the run's predictions with those weights (a predict run loading them)
    got = run_onnx(data, {"x": X.astype(np.float32)})["out"]
    assert (
        deviation(got, _predicted(tmp_path, "trained", weights={"path": "fit/weights.npz"})) <= 1e-5
    )
    untrained = _predicted(tmp_path, "untrained")
    assert deviation(got, untrained) > 1e-2  # training moved them: the trained ones were used


def test_nothing_to_export_and_missing_run_files_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--out", "m.onnx", "seed=1"]) == 2
    assert "say which model: +model=NAME or one RUN_DIR" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["empty", "--out", "m.onnx"]) == 2
    err = capsys.readouterr().err
    assert (
        "RUN_DIR: empty/config.yaml not found: a run folder holds config.yaml and weights.npz"
        in err
    )
    assert cli.main(["+model=no_such_model", "--out", "m.onnx"]) == 2
    err = capsys.readouterr().err
    assert "refused: 1 problem (nothing written)" in err and "+model:" in err
    assert "no_such_model" in err
    assert not (tmp_path / "m.onnx").exists()
    assert cli.main(["+model=dense_example", "--out", "empty"]) == 1  # the machine's: exit 1
    assert "export-onnx: cannot write empty: [Errno 21] Is a directory" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]  # no temporary file left behind


@pytest.mark.parametrize("name", ["config.yaml", "weights.npz"])
def test_a_run_folders_file_that_leads_outside_it_is_never_read(
    tmp_path, monkeypatch, capsys, name
):
    """A run folder is a file like any other: a link planted in it would export another
    file's arrays as the model's weights, or read another YAML file as its config."""
    folder, private = tmp_path / "run", tmp_path / "private"
    folder.mkdir()
    private.mkdir()
    model = {"inputs": {"x": {"shape": [3], "data": [[1, 2, 3]]}}, "layers": {}}
    (folder / "config.yaml").write_text(yaml.safe_dump({"model": model}))
    np.savez(folder / "weights.npz", w=np.zeros(1))
    (private / name).write_bytes((folder / name).read_bytes())
    (folder / name).unlink()
    (folder / name).symlink_to(private / name)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--out", "m.onnx"]) == 2
    err = capsys.readouterr().err
    assert f"RUN_DIR: run/{name} leads outside the run folder (a symlink)" in err
    assert not (tmp_path / "m.onnx").exists()


def test_a_run_folder_cannot_raise_the_memory_limit(tmp_path):
    """A run folder is a file like any other: its config.yaml carries how the model computes
    (seed) but never a limit, which only this command line sets (default 4096 MB)."""
    folder = tmp_path / "run"
    folder.mkdir()
    model = {"inputs": {"x": {"shape": [3], "data": [[1, 2, 3]]}}, "layers": {}}
    (folder / "config.yaml").write_text(
        yaml.safe_dump({"seed": 5, "max_memory_mb": 1e9, "model": model})
    )
    np.savez(folder / "weights.npz", w=np.zeros(1))
    config, _ = cli._from_run_folder(folder, [])
    assert (config["seed"], config["max_memory_mb"]) == (5, 4096)
    config, _ = cli._from_run_folder(folder, ["max_memory_mb=100"])
    assert config["max_memory_mb"] == 100


def test_a_run_folders_config_is_bounded_before_it_is_built(tmp_path, monkeypatch, capsys):
    """600 bytes of YAML aliases that expand to a million values: refused from the composed
    YAML tree, as a model file would be, before anything is built (ten times more aliases
    would take 40 GB)."""
    folder = tmp_path / "run"
    folder.mkdir()
    lines = ["anchors:", "  b0: &b0 {type: Dense, output_dim: 2}"]
    for i in range(1, 7):
        lines.append(f"  b{i}: &b{i} {{" + ", ".join(f"k{j}: *b{i - 1}" for j in range(10)) + "}")
    lines += [
        "model:",
        "  inputs: {x: {shape: [3], data: [[1, 2, 3]]}}",
        "  layers: {d: {type: Dense, output_dim: 2, init: *b6}}",  # 390 MB, 3 s when built
    ]
    (folder / "config.yaml").write_text("\n".join(lines) + "\n")
    np.savez(folder / "weights.npz", w=np.zeros(1))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--out", "m.onnx"]) == 2
    err = capsys.readouterr().err
    assert "RUN_DIR: cannot read run/config.yaml:7:7: this YAML expands to more than 200,000" in err


def test_a_plugin_lambda_function_is_refused_by_name():
    config = {
        "seed": 0,
        "model": {
            "plugins": ["examples.lambda_functions"],
            "inputs": {"x": {"shape": [2], "data": [[1, 2]]}},
            "layers": {
                "ok": {"type": "Lambda", "function": "tanh(x)"},
                "act": {"type": "Lambda", "function": "swish(x) + hard_tanh(2 * x)"},
            },
        },
    }
    with pytest.raises(ConfigError) as caught:
        _exported(config)
    (problem,) = caught.value.problems
    assert problem.path == "model.layers.act"
    assert problem.message == (
        "cannot export: function 'swish(x) + hard_tanh(2 * x)' calls 'hard_tanh', 'swish', "
        "registered by a plugin as NumPy code, which has no ONNX form: write it with the "
        "built-in functions (see the Lambda section of the README) to export"
    )


PLUGIN = textwrap.dedent(
    """
    from typing import Literal

    from layers.base import Layer, SpecBase
    from layers.registry import register
    from runner.interop.onnx_export.registry import onnx_emitter


    class TwiceSpec(SpecBase):
        type: Literal["Twice"] = "Twice"


    @register
    class Twice(Layer):
        Spec = TwiceSpec

        def output_shape(self, shape):
            return shape

        def forward(self, x, mask, ctx):
            return x * 2, None, None


    class PlainSpec(SpecBase):
        type: Literal["Plain"] = "Plain"


    @register
    class Plain(Layer):
        Spec = PlainSpec

        def output_shape(self, shape):
            return shape

        def forward(self, x, mask, ctx):
            return x + 1, None, None


    @onnx_emitter("Twice")
    def _wrong(g, layer, x, mask, shape):  # deliberately not forward's math: x * 2.001
        return g.op("Mul", x, g.const(2.001)), None
    """
)
MODEL = textwrap.dedent(
    """
    plugins: [onnx_test_plugin]
    inputs:
      x: {shape: [2], data: [[1, 2], [3, 4]]}
    layers:
      twice: {type: Twice}
    """
)


@pytest.mark.slow
def test_plugins_refused_by_name_and_a_deviating_export_is_not_written(tmp_path, cli):
    (tmp_path / "onnx_test_plugin.py").write_text(PLUGIN)
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "twice.yaml").write_text(MODEL)
    (tmp_path / "conf" / "model" / "plain.yaml").write_text(
        MODEL.replace(
            "twice: {type: Twice}",
            "plain: {type: Plain}\n  again: {type: Plain, inputs: [x]}\noutputs: [plain, again]",
        )
    )
    allow = "allow_plugins=[onnx_test_plugin]"
    runs = {m: cli("--config-dir", "conf", f"+model={m}", allow) for m in ("twice", "plain")}
    assert all(r.returncode == 0 for r in runs.values()), [r.stderr for r in runs.values()]
    twice, plain = (str(runs[m].folder.relative_to(tmp_path)) for m in ("twice", "plain"))

    # a run folder records allow_plugins, but trust comes from this command line only
    refused = cli("export-onnx", twice, "--out", "m.onnx")
    assert refused.returncode == 2
    assert "model.plugins[0]: plugin 'onnx_test_plugin' is not allowed" in refused.stderr

    # a plugin layer without an emitter: every such layer named by its config path
    refused = cli("export-onnx", plain, allow, "--out", "m.onnx")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.splitlines() == [
        "export-onnx: refused: 2 problems (nothing written)",
        *(
            f"  model.layers.{name}: cannot export: Plain (plugin onnx_test_plugin) has no ONNX "
            "form (a plugin adds one with runner.interop.onnx_export.registry.onnx_emitter)"
            for name in ("plain", "again")
        ),
    ]
    assert "Traceback" not in refused.stderr

    # an emitter whose numbers are off: measured, refused, nothing left behind
    refused = cli("export-onnx", twice, allow, "--out", "m.onnx")
    assert refused.returncode == 2, refused.stderr
    # by hand: |2.001x - 2x| / (|2x| + 8) is largest at x = 4: 0.004 / 16 = 0.00025
    assert "largest deviation 0.00025 (output 'twice'; limit 1e-05)" in refused.stdout
    assert refused.stderr.splitlines() == [
        "export-onnx: refused: 1 problem (nothing written)",
        "  --out: not written: onnxruntime's 'twice' deviates by 0.00025 from ours, above "
        "1e-05; please report it with the model file",
    ]
    assert not (tmp_path / "m.onnx").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".m.onnx")] == []


# ---- --config-dir: +model=NAME from a user's own repository of model files ----------------
NET = textwrap.dedent(
    """
    inputs:
      x: {{shape: [2], data: {{path: {data}}}}}
    layers:
      h:
        type: Dense
        output_dim: 3
        activation: relu
        weights: {{W: [[1, 0, -1], [0.5, 1, 0]], b: [0, 0.5, 1]}}
      out:
        type: Dense
        output_dim: 1
        weights: {{W: [[1], [2], [3]], b: [-1]}}
    """
)
NET_X = np.array([[1, 2], [3, -1]], np.float32)
# by hand: relu([2, 2, -1] + b1) = [2, 2.5, 0] -> 2 + 5 - 1 = 6; relu([2.5, -1, -3] + b1) =
# [2.5, 0, 0] -> 2.5 - 1 = 1.5
NET_Y = np.array([[6.0], [1.5]])


def _config_repo(root, folder: str = "my conf's") -> tuple:
    """A config repository outside the working folder, its model reading a file beside it
    (allowed: the model file's own folder, as for python -m runner)."""
    repo, work = root / folder, root / "work"
    (repo / "model").mkdir(parents=True)
    work.mkdir()
    np.save(repo / "model" / "x.npy", NET_X)
    (repo / "model" / "net.yaml").write_text(NET.format(data=repo / "model" / "x.npy"))
    return repo, work


def test_a_model_from_a_config_dir_exports_and_agrees(tmp_path, monkeypatch, capsys):
    from runner.api import compose_model

    repo, work = _config_repo(tmp_path)  # a folder name with a space and a quote
    monkeypatch.chdir(work)
    assert cli.main(["+model=net", "--config-dir", f"../{repo.name}", "--out", "m.onnx"]) == 0
    assert "wrote m.onnx (opset 18" in capsys.readouterr().out
    got = run_onnx((work / "m.onnx").read_bytes(), {"x": NET_X})["out"]
    # our predict of the same model file, composed from the same folder
    config, files = compose_model("net", [], repo)
    assert files == [(repo / "model" / "net.yaml").resolve()]
    assert run({**config, "seed": 0}, work / "run", work, model_file=files[0]).exit_code == 0
    with np.load(work / "run" / "outputs.npz", allow_pickle=False) as npz:
        ours = npz["out"]
    assert deviation(got, ours) <= 1e-5
    np.testing.assert_allclose(got, NET_Y, rtol=1e-6)
    np.testing.assert_allclose(ours, NET_Y, rtol=1e-6)


def test_config_dir_mistakes_are_one_message_each(tmp_path, monkeypatch, capsys):
    repo, work = _config_repo(tmp_path, "repo")
    (repo / "model" / "dense_example.yaml").write_text(NET.format(data="x.npy"))
    monkeypatch.chdir(work)
    refusals = {
        ("+model=net", "--config-dir", "../nope"): [
            "export-onnx: --config-dir ../nope: no such folder (it should hold model/NAME.yaml)"
        ],
        ("+model=net", "--config-dir", "../repo/model/net.yaml"): [
            "export-onnx: --config-dir ../repo/model/net.yaml: not a folder (it should hold "
            "model/NAME.yaml)"
        ],
        ("+model=nett", "--config-dir", "../repo"): [
            "export-onnx: refused: 1 problem (nothing written)",
            "  +model: no model file nett.yaml in the shipped conf/model and ../repo/model "
            "(--config-dir)",
        ],
        ("+model=net", "-cd", "../repo/model"): [
            "export-onnx: refused: 1 problem (nothing written)",
            "  +model: no model file net.yaml in the shipped conf/model and "
            "../repo/model/model (--config-dir); --config-dir names the folder that holds "
            "model/, not model/ itself",
        ],
        ("+model=net", "hydra.searchpath=[file://../repo]", "--config-dir", "../repo"): [
            "export-onnx: --config-dir and hydra.searchpath= both add config folders: give one"
        ],
        ("../repo", "--config-dir", "../repo"): [
            "export-onnx: --config-dir says where +model=NAME is found; a run folder is "
            "exported from its own config.yaml (leave --config-dir out)"
        ],
    }
    for args, message in refusals.items():
        assert cli.main([*args, "--out", "m.onnx"]) == 2, args
        assert capsys.readouterr().err.splitlines() == message
    # a name in the shipped conf/ and in the repository: refused as python -m runner does
    assert cli.main(["+model=dense_example", "--config-dir", "../repo", "--out", "m.onnx"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "export-onnx: refused: 1 problem (nothing written)",
        f"  +model: the model name is found in 2 places: {ROOT}/conf/model/dense_example.yaml, "
        f"{repo}/model/dense_example.yaml; Hydra would run the first, silently. Rename your copy "
        "(its folder comes later in the search path than the shipped conf/)",
    ]
    assert [p.name for p in work.iterdir()] == []  # nothing written, ever


def test_config_dir_files_meet_the_runners_trust_rules(tmp_path, monkeypatch, capsys):
    repo, work = _config_repo(tmp_path, "repo")
    (tmp_path / "elsewhere").mkdir()
    np.save(tmp_path / "elsewhere" / "x.npy", NET_X)
    model = repo / "model"
    (model / "far.yaml").write_text(NET.format(data=tmp_path / "elsewhere" / "x.npy"))
    (model / "sets_seed.yaml").write_text("seed: 3\n" + NET.format(data="x.npy"))
    (repo / "extra").mkdir()
    (repo / "extra" / "evil.yaml").write_text("# @package _global_\nallow_plugins: [evil]\n")
    monkeypatch.chdir(work)
    refusals = {
        ("+model=far",): (
            f"  {model / 'far.yaml'}:3:19: model.inputs.x.data "
            f"({tmp_path / 'elsewhere' / 'x.npy'}): the file lies outside the directories a run "
            "may read (where the command ran, the model file's folder and data_dirs; symlinks "
            "are followed): move it there, or allow its folder on the command line with "
            "data_dirs=[DIR]"
        ),
        ("+model=sets_seed",): (
            f"  +model: {model / 'sets_seed.yaml'}:1:1: 'seed' is a run setting: a model file "
            "sets keys under model only; give it on the command line (seed=...)"
        ),
        ("+model=net", "+extra=evil"): (
            f"  +model: {repo / 'extra' / 'evil.yaml'}:1:1: extra/evil.yaml is not a model "
            "file: only model/NAME.yaml files are read from --config-dir and hydra.searchpath; "
            "run settings and Hydra settings come from the command line"
        ),
    }
    for args, problem in refusals.items():
        assert cli.main([*args, "--config-dir", "../repo", "--out", "m.onnx"]) == 2, args
        assert capsys.readouterr().err.splitlines() == [
            "export-onnx: refused: 1 problem (nothing written)",
            problem,
        ]
    assert [p.name for p in work.iterdir()] == []
    # the folder allowed on this command line, as for a run: exported, the same numbers
    allowed = ["+model=far", "data_dirs=[../elsewhere]", "--config-dir", "../repo"]
    assert cli.main([*allowed, "--out", "m.onnx"]) == 0
    got = run_onnx((work / "m.onnx").read_bytes(), {"x": NET_X})["out"]
    np.testing.assert_allclose(got, NET_Y, rtol=1e-6)


def test_compose_model_takes_one_way_to_add_a_config_folder(tmp_path):
    from runner.api import compose, compose_model

    repo, _ = _config_repo(tmp_path, "repo")
    with pytest.raises(NotADirectoryError, match="'.*nope' is not a folder"):
        compose("net", [], tmp_path / "nope")
    with pytest.raises(ValueError, match="config_dir or a hydra.searchpath override, not both"):
        compose_model("net", [f"hydra.searchpath=[file://{tmp_path}]"], repo)
    # without a folder, the shipped model alone holds its name
    config, files = compose_model("dense_example")
    assert files == [(ROOT / "conf" / "model" / "dense_example.yaml").resolve()]
    assert config["model"]["layers"]["dense"]["output_dim"] == 3

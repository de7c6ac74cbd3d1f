"""The JSON Schema of a model config is a product: exported, committed, fresh, and obeyed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from omegaconf import OmegaConf

from runner.api import compose
from runner.config import schema_export
from runner.config.validate import validate
from runner.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "schema" / "model.schema.json"
MODELS = sorted((ROOT / "conf" / "model").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_fresh():
    """Fails when a layer spec changed without `python -m runner.config.schema_export`."""
    assert COMMITTED.read_text() == schema_export.schema_text(), (
        "schema/model.schema.json is stale: "
        "run `python -m runner.config.schema_export` and commit it"
    )


def test_check_flag_and_path_argument(tmp_path, capsys):
    target = tmp_path / "sub" / "model.schema.json"
    assert schema_export.main(["--check", str(target)]) == 1  # missing: said so, not "stale"
    err = capsys.readouterr().err
    assert f"no committed schema at {target} to check: write it with" in err
    assert "stale" not in err
    assert schema_export.main([str(target)]) == 0
    assert json.loads(target.read_text()) == schema_export.model_schema()
    assert schema_export.main(["--check", str(target)]) == 0
    target.write_text(target.read_text().replace('"Dense"', '"Dence"'))
    assert schema_export.main(["--check", str(target)]) == 1
    assert "stale" in capsys.readouterr().err


def test_schema_covers_every_builtin_layer_and_model_key(validator):
    schema = validator.schema
    layer_types = schema["then"]["properties"]["layers"]["additionalProperties"]["properties"][
        "type"
    ]
    from layers import registry

    builtins = sorted(
        t for t, cls in registry.registered().items() if cls.__module__.startswith("layers.")
    )
    assert layer_types["enum"] == builtins
    assert set(schema["properties"]) == {
        "inputs",
        "layers",
        "outputs",
        "training",
        "plugins",
        "weights",
        "expect",
        "targets",
        "fit",
        "vars",
    }
    assert "_target_" not in json.dumps(schema)


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_shipped_model_starts_with_schema_line(path):
    first = path.read_text().splitlines()[0]
    assert first == schema_export.SCHEMA_LINE, (
        f"{path.name}: the first line must be `{schema_export.SCHEMA_LINE}`"
    )


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_shipped_model_validates_against_schema(path, validator):
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)  # as an editor sees it
    assert [e.message for e in validator.iter_errors(raw)] == []
    resolved = compose(path.stem)["model"]  # as the runner sees it
    assert [e.message for e in validator.iter_errors(resolved)] == []


BASE = {
    "inputs": {"x": {"shape": [3], "data": [[1, 2, 3]]}},
    "layers": {"d": {"type": "Dense", "output_dim": 2}},
}


@pytest.mark.parametrize(
    "layer, fragment",
    [
        ({"type": "Dense", "output_dim": 0}, "not valid under any"),  # 0 fails exclusiveMinimum
        ({"type": "Dense", "output_dim": 2, "ouput_dim": 3}, "'ouput_dim' was unexpected"),
        ({"type": "Dence", "output_dim": 2}, "'Dence' is not one of"),
        ({"output_dim": 2}, "'type' is a required property"),
        ({"type": "Dropout", "p": 1.5}, "not valid under any"),
        ({"type": "Dense", "output_dim": 2, "_target_": "os.system"}, "'_target_' was unexpected"),
        ({"type": "Activation", "activation": "rellu"}, "not valid under any"),
    ],
)
def test_schema_and_pydantic_agree_on_bad_layers(validator, layer, fragment):
    model = {**BASE, "layers": {"d": layer}}
    messages = [e.message for e in validator.iter_errors(model)]
    assert len(messages) == 1 and fragment in messages[0]
    with pytest.raises(ConfigError) as info:
        validate({"model": model})
    assert info.value.problems[0].path.startswith("model.layers.d")


def test_interpolations_are_allowed_where_numbers_go(validator):
    model = {**BASE, "layers": {"d": {"type": "Dense", "output_dim": "${width}"}}}
    assert list(validator.iter_errors(model)) == []
    model = {**BASE, "layers": {"d": {"type": "Dense", "output_dim": "wide"}}}
    assert len(list(validator.iter_errors(model))) == 1


def test_check_without_path_uses_the_checkout_copy_else_the_packaged_one(
    tmp_path, monkeypatch, capsys
):
    assert schema_export.committed_path() == COMMITTED
    assert schema_export.main(["--check"]) == 0
    assert "is up to date" in capsys.readouterr().out
    # an installed package: no checkout, the copy shipped as runner/schema/model.schema.json
    packaged = tmp_path / "runner" / "schema" / "model.schema.json"
    monkeypatch.setattr(schema_export, "checkout_path", lambda: None)
    monkeypatch.setattr(schema_export, "packaged_path", lambda: packaged)
    assert schema_export.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert f"no committed schema at {packaged} to check" in err
    assert "lacks the packaged copy" in err and "stale" not in err
    packaged.parent.mkdir(parents=True)
    packaged.write_text(COMMITTED.read_text())
    assert schema_export.main(["--check"]) == 0
    assert f"{packaged} is up to date" in capsys.readouterr().out


def test_the_schema_is_package_data():
    """schema/ is the package runner.schema in the wheel, its JSON file shipped with it."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"]["runner.schema"] == "schema"
    assert "runner.schema" in setuptools["packages"]
    assert setuptools["package-data"]["runner.schema"] == ["*.json"]
    assert schema_export.packaged_path().parts[-3:] == ("runner", "schema", "model.schema.json")


SOURCES = ("pyproject.toml", "README.md", "runner", "layers", "examples", "conf", "schema")


@pytest.mark.slow
def test_check_from_an_installed_package(tmp_path):
    """A real (non-editable) install: --check finds the packaged schema from another folder,
    the packaged copy is identical to the repo's, and a missing copy gets a clear message."""
    import shutil
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:  # a clean copy: the build leaves nothing behind in the checkout
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), "."],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    packaged = target / "runner" / "schema" / "model.schema.json"
    assert packaged.read_text() == COMMITTED.read_text()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def check():
        return subprocess.run(
            [sys.executable, "-m", "runner.config.schema_export", "--check"],
            cwd=elsewhere,
            env={**os.environ, "PYTHONPATH": str(target)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = check()
    assert ok.returncode == 0, ok.stderr
    assert f"{packaged} is up to date" in ok.stdout
    packaged.unlink()
    missing = check()
    assert missing.returncode == 1
    assert "no committed schema" in missing.stderr and "stale" not in missing.stderr
    assert "lacks the packaged copy" in missing.stderr

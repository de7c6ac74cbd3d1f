"""The JSON Schema of a model config is a product: exported, committed, fresh, and obeyed."""

from __future__ import annotations

import json
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
    assert schema_export.main(["--check", str(target)]) == 1  # missing file counts as stale
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

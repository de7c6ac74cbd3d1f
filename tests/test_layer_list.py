"""`layer-runner layers`: every layer type with its parameters, generated from the registry;
and the fit defaults that `--help` prints instead of bare nulls."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import layers  # noqa: F401
from layers import registry
from runner import layer_list
from runner.train import optim, settings

ROOT = Path(__file__).resolve().parent.parent
HELP = ROOT / "conf" / "hydra" / "help" / "runner.yaml"


def _list(capsys, *argv: str) -> tuple[int, str, str]:
    code = layer_list.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_type_with_every_parameter(capsys):
    code, out, err = _list(capsys)
    assert code == 0, err
    blocks = {b.split("  (", 1)[0]: b for b in out.split("\n\n")}
    registered = registry.registered()
    assert set(registered) <= set(blocks)
    assert "CustomMasking" in blocks  # the installed example plugin is listed
    assert "plugin examples.custom_masking" in blocks["CustomMasking"]
    assert "(built-in)" in blocks["Dense"]
    for tag, cls in registered.items():
        flat = " ".join(blocks[tag].split())
        for name, field in cls.Spec.model_fields.items():
            if name in ("type", "inputs", "weights"):
                continue
            assert f"{name}: " in blocks[tag], f"{tag}.{name} missing"
            assert " ".join((field.description or "").split()) in flat, f"{tag}.{name}"
    assert "Every layer also takes:" in out and "inputs: list[str] | null  = null" in out
    assert "typing." not in out and "<class" not in out and "PydanticUndefined" not in out


def test_one_type(capsys):
    code, out, _ = _list(capsys, "Dense")
    assert code == 0
    assert out.startswith("Dense  (built-in)\n")
    assert "  output_dim: int  (required)\n      Number of output units.\n" in out
    assert (
        "= glorot_uniform" in out and "W_regularizer: {l1: float, l2: float} | null  = null" in out
    )
    assert "Masking" not in out
    code, out, _ = _list(capsys, "CustomMasking", "AutoEncoder")
    assert "mask_value: float  = 0.0" in out and "every feature is >= this value" in out
    assert "encoder: {name: layer}  (required)" in out


def test_unknown_type_suggests_the_closest(capsys):
    code, out, err = _list(capsys, "Dens")
    assert code == 2 and out == ""
    assert "unknown layer type 'Dens' (did you mean 'Dense'?)" in err


@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        (int | None, "int | null"),
        (list[list[int]], "list[list[int]]"),
        (dict[str, float], "{name: float}"),
    ],
)
def test_type_text(annotation, text):
    assert layer_list.type_text(annotation) == text


PLUGIN = '''
from typing import Literal

from pydantic import Field

from layers.base import Layer, SpecBase
from layers.registry import register


class ScaleBySpec(SpecBase):
    """Multiplies by a constant."""

    type: Literal["ScaleBy"] = "ScaleBy"
    factor: float = Field(default=2.0, description="The constant factor.")


@register
class ScaleBy(Layer):
    Spec = ScaleBySpec
'''


@pytest.mark.slow
def test_cli_lists_allowed_plugins_and_reports_broken_ones(cli, tmp_path):
    (tmp_path / "my_scale.py").write_text(PLUGIN)
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom')\n")
    plain = cli("layers", "ScaleBy")
    assert plain.returncode == 2 and "unknown layer type 'ScaleBy'" in plain.stderr
    assert "allow_plugins=[module]" in plain.stderr
    found = cli("layers", "ScaleBy", "allow_plugins=[my_scale]")
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith("ScaleBy  (plugin my_scale)\n  Multiplies by a constant.\n")
    assert "  factor: float  = 2.0\n      The constant factor.\n" in found.stdout
    both = cli("layers", "allow_plugins=[my_scale,broken_plugin]")
    assert both.returncode == 0
    assert "ScaleBy  (plugin my_scale)" in both.stdout and "Dense  (built-in)" in both.stdout
    assert "warning: allow_plugins[1]: plugin module 'broken_plugin' failed to import" in (
        both.stderr
    )
    assert not (tmp_path / "outputs").exists()  # no Hydra run, no run folder


def _help_fit_defaults() -> dict[str, str]:
    text = yaml.safe_load(HELP.read_text())["fit_defaults"]
    lines = [line.strip() for line in text.splitlines()[1:] if line.strip()]
    return dict(line.split(": ", 1) for line in lines)


def test_help_fit_defaults_equal_the_real_defaults():
    shown = _help_fit_defaults()
    for key, value in settings.DEFAULTS.items():
        if key == "patience":
            assert value is None and shown["fit.patience"].startswith("null")
        else:
            assert yaml.safe_load(shown[f"fit.{key}"]) == value, key
    assert yaml.safe_load(shown["fit.validation_split"]) == 0.0
    assert shown["fit.monitor"] == "val_loss with validation data, else loss"
    assert shown["fit.optimizer.name"] == settings._resolve_optimizer(None, None)[0]
    for name, defaults in optim.DEFAULTS.items():
        assert yaml.safe_load(shown[f"fit.optimizer ({name})"]) == defaults, name
    assert shown[", ".join(f"fit.optimizer.{k}" for k in optim.COMMON)] == "null (off)"
    assert shown["fit.schedule"].startswith("null")
    from runner.config.validate import validate

    minimal = {
        "inputs": {"x": {"shape": [1], "data": [[1]]}},
        "layers": {"d": {"type": "Dense", "output_dim": 1}},
    }
    checkpoint = settings.resolve(validate({"model": minimal}), ["d"])
    assert (checkpoint.checkpoint_every, checkpoint.checkpoint_best) == (0, False)
    assert shown["fit.checkpoint"] == "{every: 0, best: false, monitor: fit.monitor} (off)"
    documented = {k.split(" ")[0].removeprefix("fit.").split(".")[0] for k in shown}
    fit_keys = set(yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())["fit"])
    assert fit_keys - {"validation_data"} <= documented


@pytest.mark.slow
def test_help_prints_the_fit_defaults(cli):
    shown = cli("--help")
    assert shown.returncode == 0
    assert "Fit defaults (task=fit; a null fit setting takes the model's own fit" in shown.stdout
    assert "  fit.epochs: 10\n" in shown.stdout and "fit.optimizer.name: adam" in shown.stdout
    assert "layer-runner layers [TYPE]" in shown.stdout

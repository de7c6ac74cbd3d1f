"""The registry, the schema's spec union and the explicit list of built-in layers agree."""

from __future__ import annotations

import typing

import pytest

import layers  # noqa: F401  (registers the built-in layers)
from layers import registry


def union_members(annotated) -> set[type]:
    union = typing.get_args(annotated)[0]
    return set(typing.get_args(union))


# The explicit, greppable list of built-in layer types.
BUILTIN = {
    "Masking",
    "Dropout",
    "Activation",
    "Reshape",
    "Permute",
    "Flatten",
    "RepeatVector",
    "Dense",
    "TimeDistributedDense",
    "TimeDistributedMerge",
    "ActivityRegularization",
    "Merge",
    "AutoEncoder",
    "Lambda",
    "Siamese",
}


def test_union_equals_builtin_registry():
    from_union = {registry.spec_tag(s) for s in union_members(registry.spec_union())}
    builtin = {
        tag for tag, cls in registry.registered().items() if cls.__module__.startswith("layers.")
    }
    assert from_union == set(registry.registered())
    assert builtin == BUILTIN


def test_tag_equals_class_name_and_spec_name():
    for tag, cls in registry.registered().items():
        assert cls.__name__ == tag
        assert cls.Spec.__name__ == f"{tag}Spec"


def test_unknown_type_lists_known_ones():
    try:
        registry.layer_class("Dence")
    except ValueError as exc:
        assert "did you mean 'Dense'" in str(exc)
    else:
        raise AssertionError("unknown type accepted")


def test_layers_is_a_plain_library():
    """layers/ imports neither the runner nor Hydra/OmegaConf (a plain library, usable alone)."""
    import subprocess
    import sys

    code = (
        "import sys, layers; bad = [m for m in sys.modules if m.split('.')[0] in "
        "('runner', 'hydra', 'omegaconf')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _validated(cls, config):
    from pydantic import ValidationError

    try:
        return "ok", cls.model_validate(config).model_dump()
    except ValidationError as exc:
        return "error", [(e["loc"], e["type"], e["msg"]) for e in exc.errors()]


def _variants(config):
    """The config, and for each layer field a boolean, a word and a misspelt key in it."""
    import copy

    yield config
    for name, layer in config["model"]["layers"].items():
        for key in [k for k in layer if k != "type"] + ["ouput_dim"]:
            for value in (True, "zzz"):
                broken = copy.deepcopy(config)
                broken["model"]["layers"][name][key] = value
                yield broken


@pytest.mark.slow
def test_a_configs_own_layer_union_validates_as_the_whole_union():
    """The run schema of a config holds only the layer types it uses (start-up): every shipped
    model, and each broken in many ways, validates to the same values and the same errors."""
    from pathlib import Path

    from runner.api import compose
    from runner.config import validate
    from runner.config.schema import run_spec_class

    root = Path(__file__).resolve().parent.parent
    compared = narrowed = 0
    for path in sorted((root / "conf" / "model").glob("*.yaml")):
        for config in _variants(compose(path.stem)):
            own = run_spec_class(validate._layer_types(config))
            assert _validated(own, config) == _validated(run_spec_class(), config), path.name
            compared += 1
            narrowed += own is not run_spec_class()
    assert compared > 150 and narrowed > 100  # most configs did get a smaller union


def test_union_for_keeps_the_whole_union_for_composites_and_unknown_types():
    whole = union_members(registry.spec_union())
    assert union_members(registry.union_for({"Dense", "Dropout"})) == {
        registry.layer_class("Dense").Spec,
        registry.layer_class("Dropout").Spec,
    }
    assert union_members(registry.union_for({"Dense", "AutoEncoder"})) == whole
    assert union_members(registry.union_for({"Dense", "Dense2"})) == whole
    assert union_members(registry.union_for(set())) == whole

"""The registry, the schema's spec union and the explicit list of built-in layers agree."""

from __future__ import annotations

import typing

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

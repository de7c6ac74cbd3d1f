"""Layer registry: the ``type`` tag of a spec -> its layer class.

Built-in layers and plugins register the same way (``@register`` on the layer class). The
discriminated union used by the config schema is built from this registry, so a plugin's spec
validates exactly like a built-in one.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

if TYPE_CHECKING:
    from layers.base import Layer, SpecBase

_LAYERS: dict[str, type[Layer]] = {}
_version = 0  # bumped on every registration so cached schemas know they are stale


def register(layer_cls: type[Layer]) -> type[Layer]:
    """Class decorator: register ``layer_cls`` under its spec's ``type`` tag."""
    global _version
    tag = spec_tag(layer_cls.Spec)
    if tag != layer_cls.__name__:
        raise TypeError(f"spec tag {tag!r} must equal the layer class name {layer_cls.__name__!r}")
    existing = _LAYERS.get(tag)
    if existing is not None and existing is not layer_cls:
        raise ValueError(f"layer type {tag!r} is already registered by {existing.__module__}")
    _LAYERS[tag] = layer_cls
    _version += 1
    return layer_cls


def spec_tag(spec_cls: type[SpecBase]) -> str:
    """The literal value of a spec's ``type`` field."""
    (tag,) = spec_cls.model_fields["type"].annotation.__args__  # Literal["Dense"] -> "Dense"
    return tag


def layer_class(tag: str) -> type[Layer]:
    try:
        return _LAYERS[tag]
    except KeyError:
        raise ValueError(f"unknown layer type {tag!r}{did_you_mean(tag, _LAYERS)}") from None


def registered() -> dict[str, type[Layer]]:
    return dict(_LAYERS)


def version() -> int:
    return _version


def spec_union() -> Any:
    """The discriminated union of every registered spec (rebuilt when plugins register)."""
    specs = tuple(cls.Spec for cls in _LAYERS.values())
    return Annotated[Union[specs], Field(discriminator="type")]  # noqa: UP007


def did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""

"""Layer registry: the ``type`` tag of a spec -> its layer class.

Built-in layers and plugins register the same way (``@register`` on the layer class). The
discriminated union used by the config schema is built from this registry, so a plugin's spec
validates exactly like a built-in one.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args

from pydantic import Field, PydanticUndefinedAnnotation

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
    """The discriminated union of every registered spec (rebuilt when plugins register).

    Composite specs (AutoEncoder, Siamese, ...) hold layers typed ``AnyLayerSpec``; they are
    re-resolved here whenever the registry changed, so their children see plugin layers too.
    """
    union = _union(tuple(cls.Spec for cls in _LAYERS.values()))
    resolve_composites(union)
    return union


def union_for(tags: Collection[str]) -> Any:
    """The union a config whose layers have these ``type`` tags needs: only their specs when
    every tag is registered and none nests layers (a smaller schema, built faster, that
    validates those layers exactly as the whole union does); else ``spec_union()``."""
    if not tags or any(t not in _LAYERS or _nests_layers(_LAYERS[t]) for t in tags):
        return spec_union()
    return _union(tuple(cls.Spec for tag, cls in _LAYERS.items() if tag in tags))


def _union(specs: tuple[type[SpecBase], ...]) -> Any:
    return Annotated[Union[specs], Field(discriminator="type")]  # noqa: UP007


def _nests_layers(layer_cls: type[Layer]) -> bool:
    return getattr(layer_cls.Spec, "nested_layers", False)


_resolving: Any = None  # the union that AnyLayerSpec stands for while composites rebuild
_INVALIDATING = object()  # _resolving while composites are invalidated: AnyLayerSpec fails
_resolved_key: tuple = ()


class AnyLayerSpec:
    """Annotation for a field holding any layer spec of the union (composites use it).

    Inside ``resolve_composites(union)`` it resolves to ``union``: there every composite is
    first invalidated, then rebuilt, so no composite keeps a stale copy of another's schema.
    """

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        # Outside resolve_composites: a composite used before any spec_union() call (spec
        # classes build on first use) takes every layer registered so far.
        if _resolving is _INVALIDATING:
            raise PydanticUndefinedAnnotation("AnyLayerSpec", "composites are being invalidated")
        union = _resolving
        if union is None:
            union = _union(tuple(c.Spec for c in _LAYERS.values()))
        return handler.generate_schema(union)


def resolve_composites(union: Any) -> None:
    """Make the layers inside composite specs validate against ``union`` (a no-op when they
    already do, or when ``union`` holds no composite: nothing in it nests layers).
    ``spec_union()`` calls it with every registered layer; a caller that needs another union
    (the JSON Schema export: built-ins only) passes its own."""
    global _resolving, _resolved_key
    members = get_args(get_args(union)[0]) or (get_args(union)[0],)
    composites = tuple(c.Spec for c in _LAYERS.values() if _nests_layers(c))
    key = (members, composites)
    if key == _resolved_key or not set(members) & set(composites):
        return
    _resolving = _INVALIDATING
    try:
        for spec_cls in composites:  # invalidate all first: none may embed another's old schema
            spec_cls.model_rebuild(force=True, raise_errors=False)
        _resolving = union
        for spec_cls in composites:
            spec_cls.model_rebuild(force=True)
    finally:
        _resolving = None
    _resolved_key = key


def did_you_mean(word: str, choices: Any) -> str:
    """A hint naming the closest choice; case is ignored ('w' suggests 'W')."""
    by_lower = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(word).lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""

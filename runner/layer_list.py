"""List the layer types a model may use: ``layer-runner layers [TYPE...] [key=value]``.

Generated from the registry, i.e. from the same Pydantic spec classes that validate a model:
each type with its parameters, their types, defaults and descriptions. Plugins are included:
those installed through the ``runner.layers`` entry-point group, and modules the command line
allows, as for a run::

    layer-runner layers                                   # every type
    layer-runner layers Dense                             # one type (several may be named)
    layer-runner layers allow_plugins=[my_layers.masking] # plus a plugin module's types
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import types
import typing
from typing import Any

from pydantic import BaseModel

COMMON_FIELDS = ("inputs", "weights")  # SpecBase: every layer takes them
INDENT = "      "


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    names = [a for a in args.items if "=" not in a]
    overrides = [a for a in args.items if "=" in a]
    try:
        allowed = _allowed_plugins(overrides)
    except Exception as exc:  # a malformed override: Hydra's own message
        sys.stderr.write(f"invalid override: {str(exc).strip().splitlines()[0]}\n")
        return 2
    warnings = load_plugins(allowed)
    for warning in warnings:
        sys.stderr.write(f"warning: {warning}\n")
    from layers import registry

    registry.spec_union()  # composites resolve their nested layer union (plugins included)
    known = registry.registered()
    unknown = [n for n in names if n not in known]
    if unknown:
        for name in unknown:
            sys.stderr.write(
                f"unknown layer type {name!r}{registry.did_you_mean(name, known)}; "
                "`layer-runner layers` lists them all (a plugin's types need "
                "allow_plugins=[module] or its installed package)\n"
            )
        return 2
    chosen = names or sorted(known)
    sys.stdout.write("\n".join(describe(known[n]) for n in chosen))
    sys.stdout.write("\n" + common_fields_text())
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layer-runner layers",
        description="List the layer types (built-in and plugins) with their parameters, "
        "types, defaults and descriptions. key=value arguments are run settings "
        "(allow_plugins=[module,...] adds a plugin module's layers).",
    )
    parser.add_argument("items", nargs="*", metavar="TYPE|key=value")
    return parser


def _allowed_plugins(overrides: list[str]) -> list[str]:
    if not overrides:
        return []
    from runner.check import run_settings

    allowed = run_settings(overrides).get("allow_plugins") or []
    if not isinstance(allowed, list):
        raise ValueError(f"allow_plugins: expected a list of module names, found {allowed!r}")
    return [str(a) for a in allowed]


def load_plugins(allowed: list[str]) -> list[str]:
    """Import every installed ``runner.layers`` plugin and every allowed module; a plugin that
    fails to import is reported (a warning each) and the others are still listed."""
    import layers  # noqa: F401  (registers the built-in layers)
    from runner.config import plugins

    warnings = []
    seen = set()
    for ep in plugins.installed_plugins().values():
        if ep.module in seen or ep.module in allowed:
            continue
        seen.add(ep.module)
        problem = plugins.import_plugin(ep.module, f"installed plugin {ep.name}", ep.load)
        if problem is not None:
            warnings.append(f"{problem.path}: {problem.message}")
    for i, name in enumerate(allowed):
        if not plugins.is_module_name(name):
            warnings.append(f"allow_plugins[{i}]: {name!r} is not a dotted module name")
            continue
        problem = plugins.import_plugin(
            name, f"allow_plugins[{i}]", lambda n=name: plugins.import_allowed(n)
        )
        if problem is not None:
            warnings.append(f"{problem.path}: {problem.message}")
    return warnings


def origin(layer_cls: type) -> str:
    module = layer_cls.__module__
    return "built-in" if module == "layers" or module.startswith("layers.") else f"plugin {module}"


def describe(layer_cls: type) -> str:
    """One layer type: its name, origin, spec docstring and parameters."""
    spec = layer_cls.Spec
    lines = [f"{layer_cls.__name__}  ({origin(layer_cls)})"]
    doc = " ".join((spec.__doc__ or "").split())
    if doc:
        lines += textwrap.wrap(doc, 96, initial_indent="  ", subsequent_indent="  ")
    params = [(n, f) for n, f in spec.model_fields.items() if n not in ("type", *COMMON_FIELDS)]
    if not params:
        lines.append("  (no parameters besides inputs and weights)")
    for name, field in params:
        lines += textwrap.wrap(
            f"{name}: {type_text(field.annotation)}  {default_text(field)}",
            96,
            initial_indent="  ",
            subsequent_indent="    ",
            break_on_hyphens=False,
        )
        if field.description:
            lines += textwrap.wrap(
                field.description, 96, initial_indent=INDENT, subsequent_indent=INDENT
            )
    return "\n".join(lines) + "\n"


def common_fields_text() -> str:
    from layers.base import SpecBase

    lines = ["Every layer also takes:"]
    for name in COMMON_FIELDS:
        field = SpecBase.model_fields[name]
        lines.append(f"  {name}: {type_text(field.annotation)}  {default_text(field)}")
        lines += textwrap.wrap(
            field.description or "", 96, initial_indent=INDENT, subsequent_indent=INDENT
        )
    return "\n".join(lines) + "\n"


def default_text(field: Any) -> str:
    if field.is_required():
        return "(required)"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        value = value.model_dump()
    return f"= {yaml_value(value)}"


def yaml_value(value: Any) -> str:
    """A default as it is written in a model file (null, true, 0.5, [1, 2], {l1: 0.0})."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    return json.dumps(value)


def type_text(annotation: Any) -> str:
    """A type as a model file author reads it: choices, null, lists, mappings, layers."""
    origin_ = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin_ is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin_ is typing.Annotated:
        return type_text(args[0])
    if origin_ in (typing.Union, types.UnionType):
        return " | ".join(type_text(a) for a in args)
    if origin_ in (list, tuple):
        return f"list[{', '.join(type_text(a) for a in args if a is not Ellipsis)}]"
    if origin_ is dict:
        return f"{{name: {type_text(args[1])}}}"
    if getattr(annotation, "__name__", "") == "AnyLayerSpec":
        return "layer"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = annotation.model_fields
        return "{" + ", ".join(f"{k}: {type_text(f.annotation)}" for k, f in fields.items()) + "}"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


if __name__ == "__main__":
    sys.exit(main())

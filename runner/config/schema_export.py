"""Export the JSON Schema of a model config file (what a ``conf/model/*.yaml`` holds).

    python -m runner.config.schema_export                 # writes schema/model.schema.json
    python -m runner.config.schema_export PATH            # writes PATH ("-" prints it)
    python -m runner.config.schema_export --check [PATH]  # exit 1 if PATH is stale or missing

Without PATH, --check compares the checkout's schema/model.schema.json or, in an installed
package, the copy the wheel ships (package data ``runner/schema/model.schema.json``).

The schema comes from the same Pydantic models that validate a run, restricted to the
built-in layers (plugins register at run time and are not part of the shipped schema). Editors
pick it up from the first line of each model file::

    # yaml-language-server: $schema=../../schema/model.schema.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Field

import layers  # noqa: F401  (registers the built-in layers)
from layers import registry
from runner.config.schema import model_spec_class

SCHEMA_LINE = "# yaml-language-server: $schema=../../schema/model.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def builtin_specs() -> list[type]:
    """The specs of the built-in layers only (sorted by tag: a stable export)."""
    registry.spec_union()  # composites resolve their nested layer union here
    return sorted(
        (
            cls.Spec
            for cls in registry.registered().values()
            if cls.__module__.split(".")[0] == "layers"
        ),
        key=registry.spec_tag,
    )


def builtin_layer_union() -> Any:
    return Annotated[Union[tuple(builtin_specs())], Field(discriminator="type")]  # noqa: UP007


def model_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the ``model`` node of a run config."""
    schema = model_spec_class(builtin_layer_union()).model_json_schema(mode="validation")
    schema.pop("title", None)
    schema = allow_interpolations(if_then_unions(schema))
    schema.setdefault("$defs", {})["Interpolation"] = INTERPOLATION
    schema.update(plugins_or_builtin_types([registry.spec_tag(s) for s in builtin_specs()]))
    return {
        "$schema": DIALECT,
        "title": "Model config (conf/model/*.yaml)",
        "description": "Inputs, layers (an ordered mapping: the key is the layer's name), "
        "wiring, weights and expectations of one model. Generated from the "
        "Pydantic models by `python -m runner.config.schema_export`; do not edit.",
        **schema,
    }


# A Hydra/OmegaConf interpolation such as ${dropout} stands for a value until it is resolved.
INTERPOLATION = {
    "type": "string",
    "pattern": r"^\$\{.+\}$",
    "description": "An OmegaConf interpolation, resolved before validation.",
}
_META = ("title", "description", "default")


def allow_interpolations(node: Any) -> Any:
    """Let every number, boolean and choice also be written as an interpolation, as in YAML.

    The runner validates resolved values; this only keeps editors from flagging ``${...}``.
    """
    if isinstance(node, list):
        return [allow_interpolations(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: allow_interpolations(v) for k, v in node.items()}
    if node.get("type") in ("number", "integer", "boolean") or (
        node.get("type") == "string" and "enum" in node
    ):
        meta = {k: node.pop(k) for k in _META if k in node}
        return {"anyOf": [node, {"$ref": "#/$defs/Interpolation"}], **meta}
    return node


def if_then_unions(node: Any) -> Any:
    """Rewrite each discriminated union (``oneOf`` + ``discriminator``) as ``type`` choices plus
    one ``if type == T then T's schema`` per tag: validators then report the bad field ("0 is
    less than the minimum") or the unknown tag, instead of "not valid under any schema"."""
    if isinstance(node, list):
        return [if_then_unions(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: if_then_unions(v) for k, v in node.items()}
    disc = node.get("discriminator")
    if isinstance(disc, dict) and "mapping" in disc and "oneOf" in node:
        key, mapping = disc["propertyName"], disc["mapping"]
        node.pop("discriminator")
        node.pop("oneOf")
        node.update(
            {
                "type": "object",
                "required": [key],
                # a plugin may add types, so any name passes here; plugins_or_builtin_types()
                # narrows top-level layers to the built-ins when the model names no plugins
                "properties": {
                    key: {
                        "type": "string",
                        "examples": list(mapping),
                        "description": "The layer type: a built-in (see examples) "
                        "or one registered by a module under `plugins`.",
                    }
                },
                "allOf": [
                    {
                        "if": {"properties": {key: {"const": tag}}, "required": [key]},
                        "then": {"$ref": ref},
                    }
                    for tag, ref in mapping.items()
                ],
            }
        )
    return node


def plugins_or_builtin_types(tags: list[str]) -> dict[str, Any]:
    """Without plugins (absent or empty), every layer's ``type`` must be a built-in one."""
    return {
        "if": {"properties": {"plugins": {"maxItems": 0}}},
        "then": {
            "properties": {
                "layers": {"additionalProperties": {"properties": {"type": {"enum": tags}}}}
            }
        },
    }


def schema_text() -> str:
    return json.dumps(model_schema(), indent=2, sort_keys=False) + "\n"


def checkout_path() -> Path | None:
    """schema/model.schema.json of the checkout this module lives in (None when installed)."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return root / "schema" / "model.schema.json"
    return None


def packaged_path() -> Path:
    """The copy shipped in the wheel as package data (runner/schema/model.schema.json)."""
    return Path(__file__).resolve().parents[1] / "schema" / "model.schema.json"


def default_path() -> Path:
    """Where to write: the checkout's schema/model.schema.json, else schema/ of the cwd."""
    return checkout_path() or Path("schema") / "model.schema.json"


def committed_path() -> Path:
    """What --check compares: the checkout's copy, else the packaged one (an installed runner)."""
    return checkout_path() or packaged_path()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runner.config.schema_export",
        description="Write the JSON Schema of a model config file.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        help="where to write it ('-' = stdout); default: schema/model.schema.json of the checkout",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the file is missing or differs from a fresh export "
        "(default file: the checkout's, else the installed package's copy)",
    )
    args = parser.parse_args(argv)
    text = schema_text()
    if args.path == "-":
        sys.stdout.write(text)
        return 0
    if args.check:
        path = Path(args.path) if args.path else committed_path()
        if not path.is_file():
            if args.path or checkout_path():
                fix = "python -m runner.config.schema_export" + (
                    f" {args.path}" if args.path else ""
                )
                why = f"write it with {fix}, then commit it"
            else:
                why = (
                    "this installation lacks the packaged copy; reinstall the package, "
                    "or pass the PATH of a committed copy"
                )
            sys.stderr.write(f"no committed schema at {path} to check: {why}\n")
            return 1
        if path.read_text() != text:
            sys.stderr.write(
                f"{path} is stale: regenerate it with python -m runner.config.schema_export\n"
            )
            return 1
        print(f"{path} is up to date")
        return 0
    path = Path(args.path) if args.path else default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

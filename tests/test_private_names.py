"""runner/interop reads other packages through their public names only: where the exporter or
the importer needs a rule of a layer or of the config checks, that package offers it as a
documented function its own runtime calls too (one source of truth, never a private copy).

The scan is of the syntax tree. Flagged, in a module of package P under runner/interop:
- ``from M import _name`` with M in layers/ or runner/ outside P;
- ``X._name`` where X was imported from layers/ or runner/ outside P (a module, a class);
- ``obj._name`` on any other receiver but ``self``/``cls`` (a layer handed to an emitter),
  when ``_name`` is a private defined in layers/ or runner/ outside P and nowhere in P.
A module's own privates and its package's are never flagged, nor other libraries' privates.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = ("layers", "runner")
INTEROP = ROOT / "runner" / "interop"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module(file: Path) -> str:
    parts = file.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(file: Path) -> str:
    """The package a file belongs to (an ``__init__.py`` is its own package)."""
    module = _module(file)
    return module if file.name == "__init__.py" else module.rpartition(".")[0]


def _inside(dotted: str, package: str) -> bool:
    return dotted == package or dotted.startswith(package + ".")


def _ours(dotted: str) -> bool:
    return dotted.split(".")[0] in OURS


def _defined_privates(file: Path) -> set[str]:
    """Private functions, classes, module and class attributes, and ``self._x`` fields."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name):
                    names.add(leaf.id)
                elif isinstance(leaf, ast.Attribute):
                    names.add(leaf.attr)
    return {n for n in names if _private(n)}


def _privates_elsewhere(package: str) -> set[str]:
    """Privates defined in layers/ and runner/ outside ``package`` and nowhere inside it."""
    outside: set[str] = set()
    inside: set[str] = set()
    for top in OURS:
        for file in (ROOT / top).rglob("*.py"):
            (inside if _inside(_module(file), package) else outside).update(_defined_privates(file))
    return outside - inside


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None for anything but names and attributes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else None


def violations(source: str, package: str, privates_elsewhere: set[str]) -> list[str]:
    """``line N: what`` for every private of another of our packages that ``source`` (a module
    of ``package``) imports or reads."""
    tree = ast.parse(source)
    bound: dict[str, str] = {}  # local name -> what it was imported as (dotted)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = _absolute(node, package)
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{module}.{alias.name}"
                if _ours(module) and not _inside(module, package) and _private(alias.name):
                    found.append((node.lineno, f"from {module} import {alias.name}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                bound[local] = alias.name if alias.asname else local
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)):
            continue
        receiver = _dotted(node.value)
        text = ast.unparse(node)
        if receiver and receiver[0] in bound:  # an imported module or class (ours or not)
            origin = ".".join([bound[receiver[0]], *receiver[1:]])
            if _ours(origin) and not _inside(origin, package):
                found.append((node.lineno, f"{text} ({origin} is another package's)"))
        elif receiver in (["self"], ["cls"]):
            continue
        elif node.attr in privates_elsewhere:
            found.append((node.lineno, f"{text} (a private of another package)"))
    return [f"line {line}: {what}" for line, what in sorted(set(found))]


def test_interop_reads_other_packages_through_public_names_only():
    files = sorted(INTEROP.rglob("*.py"))
    assert len(files) > 20  # the scan sees both sub-packages
    elsewhere: dict[str, set[str]] = {}
    problems = []
    for file in files:
        package = _package(file)
        if package not in elsewhere:
            elsewhere[package] = _privates_elsewhere(package)
        for problem in violations(file.read_text(encoding="utf-8"), package, elsewhere[package]):
            problems.append(f"{file.relative_to(ROOT)}: {problem}")
    assert problems == [], "\n".join(problems)


PLANTED = """
import zipfile
import layers.expressions as ex
import layers
from layers import merge_ops
from layers.autoencoder import AutoEncoder
from layers.expressions import _walk
from runner.config.guard import check_yaml_size
from runner.interop.onnx_export.graph import _own_helper
from runner.interop.onnx_export import registry
from . import graph
from .. import keras_import


class Emitter:
    def emit(self, layer, g):
        self._cache = {}
        merge_ops._subscripts(1, [0], 1, [0])
        ex._shape(None, ())
        layers.expressions._children(None)
        AutoEncoder._running(layer)
        layer._running()
        g._constants.get(1)
        registry._EMITTERS.get("Dense")
        graph._count
        keras_import._reader
        zipfile._EndRecData(None)
        return self._cache, check_yaml_size, _own_helper
"""


def test_the_scan_finds_planted_privates_and_nothing_else():
    found = violations(PLANTED, "runner.interop.onnx_export", {"_running", "_shape"})
    assert found == [
        "line 7: from layers.expressions import _walk",
        "line 18: merge_ops._subscripts (layers.merge_ops is another package's)",
        "line 19: ex._shape (layers.expressions is another package's)",
        "line 20: layers.expressions._children (layers.expressions is another package's)",
        "line 21: AutoEncoder._running (layers.autoencoder.AutoEncoder is another package's)",
        "line 22: layer._running (a private of another package)",
        "line 26: keras_import._reader (runner.interop.keras_import is another package's)",
    ]


def test_privates_elsewhere_are_those_of_other_packages_only():
    elsewhere = _privates_elsewhere("runner.interop.onnx_export")
    # layers' and the config checks' privates count; the exporter's own never do
    assert {"_plan", "_free_norm", "_compose", "_node_shape"} <= elsewhere
    assert not {"_EMITTERS", "_constants", "_count", "_Writer", "_dot"} & elsewhere

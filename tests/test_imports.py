"""The module graph of runner/ and layers/ has no import circles, deferred imports included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _import_graph() -> dict[str, set[str]]:
    modules = {}
    for package in ("runner", "layers"):
        for file in (ROOT / package).rglob("*.py"):
            parts = file.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    graph: dict[str, set[str]] = {}
    for name, file in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text())):  # function-level imports count too
            if isinstance(node, ast.ImportFrom) and node.module:
                deps |= {node.module} & modules.keys()
                deps |= {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names} & modules.keys()
        graph[name] = deps - {name, *_packages_of(name)}  # a module may read its packages
    return graph


def _packages_of(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    assert _cycles(_import_graph()) == []


def test_the_two_known_circles_stay_broken():
    graph = _import_graph()
    assert (
        "runner.__main__" not in graph["runner.cli"]
    )  # config_dir lives in runner.config.conf_dir
    assert (
        "runner.graph.plan" not in graph["runner.graph.weights"]
    )  # Node lives in runner.graph.nodes


def _package_graph() -> dict[str, set[str]]:
    """runner's sub-packages (config, data, graph, train, sweep, output) and what they import."""

    def package(module: str) -> str | None:
        parts = module.split(".")
        return ".".join(parts[:2]) if parts[0] == "runner" and len(parts) > 2 else None

    graph: dict[str, set[str]] = {}
    for module, deps in _import_graph().items():
        here = package(module)
        if here:
            graph.setdefault(here, set()).update(p for p in map(package, deps) if p and p != here)
    return graph


def test_sub_packages_import_in_one_direction():
    """The data flow reads top-down: config -> data -> graph -> train; output and sweep sit at
    the side. No sub-package imports one that imports it back."""
    graph = _package_graph()
    assert set(graph) >= {
        "runner.config",
        "runner.data",
        "runner.graph",
        "runner.train",
        "runner.sweep",
        "runner.output",
    }
    assert _cycles({k: graph.get(k, set()) & set(graph) for k in graph}) == []
    assert "runner.train" not in graph["runner.graph"]
    assert not graph["runner.config"] & {"runner.graph", "runner.train", "runner.sweep"}

"""The module graph of runner/ and layers/ has no import circles, deferred imports included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _import_graph() -> dict[str, set[str]]:
    modules = {}
    for package in ("runner", "layers"):
        for file in (ROOT / package).glob("*.py"):
            modules[package if file.stem == "__init__" else f"{package}.{file.stem}"] = file
    graph: dict[str, set[str]] = {}
    for name, file in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text())):  # function-level imports count too
            if isinstance(node, ast.ImportFrom) and node.module:
                deps |= {node.module} & modules.keys()
                deps |= {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names} & modules.keys()
        graph[name] = deps - {name, name.split(".")[0]}  # a module may read its own package
    return graph


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
    assert "runner.__main__" not in graph["runner.cli"]  # config_dir lives in runner.conf_dir
    assert "runner.plan" not in graph["runner.weights"]  # Node lives in runner.nodes

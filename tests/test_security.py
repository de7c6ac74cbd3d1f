"""No code from config: no ``_target_``, Lambda walked never eval'ed, plugins only when named,
no pickle. Tested through configs (``layers/expressions.py`` has its own unit tests)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from runner.run import run

ROOT = Path(__file__).resolve().parent.parent
SENTINEL = "PWNED"  # a file name hostile expressions try to create; it must never appear

# ---- an audit hook sees every exec/eval/compile/system call while a config is validated -----
_events: list[tuple[str, tuple]] = []
_recording = False
_WATCHED = (
    "exec",
    "compile",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "subprocess.Popen",
    "socket.",
    "ctypes.",
    "open",
    "os.remove",
    "shutil.",
    "import",
    "pickle.find_class",
    "marshal.loads",
    "builtins.input",
)


def _hook(event: str, args: tuple) -> None:
    if _recording and event.startswith(_WATCHED):
        _events.append((event, args))


sys.addaudithook(_hook)  # cannot be removed; it only records while _recording is set


def lambda_config(expression: str) -> dict:
    return {
        "model": {
            "inputs": {"x": {"shape": [3], "data": [[1, 2, 3]]}},
            "layers": {"f": {"type": "Lambda", "function": expression}},
        }
    }


HOSTILE = [
    # imports and builtins
    f"__import__('os').system('touch {SENTINEL}')",
    "__import__('subprocess')",
    "__builtins__",
    "__builtins__['eval']('1')",
    f"open('{SENTINEL}', 'w')",
    "eval('1 + 1')",
    "exec('import os')",
    "compile('1', 'f', 'eval')",
    "globals()",
    "locals()",
    "vars()",
    "getattr(x, '__class__')",
    "breakpoint()",
    "input()",
    # dunder access and attribute chains
    "x.__class__",
    "x.__class__.__mro__[-1].__subclasses__()",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__array_interface__",
    "x.ctypes.data",
    "x.tofile('PWNED')",
    "np.lib.format",
    "exp.__globals__",
    "sum.__self__",
    "x.T.T.T",
    # lambda, comprehensions, generators, other statements
    "(lambda: __import__('os'))()",
    "lambda x: x",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "{k: 1 for k in x}",
    "(i for i in x)",
    "[x for x in [x]]",
    "yield x",
    "await x",
    "(a := 1)",
    "x; import os",
    "import os",
    # strings, formatting, containers
    "f'{x.__class__}'",
    "'%s' % x",
    "'a' * 10",
    "b'abc'",
    "[1, 2, 3]",
    "{'a': 1}",
    # huge exponents and work
    "x ** 1e9",
    "x ** 100",
    "2 ** 2 ** 2 ** 2 ** 2",
    "x ** -1e9",
    "x ** (x * 1e9)",
    "9 ** 9 ** 9",
    # deep nesting and size
    "abs(" * 60 + "x" + ")" * 60,
    "-" * 100 + "x",
    "x" + " + x" * 400,
    "x" * 2000,
    # disallowed operators and indexing
    "x @ x",
    "x // 1",
    "x % 2",
    "x if x else x",
    "x and x",
    "not x",
    "x[0]",
    "x[...]",
    "unknown_name",
    "foo(x)",
    "max(x, axis=0)",
]


def _plan_reached(result: dict) -> bool:
    return "plan" in result.get("timings", {})


@pytest.fixture(scope="module", autouse=True)
def _warm(tmp_path_factory):
    """Build the schema once, so later validations create no classes."""
    out = tmp_path_factory.mktemp("warm")
    assert run(lambda_config("x * x"), out, cwd=out).result["outputs"]["f"]["values"] == [
        [1.0, 4.0, 9.0]
    ]


def test_at_least_thirty_distinct_hostile_expressions():
    assert len(set(HOSTILE)) == len(HOSTILE) >= 30


@pytest.mark.parametrize("expression", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_expression_rejected_at_validation(expression, tmp_path, monkeypatch):
    global _recording
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    _events.clear()
    _recording = True
    try:
        outcome = run(lambda_config(expression), out, cwd=tmp_path)
    finally:
        _recording = False
    result = outcome.result
    assert outcome.exit_code == 2 and result["status"] == "error"
    (problem,) = result["error"]["problems"]
    assert problem["path"] == "model.layers.f.function"
    assert re.search("not allowed|allowed:|syntax|limit|deeper than", problem["message"])
    assert not _plan_reached(result)  # refused while validating, before any planning
    assert not (tmp_path / SENTINEL).exists()
    # Nothing was executed, spawned or imported; the only compile is ast.parse of the text
    # itself; files are only read (package versions for result.json), and only the run
    # folder's own files are written.
    for event, args in _events:
        if event == "compile":
            assert args[0] in (expression, expression.encode()), (event, args)
        elif event == "open":
            path, mode = args[0], args[1] or "r"
            assert SENTINEL not in str(path) and "passwd" not in str(path), (event, args)
            assert mode in ("r", "rb") or isinstance(path, int) or str(path).startswith(str(out)), (
                event,
                args,
            )
        elif event == "os.remove" and str(args[0]) == str(out / ".runner-claim"):
            pass  # the run's own folder claim, dropped once result.json is written
        else:
            pytest.fail(f"{expression!r} caused {event} {args}")


def test_lambda_expression_is_not_evaluated_by_python(tmp_path, monkeypatch):
    """Even an allowed expression never reaches eval/exec/compile-to-bytecode."""
    import builtins

    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    outcome = run(lambda_config("where(x > 1.5, x * x, -x) + sum(x, axis=-1)"), tmp_path)
    # rows [1, 2, 3]: where -> [-1, 4, 9]; sum over the features = 6 (broadcast per sample)
    assert outcome.result["outputs"]["f"]["values"] == [[5.0, 10.0, 15.0]]


@pytest.mark.parametrize(
    "where",
    [
        ("model", "_target_"),
        ("layer", "_target_"),
        ("root", "_target_"),
        ("layer", "_partial_"),
        ("layer", "_args_"),
        ("input", "_target_"),
        ("weights", "_target_"),
        ("expect", "_target_"),
    ],
)
def test_hydra_instantiate_keys_are_refused(where, tmp_path):
    node, key = where
    config = {
        "model": {
            "inputs": {"x": {"shape": [3], "data": [[1, 2, 3]]}},
            "layers": {"d": {"type": "Dense", "output_dim": 1}},
        }
    }
    target = {
        "model": config["model"],
        "layer": config["model"]["layers"]["d"],
        "root": config,
        "input": config["model"]["inputs"]["x"],
        "expect": config["model"].setdefault("expect", {}).setdefault("d", {}),
        "weights": config["model"]["layers"]["d"].setdefault("weights", {"path": "w.npz"}),
    }[node]
    target[key] = "os.system"
    outcome = run(config, tmp_path)
    problems = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2
    assert any(
        p["path"].endswith(key) and f"{key!r} is not accepted" in p["message"] for p in problems
    ), problems


PLUGIN = """
from pathlib import Path
Path({sentinel!r}).write_text("imported")
from typing import Literal
from layers.base import Layer, SpecBase
from layers.registry import register

class DoubleSpec(SpecBase):
    type: Literal["Double"] = "Double"

@register
class Double(Layer):
    Spec = DoubleSpec
    def output_shape(self, s):
        return s
    def forward(self, x, mask, ctx):
        return 2 * x, mask, None
"""

PLUGIN_DRIVER = """
import json, sys
from pathlib import Path
from runner.run import run
out = Path(sys.argv[1])
model = {"inputs": {"x": {"shape": [2], "data": [[1, 2]]}}, "layers": {"d": {"type": "Double"}}}
first = run({"model": model}, out / "without", cwd=out)
imported_before = "evil_plugin" in sys.modules
model["plugins"] = ["evil_plugin"]
named = run({"model": model}, out / "named", cwd=out)
imported_when_named = "evil_plugin" in sys.modules
second = run({"model": model, "allow_plugins": ["evil_plugin"]}, out / "with", cwd=out)
print(json.dumps({"first": first.result, "imported_before": imported_before,
                  "named": named.result, "imported_when_named": imported_when_named,
                  "second": second.result}))
"""


def test_plugins_are_imported_only_when_named_and_allowed(tmp_path):
    """A module on sys.path is never imported unless the config lists it under plugins and
    the person running allows it (allow_plugins, a run setting)."""
    sentinel = tmp_path / "plugin_was_imported"
    (tmp_path / "evil_plugin.py").write_text(PLUGIN.format(sentinel=str(sentinel)))
    proc = subprocess.run(
        [sys.executable, "-c", PLUGIN_DRIVER, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    first = report["first"]
    assert first["status"] == "error" and not report["imported_before"]
    assert "unknown layer type 'Double'" in first["error"]["problems"][0]["message"]
    named = report["named"]
    assert named["status"] == "error" and not report["imported_when_named"]
    assert named["error"]["problems"][0]["path"] == "model.plugins[0]"
    assert "allow_plugins=[evil_plugin]" in named["error"]["problems"][0]["message"]
    assert report["second"]["status"] == "ok"
    assert report["second"]["outputs"]["d"]["values"] == [[2.0, 4.0]]
    assert sentinel.read_text() == "imported"


def test_every_file_load_refuses_pickles(tmp_path, monkeypatch):
    """Every np.load the runner makes (inputs .npy/.npz, per-parameter and model weights)
    passes allow_pickle=False; pickled files end in a clear error, never in unpickling."""
    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle", "missing"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    np.save(tmp_path / "x.npy", np.ones((2, 3), np.float32))
    np.savez(tmp_path / "x.npz", x=np.ones((2, 3)))
    np.save(tmp_path / "W.npy", np.ones((3, 1)))
    np.savez(tmp_path / "w.npz", **{"b/W": np.ones((3, 1)), "b/b": np.zeros(1)})
    model = {
        "inputs": {"x": {"data": {"path": "x.npy"}}, "y": {"data": {"path": "x.npz"}}},
        "layers": {
            "a": {
                "type": "Dense",
                "output_dim": 1,
                "inputs": ["x"],
                "weights": {"W": {"path": "W.npy"}, "b": [0.5]},
            },
            "b": {"type": "Dense", "output_dim": 1, "inputs": ["y"]},
        },
        "outputs": ["a", "b"],
        "weights": {"path": "w.npz", "strict": False},
    }
    outcome = run({"model": model}, tmp_path / "ok", cwd=tmp_path)
    assert outcome.result["outputs"]["a"]["values"] == [[3.5], [3.5]]
    assert outcome.result["outputs"]["b"]["values"] == [[3.0], [3.0]]
    assert len(calls) >= 4 and set(calls) == {False}

    import pickle

    payload = pickle.dumps({"a": 1})
    (tmp_path / "evil.npy").write_bytes(payload)  # a bare pickle named .npy
    np.save(tmp_path / "obj.npy", np.array([print], dtype=object), allow_pickle=True)
    for name in ("evil.npy", "obj.npy"):
        bad = {**model, "inputs": {**model["inputs"], "x": {"data": {"path": name}}}}
        outcome = run({"model": bad}, tmp_path / f"run_{name}", cwd=tmp_path)
        problem = outcome.result["error"]["problems"][0]
        assert outcome.exit_code == 2 and problem["file"] == name
        assert "never loaded" in problem["message"] or "not a .npy file" in problem["message"]
    assert set(calls) == {False}


# ---- static guarantees over the runtime code --------------------------------------------
def _runtime_sources():
    for package in ("runner", "layers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def _call_name(node: ast.Call) -> str:
    f = node.func
    parts = []
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return ".".join(reversed(parts))


def test_runtime_code_never_evals_unpickles_or_instantiates():
    forbidden_calls = {
        "eval",
        "exec",
        "compile",
        "__import__",
        "pickle.load",
        "pickle.loads",
        "marshal.loads",
        "yaml.load",
        "yaml.unsafe_load",
        "instantiate",
        "hydra.utils.instantiate",
        "os.system",
        "subprocess.run",
        "subprocess.Popen",
        "importlib.import_module",
        "import_module",
    }
    found = []
    for path, tree in _runtime_sources():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _call_name(node)
                if name in forbidden_calls and not (
                    rel == "runner/config/plugins.py" and name == "importlib.import_module"
                ):
                    found.append(f"{rel}:{node.lineno} calls {name}")
                for kw in node.keywords:
                    if kw.arg == "allow_pickle" and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False
                    ):
                        found.append(f"{rel}:{node.lineno} allow_pickle is not False")
                if name.endswith("np.load") or name == "load" and rel.endswith("sources.py"):
                    if not any(kw.arg == "allow_pickle" for kw in node.keywords):
                        found.append(f"{rel}:{node.lineno} np.load without allow_pickle=False")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(
                    n in ("pickle", "dill", "marshal", "cloudpickle") or n.startswith("hydra.utils")
                    for n in names
                ):
                    found.append(f"{rel}:{node.lineno} imports {names}")
    assert found == []


def test_only_plugins_module_imports_by_name():
    """The one place a string from a config becomes an import is runner/config/plugins.py."""
    sources = {p.relative_to(ROOT).as_posix(): p.read_text() for p, _ in _runtime_sources()}
    importers = sorted(rel for rel, text in sources.items() if "import_module" in text)
    assert importers == ["runner/config/plugins.py"]
    assert "allow_pickle=True" not in "".join(sources.values())


def test_plugin_names_are_checked_before_any_import(tmp_path):
    cases = ["os; rm -rf /", "../evil", "evil-plugin", "a..b", "", "1abc", "__import__('os')"]
    model = {
        "inputs": {"x": {"data": [[1]]}},
        "layers": {"d": {"type": "Dense", "output_dim": 1}},
        "plugins": cases,
    }
    outcome = run({"model": model}, tmp_path)
    problems = outcome.result["error"]["problems"]
    assert [p["path"] for p in problems] == [f"model.plugins[{i}]" for i in range(len(cases))]
    assert all("dotted module name" in p["message"] for p in problems)


def test_yaml_tags_cannot_build_python_objects(tmp_path):
    """Model files are read by OmegaConf's safe YAML loader: python tags are refused."""
    from runner.api import load_model_file

    evil = tmp_path / "evil.yaml"
    evil.write_text(
        textwrap.dedent("""
        inputs: {x: {data: !!python/object/apply:os.system ["touch PWNED"]}}
        layers: {d: {type: Dense, output_dim: 1}}
    """)
    )
    with pytest.raises(Exception) as info:
        load_model_file(evil)
    assert "python/object/apply" in str(info.value)
    assert not (tmp_path / SENTINEL).exists() and not (Path.cwd() / SENTINEL).exists()

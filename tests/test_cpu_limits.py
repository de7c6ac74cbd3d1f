"""Configs from strangers: the time spent checking a config and reporting its problems grows
linearly with the config (counted in work done, never timed)."""

from __future__ import annotations

import io
import os
import struct
import tokenize

import numpy as np
import yaml

from runner.data.sources import _npy_header
from runner.run import run


def _many_bad_layers(n: int) -> str:
    return "inputs:\n  x: {shape: [1], data: [[1]]}\nlayers:\n" + "".join(
        f"  d{i}: {{type: Dense, output_dim: -1}}\n" for i in range(n)
    )


def test_many_problems_compose_the_model_file_once(tmp_path, monkeypatch):
    """Each problem is placed at file:line:col; the file was composed again for every problem,
    so 2,000 bad layers took 60 s to report (20,000: about 100 minutes)."""
    n = 300
    model_file = tmp_path / "many.yaml"
    model_file.write_text(_many_bad_layers(n))
    composed = []
    compose = yaml.compose
    monkeypatch.setattr(yaml, "compose", lambda *a, **k: composed.append(1) or compose(*a, **k))
    config = {"task": "validate", "model": yaml.safe_load(model_file.read_text())}
    outcome = run(config, tmp_path / "run", cwd=tmp_path, model_file=model_file)
    problems = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and len(problems) == n
    assert len(composed) == 1
    for p in problems:  # layer i sits on line 4 + i, its output_dim at column 32 (+ digits)
        i = int(p["path"].split(".")[2][1:])
        assert p["path"] == f"model.layers.d{i}.output_dim"
        assert (p["line"], p["column"]) == (4 + i, 32 + len(str(i))), p


def _npy_with_header_text(path, text: bytes) -> None:
    """A format 1.0 .npy whose header is ``text``, padded as NumPy pads (to 64 bytes)."""
    text += b" " * ((64 - (10 + len(text) + 1) % 64) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text)


def test_a_header_of_tokens_is_refused_before_numpy_tokenizes_it(tmp_path, monkeypatch):
    """NumPy re-reads a header that is not a Python literal with Python's tokenizer: 9,000 '{'
    (within its 10 KB limit) cost 58 ms a file, and 2,000 inputs naming the file 41 s."""
    _npy_with_header_text(tmp_path / "bad.npy", b"{" * 9000)
    tokens = []
    generate = tokenize.generate_tokens
    monkeypatch.setattr(
        tokenize, "generate_tokens", lambda *a: (tokens.append(t) or t for t in generate(*a))
    )
    inputs = {f"x{i}": {"shape": [1], "data": {"path": "bad.npy"}} for i in range(3)}
    config = {
        "task": "validate",
        "model": {
            "inputs": inputs,
            "layers": {"d": {"type": "Dense", "output_dim": 1, "inputs": ["x0"]}},
        },
    }
    outcome = run(config, tmp_path / "run", cwd=tmp_path)
    problems = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and len(problems) == 3
    assert problems[0]["path"] == "model.inputs.x0.data"
    assert "its header holds 9,000 characters of text, above 512" in problems[0]["message"]
    assert tokens == []
    # the longest real header: 64 axes (NumPy's limit) whose product fits in a file (2**62)
    shape = (1,) * 61 + (2**21, 2**21, 2**20)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    header.seek(0)
    assert _npy_header(header)[0] == shape


class _CountedInputs(list):
    """A call's input list that counts how often the ordering reads it."""

    reads = 0

    def __add__(self, other):
        _CountedInputs.reads += 1
        return list(self) + list(other)

    def __iter__(self):
        _CountedInputs.reads += 1
        return super().__iter__()


def _keras_chain(names: list[str], reads: dict[str, str]) -> dict:
    layers = [
        {"class_name": "InputLayer", "name": "in", "config": {"batch_input_shape": [None, 4]}}
    ]
    for name in names:
        node = [[[reads[name], 0, 0, {}]]]
        layers.append(
            {"class_name": "Dense", "name": name, "config": {"units": 4}, "inbound_nodes": node}
        )
    return {"layers": layers, "input_layers": [["in", 0, 0]], "output_layers": [[names[0], 0, 0]]}


def test_keras_layers_listed_backwards_are_ordered_in_linear_work(monkeypatch):
    """The importer ordered calls by rounds, rescanning every waiting call each round: a chain
    listed backwards (each layer reads the next) took N rounds over N calls (4,000: 9.6 s)."""
    from runner.interop.keras_import import topology

    n = 400
    names = [f"d{i}" for i in range(n)]
    reads = {f"d{i}": f"d{i + 1}" for i in range(n - 1)} | {f"d{n - 1}": "in"}
    node = topology._Parser.node

    def counted(self, *args):
        call = node(self, *args)
        if call is not None:
            call.inputs = _CountedInputs(call.inputs)
        return call

    monkeypatch.setattr(topology._Parser, "node", counted)
    _CountedInputs.reads = 0
    parser = topology._Parser("model.keras")
    parser.functional(_keras_chain(names, reads), "model_config")
    assert [c.layer.name for c in parser.calls] == names[::-1]
    assert _CountedInputs.reads <= 3 * n  # was n * (n + 1) / 2 + n: every round read every call
    # rounds in the file's order: b and c read a (round 1), e reads b (round 2), listed first
    parser = topology._Parser("model.keras")
    parser.functional(
        _keras_chain(["e", "c", "b", "a"], {"e": "b", "c": "a", "b": "a", "a": "in"}), "m"
    )
    assert [c.layer.name for c in parser.calls] == ["a", "c", "b", "e"]


def test_a_shard_pattern_lists_one_folder(tmp_path, monkeypatch):
    """Wildcards in folders multiplied the listings: with two links to '.' in data/, the
    pattern data/*/*/.../part-*.npy (18 levels) listed 2**18 folders (9.9 s; 30 levels: hours)."""
    (tmp_path / "data").mkdir()
    for name in ("l1", "l2"):
        (tmp_path / "data" / name).symlink_to(".")
    listed = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda *a: listed.append(a) or scandir(*a))
    pattern = "data/" + "*/" * 12 + "part-*.npy"
    config = {
        "task": "validate",
        "model": {
            "inputs": {"x": {"shape": [1], "data": {"path": pattern}}},
            "layers": {"d": {"type": "Dense", "output_dim": 1}},
        },
    }
    outcome = run(config, tmp_path / "run", cwd=tmp_path)
    (problem,) = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and problem["path"] == "model.inputs.x.data"
    assert problem["message"].startswith("a shard pattern may use '*', '?' or '[' in its file")
    assert [a for a in listed if "data" in str(a[0] if a else "")] == []  # before: 2**13 - 1

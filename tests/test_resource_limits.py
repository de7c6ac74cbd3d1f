"""Configs from strangers: memory is bounded before anything large is allocated, and planning
time grows linearly with the config.

Each attack runs through the CLI in a child process that reports its own peak RSS; the child
must exit 2 with a message naming the config path, and its peak must stay near the
interpreter's baseline (measured the same way on a tiny valid model), far below what the
attack asked for.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from layers import composite
from layers.dense import Dense
from layers.expressions import parse
from runner.config.validate import validate
from runner.errors import ConfigError
from runner.graph.plan import make_plan
from runner.run import run
from tests.helpers import empty_members_zip

REPO = Path(__file__).resolve().parent.parent
MB = 2**20

# Runs the CLI in this process and prints its own peak RSS (KiB) last: VmHWM, the high-water
# mark of this process image (ru_maxrss would also count the parent's RSS at fork time).
CHILD = """
import runpy, sys
sys.argv = ["runner", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("runner", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
finally:
    with open("/proc/self/status") as f:
        peak = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    sys.stderr.write(f"\\nPEAK_RSS_KB {peak}\\n")
sys.exit(code)
"""


def _npy_bytes(shape: tuple[int, ...], data: bytes) -> bytes:
    """A .npy whose header says ``shape`` (float64), followed by ``data`` (maybe too little)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + data


def _long_header(n_bytes: int) -> bytes:
    """A format 2.0 .npy whose header length field says ``n_bytes``, followed by as many
    spaces (a header of blanks, which NumPy would read whole before refusing it)."""
    return b"\x93NUMPY\x02\x00" + n_bytes.to_bytes(4, "little") + b" " * n_bytes


def _zip_bomb(path: Path, n_bytes: int) -> None:
    """A .npz whose one member is ``n_bytes`` of zeros, honestly declared: tiny on disk."""
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("x.npy", "w", force_zip64=True) as f,
    ):
        f.write(_npy_bytes((n_bytes // 8 // 4, 4), b""))
        chunk = bytes(2**22)
        for _ in range(n_bytes // len(chunk)):
            f.write(chunk)


DENSE_2 = {"d": {"type": "Dense", "output_dim": 2}}
BIG_AE = {
    "type": "AutoEncoder",
    "encoder": {"e": {"type": "Dense", "output_dim": 1_000_000}},
    "decoder": {"d": {"type": "Dense", "output_dim": 3}},
}

# name -> (model, max_memory_mb, config path the message names, fragments of the message)
ATTACKS = {
    "ae_wide_inside": (
        {
            "inputs": {"x": {"shape": [3], "data": {"random": {"rows": 1500}}}},
            "layers": {"ae": BIG_AE},
        },
        100,
        "max_memory_mb",
        [
            "largest is model.layers.ae (AutoEncoder",
            "1,000,000 values per sample inside it",
            "limit of 100 MB",
            "set batch_size",
        ],
    ),
    "siamese_wide_inside": (
        {
            "inputs": {
                "a": {"shape": [3], "data": {"random": {"rows": 300}}},
                "b": {"shape": [3], "data": {"random": {"rows": 300}}},
            },
            "layers": {
                "s": {"type": "Siamese", "inputs": ["a", "b"], "merge_mode": "sum", "layer": BIG_AE}
            },
        },
        100,
        "max_memory_mb",
        ["largest is model.layers.s (Siamese", "2,000,006 values per sample inside it"],
    ),
    "lambda_broadcast": (
        {
            "inputs": {"x": {"shape": [20000, 1], "data": {"random": {"rows": 1}}}},
            "layers": {"f": {"type": "Lambda", "function": "sum(sum(x, axis=-1) * x, axis=-1)"}},
        },
        100,
        "max_memory_mb",
        ["largest is model.layers.f (Lambda", "1,200,020,000 values per sample inside it"],
    ),
    "npz_bomb_input": (
        {"inputs": {"x": {"data": {"path": "bomb.npz"}}}, "layers": DENSE_2},
        100,
        "model.inputs.x.data",
        ["'x' is 300.0 MB uncompressed", "above max_memory_mb (100 MB)"],
    ),
    "npz_bomb_weights": (
        {
            "inputs": {"x": {"shape": [3], "data": [[1, 2, 3]]}},
            "layers": {"d": {"type": "Dense", "output_dim": 2, "weights": {"path": "bomb.npz"}}},
        },
        100,
        "model.layers.d.weights.path",
        ["'x' is 300.0 MB uncompressed"],
    ),
    "npz_model_weights": (
        {
            "inputs": {"x": {"shape": [3], "data": [[1, 2, 3]]}},
            "layers": DENSE_2,
            "weights": {"path": "bomb.npz"},
        },
        100,
        "model.weights.path",
        ["'x' is 300.0 MB uncompressed"],
    ),
    "npz_header_lies": (
        {"inputs": {"x": {"data": {"path": "liar.npz"}}}, "layers": DENSE_2},
        100,
        "model.inputs.x.data",
        [
            "header declares shape (2147483648, 1) of float64 (16,384.0 MB)",
            "zip entry holds 64 bytes",
        ],
    ),
    "npy_header_lies": (
        {"inputs": {"x": {"data": {"path": "liar.npy"}}}, "layers": DENSE_2},
        100,
        "model.inputs.x.data",
        [
            "header declares shape (2147483648, 1) of float64 (16,384.0 MB)",
            "the file holds only 64 bytes",
        ],
    ),
    "npy_weight_header_lies": (
        {
            "inputs": {"x": {"shape": [3], "data": [[1, 2, 3]]}},
            "layers": {
                "d": {
                    "type": "Dense",
                    "output_dim": 2,
                    "weights": {"W": {"path": "liar.npy"}, "b": [0, 0]},
                }
            },
        },
        100,
        "model.layers.d.weights.W",
        ["the file holds only 64 bytes"],
    ),
    "npz_long_header": (  # numpy reads a header's declared length before its 10 KB limit
        {"inputs": {"x": {"data": {"path": "long_header.npz"}}}, "layers": DENSE_2},
        100,
        "model.inputs.x.data",
        ["its header declares 94,371,840 bytes, above NumPy's limit of 10,000"],
    ),
    "npy_shard_long_header": (
        {"inputs": {"x": {"data": {"path": "long-*.npy"}}}, "layers": DENSE_2},
        10,
        "model.inputs.x.data",
        ["cannot read shard long-0.npy", "its header declares 41,943,040 bytes"],
    ),
    "csv_large": (
        {"inputs": {"x": {"data": {"path": "big.csv"}}}, "layers": DENSE_2},
        10,
        "model.inputs.x.data",
        [
            "this .csv holds more than 1,310,720 numbers",
            "above max_memory_mb (10 MB)",
            "save the data as .npy",
        ],
    ),
}


@pytest.fixture(scope="module")
def attack_results(tmp_path_factory):
    """Run every attack (and a tiny valid baseline) through the CLI at once."""
    if not Path("/proc/self/status").exists():
        pytest.skip("peak RSS is read from /proc (Linux)")
    base = tmp_path_factory.mktemp("attacks")
    (base / "conf" / "model").mkdir(parents=True)
    _zip_bomb(base / "bomb.npz", 300 * MB)
    liar = _npy_bytes((2**31, 1), bytes(64))  # claims 16 GiB, holds 64 bytes
    (base / "liar.npy").write_bytes(liar)
    with zipfile.ZipFile(base / "liar.npz", "w") as zf:
        zf.writestr("x.npy", liar)
    with (
        zipfile.ZipFile(base / "long_header.npz", "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("x.npy", "w", force_zip64=True) as f,
    ):
        f.write(_long_header(90 * MB))  # 90 MB of header: under the limit as a member
    (base / "long-0.npy").write_bytes(_long_header(40 * MB))  # 40 MB on disk, limit 10
    row = ",".join(["0.5"] * 50) + "\n"
    (base / "big.csv").write_text(row * (60 * MB // len(row)))  # 60 MB, 3.1M numbers
    runs = {
        **{k: (v[0], v[1]) for k, v in ATTACKS.items()},
        "baseline": (
            {"inputs": {"x": {"shape": [3], "data": [[1, 2, 3]]}}, "layers": DENSE_2},
            100,
        ),
    }
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("HYDRA_FULL_ERROR", None)
    procs = {}
    for name, (model, limit) in runs.items():
        (base / "conf" / "model" / f"{name}.yaml").write_text(yaml.safe_dump(model))
        procs[name] = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                "--config-dir",
                str(base / "conf"),
                f"+model={name}",
                f"max_memory_mb={limit}",
                "task=predict",
                f"hydra.run.dir={base / 'runs' / name}",
            ],
            cwd=base,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        peak_kb = int(err.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
        results[name] = (proc.returncode, out + err, peak_kb / 1024)
    return results


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_refused_before_the_allocation(name, attack_results):
    _, _, path, fragments = ATTACKS[name]
    code, text, peak_mb = attack_results[name]
    base_code, base_text, baseline_mb = attack_results["baseline"]
    assert base_code == 0, base_text
    assert code == 2, text
    assert f"{path}" in text and "invalid config" in text
    for fragment in fragments:
        assert fragment in text
    # The attacks asked for 300 MB to 16 GB (the 60 MB CSV took 1.9 GB before it was parsed
    # row by row, a 90 MB .npy header 200 MB before its length was checked); the refusal
    # costs little beyond the interpreter: under 30 MB more than a tiny valid run, below even
    # the 100 MB limits (the CSV's running count stops at 10 MB).
    assert baseline_mb < 200
    assert peak_mb < baseline_mb + 30, (peak_mb, baseline_mb)


def _model(layers: dict, inputs: dict | None = None, **top) -> dict:
    return {
        **top,
        "model": {
            "inputs": inputs or {"x": {"shape": [3], "data": [[1, 2, 3], [4, 5, 6]]}},
            "layers": layers,
        },
    }


def test_estimate_counts_the_layers_inside_an_autoencoder():
    ae = {
        "type": "AutoEncoder",
        "encoder": {"e": {"type": "Dense", "output_dim": 5}},
        "decoder": {"d": {"type": "Dense", "output_dim": 3}},
    }
    plan = make_plan(validate(_model({"ae": ae})))
    params = (3 * 5 + 5) + (5 * 3 + 3)
    # per sample: input 3, the encoder's output 5 (inside), the AutoEncoder's output 3
    assert plan.nodes["ae"].inner == 5
    assert plan.memory_bytes == (params + 2 * (3 + 5 + 3)) * 4
    code = make_plan(validate(_model({"ae": {**ae, "output_reconstruction": False}})))
    assert code.nodes["ae"].inner == 0  # the decoder does not run: only the code is held
    nested = {
        "type": "AutoEncoder",
        "encoder": {"inner": ae},
        "decoder": {"d2": {"type": "Dense", "output_dim": 3}},
    }
    plan = make_plan(validate(_model({"outer": nested})))
    # inner AutoEncoder's output 3 and, inside it, the encoder's 5
    assert plan.nodes["outer"].inner == 3 + 5


def test_estimate_counts_each_siamese_head():
    inputs = {
        "a": {"shape": [3], "data": [[1, 2, 3], [4, 5, 6]]},
        "b": {"shape": [3], "data": [[1, 2, 3], [4, 5, 6]]},
    }
    layer = {"type": "Dense", "output_dim": 4}
    merged = make_plan(
        validate(_model({"s": {"type": "Siamese", "inputs": ["a", "b"], "layer": layer}}, inputs))
    )
    assert merged.nodes["s"].inner == 2 * 4  # two heads of 4 before the concat
    assert merged.memory_bytes == (16 + 2 * (3 + 3 + 8 + 8)) * 4
    heads = make_plan(
        validate(
            _model(
                {
                    "s": {
                        "type": "Siamese",
                        "inputs": ["a", "b"],
                        "layer": layer,
                        "merge_mode": None,
                    }
                },
                inputs,
            )
        )
    )
    assert heads.nodes["s"].inner == 0  # the heads are the outputs, counted once
    assert heads.memory_bytes == (16 + 2 * (3 + 3 + 2 * 4)) * 4


@pytest.mark.parametrize(
    "expression, shape, held",
    [
        ("x * x", (3,), 0 + 2 * 3),  # only the output; temporaries bounded by 2x the largest
        ("x[:, 0] + 1", (4, 2), 0 + 2 * 2),  # indexing is a view: free; output (2,)
        ("sum(sum(x, axis=-1) * x, axis=-1)", (20000, 1), 20000 + 20000**2 + 2 * 20000**2),
        ("tanh(x) * sigmoid(x)", (10,), 10 + 10 + 2 * 10),
        ("1 + x * 0", (7,), 7 + 2 * 7),  # the constant 1 costs nothing
    ],
)
def test_lambda_intermediates_inferred_from_shapes(expression, shape, held):
    assert parse(expression).intermediate_elements(shape) == held


def test_lambda_broadcast_refused_in_process_without_allocating(tmp_path):
    config = _model(
        {"f": {"type": "Lambda", "function": "sum(sum(x, axis=-1) * x, axis=-1)"}},
        {"x": {"shape": [20000, 1], "data": {"random": {"rows": 1}}}},
        max_memory_mb=100,
    )
    tracemalloc.start()
    try:
        outcome = run(config, tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (problem,) = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and problem["path"] == "max_memory_mb"
    # 1 row: (20000 + 20000 output + 20000 inner sum + 3 * 20000**2 product) float32
    assert f"needs about {(60000 + 3 * 20000**2) * 4 / MB:,.0f} MB" in problem["message"]
    assert peak < 20 * MB
    # the same expression on a small input is allowed and right
    small = _model(
        {"f": {"type": "Lambda", "function": "sum(sum(x, axis=-1) * x, axis=-1)"}},
        {"x": {"shape": [2, 1], "data": [[[1], [2]]]}},
    )
    outcome = run(small, tmp_path / "small")
    assert outcome.result["outputs"]["f"]["values"] == [[3.0, 6.0]]


def test_random_and_dataset_sizes_checked_before_drawing(tmp_path):
    big = _model(
        {"d": {"type": "Dense", "output_dim": 1}},
        {"x": {"shape": [1], "data": {"random": {"rows": 200_000_000}}}},
        max_memory_mb=100,
        batch_size=10,
    )
    with pytest.raises(ConfigError) as info:
        make_plan(validate(big))
    assert info.value.problems[0].path == "max_memory_mb"
    assert "random input of 200,000,000 rows" in str(info.value)
    blobs = _model(
        DENSE_2, {"x": {"data": {"dataset": {"name": "blobs", "rows": 10**9}}}}, max_memory_mb=100
    )
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            make_plan(validate(blobs), tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (problem,) = info.value.problems
    assert problem.path == "model.inputs.x.data.dataset.rows"
    # 1e9 rows * (3 * 2 features + 2) float64, plus 3 centres of 2
    assert f"takes {(10**9 * 8 + 6) * 8 / MB:,.1f} MB, above max_memory_mb" in problem.message
    assert peak < 20 * MB


def test_random_fit_target_refused_before_drawing(tmp_path):
    config = {
        "task": "fit",
        "max_memory_mb": 100,
        "fit": {"epochs": 1},
        "model": {
            "inputs": {"x": {"shape": [2], "data": [[1, 2], [3, 4]]}},
            "layers": {"d": {"type": "Dense", "output_dim": 1}},
            "targets": {"d": {"random": {"rows": 200_000_000}}},
        },
    }
    tracemalloc.start()
    try:
        outcome = run(config, tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (problem,) = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and problem["path"] == "model.targets.d.random.rows"
    assert "drawing 200,000,000 rows of (1,) (float64) takes 1,525.9 MB" in problem["message"]
    assert peak < 20 * MB


def test_csv_within_the_limit_still_reads(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n\n3,4.5\n")
    config = _model(
        {"d": {"type": "Lambda", "function": "x * 2"}},
        {"x": {"data": {"path": "x.csv"}}},
        max_memory_mb=1,
    )
    outcome = run(config, tmp_path / "run", cwd=tmp_path)
    assert outcome.exit_code == 0, outcome.result.get("error")
    assert outcome.result["outputs"]["d"]["values"] == [[2.0, 4.0], [6.0, 9.0]]


def test_csv_line_too_long_refused_before_split(tmp_path):
    (tmp_path / "x.csv").write_text(",".join(["1"] * 200_000) + "\n")  # 400 KB, one line
    config = _model(DENSE_2, {"x": {"data": {"path": "x.csv"}}}, max_memory_mb=1)
    outcome = run(config, tmp_path / "run", cwd=tmp_path)
    (problem,) = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and problem["path"] == "model.inputs.x.data"
    assert "line 1 is longer than 65,536 characters" in problem["message"]


def test_npz_within_the_limit_still_reads(tmp_path):
    np.savez_compressed(tmp_path / "x.npz", x=np.arange(6.0).reshape(2, 3))
    np.savez(tmp_path / "w.npz", **{"d/W": np.ones((3, 2)), "d/b": np.zeros(2)})
    config = _model(DENSE_2, {"x": {"data": {"path": "x.npz"}}}, max_memory_mb=1)
    config["model"]["weights"] = {"path": "w.npz"}
    outcome = run(config, tmp_path / "run", cwd=tmp_path)
    assert outcome.exit_code == 0, outcome.result.get("error")
    assert outcome.result["outputs"]["d"]["values"] == [[3.0, 3.0], [12.0, 12.0]]


def test_inline_rows_beyond_the_limit_point_to_npy(tmp_path):
    rows = [[float(i), 1.0, 2.0] for i in range(100_000)]  # 300,000 numbers
    config = _model(DENSE_2, {"x": {"data": rows}})
    outcome = run(config, tmp_path)
    (problem,) = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and problem["path"] == "model.inputs.x.data"
    assert "inline data holds 300,000 numbers" in problem["message"]
    assert "limited to 50,000" in problem["message"] and "{path: file.npy}" in problem["message"]
    assert not (tmp_path / "config.yaml").exists()  # refused before the slow text copy
    at_limit = _model(DENSE_2, {"x": {"data": [[1.0] * 5] * 10_000}})  # 50,000: allowed
    assert run(at_limit, tmp_path / "ok").exit_code == 0


def _nested(depth: int) -> dict:
    layer = {"type": "Dense", "output_dim": 3}
    for _ in range(depth):
        layer = {
            "type": "AutoEncoder",
            "encoder": {"e": layer},
            "decoder": {"d": {"type": "Dense", "output_dim": 3}},
        }
    return _model({"ae": layer})


def test_nesting_beyond_the_limit_is_refused_at_validation():
    assert composite.MAX_NESTING == 8
    make_plan(validate(_nested(8)))
    with pytest.raises(ConfigError) as info:
        validate(_nested(9))
    (problem,) = info.value.problems
    assert problem.path == "model.layers.ae.encoder"
    assert "nested 9 levels deep here; the limit is 8" in problem.message
    assert "flatten the model" in problem.message
    with pytest.raises(ConfigError) as info:  # far deeper: refused the same, at once
        validate(_nested(60))
    assert "nested 9 levels deep" in str(info.value)
    siamese = _model(
        {
            "s": {
                "type": "Siamese",
                "inputs": ["x", "x"],
                "layer": _nested(8)["model"]["layers"]["ae"],
            }
        }
    )
    with pytest.raises(ConfigError, match="nested 9 levels deep here; the limit is 8"):
        validate(siamese)


@pytest.mark.parametrize("depth", [4, 8, 30])
def test_planning_visits_each_layer_once(depth, monkeypatch):
    """Nested AutoEncoders used to re-plan their subtree for every question about it (time
    doubling per level); now each inner Dense is asked its output shape exactly once."""
    monkeypatch.setattr(composite, "MAX_NESTING", 40)  # only to show planning is linear
    calls = []
    real = Dense.output_shape
    monkeypatch.setattr(Dense, "output_shape", lambda self, s: calls.append(1) or real(self, s))
    plan = make_plan(validate(_nested(depth)))
    assert len(calls) == depth + 1  # the innermost Dense and one decoder Dense per level
    assert plan.nodes["ae"].shape == (3,)
    # each level holds its inner AutoEncoder's output (3) and what that one holds
    assert plan.nodes["ae"].inner == 3 * depth


@pytest.mark.parametrize("declared", [None, 1])
def test_npz_directory_with_too_many_members_refused_unparsed(tmp_path, declared):
    """20,000 members, or a forged count of 1 in front of the same directory: zipfile parses
    entries until it has read the declared size, so the size counts as well."""
    empty_members_zip(tmp_path / "w.npz", (f"{i}.npy" for i in range(20_000)), declared)
    config = _model(DENSE_2, max_memory_mb=10)
    config["model"]["weights"] = {"path": "w.npz"}
    outcome = run(config, tmp_path / "run", cwd=tmp_path)
    (problem,) = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and problem["path"] == "model.weights.path"
    # names "0.npy" .. "19999.npy": 46 + 5..9 bytes per entry, 1,088,890 bytes in all
    listed = declared or 20_000
    assert (
        f"lists {listed:,} members in a directory of 1.0 MB, room for 23,671"
        in (problem["message"])
    )
    assert "up to about 23.1 MB, above max_memory_mb (10 MB)" in problem["message"]


def test_zip64_end_records_are_read(tmp_path):
    """Over 65,535 members the counts live in the ZIP64 end record, which is read too."""
    from runner.data.zip_directory import read_directory

    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(70_000):
            zf.writestr(str(i), b"")
    directory = read_directory(path)
    names = sum(len(str(i)) for i in range(70_000))
    assert (directory.entries, directory.size) == (70_000, 46 * 70_000 + names)
    assert read_directory(tmp_path / "run") is None  # no such file
    (tmp_path / "plain.txt").write_text("not a zip")
    assert read_directory(tmp_path / "plain.txt") is None


@pytest.mark.parametrize("comment", [b"a comment", b"a comment with PK\x05\x06 in it"])
def test_the_end_record_is_found_before_a_comment_as_zipfile_finds_it(tmp_path, comment):
    """A trailing comment moves the end record back from the file's end: it is searched for
    as zipfile searches. A comment that holds the record's signature is a file zipfile
    refuses (BadZipFile), and one we find no record in."""
    from runner.data.zip_directory import read_directory

    path = tmp_path / "commented.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name in ("a", "bb", "ccc"):
            zf.writestr(name, b"")
        zf.comment = comment
    directory = read_directory(path)
    if b"PK" in comment:
        assert directory is None
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(path)
    else:
        assert (directory.entries, directory.size) == (3, 3 * 46 + 6)
        assert len(zipfile.ZipFile(path).infolist()) == 3


def test_a_zip64_record_behind_a_small_plain_record_counts(tmp_path):
    """zipfile takes the ZIP64 end record's counts whenever a ZIP64 locator precedes the plain
    end record, whatever the plain record says: a plain record declaring 1 member in 46 bytes
    in front of a ZIP64 record declaring the real 20,000 does not pass as small."""
    import struct

    from runner.data.zip_directory import read_directory

    path = empty_members_zip(tmp_path / "w.npz", (f"{i}.npy" for i in range(20_000)))
    data = path.read_bytes()
    end = data.rindex(b"PK\x05\x06")
    plain = struct.unpack("<4s4H2LH", data[end : end + 22])
    entries, size, offset = plain[4], plain[5], plain[6]
    record = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, offset
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    small = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, 46, offset, 0)
    path.write_bytes(data[:end] + record + locator + small)
    assert len(zipfile.ZipFile(path).infolist()) == 20_000  # what zipfile parses
    directory = read_directory(path)
    assert (directory.entries, directory.size) == (20_000, 1_088_890)
    config = _model(DENSE_2, max_memory_mb=10)
    config["model"]["weights"] = {"path": "w.npz"}
    outcome = run(config, tmp_path / "run", cwd=tmp_path)
    (problem,) = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and "room for 23,671" in problem["message"]


def test_fit_counts_gradients_optimizer_slots_and_every_input_row():
    config = _model({"d": {"type": "Dense", "output_dim": 2}}, batch_size=1)
    predict = make_plan(validate(config))
    fit = make_plan(validate({**config, "task": "fit"}))
    params = 3 * 2 + 2
    assert predict.memory_bytes == (params + 1 * (3 + 2)) * 4
    # 4 copies of each parameter, and both rows of the input held whole
    assert fit.memory_bytes == (4 * params + 1 * (3 + 2)) * 4 + 2 * 3 * 4


def _sparse_npy(path: Path, rows: int) -> int:
    """A float64 (rows, 1) .npy of zeros, sparse on disk; returns its data bytes."""
    header = _npy_bytes((rows, 1), b"")
    with path.open("wb") as f:
        f.write(header)
        f.truncate(len(header) + rows * 8)
    return rows * 8


def test_npy_read_whole_is_bounded_but_a_streamed_input_is_not(tmp_path):
    _sparse_npy(tmp_path / "big.npy", 20_000_000)  # 152.6 MB
    # a model input streams batch by batch: larger than the limit is fine with batch_size
    streamed = _model(
        {"d": {"type": "Dense", "output_dim": 1}},
        {"x": {"data": {"path": "big.npy"}}},
        max_memory_mb=100,
        batch_size=1000,
        task="validate",
    )
    outcome = run(streamed, tmp_path / "streamed", cwd=tmp_path)
    assert outcome.exit_code == 0, outcome.result.get("error")
    assert outcome.result["plan"]["rows"] == 20_000_000
    # fit targets in a .npy stream too (runner.data.feed): the size is no problem, only
    # the rows, which disagree with the 4 input rows
    fit = {
        "task": "fit",
        "max_memory_mb": 100,
        "fit": {"epochs": 1},
        "model": {
            "inputs": {"x": {"shape": [1], "data": {"random": {"rows": 4}}}},
            "layers": {"d": {"type": "Dense", "output_dim": 1}},
            "targets": {"d": {"path": "big.npy"}},
        },
    }
    outcome = run(fit, tmp_path / "fit", cwd=tmp_path)
    (problem,) = outcome.result["error"]["problems"]
    assert outcome.exit_code == 2 and problem["path"] == "model.targets.d"
    assert problem["message"] == "has 20000000 rows, but the inputs have 4"
    # (what is read whole, a .npz member or a .csv, stays bounded: the npz_bomb attacks)

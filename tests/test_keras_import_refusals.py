"""What import-keras refuses, and how: one message listing every problem with its path in the
source file, exit code 2, no traceback, and nothing written."""

from __future__ import annotations

import json
import zipfile

import h5py
import numpy as np
import pytest
import yaml

from tests.helpers import empty_members_zip
from tests.keras_import_helpers import FIXTURES, run_imported


@pytest.fixture
def refuse(tmp_path, monkeypatch, capsys):
    """refuse(*args) runs the command from tmp_path, expects exit 2 with nothing written,
    and returns stderr."""
    from runner.interop.keras_import.cli import main

    monkeypatch.chdir(tmp_path)

    def _refuse(*args: str) -> str:
        code = main([*map(str, args), "--out", "model/out.yaml"])
        captured = capsys.readouterr()
        assert code == 2, captured
        assert "Traceback" not in captured.err
        assert "nothing was written" in captured.err
        assert not any((tmp_path / "model").glob("*")) if (tmp_path / "model").exists() else True
        return captured.err

    return _refuse


@pytest.mark.parametrize(
    ("file", "path"),
    [
        ("k2/lambda.json", "config.layers[2] (Lambda 'square')"),
        ("k3/lambda.keras", "config.layers[2] (Lambda 'square')"),
        ("k03/lambda.json", "config.layers[0]"),
    ],
)
def test_lambda_is_refused_with_its_path_and_our_expressions(refuse, file, path):
    err = refuse(FIXTURES / file)
    assert "cannot import: 1 problem\n" in err
    assert f"  {path}" in err
    assert "a Lambda holds Python code (bytecode or a function name) and is never imported" in err
    assert '{type: Lambda, function: "x * x"}' in err


def test_every_unmapped_layer_is_listed_in_one_message(refuse):
    err = refuse(FIXTURES / "k2/unmapped.json")
    lines = err.splitlines()
    assert lines[0] == "cannot import: 3 problems"
    assert lines[1].startswith("  config.layers[1] (Conv1D 'conv') (")
    assert lines[2].startswith("  config.layers[2] (LSTM 'lstm') (")
    assert lines[3].startswith("  config.layers[3] (BatchNormalization 'norm') (")
    assert all("k2/unmapped.json): " in line for line in lines[1:4])
    assert "LSTM is not a layer we implement (docs/interop.md maps" in lines[2]


def test_yaml_python_tags_are_refused_never_loaded(refuse, tmp_path):
    """0.3.3 wrote a Lambda's function as a Python name tag; any such tag is refused before
    loading (a loader that honoured it would import __main__ or run code)."""
    err = refuse(FIXTURES / "k03/lambda.yaml")
    assert "  line 4 (" in err
    assert "the YAML tag !!python/name:__main__.<lambda> would build a Python object" in err
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(
        "name: Sequential\nlayers:\n- !!python/object/apply:builtins.open ['pwned', 'w']\n"
    )
    err = refuse(hostile)
    assert "line 3" in err and "!!python/object/apply:builtins.open" in err
    assert not (tmp_path / "pwned").exists()


def test_yaml_python_tuple_is_a_plain_list():
    from runner.interop.keras_import.text import parse_yaml

    assert parse_yaml("shape: !!python/tuple [null, 3]\n", "x.yaml") == {"shape": [None, 3]}


def test_yaml_alias_bomb_is_refused(refuse, tmp_path):
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        bomb.append(
            f"{'abcdefgh'[i]}: &{'abcdefgh'[i]} [{', '.join(['*' + 'abcdefgh'[i - 1]] * 10)}]"
        )
    (tmp_path / "bomb.yaml").write_text("\n".join(bomb) + "\n")
    err = refuse(tmp_path / "bomb.yaml")
    assert "expands to more than 200,000 values" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not an hdf5 file at all", "not an HDF5 file (weights come from save_weights or save)"),
        (b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "not an HDF5 file h5py can read"),
    ],
)
def test_bad_weights_file_is_refused(refuse, tmp_path, content, message):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(content)
    err = refuse(FIXTURES / "k2/mlp.json", bad)
    assert message in err
    assert "bad.h5" in err


def test_weights_only_file_as_source_is_refused(refuse):
    err = refuse(FIXTURES / "k2/mlp_weights.h5")
    assert "this HDF5 file holds no architecture (it comes from save_weights)" in err


def test_weights_of_another_model_are_refused(refuse):
    err = refuse(FIXTURES / "k2/mlp.json", FIXTURES / "k2/siamese_weights.h5")
    assert "layer_names: hidden" in err and "no weights group for layer 'hidden'" in err


def test_weights_with_wrong_shapes_are_refused_by_the_plan(refuse, tmp_path):
    """A kernel of another shape: the written model's own validation refuses it."""
    f = tmp_path / "w.h5"
    with h5py.File(f, "w") as h:
        h.attrs["layer_names"] = [b"dense"]
        g = h.create_group("dense")
        g.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        g["dense/kernel:0"] = np.zeros((4, 3), np.float32)
        g["dense/bias:0"] = np.zeros(3, np.float32)
    arch = tmp_path / "a.json"
    arch.write_text(json.dumps(_sequential([_dense("dense", 3, [None, 5])])))
    err = refuse(arch, f)
    assert (
        "  model.weights[dense/W] (model/out.npz): expected shape (5, 3) (from the input size "
        "and the layer's settings), found (4, 3)\n"
    ) in err


def test_text_weights_are_refused(refuse, tmp_path):
    f = tmp_path / "w.h5"
    with h5py.File(f, "w") as h:
        h.attrs["layer_names"] = [b"dense"]
        g = h.create_group("dense")
        g.attrs["weight_names"] = [b"k", b"b"]
        g["k"] = np.array([b"rm -rf /"])
        g["b"] = np.zeros(3, np.float32)
    arch = tmp_path / "a.json"
    arch.write_text(json.dumps(_sequential([_dense("dense", 3, [None, 5])])))
    err = refuse(arch, f)
    assert "dense/k (" in err and "holds |S8 values, not numbers" in err


def test_links_out_of_the_file_are_never_followed(refuse, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h:
        h["kernel"] = np.ones((5, 3), np.float32)
    f = tmp_path / "w.h5"
    with h5py.File(f, "w") as h:
        h.attrs["layer_names"] = [b"dense"]
        h["dense"] = h5py.ExternalLink(str(other), "/")
    arch = tmp_path / "a.json"
    arch.write_text(json.dumps(_sequential([_dense("dense", 3, [None, 5])])))
    err = refuse(arch, f)
    assert "'dense' is a ExternalLink: links to other places or files are never followed" in err


def test_oversized_dataset_is_refused_before_it_is_read(refuse, tmp_path):
    """A dataset declaring 40 GB (stored sparsely, so the file is small): refused from its
    declared shape against max_memory_mb, nothing allocated."""
    f = tmp_path / "w.h5"
    with h5py.File(f, "w") as h:
        h.attrs["layer_names"] = [b"dense"]
        g = h.create_group("dense")
        g.attrs["weight_names"] = [b"k", b"b"]
        g.create_dataset("k", shape=(100_000, 100_000), dtype=np.float32, chunks=(10, 10))
        g["b"] = np.zeros(3, np.float32)
    assert f.stat().st_size < 100_000
    arch = tmp_path / "a.json"
    arch.write_text(json.dumps(_sequential([_dense("dense", 3, [None, 100_000])])))
    err = refuse(arch, f)
    assert "dense/k (" in err
    assert "array (100000, 100000) of float32 takes 38,147.0 MB" in err
    assert "above max_memory_mb (4,096 MB)" in err


def test_a_dataset_chunk_larger_than_its_data_is_counted(refuse, tmp_path):
    """24 bytes of weights stored in one 256 MB chunk (gzip: 270 KB on disk): libhdf5 unpacks
    the whole chunk to read them, so the chunk counts against --max-memory-mb too."""
    f = tmp_path / "w.h5"
    with h5py.File(f, "w") as h:
        h.attrs["layer_names"] = [b"dense"]
        g = h.create_group("dense")
        g.attrs["weight_names"] = [b"k", b"b"]
        g.create_dataset(
            "k",
            data=np.ones((2, 3), np.float32),
            maxshape=(None, None),
            chunks=(8192, 8192),
            compression="gzip",
        )
        g["b"] = np.zeros(3, np.float32)
    assert f.stat().st_size < 1 << 20
    arch = tmp_path / "a.json"
    arch.write_text(json.dumps(_sequential([_dense("dense", 3, [None, 2])])))
    err = refuse(arch, f, "--max-memory-mb", "10")
    assert "dense/k (w.h5): array (2, 3) of float32 stored in chunks of (8192, 8192) takes " in err
    assert "256.0 MB" in err and "above max_memory_mb (10 MB)" in err


def test_zip_bomb_member_is_refused_unread(refuse, tmp_path):
    """A .keras whose weights member unpacks to 64 MB from 64 KB: its declared size is
    checked against --max-memory-mb before it is read."""
    src = zipfile.ZipFile(FIXTURES / "k3/mlp.keras")
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", src.read("config.json"))
        z.writestr("model.weights.h5", b"\0" * (64 << 20))
    assert bomb.stat().st_size < 1 << 20
    err = refuse(bomb, "--max-memory-mb", "16")
    assert "model.weights.h5 (" in err
    assert "the weights member takes 64.0 MB" in err and "above max_memory_mb (16 MB)" in err


def test_oversized_architecture_text_is_refused(refuse, tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"class_name": "Sequential", "config": [], "pad": "x" * (1 << 20)}))
    err = refuse(big)
    assert "more than 1,048,576 bytes of architecture text" in err


@pytest.mark.parametrize("fixed_length", [False, True])
def test_oversized_text_attribute_is_refused_before_it_is_parsed(refuse, tmp_path, fixed_length):
    """A variable-length string attribute stores only a 16-byte reference to its text, so its
    storage size says nothing: 2 MB of valid JSON (that json.loads would turn into 0.5 M
    lists) must be refused by its length, like a fixed-length one by its storage."""
    text = "[" + "[]," * (700_000) + "[]]"
    f = tmp_path / "m.h5"
    with h5py.File(f, "w", libver="latest") as h:  # (large attributes need the new format)
        h.attrs["model_config"] = np.bytes_(text) if fixed_length else text
    assert (h5py.File(f).attrs.get_id("model_config").get_storage_size() == 16) != fixed_length
    err = refuse(f)
    assert "model_config (m.h5): attribute 'model_config' holds more than 1,048,576 bytes" in err


def test_oversized_names_attribute_is_refused(refuse, tmp_path):
    """weight_names as 300 variable-length names of 4 KB (1.2 MB in all): refused by length."""
    f = tmp_path / "w.h5"
    with h5py.File(f, "w", libver="latest") as h:
        h.attrs["layer_names"] = [b"dense"]
        g = h.create_group("dense")
        g.attrs.create("weight_names", ["k" * 4096] * 300, dtype=h5py.string_dtype())
    arch = tmp_path / "a.json"
    arch.write_text(json.dumps(_sequential([_dense("dense", 3, [None, 2])])))
    err = refuse(arch, f)
    assert "attribute 'weight_names' holds more than 1,048,576 bytes of text" in err


def test_custom_objects_are_refused(refuse, tmp_path):
    config = json.loads((FIXTURES / "k3/mlp.json").read_text())
    config["config"]["layers"][1].update(module="my_project.layers", class_name="MyDense")
    arch = tmp_path / "custom.json"
    arch.write_text(json.dumps(config))
    err = refuse(arch)
    assert "config.layers[1] (MyDense 'hidden')" in err
    assert "is a custom object (module my_project.layers): its code is never imported" in err


def test_custom_activation_function_is_refused(refuse, tmp_path):
    config = json.loads((FIXTURES / "k3/mlp.json").read_text())
    config["config"]["layers"][1]["config"]["activation"] = {
        "module": "my_project.acts",
        "class_name": "function",
        "config": "my_act",
        "registered_name": "function",
    }
    arch = tmp_path / "custom.json"
    arch.write_text(json.dumps(config))
    err = refuse(arch)
    assert "is a custom function: its code is never imported" in err


def test_a_mask_computed_by_other_operations_is_refused(refuse, tmp_path):
    """Keras 3 passes masks as tensors; one that is not Masking's own (here NotEqual with
    another value than the Masking layer's) would not be what our masks carry."""
    with zipfile.ZipFile(FIXTURES / "k3/sequence.keras") as z:
        config = json.loads(z.read("config.json"))
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "NotEqual":
            layer["inbound_nodes"][0]["args"][1] = 5.0
    arch = tmp_path / "seq.json"
    arch.write_text(json.dumps(config))
    err = refuse(arch)
    assert "(TimeDistributed 'td')" in err and "(GlobalAveragePooling1D 'pool')" in err
    assert "its mask is computed by other operations than a Masking layer" in err


def test_open_input_dimension_needs_a_shape(tmp_path, monkeypatch, capsys, refuse):
    """Keras leaves the time axis open (None); ours are fixed: refused with the fix, and
    with --shape the import gives Keras' outputs."""
    config = yaml.load((FIXTURES / "k2/sequence.yaml").read_text(), Loader=yaml.SafeLoader)
    config["config"]["layers"][0]["config"]["batch_input_shape"] = [None, None, 3]
    arch = tmp_path / "open.json"
    arch.write_text(json.dumps(config))
    err = refuse(arch, FIXTURES / "k2/sequence_weights.h5")
    assert "config.layers[0]" in err
    assert "input 'x' has shape (None, 3): our inputs have fixed per-sample shapes" in err
    assert "--shape x=D1,D2,..." in err
    from runner.interop.keras_import.cli import main

    code = main(
        [str(arch), str(FIXTURES / "k2/sequence_weights.h5"), "--out", "model/seq.yaml"]
        + ["--shape", "x=5,3"]
    )
    assert code == 0, capsys.readouterr().err
    with np.load(FIXTURES / "k2/sequence.io.npz") as f:
        x, pool = f["in/x"], f["out/pool"]
    out, _ = run_imported(tmp_path / "model" / "seq.yaml", tmp_path, {"x": x})
    np.testing.assert_allclose(out["pool"], pool, rtol=1e-5, atol=1e-6)


def test_existing_files_are_not_replaced_without_force(tmp_path, monkeypatch, capsys):
    from runner.interop.keras_import.cli import main

    monkeypatch.chdir(tmp_path)
    args = [str(FIXTURES / "k3/mlp.keras"), "--out", "model/m.yaml"]
    assert main(args) == 0
    before = (tmp_path / "model" / "m.yaml").read_text()
    capsys.readouterr()
    assert main(args) == 2
    assert "model/m.yaml exists; choose another name or pass --force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert (tmp_path / "model" / "m.yaml").read_text() == before


def test_malformed_and_foreign_files(refuse, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"class_name": "Sequential",\n "config": [}')
    assert "line 2, column 13" in refuse(bad) and "malformed JSON" in refuse(bad)
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"model": "resnet"}')
    assert "not a Keras model config: expected 'class_name'" in refuse(foreign)
    odd = tmp_path / "odd.json"
    odd.write_text('{"class_name": "Sequential", "config": {"layers": [{"class_name": 3}]}}')
    assert "expected a layer {class_name, config}" in refuse(odd)


def test_bad_command_line_shapes_exit_2(tmp_path, monkeypatch, capsys):
    from runner.interop.keras_import.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([str(FIXTURES / "k3/mlp.keras"), "--out", "m.yaml", "--shape", "x=a,b"])
    assert exc.value.code == 2
    assert "--shape 'x=a,b': expected NAME=D1,D2,... (positive)" in capsys.readouterr().err
    assert main([str(FIXTURES / "k3/mlp.keras"), "--out", "m.yaml", "--shape", "y=3"]) == 2
    assert "--shape (" in capsys.readouterr().err


def _sequential(layers):
    return {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}


def _dense(name, units, batch_input_shape):
    return {
        "class_name": "Dense",
        "config": {
            "name": name,
            "units": units,
            "activation": "linear",
            "use_bias": True,
            "batch_input_shape": batch_input_shape,
        },
    }


@pytest.mark.parametrize("declared", [None, 1])
def test_archive_with_many_members_is_refused_from_its_end_records(refuse, tmp_path, declared):
    """100 members, or a forged count of 1 in front of the same directory (zipfile parses
    entries until it has read the declared size): refused before the directory is parsed."""
    names = (f"assets/{i}" for i in range(100))
    err = refuse(empty_members_zip(tmp_path / "many.keras", names, declared))
    # each entry: 46 bytes of header and a name of 8 or 9 ("assets/0" .. "assets/99")
    listed = declared or 100
    assert f"(zip directory) (many.keras): {listed} members in a directory of 5,490 bytes" in err
    assert "room for 119; a .keras archive of a model holds a few" in err


def test_nested_model_is_refused_with_its_name(refuse, tmp_path):
    config = json.loads((FIXTURES / "k3/mlp.json").read_text())
    inner = config["config"]["layers"][1]
    config["config"]["layers"][1] = {
        "class_name": "Sequential",
        "config": {"name": "base", "layers": [inner]},
    }
    arch = tmp_path / "nested.json"
    arch.write_text(json.dumps(config))
    err = refuse(arch)
    assert "config.layers[1] (Sequential 'base')" in err
    assert "a model used as a layer (Sequential 'base') is not imported" in err


@pytest.mark.parametrize(
    ("file", "major"),
    [("k3/mlp.json", 3), ("k2/mlp.json", 2), ("k1/sequence.json", 1)],
)
def test_version_without_a_declared_one(file, major):
    """hard_sigmoid's formula depends on the version: without keras_version, Keras 3 is told
    from its own entries, not from 'module' keys (tf-keras writes those too)."""
    from runner.interop.keras_import.topology import detect_version

    config = json.loads((FIXTURES / file).read_text())
    config.pop("keras_version", None)
    assert detect_version(config, None)[0] == major

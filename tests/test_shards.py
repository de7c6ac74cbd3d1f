"""Sharded inputs: a glob of .npy shards read in sorted order as one stream, confined file by
file, with shape, count and pattern errors at their config paths; shard=I and the merge."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from runner.config import globs
from runner.run import run
from runner.sweep import merge

# rows of the shards, in the sorted order of their names (written in another order below)
PARTS = {"part-00.npy": (0, 30), "part-01.npy": (30, 31), "part-02.npy": (31, 80)}


def _write_shards(folder: Path, x: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("part-02.npy", "part-00.npy", "part-01.npy"):
        lo, hi = PARTS[name]
        np.save(folder / name, x[lo:hi])


def _x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(80, 5)).astype(np.float32)


def _config(path: str, **top) -> dict:
    return {
        "seed": 1,
        **top,
        "model": {
            "inputs": {"x": {"data": {"path": path}}},
            "layers": {"d": {"type": "Dense", "output_dim": 3, "activation": "tanh"}},
        },
    }


def _problems(outcome) -> list[tuple[str, str, str | None]]:
    assert outcome.exit_code == 2, outcome.result
    return [(p["path"], p["message"], p.get("file")) for p in outcome.result["error"]["problems"]]


def test_a_glob_reads_its_shards_in_sorted_order_as_one_input(tmp_path):
    x = _x()
    _write_shards(tmp_path / "data", x)
    w = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    config = _config("data/part-*.npy", batch_size=16)  # batches span shard boundaries
    config["model"]["layers"]["d"]["weights"] = {"W": w.tolist(), "b": [0.1, 0.2, 0.3]}
    outcome = run(config, tmp_path / "r", tmp_path)
    assert outcome.exit_code == 0, outcome.result.get("error")
    expected = np.tanh(x.astype(np.float64) @ w + [0.1, 0.2, 0.3])
    np.testing.assert_allclose(outcome.values["d"], expected, rtol=1e-5, atol=1e-6)
    assert outcome.result["plan"]["rows"] == 80


def test_shards_must_agree_except_the_rows(tmp_path):
    _write_shards(tmp_path / "data", _x())
    np.save(tmp_path / "data" / "part-01.npy", np.zeros((4, 6), np.float32))
    ((path, message, file),) = _problems(run(_config("data/part-*.npy"), tmp_path / "r", tmp_path))
    assert (path, file) == ("model.inputs.x.data", "data/part-01.npy")
    assert message == (
        "shard data/part-01.npy holds float32 of shape (4, 6), but the first shard "
        "data/part-00.npy holds float32 of shape (30, 5): every shard needs the same dtype "
        "and shape except the rows (axis 0)"
    )
    np.save(tmp_path / "data" / "part-01.npy", np.zeros((4, 5), np.float64))
    ((_, message, file),) = _problems(run(_config("data/part-*.npy"), tmp_path / "r2", tmp_path))
    assert file == "data/part-01.npy" and message.startswith("shard data/part-01.npy holds float64")


def test_an_unreadable_shard_is_named(tmp_path):
    _write_shards(tmp_path / "data", _x())
    (tmp_path / "data" / "part-01.npy").write_bytes(b"not numpy")
    ((path, message, file),) = _problems(run(_config("data/part-*.npy"), tmp_path / "r", tmp_path))
    assert (path, file) == ("model.inputs.x.data", "data/part-01.npy")
    assert message == (
        "cannot read shard data/part-01.npy: not a .npy file (no valid NumPy header)"
    )


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("data/nothing-*.npy", "the pattern matches no file (looked in data)"),
        ("data/../data/part-*.npy", "a shard pattern may not contain '..': name the folder"),
        ("data/**/part-*.npy", "a shard pattern may not use '**' (recursive globs)"),
        ("dat?/part-*.npy", "a shard pattern may use '*', '?' or '[' in its file name only"),
        ("data/part-*", "a shard pattern must match .npy files (end in .npy"),
    ],
)
def test_bad_patterns_are_refused_at_their_config_path(tmp_path, pattern, message):
    _write_shards(tmp_path / "data", _x())
    ((path, got, file),) = _problems(run(_config(pattern), tmp_path / "r", tmp_path))
    assert (path, file) == ("model.inputs.x.data", pattern)
    assert got.startswith(message)


def test_every_match_is_confined_symlinks_followed(tmp_path):
    outside = tmp_path / "outside"
    _write_shards(outside, _x())
    cwd = tmp_path / "work"
    _write_shards(cwd / "data", _x())
    os.symlink(outside / "part-01.npy", cwd / "data" / "part-01b.npy")  # a match leads out
    ((path, message, file),) = _problems(run(_config("data/part-*.npy"), cwd / "r", cwd))
    assert (path, file) == ("model.inputs.x.data", "data/part-*.npy")
    assert message.startswith("the pattern matches data/part-01b.npy, which lies (symlinks")
    # a folder symlink in the pattern's path is followed too
    os.remove(cwd / "data" / "part-01b.npy")
    os.symlink(outside, cwd / "linked")
    ((_, message, _),) = _problems(run(_config("linked/part-*.npy"), cwd / "r2", cwd))
    assert message.startswith("the pattern matches linked/part-00.npy (and 2 more), which lies")
    # allowed on the command line: then it reads
    outcome = run(_config("linked/part-*.npy", data_dirs=[str(outside)]), cwd / "r3", cwd)
    assert outcome.exit_code == 0 and outcome.result["plan"]["rows"] == 80


def test_too_many_shards_are_refused(tmp_path, monkeypatch):
    _write_shards(tmp_path / "data", _x())
    monkeypatch.setattr(globs, "MAX_SHARDS", 2)
    ((path, message, _),) = _problems(run(_config("data/part-*.npy"), tmp_path / "r", tmp_path))
    assert path == "model.inputs.x.data"
    assert message.startswith("the pattern matches more than 2 files; at most 2 shards")


def test_a_glob_is_for_data_not_weights_or_npz_keys(tmp_path):
    _write_shards(tmp_path / "data", _x())
    config = _config("data/part-00.npy")
    config["model"]["layers"]["d"]["weights"] = {"W": {"path": "data/part-*.npy"}, "b": [0, 0, 0]}
    ((path, message, _),) = _problems(run(config, tmp_path / "r", tmp_path))
    assert path == "model.layers.d.weights.W"
    assert message.startswith("a glob names data shards (model inputs, targets, validation")
    config = _config("data/part-*.npy")
    config["model"]["inputs"]["x"]["data"]["key"] = "x"
    ((path, message, _),) = _problems(run(config, tmp_path / "r2", tmp_path))
    assert (path, message) == (
        "model.inputs.x.data",
        "'key' only applies to .npz files; a shard pattern matches .npy files",
    )


# ---- shard=I and the merge, without Hydra: one run folder per shard, as a sweep makes them
def _fan_out(tmp_path: Path, shards, **top) -> Path:
    sweep = tmp_path / "sweep"
    for job, shard in enumerate(shards):
        outcome = run(_config("data/part-*.npy", shard=shard, **top), sweep / str(job), tmp_path)
        assert outcome.exit_code == 0, outcome.result.get("error")
    return sweep


def test_shard_reads_one_file_and_the_merge_joins_them_in_shard_order(tmp_path):
    x = _x()
    _write_shards(tmp_path / "data", x)
    single = run(_config("data/part-*.npy"), tmp_path / "single", tmp_path)
    sweep = _fan_out(tmp_path, [2, 0, 1])  # job order differs from shard order
    result = json.loads((sweep / "0" / "result.json").read_text())
    assert result["shard"]["index"] == 2 and result["shard"]["count"] == 3
    assert result["shard"]["sources"] == {"model.inputs.x.data": "data/part-02.npy"}
    assert result["outputs"]["d"]["shape"] == [49, 3]
    merged = merge.merge(sweep)
    assert [j.name for j in merged.jobs] == ["1", "2", "0"]
    out = np.load(sweep / "merged" / "d.npy")
    assert out.tobytes() == single.values["d"].tobytes()
    record = json.loads((sweep / "merged" / "merged.json").read_text())
    assert record["outputs"]["d"]["sha256"] == single.result["outputs"]["d"]["sha256"]
    assert [j["rows"] for j in record["jobs"]] == [30, 1, 49]


def test_merge_names_the_missing_shard(tmp_path, capsys):
    _write_shards(tmp_path / "data", _x())
    sweep = _fan_out(tmp_path, [0, 2])
    assert merge.main([str(sweep)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: shard 1 of 3 is missing: no job read it (the jobs read shards 0, 2)"
    )


def test_merge_refuses_jobs_of_another_config_or_a_repeated_shard(tmp_path):
    _write_shards(tmp_path / "data", _x())
    sweep = _fan_out(tmp_path, [0, 1, 2])
    other = run(_config("data/part-*.npy", shard=1, seed=9), sweep / "3", tmp_path)
    assert other.exit_code == 0
    with pytest.raises(merge.MergeError, match=r"^job 3 \(shard 1\) ran another config than job 0"):
        merge.merge(sweep)
    again = run(_config("data/part-*.npy", shard=1), sweep / "3b", tmp_path)
    assert again.exit_code == 0
    (sweep / "3" / "result.json").unlink()  # as if job 3 died: Hydra's folder, no result
    (sweep / "3" / ".hydra").mkdir()
    with pytest.raises(merge.MergeError, match=r"^job 3 did not finish ok \(incomplete"):
        merge.merge(sweep)
    import shutil

    shutil.rmtree(sweep / "3")
    with pytest.raises(merge.MergeError, match=r"^shard 1 was read by two jobs, 1 and 3b$"):
        merge.merge(sweep)


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ({"shard": 3}, "shard=3, but the inputs have 3 shard(s), numbered 0..2"),
        ({"shard": 0, "task": "fit"}, "shard=I fans predictions out over jobs; task=fit reads"),
    ],
)
def test_shard_setting_errors(tmp_path, top, message):
    _write_shards(tmp_path / "data", _x())
    ((path, got, _),) = _problems(run(_config("data/part-*.npy", **top), tmp_path / "r", tmp_path))
    assert path == "shard" and got.startswith(message)


def test_shard_needs_a_sharded_input_with_equal_counts(tmp_path):
    _write_shards(tmp_path / "data", _x())
    ((path, got, _),) = _problems(
        run(_config("data/part-00.npy", shard=0), tmp_path / "r", tmp_path)
    )
    assert path == "shard" and got.startswith("shard=0 picks one shard of each sharded input")
    config = _config("data/part-*.npy", shard=0)
    config["model"]["inputs"]["y"] = {"data": {"path": "data/part-0[01].npy"}}
    config["model"]["layers"]["m"] = {"type": "Merge", "inputs": ["d", "y"], "mode": "concat"}
    ((path, got, _),) = _problems(run(config, tmp_path / "r2", tmp_path))
    assert path == "shard"
    assert got.startswith(
        "the sharded inputs have different numbers of shards "
        "{'model.inputs.x.data': 3, 'model.inputs.y.data': 2}"
    )

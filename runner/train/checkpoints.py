"""Checkpoints of ``task=fit`` and resuming from them (``fit.resume_from=RUN_DIR``).

A checkpoint is everything a fit carries from one epoch to the next, saved at an epoch's end:
``checkpoints/epoch-NNNN.npz`` holds the arrays (``weights/…``, the optimizer's slots
``optimizer/SLOT/…``, restore_best's ``best_weights/…``), written atomically and read back
without pickle; ``checkpoints/checkpoints.json`` indexes them: for the ``latest`` and the
``best`` checkpoint, its file and sha256, the epoch, the history, early stopping, the
optimizer's counters and learning rate, the schedule's state and the exact state of the
shuffle and dropout Generators. The index is replaced atomically after its .npz is in place,
and a file is deleted only once the index no longer names it, so a fit killed at any moment
(SIGKILL included) leaves a consistent latest checkpoint. The index also records the config
values that shape the fit and digests of the training data: a resume refuses a checkpoint
they do not match, naming what differs, and one whose .npz fails its sha256.

Resuming restores all of it, so the remaining epochs run exactly as they would have without
the interruption: the resumed fit's weights and history equal the uninterrupted fit's, bit for
bit.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runner.config.paths import resolve_path, shown_path
from runner.data.feed import WINDOW_BYTES, Column
from runner.data.mapped import release_rows
from runner.errors import ConfigError
from runner.output import artifacts
from runner.train.data import FitData
from runner.train.settings import FitSettings

# ``loop`` below is a runner.train.fit.FitLoop (not imported: fit imports this module).

FOLDER = "checkpoints"
INDEX = "checkpoints.json"
FORMAT = 1
WHERE = "fit.resume_from"
MAX_INDEX_BYTES = 64 * 2**20  # an index holds the history: far below this

# Config keys that may differ between a fit and its resumption: they do not change what the
# epochs compute (how long to train, where checkpoints go, console and file-access settings),
# or they are data, compared by digest instead (runner data may be named differently).
_FREE_TOP = {
    "task",
    "progress",
    "data_dirs",
    "allow_plugins",
    "allow_resolvers",
    "max_memory_mb",
    "max_disk_mb",
    "outputs_to_disk",
    "batch_size",
    "training",
}
_FREE_FIT = {"epochs", "checkpoint", "resume_from", "validation_data"}
_FREE_MODEL = {"targets", "expect", "vars", "weights"}


# ---- what a checkpoint must match --------------------------------------------------------
def config_values(spec: Any) -> dict[str, Any]:
    """The config values that shape a fit, flattened to ``path: value`` (lists as values)."""
    config = spec.model_dump(mode="json")
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in _FREE_TOP:
            continue
        if key == "fit":
            _flatten({k: v for k, v in value.items() if k not in _FREE_FIT}, "fit", out)
        elif key == "model":
            _flatten_model(value, out)
        else:
            out[key] = value
    return out


def _flatten_model(model: dict[str, Any], out: dict[str, Any]) -> None:
    for key, value in model.items():
        if key in _FREE_MODEL:
            continue
        if key == "fit" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _FREE_FIT}
        elif key == "inputs":  # the data is compared by digest, the declared shapes here
            value = {n: {k: v for k, v in i.items() if k != "data"} for n, i in value.items()}
        elif key == "layers":
            value = _without_weights(value)
        _flatten(value, f"model.{key}", out)


def _without_weights(value: Any) -> Any:
    """Layer settings without their initial ``weights`` (a checkpoint replaces them)."""
    if isinstance(value, dict):
        return {k: _without_weights(v) for k, v in value.items() if k != "weights"}
    return value


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{path}.{key}", out)
    else:
        out[path] = value


def data_digests(data: FitData) -> dict[str, str]:
    """A digest of every training and validation column, by role and name; a streamed
    (memory-mapped) column is read window by window and its pages dropped again."""
    groups = {
        "inputs": data.inputs,
        "targets": data.targets,
        "validation inputs": data.val_inputs or {},
        "validation targets": data.val_targets or {},
    }
    return {
        f"{group} {name}": _column_digest(column)
        for group, columns in groups.items()
        for name, column in columns.items()
    }


def _column_digest(column: Column) -> str:
    """sha256 of the column's rows as the fit reads them (cast to its dtype), with the shape."""
    a = column.array
    h = hashlib.sha256(f"{column.dtype.str}{tuple(a.shape)}".encode())
    step = max(WINDOW_BYTES // max(column.row_bytes, 1), 1) if column.streamed else column.rows
    for lo in range(0, column.rows, max(step, 1)):
        hi = min(column.rows, lo + step)
        h.update(np.ascontiguousarray(np.asarray(a[lo:hi], dtype=column.dtype)).data)
        release_rows(a, lo, hi)
    return h.hexdigest()[:16]


# ---- writing -----------------------------------------------------------------------------
class Checkpointer:
    """The epoch callback that writes checkpoints: every ``checkpoint_every`` epochs, and
    whenever ``checkpoint_monitor`` reaches a new best (``checkpoint_best``)."""

    def __init__(
        self, run_dir: Path, settings: FitSettings, config: dict[str, Any], digests: dict
    ) -> None:
        self.folder = run_dir / FOLDER
        self.settings = settings
        self.best: float | None = None  # the best monitored value so far
        self.index: dict[str, Any] = {
            "format": FORMAT,
            "config": config,
            "data": digests,
            "latest": None,
            "best": None,
        }

    @property
    def enabled(self) -> bool:
        return bool(self.settings.checkpoint_every or self.settings.checkpoint_best)

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return not math.isnan(value)
        if self.settings.checkpoint_monitor.endswith("accuracy"):
            return value > self.best
        return value < self.best

    def __call__(self, loop: Any, record: dict[str, float]) -> None:
        s, epoch = self.settings, int(record["epoch"])
        periodic = bool(s.checkpoint_every) and epoch % s.checkpoint_every == 0
        best = s.checkpoint_best and self._improved(record[s.checkpoint_monitor])
        if best:
            self.best = record[s.checkpoint_monitor]
        if not (periodic or best):
            return
        name = f"epoch-{epoch:04d}.npz"
        sha = artifacts.write_npz(self.folder / name, _arrays(loop))
        entry = {"file": name, "sha256": sha, "epoch": epoch, **_state(loop, self.best)}
        self.index["latest"] = entry
        if best:
            self.index["best"] = entry
        text = json.dumps(self.index, indent=1) + "\n"
        artifacts.write_text(self.folder / INDEX, text)
        kept = {e["file"] for e in (self.index["latest"], self.index["best"]) if e}
        for old in self.folder.glob("epoch-*.npz"):
            if old.name not in kept:
                old.unlink(missing_ok=True)


def _arrays(loop: Any) -> dict[str, np.ndarray]:
    arrays = {f"weights/{k}": p for k, p in loop.trainer.params.items()}
    arrays.update({f"optimizer/{k}": a for k, a in loop.trainer.optimizer.state_arrays().items()})
    if loop.state.best_weights is not None:
        arrays.update({f"best_weights/{k}": a for k, a in loop.state.best_weights.items()})
    return arrays


def _state(loop: Any, checkpoint_best: float | None) -> dict[str, Any]:
    state = loop.state
    return {
        "history": state.history,
        "early_stopping": {
            "best_value": state.best_value,
            "best_epoch": state.best_epoch,
            "wait": state.wait,
            "stopped": state.stopped,
        },
        "checkpoint_best": checkpoint_best,
        "optimizer": loop.trainer.optimizer.state_scalars(),
        "schedule": loop.schedule.state(),
        "streams": {
            "shuffle": loop.shuffle_rng.bit_generator.state,
            "dropout": loop.dropout_rng.bit_generator.state,
        },
    }


# ---- reading -----------------------------------------------------------------------------
@dataclass
class Checkpoint:
    run_dir: Path
    shown: str  # the run folder as messages and result.json name it
    entry: dict[str, Any]  # the index's latest entry
    arrays: dict[str, np.ndarray]

    @property
    def epoch(self) -> int:
        return int(self.entry["epoch"])

    def parent(self) -> dict[str, Any]:
        """What result.json says about the run this fit continues."""
        return {
            "run": self.shown,
            "checkpoint": f"{FOLDER}/{self.entry['file']}",
            "sha256": self.entry["sha256"],
            "epoch": self.epoch,
        }


def load(
    settings: FitSettings,
    spec: Any,
    data: FitData,
    cwd: Path,
    max_bytes: float | None,
) -> Checkpoint:
    """The latest checkpoint of ``fit.resume_from``, checked (its sha256, the config and the
    data it was trained with, the epochs left) before any array is used; ConfigError if not."""
    given = settings.resume_from or ""
    run_dir = resolve_path(given, cwd)
    shown = shown_path(run_dir, cwd)
    index_path = run_dir / FOLDER / INDEX
    if not run_dir.is_dir():
        raise ConfigError.one(WHERE, f"{shown} is not a folder (give a run folder of a fit)")
    if not index_path.is_file() or index_path.is_symlink():
        raise ConfigError.one(
            WHERE,
            f"{shown} holds no checkpoints ({FOLDER}/{INDEX} is missing): a fit writes them "
            "with fit.checkpoint.every=N or fit.checkpoint.best=true",
        )
    index = _read_index(index_path, shown)
    entry = index["latest"]
    _check_files(run_dir, entry, shown)
    _check_config(index, config_values(spec), shown)
    _check_data(index, data_digests(data), shown)
    epoch = int(entry["epoch"])
    if entry["early_stopping"].get("stopped"):
        raise ConfigError.one(
            WHERE,
            f"the fit in {shown} stopped early after epoch {epoch} (fit.patience): "
            "there is nothing to continue",
        )
    if epoch >= settings.epochs:
        raise ConfigError.one(
            settings.origin["epochs"],
            f"the checkpoint in {shown} is at epoch {epoch} and fit.epochs is "
            f"{settings.epochs}: set fit.epochs above {epoch} to train further",
        )
    from runner.data.sources import read_npz

    npz = run_dir / FOLDER / entry["file"]
    try:
        arrays = read_npz(npz, None, {"path": WHERE, "file": shown_path(npz, cwd)}, max_bytes)
    except (OSError, ValueError) as exc:
        raise ConfigError.one(WHERE, f"cannot read {shown_path(npz, cwd)}: {exc}") from None
    return Checkpoint(run_dir, shown, entry, arrays)


def _read_index(path: Path, shown: str) -> dict[str, Any]:
    problem = None
    try:
        if path.stat().st_size > MAX_INDEX_BYTES:
            problem = "is too large to be a checkpoint index"
        else:
            index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # (nested past the parser's depth)
        problem = f"cannot be read ({exc})"
    if problem is None:
        latest = index.get("latest") if isinstance(index, dict) else None
        if not (
            isinstance(index, dict)
            and index.get("format") == FORMAT
            and isinstance(latest, dict)
            and isinstance(latest.get("file"), str)
            and isinstance(latest.get("sha256"), str)
            and isinstance(index.get("config"), dict)
            and isinstance(index.get("data"), dict)
        ):
            problem = "is not a checkpoint index this runner wrote"
    if problem:
        raise ConfigError.one(WHERE, f"{shown}/{FOLDER}/{INDEX} {problem}")
    return index


def _check_files(run_dir: Path, entry: dict[str, Any], shown: str) -> None:
    """The checkpoint's .npz has the sha256 its index records, and, when the run finished,
    the checkpoint files have the sha256 its result.json records (as a resumed sweep checks
    a run folder)."""
    name = entry["file"]
    if "/" in name or "\\" in name or not name.startswith("epoch-"):
        raise ConfigError.one(WHERE, f"{shown}: the checkpoint index names {name!r}")
    problem = artifacts.untrusted_files(
        run_dir / FOLDER, {name: entry["sha256"]}, f"{FOLDER}/{INDEX}"
    )
    if problem is None:
        recorded = _finished_files(run_dir)
        if recorded:
            problem = artifacts.untrusted_files(run_dir, recorded)
    if problem:
        raise ConfigError.one(
            WHERE,
            f"the checkpoint in {shown} cannot be trusted: {problem} (sha256 checked against "
            "the checkpoint index and the run's result.json)",
        )


def _finished_files(run_dir: Path) -> dict[str, str]:
    """The checkpoint files a finished run's result.json records (none for a killed run)."""
    try:
        result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    files = result.get("files") if isinstance(result, dict) else None
    if not isinstance(files, dict):
        return {}
    return {k: v for k, v in files.items() if str(k).startswith(f"{FOLDER}/")}


def _check_config(index: dict[str, Any], here: dict[str, Any], shown: str) -> None:
    saved = index["config"]
    differ = [k for k in sorted(set(here) | set(saved)) if here.get(k) != saved.get(k)]
    if differ:
        shown_keys = "; ".join(
            f"{k} is {_short(here.get(k))} here, {_short(saved.get(k))} there" for k in differ[:5]
        )
        more = f" (and {len(differ) - 5} more)" if len(differ) > 5 else ""
        raise ConfigError.one(
            WHERE,
            f"the checkpoint in {shown} was written by a fit with another model or config: "
            f"{shown_keys}{more}. Resume with the same model and settings (only fit.epochs "
            "and run settings may change)",
        )


def _check_data(index: dict[str, Any], here: dict[str, str], shown: str) -> None:
    saved = index["data"]
    differ = [k for k in sorted(set(here) | set(saved)) if here.get(k) != saved.get(k)]
    if differ:
        raise ConfigError.one(
            WHERE,
            f"the checkpoint in {shown} was trained on other data: the {', '.join(differ)} "
            "differ from the arrays it was trained on",
        )


def _short(value: Any) -> str:
    text = "absent" if value is None else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---- restoring ---------------------------------------------------------------------------
def restore(loop: Any, checkpoint: Checkpoint) -> None:
    """Put a checkpoint's state into a freshly built fit loop."""
    from runner.train import optim

    params = loop.trainer.params
    arrays = checkpoint.arrays
    saved = {k[len("weights/") :]: a for k, a in arrays.items() if k.startswith("weights/")}
    wrong = sorted(
        set(params) ^ set(saved)
        | {k for k in set(params) & set(saved) if params[k].shape != saved[k].shape}
    )
    if wrong:
        raise ConfigError.one(
            WHERE,
            f"the checkpoint in {checkpoint.shown} holds other parameters than this model: "
            f"{', '.join(wrong[:5])}",
        )
    optim.assign(params, saved)
    entry = checkpoint.entry
    prefix = "optimizer/"
    loop.trainer.optimizer.load_state(
        entry["optimizer"],
        {k[len(prefix) :]: a for k, a in arrays.items() if k.startswith(prefix)},
        params,
    )
    loop.schedule.load(entry["schedule"])
    loop.shuffle_rng.bit_generator.state = entry["streams"]["shuffle"]
    loop.dropout_rng.bit_generator.state = entry["streams"]["dropout"]
    state = loop.state
    state.epoch = checkpoint.epoch
    state.history = [dict(r) for r in entry["history"]]
    stopping = entry["early_stopping"]
    state.best_value = float(stopping["best_value"])
    state.best_epoch = int(stopping["best_epoch"])
    state.wait = int(stopping["wait"])
    state.stopped = bool(stopping["stopped"])
    best = {k[len("best_weights/") :]: a for k, a in arrays.items() if k.startswith("best_")}
    state.best_weights = (
        {k: np.array(a, dtype=params[k].dtype) for k, a in best.items()} if best else None
    )
    for callback in loop.callbacks:
        if isinstance(callback, Checkpointer):
            callback.best = entry.get("checkpoint_best")

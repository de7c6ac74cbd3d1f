"""The run folder: config.yaml, summary.txt, outputs.npz, weights.npz, result.json (last).

A run folder is claimed before anything is written into it: ``claim`` creates the marker
``.runner-claim`` exclusively (O_CREAT|O_EXCL), so of two runs started into one folder exactly
one proceeds. The marker lives while the run runs; once result.json is written it is removed and
result.json itself says "finished, never written again". A folder whose run died keeps its
marker and is refused too. Files are created with the user's umask (0644 under umask 022).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import secrets
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from runner.config import redact
from runner.data.mapped import release_rows

CLAIM = ".runner-claim"
_claimed: set[str] = set()  # folders this process claimed and has not released

# sha256 of every file written through this module, by absolute path, taken as it was written:
# result.json records them (``files``) so a resumed sweep can check a folder before trusting it.
_written: dict[str, str] = {}


class FolderClaimed(FileExistsError):
    """The run folder already holds a finished run, or another run has claimed it."""


class WriteFailed(OSError):
    """Writing the run folder failed for a reason of the machine (disk full, read-only)."""

    def __str__(self) -> str:
        return str(self.strerror)


def claim(folder: Path | str, *, take_over_dead: bool = False) -> None:
    """Claim FOLDER for this process, atomically, before anything is written into it.

    Raises FolderClaimed when it holds a finished run (result.json) or another run's claim.
    ``take_over_dead``: a claim left by a process of this host that is no longer alive is taken
    over (resuming a sweep in place); a live one is still refused.
    """
    folder = Path(folder)
    key = _key(folder)
    if key in _claimed:
        return
    _refuse_finished(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / CLAIM
    info = (
        json.dumps(
            {
                "pid": os.getpid(),
                "host": os.uname().nodename,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        + "\n"
    )
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        holder = _read_claim(marker)
        if not (take_over_dead and _is_dead(holder)):
            raise FolderClaimed(
                f"{folder} is claimed by another run ({_describe(holder)}): "
                "two runs never share a folder; choose another folder, or "
                "delete this one if that run is gone"
            ) from None
        _atomic(marker, info.encode())  # resuming in place: the dead run's claim
    else:
        with os.fdopen(fd, "w") as f:
            f.write(info)
    try:
        _refuse_finished(folder)  # a run that finished between the first check and the claim
    except FolderClaimed:
        marker.unlink(missing_ok=True)
        raise
    _claimed.add(key)


def keep_claim(folder: Path | str) -> None:
    """A sweep folder keeps its marker for good (it has no result.json to protect it)."""
    _claimed.discard(_key(Path(folder)))


def claimed_here(folder: Path | str) -> bool:
    return _key(Path(folder)) in _claimed


def release(folder: Path | str) -> None:
    """Drop this process's claim once result.json is written (result.json now protects it)."""
    key = _key(Path(folder))
    if key in _claimed:
        _claimed.discard(key)
        (Path(folder) / CLAIM).unlink(missing_ok=True)


def _key(folder: Path) -> str:
    return os.path.realpath(folder)


def _refuse_finished(folder: Path) -> None:
    if (folder / "result.json").exists() or (folder / "result.json").is_symlink():
        raise FolderClaimed(
            f"{folder} already holds a finished run and is never overwritten: "
            "choose another hydra.run.dir / hydra.sweep.dir (or output folder)"
        )


def _read_claim(marker: Path) -> dict[str, Any]:
    try:
        data = json.loads(marker.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "a run that is starting now"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
        f"{'; that process is no longer running' if _is_dead(holder) else ''}"
    )


def _is_dead(holder: dict[str, Any]) -> bool:
    if holder.get("host") != os.uname().nodename or not isinstance(holder.get("pid"), int):
        return False
    if holder["pid"] == os.getpid():
        return True  # this process holds no such claim (it is not in _claimed)
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def write_text(path: Path, text: str) -> str:
    return _atomic(path, redact.text(text).encode())


def write_yaml(path: Path, data: Any) -> str:
    return write_text(
        path, yaml.safe_dump(redact.data(data), sort_keys=False, default_flow_style=None, width=100)
    )


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """An .npz written to a temporary file, then renamed into place; returns its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp(path, os.O_RDWR)
    try:
        with os.fdopen(fd, "w+b") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
            f.flush()
            os.fsync(f.fileno())
            f.seek(0)
            digest = _sha256_of(f)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        _raise_named(exc, path)
        raise
    _written[os.path.abspath(path)] = digest
    return digest


def write_bytes(path: Path, data: bytes) -> str:
    """Any file written atomically (a temporary file renamed into place); returns its sha256."""
    return _atomic(path, data)


def write_result(path: Path, result: dict[str, Any]) -> None:
    """result.json is written last and atomically: its presence means the run finished."""
    text = json.dumps(redact.data(result), indent=2, default=_json_default) + "\n"
    _atomic(path, text.encode())


def _atomic(path: Path, data: bytes) -> str:
    return write_chunks(path, [data])


def write_chunks(path: Path, chunks: Iterable[bytes]) -> str:
    """A file written piece by piece (a large CSV never sits in memory whole) to a temporary
    file, then renamed into place; returns its sha256."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _raise_named(exc, path)
        raise
    fd, tmp = _temp(path)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as f:
            for data in chunks:
                f.write(data)
                h.update(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        _raise_named(exc, path)
        raise
    digest = h.hexdigest()
    _written[os.path.abspath(path)] = digest
    return digest


def _temp(path: Path, access: int = os.O_WRONLY) -> tuple[int, str]:
    """A new temporary file next to PATH, created exclusively with mode 0666 & ~umask (not
    mkstemp's 0600: colleagues, batch jobs and CI read run folders)."""
    for _ in range(100):
        tmp = str(path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp"))
        try:
            return os.open(tmp, access | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            _raise_named(exc, path)
            raise
    raise FileExistsError(f"cannot create a temporary file next to {path}")


_MACHINE_ERRORS = {
    errno.ENOSPC: "No space left on device",
    errno.EROFS: "Read-only file system",
    errno.EDQUOT: "Disk quota exceeded",
    errno.EACCES: "Permission denied",
    errno.EPERM: "Operation not permitted",
    errno.EIO: "Input/output error",
}


def machine_error(exc: BaseException) -> str | None:
    """'No space left on device: PATH' for an OSError of the machine, else None."""
    if isinstance(exc, WriteFailed):
        return str(exc.strerror)
    if isinstance(exc, OSError) and exc.errno in _MACHINE_ERRORS:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{_MACHINE_ERRORS[exc.errno]}{where}"
    return None


def _raise_named(exc: BaseException, path: Path) -> None:
    """A full disk or read-only file system is named as such, with the file, never as a bug."""
    if isinstance(exc, WriteFailed) or not isinstance(exc, OSError):
        return
    what = _MACHINE_ERRORS.get(exc.errno or 0)
    if what is not None:
        raise WriteFailed(exc.errno, f"cannot write {path}: {what}", str(path)) from exc


def file_digest(path: Path) -> str:
    """sha256 of a regular file, never following a symlink (O_NOFOLLOW)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        return _sha256_of(f)


def _sha256_of(f: Any) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def untrusted_files(folder: Path, files: Any, record: str = "its result.json") -> str | None:
    """Why the files ``{relative path: sha256}`` that ``record`` lists for FOLDER cannot be
    trusted, or None when each is a regular file inside FOLDER (no symlink anywhere on the
    way) with that sha256. A resumed sweep checks run folders, a resumed fit its checkpoint,
    this way."""
    import stat

    if not isinstance(files, dict) or not files:
        return f"{record} records no file hashes (written by an older runner)"
    real_folder = Path(os.path.realpath(folder))
    for rel, sha in files.items():
        parts = Path(str(rel)).parts
        if not parts or Path(str(rel)).is_absolute() or ".." in parts or not isinstance(sha, str):
            return f"{record} lists {rel!r}, which is not a file inside it"
        path = folder
        for part in parts:  # no symlink anywhere on the way
            path = path / part
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                return f"{rel} is missing"
            if stat.S_ISLNK(mode):
                return f"{rel} is a symlink (never followed)"
        if not stat.S_ISREG(mode) or real_folder not in Path(os.path.realpath(path)).parents:
            return f"{rel} is not a regular file inside the folder"
        try:
            actual = file_digest(path)
        except OSError as exc:
            return f"{rel} cannot be read: {exc.strerror or exc}"
        if actual != sha:
            return f"{rel} does not match the sha256 recorded in {record}"
    return None


_NOT_RECORDED = ("result.json", "run.log", CLAIM)


def run_files(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of the files a run wrote into FOLDER (Hydra's .hydra/,
    run.log and result files aside), for result.json. A file written through this module keeps
    the digest taken as it was written; others (memory-mapped outputs/*.npy) are read now.
    Symlinks are never recorded."""
    out: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if (
            rel.parts[0] == ".hydra"
            or path.name in _NOT_RECORDED
            or path.is_symlink()
            or path.name.startswith(("result.attempt-", "."))
            or not path.is_file()
        ):
            continue
        out[rel.as_posix()] = _written.get(os.path.abspath(path)) or file_digest(path)
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


DIGEST_WINDOW_BYTES = 32 * 2**20  # rows hashed at a time


def array_digest(a: np.ndarray) -> str:
    """sha256 of the array's bytes (C order), its dtype and shape: a stable fingerprint.

    Rows go through the hash one 32 MiB window at a time, and a memory-mapped array's rows
    are dropped from resident memory once hashed (``release_rows``): the digest of a streamed
    output larger than RAM keeps the process's memory flat.
    """
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    if a.ndim == 0 or a.shape[0] == 0:
        h.update(np.ascontiguousarray(a).data)
        return h.hexdigest()[:16]
    step = rows_per_window(a, DIGEST_WINDOW_BYTES)
    for lo in range(0, a.shape[0], step):
        h.update(np.ascontiguousarray(a[lo : lo + step]).data)
        release_rows(a, lo, lo + step)
    return h.hexdigest()[:16]


def rows_per_window(a: np.ndarray, window_bytes: int) -> int:
    """How many rows of ``a`` fit in ``window_bytes`` (at least 1)."""
    return max(window_bytes // max(a.nbytes // max(a.shape[0], 1), 1), 1)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("numpy", "pydantic", "hydra-core", "omegaconf"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out

"""The output fingerprint in result.json: sha256 of dtype, shape and bytes, read by windows."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from runner.output import artifacts


def _whole(a: np.ndarray) -> str:
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("window", [1, 100, 4096, 1 << 25])
def test_digest_by_windows_is_the_sha256_of_the_whole_array(tmp_path, monkeypatch, window):
    monkeypatch.setattr(artifacts, "DIGEST_WINDOW_BYTES", window)  # 1 row .. all rows at once
    a = np.random.default_rng(0).standard_normal((37, 5, 3)).astype(np.float32)
    path = tmp_path / "a.npy"
    np.save(path, a)
    mapped = np.load(path, mmap_mode="r")
    assert artifacts.array_digest(a) == _whole(a)
    assert artifacts.array_digest(mapped) == _whole(a)  # a streamed output: same fingerprint
    assert artifacts.array_digest(a[:, :, ::2]) == _whole(a[:, :, ::2])  # not contiguous
    np.testing.assert_array_equal(mapped, a)  # released pages read back from the file


def test_digest_tells_dtype_shape_and_one_changed_value_apart():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = a.copy()
    b[2, 3] = np.nextafter(b[2, 3], np.float32(100))
    digests = {
        artifacts.array_digest(x)
        for x in (a, b, a.reshape(4, 3), a.astype(np.float64), np.float32(1.0), a[:0])
    }
    assert len(digests) == 6

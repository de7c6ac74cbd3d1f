"""layers.kernels: the one-pass numba loops give NumPy's numbers, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from layers import activations, kernels

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 3.0, -3.0]


def _with_specials(a: np.ndarray) -> np.ndarray:
    a.flat[: len(SPECIAL)] = SPECIAL
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(300, 257), (7, 40, 60)])  # 2D, and 3D as a TDD output
def test_bias_relu_is_numpys_maximum_of_z_plus_b(dtype, shape):
    rng = np.random.default_rng(0)
    z = _with_specials(rng.normal(0, 2, shape).astype(dtype))
    b = rng.normal(0, 1, shape[-1]).astype(dtype)
    b[:4] = [0.0, -0.0, np.inf, 5.0]  # -0.0 + 0.0 = 0.0, -0.0 + -0.0 = -0.0, inf + -inf = NaN
    got = z.copy()
    with np.errstate(invalid="ignore"):
        expected = np.maximum(z + b, dtype(0))
        assert kernels.bias_relu_(got, b)  # numba is in the test extra: the kernel ran
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(np.signbit(got), np.signbit(expected))  # -0.0 stays -0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_grad_is_numpys_product_with_the_mask(dtype):
    rng = np.random.default_rng(1)
    dy = _with_specials(rng.normal(0, 1, (200, 130)).astype(dtype))
    y = np.maximum(rng.normal(0, 1, dy.shape).astype(dtype), dtype(0))
    y.flat[:3] = [0.0, 0.0, 0.0]  # inf * 0 = NaN, -inf * 0 = NaN, as NumPy gives
    out = np.full_like(dy, 7.0)
    with np.errstate(invalid="ignore"):
        expected = np.multiply(dy, y > 0)
        assert kernels.relu_grad_into(dy, y, out)
    np.testing.assert_array_equal(out, expected)
    assert np.array_equal(np.signbit(out), np.signbit(expected))


def test_kernels_decline_what_they_are_not_for(monkeypatch):
    big = np.ones((200, 100), np.float32)
    bias = np.ones(100, np.float32)
    assert not kernels.bias_relu_(np.ones((10, 100), np.float32), bias)  # small: NumPy
    assert not kernels.bias_relu_(big, bias.astype(np.float64))  # mixed dtypes
    assert not kernels.bias_relu_(np.ones((200, 100), np.int64), bias.astype(np.int64))
    assert not kernels.bias_relu_(np.ones((100, 400), np.float32)[:, ::2], bias)  # a view
    assert not kernels.relu_grad_into(big, big[:, :50], big)  # shapes differ
    monkeypatch.setattr(kernels, "ENABLED", False)  # LAYERS_KERNELS=0
    assert not kernels.bias_relu_(big, bias)
    np.testing.assert_array_equal(big, 1.0)  # declined means untouched


def test_apply_and_the_training_path_use_the_kernel_with_the_same_numbers(monkeypatch):
    """relu with a bias through ``apply_`` (predict) and ``forward_saving`` / ``backward_from``
    (fit): the same bits with the kernels on and off."""
    rng = np.random.default_rng(2)
    z = rng.normal(0, 1, (512, 96)).astype(np.float32)
    b = rng.normal(0, 1, 96).astype(np.float32)
    dy = rng.normal(0, 1, z.shape).astype(np.float32)

    def run():
        pred = activations.apply_("relu", z.copy(), b)
        y, saved = activations.forward_saving("relu", z.copy(), b)
        grad = activations.backward_from("relu", saved, y, dy, np.empty_like(z), None)
        return pred, y, grad.copy()

    on = run()
    monkeypatch.setattr(kernels, "ENABLED", False)
    off = run()
    for a, c in zip(on, off):
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(off[0], np.maximum(z + b, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [0.0, -1.5])
def test_any_not_equal_is_maskings_keep_mask(dtype, value):
    """Padding steps (every feature == value) are dropped; a step with one differing feature
    anywhere (first, last), a NaN, or -0.0 against 0.0 (equal) is decided as NumPy does."""
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (40, 50, 16)).astype(dtype)
    x[:, 30:] = value  # trailing padding
    x[0, 31, 0] = value + 1  # differs in the first feature only
    x[1, 32, 15] = value + 1  # in the last feature only
    x[2, 33, 7] = np.nan  # NaN never equals: kept
    x[3, 34, :] = -0.0 if value == 0.0 else value  # -0.0 == 0.0: padding
    keep = kernels.any_not_equal(x, value)
    assert keep is not None and keep.dtype == bool and keep.shape == (40, 50)
    np.testing.assert_array_equal(keep, np.any(x != dtype(value), axis=-1))
    assert keep[0, 31] and keep[1, 32] and keep[2, 33] and not keep[3, 34]
    assert keep.sum() == 40 * 30 + 3


def test_ctrl_c_during_a_kernel_waits_for_its_end_then_interrupts():
    """numba compiles in LLVM callbacks that swallow a KeyboardInterrupt: Ctrl-C is held back
    while a kernel compiles or runs, and raised as soon as it returns."""
    import os
    import signal

    done = []
    with pytest.raises(KeyboardInterrupt):
        with kernels._ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)  # delivered here, not raised here
            done.append("the block ran to its end")
    assert done == ["the block ran to its end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    with kernels._ctrl_c_held():  # and without Ctrl-C, nothing is raised
        done.append("again")
    assert done[-1] == "again"


def test_a_kernels_first_call_holds_ctrl_c_until_it_returns(monkeypatch):
    """The first call for some argument types is the one numba compiles in: a Ctrl-C during
    it is raised once the kernel has returned, as a plain KeyboardInterrupt."""
    import os
    import signal
    from types import SimpleNamespace

    ran = []

    def compiling(a):
        os.kill(os.getpid(), signal.SIGINT)
        ran.append(a.shape)

    monkeypatch.setattr(kernels, "_compiled", SimpleNamespace(compiling=compiling))
    monkeypatch.setattr(kernels, "_warm", set())
    with pytest.raises(KeyboardInterrupt):
        kernels._run("compiling", np.ones((2, 3), np.float32))
    assert ran == [(2, 3)]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

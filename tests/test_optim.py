"""Optimizers: update steps computed by hand with the legacy Keras rules and defaults."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runner.train import optim


def _steps(name, grads, **options):
    p = {"w": np.array([1.0])}
    opt = optim.Optimizer(name, **options)
    out = []
    for g in grads:
        opt.step(p, {"w": np.array([g])})
        out.append(float(p["w"][0]))
    return out


def test_legacy_defaults():
    assert optim.settings("sgd", {}) == {
        "lr": 0.01,
        "momentum": 0.0,
        "decay": 0.0,
        "nesterov": False,
    }
    assert optim.settings("rmsprop", {}) == {"lr": 0.001, "rho": 0.9, "epsilon": 1e-6}
    assert optim.settings("adagrad", {}) == {"lr": 0.01, "epsilon": 1e-6}
    assert optim.settings("adam", {"lr": None}) == {
        "lr": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-8,
    }


def test_sgd_plain():
    assert _steps("sgd", [0.5, 0.5], lr=0.1) == pytest.approx([0.95, 0.90])


def test_sgd_momentum():
    # v1 = -0.05 -> 0.95; v2 = 0.9 * -0.05 - 0.05 = -0.095 -> 0.855
    assert _steps("sgd", [0.5, 0.5], lr=0.1, momentum=0.9) == pytest.approx([0.95, 0.855])


def test_sgd_nesterov():
    # p += momentum * v - lr * g: 1 - 0.045 - 0.05 = 0.905; 0.905 - 0.0855 - 0.05 = 0.7695
    assert _steps("sgd", [0.5, 0.5], lr=0.1, momentum=0.9, nesterov=True) == pytest.approx(
        [0.905, 0.7695]
    )


def test_sgd_decay():
    # lr_t = lr / (1 + decay * updates so far): 0.1, then 0.1 / 1.5
    assert _steps("sgd", [0.5, 0.5], lr=0.1, decay=0.5) == pytest.approx(
        [0.95, 0.95 - 0.5 * 0.1 / 1.5]
    )


def test_rmsprop():
    a1 = 0.1 * 0.25
    p1 = 1 - 0.001 * 0.5 / math.sqrt(a1 + 1e-6)
    a2 = 0.9 * a1 + 0.1 * 0.04
    p2 = p1 - 0.001 * 0.2 / math.sqrt(a2 + 1e-6)
    assert _steps("rmsprop", [0.5, 0.2]) == pytest.approx([p1, p2], rel=1e-12)


def test_adagrad():
    p1 = 1 - 0.01 * 0.5 / math.sqrt(0.25 + 1e-6)
    p2 = p1 - 0.01 * 0.2 / math.sqrt(0.25 + 0.04 + 1e-6)
    assert _steps("adagrad", [0.5, 0.2]) == pytest.approx([p1, p2], rel=1e-12)


def test_adam():
    m1, v1 = 0.1 * 0.5, 0.001 * 0.25
    p1 = 1 - 0.001 * math.sqrt(1 - 0.999) / (1 - 0.9) * m1 / (math.sqrt(v1) + 1e-8)
    m2, v2 = 0.9 * m1 + 0.1 * 0.2, 0.999 * v1 + 0.001 * 0.04
    p2 = p1 - 0.001 * math.sqrt(1 - 0.999**2) / (1 - 0.9**2) * m2 / (math.sqrt(v2) + 1e-8)
    assert _steps("adam", [0.5, 0.2]) == pytest.approx([p1, p2], rel=1e-12)
    assert p1 == pytest.approx(1 - 0.001, rel=1e-6)  # Adam's first step is about lr * sign(g)


def test_clipnorm_uses_the_global_norm():
    p = {"a": np.array([0.0]), "b": np.array([0.0])}
    opt = optim.Optimizer("sgd", lr=1.0, clipnorm=1.0)
    opt.step(p, {"a": np.array([3.0]), "b": np.array([4.0])})  # norm 5 -> scaled by 1/5
    np.testing.assert_allclose([p["a"][0], p["b"][0]], [-0.6, -0.8])


def test_clipvalue():
    p = {"a": np.array([0.0, 0.0])}
    optim.Optimizer("sgd", lr=1.0, clipvalue=0.5).step(p, {"a": np.array([3.0, -0.1])})
    np.testing.assert_allclose(p["a"], [-0.5, 0.1])


def test_updates_in_place_keep_dtype_and_skip_params_without_gradients():
    w = np.ones((2, 2), np.float32)
    frozen = np.ones(3, np.float32)
    params = {"l/W": w, "l/frozen": frozen}
    for name in ("sgd", "rmsprop", "adagrad", "adam"):
        optim.Optimizer(name, momentum=0.9 if name == "sgd" else None).step(
            params, {"l/W": np.full((2, 2), 0.5, np.float32)}
        )
    assert params["l/W"] is w and w.dtype == np.float32 and (w < 1).all()
    np.testing.assert_array_equal(frozen, np.ones(3, np.float32))


def test_assign_restores_in_place():
    w = np.zeros(2)
    optim.assign({"w": w}, {"w": np.array([1.0, 2.0])})
    np.testing.assert_array_equal(w, [1.0, 2.0])


# ---- in-place updates against a straightforward reference, bit for bit ----------------------
def _reference_step(name, o, p, g, state, t):
    """The legacy rules written as plain expressions (one temporary per operation), in the
    parameter's dtype: the in-place optimizer must give exactly these bits."""
    f = p.dtype.type
    if name == "sgd":
        lr = f(o["lr"] / (1.0 + o.get("decay", 0.0) * (t - 1)))
        mom = f(o.get("momentum", 0.0))
        if mom == 0:
            return p - lr * g
        state["v"] = mom * state.get("v", np.zeros_like(p)) - lr * g
        if o.get("nesterov"):
            return p + mom * state["v"] - lr * g
        return p + state["v"]
    if name in ("rmsprop", "adagrad"):
        a = state.get("a", np.zeros_like(p))
        rho = o.get("rho", 0.9)
        a = f(rho) * a + f(1.0 - rho) * (g * g) if name == "rmsprop" else a + g * g
        state["a"] = a
        eps = o.get("epsilon", 1e-6)
        return p - f(o["lr"]) * (g / np.sqrt(a + f(eps)))
    b1, b2, eps = 0.9, 0.999, 1e-8
    state["m"] = f(b1) * state.get("m", np.zeros_like(p)) + f(1.0 - b1) * g
    state["v"] = f(b2) * state.get("v", np.zeros_like(p)) + f(1.0 - b2) * (g * g)
    lr_t = f(o["lr"] * math.sqrt(1.0 - b2**t) / (1.0 - b1**t))
    return p - lr_t * (state["m"] / (np.sqrt(state["v"]) + f(eps)))


CASES = [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "decay": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "decay": 0.01}),
    ("rmsprop", {"lr": 0.001}),
    ("adagrad", {"lr": 0.01}),
    ("adam", {"lr": 0.001}),
]


@pytest.mark.parametrize("spare", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "options"), CASES)
def test_in_place_update_is_bit_identical_to_the_plain_formula(name, options, dtype, spare):
    """Also when the gradients are handed over (``grads_are_spare``, the trainer's case)."""
    rng = np.random.default_rng(7)
    shapes = {"d/W": (5, 3), "d/b": (3,)}
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    expected = {k: p.copy() for k, p in params.items()}
    states: dict[str, dict] = {k: {} for k in shapes}
    opt = optim.Optimizer(name, **options)
    for t in range(1, 7):
        grads = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
        given = {k: g.copy() for k, g in grads.items()}
        opt.step(params, grads, grads_are_spare=spare)
        for k in shapes:
            expected[k] = _reference_step(name, options, expected[k], given[k], states[k], t)
            assert expected[k].dtype == dtype
            np.testing.assert_array_equal(params[k], expected[k], err_msg=f"{k} step {t}")


def test_clipping_is_bit_identical_to_the_plain_formula():
    rng = np.random.default_rng(3)
    params = {"a": rng.standard_normal(4).astype(np.float32), "b": np.zeros(2, np.float32)}
    expected = {k: v.copy() for k, v in params.items()}
    opt = optim.Optimizer("sgd", lr=0.1, clipnorm=1.0, clipvalue=0.3)
    for _ in range(3):
        grads = {
            k: (5 * rng.standard_normal(v.shape)).astype(np.float32) for k, v in params.items()
        }
        before = {k: g.copy() for k, g in grads.items()}
        opt.step(params, grads)
        norm = math.sqrt(sum(float(np.square(g, dtype=np.float64).sum()) for g in grads.values()))
        for k, g in grads.items():
            clipped = g * np.float32(1.0 / norm) if norm >= 1.0 else g
            clipped = np.clip(clipped, np.float32(-0.3), np.float32(0.3))
            expected[k] = expected[k] - np.float32(0.1) * clipped
            np.testing.assert_array_equal(params[k], expected[k])
            np.testing.assert_array_equal(g, before[k])  # the caller's gradients are untouched


def test_spare_gradients_shared_or_borrowed_are_not_written_into():
    """A gradient array given under two keys, or a view of another array, is read as given
    for every key even when the caller hands the gradients over; only arrays that own their
    memory and appear once may serve as scratch."""
    shared = np.array([1.0, 2.0], np.float32)
    backing = np.array([[3.0, 4.0]], np.float32)
    params = {k: np.zeros(2, np.float32) for k in ("a", "b", "c")}
    params["d"] = np.zeros((1, 2), np.float32)
    optim.Optimizer("sgd", lr=0.5).step(
        params,
        {"d": backing, "a": shared, "b": shared, "c": backing[0]},
        grads_are_spare=True,
    )
    np.testing.assert_array_equal(params["a"], [-0.5, -1.0])
    np.testing.assert_array_equal(params["b"], [-0.5, -1.0])  # not scaled twice
    np.testing.assert_array_equal(params["d"], [[-1.5, -2.0]])
    np.testing.assert_array_equal(params["c"], [-1.5, -2.0])  # read after d: d left it alone
    np.testing.assert_array_equal(backing, [[3.0, 4.0]])


def test_keras_documented_values_in_float32():
    """Finite values from the documented formulas, by hand: SGD with momentum 0.9, lr 0.1,
    g = 0.5 twice: v = -0.05, then -0.095; Adam's first step moves by lr * sign(g)."""
    p = {"w": np.array([1.0, -2.0], np.float32)}
    opt = optim.Optimizer("sgd", lr=0.1, momentum=0.9)
    opt.step(p, {"w": np.array([0.5, -0.5], np.float32)})
    opt.step(p, {"w": np.array([0.5, -0.5], np.float32)})
    np.testing.assert_allclose(p["w"], [1 - 0.05 - 0.095, -2 + 0.05 + 0.095], rtol=1e-6)
    q = {"w": np.array([1.0, -2.0, 3.0], np.float32)}
    optim.Optimizer("adam", lr=0.01).step(q, {"w": np.array([2.0, -1e-3, 40.0], np.float32)})
    np.testing.assert_allclose(q["w"], [0.99, -1.99, 2.99], rtol=1e-5)


@pytest.mark.parametrize(("name", "options"), [*CASES, ("sgd", {"lr": 0.1, "clipnorm": 1.0})])
def test_a_step_allocates_no_parameter_sized_array(name, options):
    """After the first step has allocated the buffers, a step allocates nothing of the size
    of a parameter (NumPy reports its array allocations to tracemalloc; a cast may use a
    fixed 64 KiB buffer)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal(200_000).astype(np.float32)}
    grads = {"w": rng.standard_normal(200_000).astype(np.float32)}
    opt = optim.Optimizer(name, **options)
    opt.step(params, grads)
    tracemalloc.start()
    try:
        opt.step(params, grads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < params["w"].nbytes // 4, peak


def test_state_round_trip_continues_bit_identically():
    rng = np.random.default_rng(5)
    grads = [{"w": rng.standard_normal(6).astype(np.float32)} for _ in range(6)]
    straight = {"w": np.ones(6, np.float32)}
    a = optim.Optimizer("adam", lr=0.01)
    for g in grads:
        a.step(straight, g)
    resumed = {"w": np.ones(6, np.float32)}
    b = optim.Optimizer("adam", lr=0.01)
    for g in grads[:3]:
        b.step(resumed, g)
    c = optim.Optimizer("adam", lr=0.01)
    c.load_state(b.state_scalars(), {k: v.copy() for k, v in b.state_arrays().items()}, resumed)
    assert set(b.state_arrays()) == {"m/w", "v/w"}
    for g in grads[3:]:
        c.step(resumed, g)
    np.testing.assert_array_equal(resumed["w"], straight["w"])

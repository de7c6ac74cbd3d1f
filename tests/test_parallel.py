"""layers.parallel: row blocks on two threads, each with a one-thread BLAS, for predict.

Checked here: every row is computed once and the numbers equal the one-thread pass; the
caller's NumPy error state and exceptions reach the tasks and the caller; nested calls and a
process limited to one BLAS thread stay on the calling thread; the BLAS threads come back."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import model_config
from threadpoolctl import ThreadpoolController, threadpool_limits

from layers import parallel
from runner.api import Model

BLAS = ThreadpoolController().select(user_api="blas")


def dense_model(rows: int, features: int, units: int) -> Model:
    dense = {"type": "Dense", "output_dim": units, "activation": "tanh"}
    inputs = {"x": {"shape": [features], "data": {"random": {"rows": rows}}}}
    return Model.from_config(model_config({"d": dense}, inputs))


def blas_threads() -> int:
    return max(c.get_num_threads() for c in BLAS.lib_controllers)


@pytest.fixture(autouse=True)
def row_blocks_on(monkeypatch):
    monkeypatch.setattr(parallel, "ENABLED", True)  # off by default (LAYERS_ROW_BLOCKS=1)


@pytest.fixture
def two_threads():
    with threadpool_limits(limits=2, user_api="blas"):
        yield


def test_blocks_cover_every_row_once():
    assert parallel.blocks(10, 4) == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert parallel.blocks(3, 4) == [(0, 1), (1, 2), (2, 3)]


def test_split_rows_runs_blocks_on_two_threads_with_a_one_thread_blas(two_threads):
    seen: list[tuple[int, int, str, int]] = []
    lock = threading.Lock()
    # Each block waits for the other: passes only if two threads run them at the same time,
    # however loaded the machine is (a fixed sleep was flaky); one thread alone times out.
    both = threading.Barrier(2, timeout=60)

    def task(lo, hi):
        with lock:
            seen.append((lo, hi, threading.current_thread().name, blas_threads()))
        both.wait()

    parallel.split_rows(1000, parallel.MIN_ELEMENTS, task)
    assert sorted((lo, hi) for lo, hi, _, _ in seen) == parallel.blocks(1000, 2)
    assert {blas for *_, blas in seen} == {1}  # each block's GEMM on one BLAS thread
    assert len({name for _, _, name, _ in seen}) == 2
    assert blas_threads() == 2  # restored


def test_small_outputs_nested_calls_and_one_blas_thread_stay_on_the_caller(two_threads):
    calls: list[tuple[str, str]] = []  # (thread that called split_rows, thread of the task)

    def on(caller: str):
        def task(lo, hi):
            calls.append((caller, threading.current_thread().name))

        return task

    me = threading.current_thread().name
    parallel.split_rows(10, 10, on(me))  # too small to gain
    with threadpool_limits(limits=1, user_api="blas"):
        parallel.split_rows(1000, parallel.MIN_ELEMENTS, on(me))
    assert calls == [(me, me), (me, me)]  # one block each, on the caller

    def nested(lo, hi):
        assert parallel.threads() == 1
        here = threading.current_thread().name
        parallel.split_rows(1000, parallel.MIN_ELEMENTS, on(here))

    calls.clear()
    parallel.split_rows(1000, parallel.MIN_ELEMENTS, nested)
    assert len(calls) == 2 and all(caller == task for caller, task in calls)


def test_tasks_run_under_the_callers_error_state_and_raise_to_it(two_threads):
    big = np.full(4, 3e38, dtype=np.float32)

    def overflow(lo, hi):
        big * np.float32(10)

    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        parallel.split_rows(1000, parallel.MIN_ELEMENTS, overflow)
    assert blas_threads() == 2


def test_a_dense_layer_gives_the_same_numbers_on_two_threads_as_on_one(two_threads):
    model: Model = dense_model(rows=2048, features=96, units=256)
    x = np.random.default_rng(0).uniform(-1, 1, (2048, 96)).astype(np.float32)
    two = model.predict({"x": x})["d"]
    with threadpool_limits(limits=1, user_api="blas"):
        one = model.predict({"x": x})["d"]
    w, b = model.weights["d/W"].astype(np.float64), model.weights["d/b"].astype(np.float64)
    expected = np.tanh(x.astype(np.float64) @ w + b)
    np.testing.assert_allclose(two, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(two, one)


def test_a_forked_child_gets_threads_of_its_own(two_threads):
    """A process forked after a parallel pass (a launcher, multiprocessing) must not wait for
    the parent's pool threads, which it does not have."""
    import multiprocessing

    def task(lo, hi):
        threading.Event().wait(0.005)

    parallel.split_rows(1000, parallel.MIN_ELEMENTS, task)  # the parent's pool exists now
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        result = pool.apply_async(_split_in_child)
        assert result.get(timeout=60) == 1000


def _split_in_child() -> int:
    done = []
    parallel.split_rows(1000, parallel.MIN_ELEMENTS, lambda lo, hi: done.append(hi - lo))
    return sum(done)

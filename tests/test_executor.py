"""The prefetching executor: errors, thread lifetime, no deadlock when stopping mid-epoch."""

import gc
import threading
import time

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def


def pipestate_threads():
    return [t for t in threading.enumerate() if t.name.startswith("pipestate")]


@pipeline_def(batch_size=4, num_threads=3, seed=1, prefetch_queue_depth=3)
def slow_pipe():
    x = fn.random.uniform(shape=[2])
    return fn.python_function(x, function=lambda a: a * 2)


def test_no_thread_outlives_close(no_thread_leak):
    p = slow_pipe()
    p.run()
    assert pipestate_threads()
    p.close()


def test_context_manager_closes(no_thread_leak):
    with slow_pipe() as p:
        p.run()


def test_dropping_a_pipeline_mid_epoch_stops_its_threads(no_thread_leak):
    p = slow_pipe()
    p.run()
    time.sleep(0.1)  # the prefetcher fills its queue and blocks
    del p
    gc.collect()
    deadline = time.monotonic() + 5
    while pipestate_threads() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_close_while_the_producer_is_blocked_does_not_deadlock(no_thread_leak):
    p = slow_pipe(prefetch_queue_depth=1)
    p.run()
    time.sleep(0.1)
    start = time.monotonic()
    p.close()
    assert time.monotonic() - start < 2


def test_operator_error_reaches_run_in_order_and_sticks(no_thread_leak):
    def fail_on_third(i):
        if i == 2:
            raise KeyError("sample 2 is missing")
        return np.zeros((2, 1), np.float32) + i

    @pipeline_def(batch_size=2, seed=1, prefetch_queue_depth=4)
    def p():
        return fn.external_source(source=fail_on_third, name="loader")

    pipe = p()
    assert pipe.run()[0].as_array().ravel().tolist() == [0, 0]
    assert pipe.run()[0].as_array().ravel().tolist() == [1, 1]
    with pytest.raises(OperatorError, match="'loader'.*iteration 2.*KeyError") as info:
        pipe.run()
    assert info.value.operator == "loader" and isinstance(info.value.__cause__, KeyError)
    with pytest.raises(OperatorError):
        pipe.run()
    pipe.close()


def test_many_threads_and_depths_same_output():
    outs = []
    for threads, depth in [(1, 1), (2, 2), (4, 8)]:
        with slow_pipe(num_threads=threads, prefetch_queue_depth=depth) as p:
            outs.append(np.concatenate([p.run()[0].as_array() for _ in range(5)]))
    assert all(np.array_equal(outs[0], o) for o in outs)


def test_reset_after_an_error_starts_the_next_epoch():
    def fail_in_epoch_zero(info):
        if info.epoch_idx == 0 and info.iteration == 1:
            raise OSError("disk hiccup")
        return [np.array([info.epoch_idx, info.iteration])] * 2

    @pipeline_def(batch_size=2, seed=1)
    def p():
        return fn.external_source(source=fail_in_epoch_zero, batch_info=True)

    pipe = p()
    pipe.run()
    with pytest.raises(OperatorError, match="disk hiccup"):
        pipe.run()
    pipe.reset()
    assert pipe.run()[0][0].tolist() == [1, 0]
    pipe.close()

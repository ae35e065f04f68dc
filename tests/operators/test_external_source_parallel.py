"""fn.external_source(parallel=True): worker processes give the outputs and checkpoints of parallel=False."""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
import warnings

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def
from pipestate.parallel import WorkerError, callback_dumps
from pipestate.testing import END_OF_EPOCH, assert_equal_output_after_checkpoint, assert_events_equal, record

BATCH = 4
EPOCH = 11  # samples per epoch: the third batch is cut by the end of the data


def by_sample(info):
    """A module-level SampleInfo source (picklable by reference)."""
    if info.idx_in_epoch >= EPOCH:
        raise StopIteration
    rng = np.random.default_rng(info.idx_in_epoch + 100 * info.epoch_idx)
    return np.array([info.epoch_idx, info.iteration, info.idx_in_epoch, info.idx_in_batch]), rng.random(
        1 + info.idx_in_epoch % 3
    )


def by_batch(info):
    """A module-level BatchInfo source."""
    if info.iteration >= 3:
        raise StopIteration
    return [np.array([info.epoch_idx, info.iteration, i], np.int64) for i in range(BATCH)]


def make(source=by_sample, parallel=True, batch=None, batch_info=False, num_outputs=2, **options):
    options = {"py_start_method": "fork", "py_num_workers": 2, **options}
    args = {"batch_info": batch_info} if batch_info else {}
    if batch is not None:
        args["batch"] = batch

    @pipeline_def(batch_size=BATCH, seed=3, enable_checkpointing=True, **options)
    def pipe():
        out = fn.external_source(source, num_outputs=num_outputs, parallel=parallel, name="es", **args)
        return tuple(out) if isinstance(out, list) else out

    return pipe


def reference(source=by_sample, batch=False, batch_info=False, num_outputs=2, steps=10):
    pipe = make(source, False, batch, batch_info, num_outputs)()
    events, _ = record(pipe, steps)
    pipe.close()
    return events


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("workers", [1, 3])
def test_samples_identical_to_sequential(method, workers):
    expected = reference()
    assert END_OF_EPOCH in expected  # the run crosses epoch ends
    pipe = make(py_start_method=method, py_num_workers=workers, prefetch_queue_depth=3)()
    events, _ = record(pipe, 10)
    pipe.close()
    assert_events_equal(expected, events, f"{method}, {workers} workers")
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("depth", [1, 4])
def test_batches_identical_to_sequential(depth):
    expected = reference(by_batch, batch=True, batch_info=True, num_outputs=None)
    pipe = make(by_batch, batch=True, batch_info=True, num_outputs=None, prefetch_queue_depth=depth)()
    events, _ = record(pipe, 10)
    pipe.close()
    assert_events_equal(expected, events, f"prefetch depth {depth}")
    assert [e[0][0].tolist() for e in events[:2]] == [[0, 0, 0], [0, 1, 0]]


def test_restores_at_every_step():
    assert_equal_output_after_checkpoint(make(), steps=10)


def test_restores_with_spawned_workers():
    assert_equal_output_after_checkpoint(make(py_start_method="spawn"), steps=9, restore_at=[0, 4, 8])


def test_checkpoint_continues_like_sequential():
    sequential = make(parallel=False, batch=False)()
    parallel = make()()
    for _ in range(2):
        sequential.run()
        parallel.run()
    resumed = make()(checkpoint=parallel.checkpoint())
    parallel.close()
    assert_events_equal(record(sequential, 5)[0], record(resumed, 5)[0], "resumed parallel source")
    sequential.close()
    resumed.close()


def test_local_lambda_with_spawn():
    offset = np.float32(0.5)

    @pipeline_def(batch_size=3, seed=1, py_start_method="spawn", py_num_workers=2)
    def pipe():
        return fn.external_source(lambda info: np.full(2, info.idx_in_epoch + offset, np.float32), parallel=True)

    p = pipe()
    (out,) = p.run()
    p.close()
    np.testing.assert_array_equal(out.as_array(), [[0.5, 0.5], [1.5, 1.5], [2.5, 2.5]])


def failing(info):
    if info.idx_in_epoch == 6:
        raise ValueError("bad sample")
    return np.array([info.idx_in_epoch])


def test_error_names_operator_and_sample():
    p = make(failing, batch=False, num_outputs=None)()
    p.run()
    with pytest.raises(OperatorError) as caught:
        p.run()
    message = str(caught.value)
    assert "'es'" in message and "ValueError: bad sample" in message and "idx_in_epoch=6" in message
    assert isinstance(caught.value.__cause__, WorkerError)
    assert isinstance(caught.value.__cause__.__cause__, ValueError)
    with pytest.raises(OperatorError):  # raised again until reset()
        p.run()
    p.close()
    assert multiprocessing.active_children() == []


def test_unpicklable_source_with_spawn_is_a_clear_error():
    lock = threading.Lock()

    def source(info):
        with lock:
            return np.array([info.idx_in_epoch])

    with pytest.raises(TypeError, match="cannot be pickled.*py_start_method='fork'"):
        make(source, batch=False, num_outputs=None, py_start_method="spawn")().build()
    assert multiprocessing.active_children() == []
    p = make(source, batch=False, num_outputs=None, py_start_method="fork")()  # forking needs no pickling
    assert p.run()[0].as_array().ravel().tolist() == [0, 1, 2, 3]
    p.close()


def dies(info):
    os._exit(3)


def test_dead_worker_is_an_error():
    p = make(dies, batch=False, num_outputs=None)()
    with pytest.raises(OperatorError, match="exited unexpectedly \\(exit code 3\\)"):
        p.run()
    p.close()
    assert multiprocessing.active_children() == []


def _gone(pid: int) -> bool:
    """The process is neither running nor a zombie (it was reaped)."""
    return not os.path.exists(f"/proc/{pid}")


def test_close_and_garbage_collection_end_the_workers():
    p = make()()
    p.run()
    pids = [pid for op in p._graph.ops for pid in op.pool.pids]
    assert len(pids) == 2 and len(multiprocessing.active_children()) == 2
    p.close()
    assert multiprocessing.active_children() == [] and all(map(_gone, pids))

    p = make()()
    p.run()
    pids = [pid for op in p._graph.ops for pid in op.pool.pids]
    del p
    deadline = time.monotonic() + 10
    while not all(map(_gone, pids)) and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert all(map(_gone, pids)) and multiprocessing.active_children() == []


def test_start_py_workers_before_build():
    p = make()()
    p.start_py_workers()
    assert len(multiprocessing.active_children()) == 2
    p.run()
    assert len(multiprocessing.active_children()) == 2  # build() did not start more
    p.close()
    assert multiprocessing.active_children() == []


def recording(info):
    with open(os.path.join(os.environ["PIPESTATE_TEST_MARKS"], f"{info.iteration}"), "w"):
        pass
    return np.array([info.idx_in_epoch])


def test_prefetch_is_bounded_by_the_pipeline_depth(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPESTATE_TEST_MARKS", str(tmp_path))
    p = make(recording, batch=False, num_outputs=None, prefetch_queue_depth=1)()
    p.run()
    time.sleep(0.5)
    # batch 0 returned, batch 1 queued by the prefetcher, batch 2 being computed: it scheduled batch 3 at most
    assert max(int(n) for n in os.listdir(tmp_path)) <= 3
    p.close()


def test_no_workers_runs_in_process():
    p = make(py_num_workers=0)()
    events, _ = record(p, 10)
    assert multiprocessing.active_children() == []
    p.close()
    assert_events_equal(reference(), events, "py_num_workers=0")


def test_sources_with_state_run_in_process():
    data = [[np.array([i, k]) for k in range(BATCH)] for i in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = make(iter(data), batch=True, num_outputs=None)()
        events, _ = record(p, 4)
    p.close()
    assert [e[0][0].tolist() for e in events[:3]] == [[0, 0], [1, 0], [2, 0]] and events[3] == END_OF_EPOCH


def test_dali_rules_for_parallel_sources():
    with pytest.raises(TypeError, match="must take exactly one argument"):
        make(lambda: np.array([1]), num_outputs=None)()
    with pytest.raises(TypeError, match="must run in batch mode"):
        make([np.array([1])] * 4, num_outputs=None)()


def test_by_value_pickling_of_local_functions():
    import pickle

    def factorial(n):  # recursive through its own closure cell
        return 1 if n <= 1 else n * factorial(n - 1)

    scale = 3
    restored = pickle.loads(callback_dumps(lambda x: np.int64(factorial(x)) * scale))
    assert restored(4) == 72

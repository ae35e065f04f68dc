"""Class-style pipelines: define_graph at build, iter_setup called as DALI calls it, feed_input, run(**inputs),
and what checkpoints restore of fed external sources."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pipestate import Pipeline, PipestateError, fn, ops, pipeline_def, types


class Fed(Pipeline):
    """An external source fed from iter_setup() with batch k = k, k+1, ...; a random operator beside it."""

    def __init__(self, stop_after: int | None = None, **kwargs):
        super().__init__(**{"batch_size": 2, "num_threads": 2, "device_id": None, "seed": 3, **kwargs})
        self.source = ops.ExternalSource(layout="W")
        self.uniform = ops.random.Uniform(range=[0, 1])
        self.fed = self.in_epoch = 0
        self.calls: list[int] = []
        self.stop_after = stop_after

    def define_graph(self):
        self.data = self.source()
        return self.data, self.uniform(), self.data + 100

    def iter_setup(self):
        self.calls.append(self.fed)
        if self.in_epoch == self.stop_after:  # an epoch of stop_after batches, then the next one
            self.in_epoch = 0
            raise StopIteration
        self.feed_input(self.data, np.full((2, 3), self.fed, np.int64))
        self.fed += 1
        self.in_epoch += 1


def values(pipe, steps):
    out = []
    for _ in range(steps):
        try:
            data, random, plus = pipe.run()
        except StopIteration:
            out.append("end")
            pipe.reset()
            continue
        assert (plus.as_array() == data.as_array() + 100).all()
        out.append((int(data.as_array()[0, 0]), random.as_array().tolist()))
    return out


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_iter_setup_is_called_as_dali_calls_it(depth):
    """prefetch_queue_depth times before the first batch, then once per run(); the outputs do not depend on it."""
    pipe = Fed(prefetch_queue_depth=depth)
    pipe.run()
    assert pipe.calls == list(range(depth))
    pipe.run(), pipe.run()
    assert pipe.calls == list(range(depth + 2))
    assert [v[0] for v in values(Fed(prefetch_queue_depth=depth), 5)] == [0, 1, 2, 3, 4]


def test_outputs_do_not_depend_on_prefetch_depth_or_threads():
    assert values(Fed(prefetch_queue_depth=1), 6) == values(Fed(prefetch_queue_depth=5, num_threads=3), 6)


def test_stop_iteration_in_iter_setup_ends_the_epoch_after_the_batches_set_up():
    pipe = Fed(stop_after=3, prefetch_queue_depth=2)
    assert [v if v == "end" else v[0] for v in values(pipe, 9)] == [0, 1, 2, "end", 3, 4, 5, "end", 6]


def test_restore_continues_from_the_data_fed_after_it():
    """The checkpoint holds the fed source's position; the restored pipeline computes its next batch from the
    data fed next (as DALI): a feeder moved to `iteration` continues bit for bit, at any prefetch depth."""
    for depth in (1, 3):
        pipe = Fed(prefetch_queue_depth=depth, enable_checkpointing=True)
        values(pipe, 3)
        cpt = pipe.checkpoint()
        expected = values(pipe, 4)
        restored = Fed(prefetch_queue_depth=4 - depth, enable_checkpointing=True, checkpoint=cpt)
        restored.build()
        assert restored.iteration == 3 and restored.is_restored_from_checkpoint
        restored.fed = restored.iteration  # the feeder resumes after the last batch the checkpoint returned
        assert values(restored, 4) == expected
        pipe.restore(cpt)  # in place: fed batches not used yet are dropped, iter_setup starts afresh
        pipe.fed = pipe.iteration
        assert values(pipe, 4) == expected


def test_feeding_by_hand_and_through_run():
    @pipeline_def(batch_size=2, seed=1, prefetch_queue_depth=3)
    def pipe_fn():
        return fn.external_source(name="x", dtype=types.INT32) * 2

    pipe = pipe_fn()
    pipe.feed_input("x", np.array([[1], [2]], np.int32))
    assert pipe.run()[0].as_array().tolist() == [[2], [4]]
    assert pipe.run(x=[np.array([3], np.int32), np.array([4, 5], np.int32)])[0].shape() == [(1,), (2,)]
    with pytest.raises(PipestateError, match="batch 2 of the epoch has no data.*feed_input"):
        pipe.run()  # never fed: an error at once, not a hang
    with pytest.raises(TypeError, match="int64 data; dtype=int32 was declared"):
        pipe.feed_input("x", np.zeros((2, 1), np.int64))
    with pytest.raises(ValueError, match="batch_size is 2"):
        pipe.feed_input("x", [np.zeros(1, np.int32)])
    with pytest.raises(KeyError, match="no external source without a source= is called 'y'"):
        pipe.feed_input("y", np.zeros((2, 1), np.int32))
    with pytest.raises(ValueError, match="layout='HW' does not match"):
        pipe.feed_input("x", np.zeros((2, 1), np.int32), layout="HW")


def test_feed_input_copies_the_data_and_takes_its_layout():
    pipe = Pipeline(batch_size=2)
    with pipe:
        pipe.set_outputs(fn.external_source(name="img"))
    batch = np.zeros((2, 2, 2, 3), np.uint8)
    pipe.feed_input("img", batch, layout="HWC")
    batch[:] = 7  # changed after feeding: the fed copy is not
    (out,) = pipe.run()
    assert out.layout() == "HWC" and out.as_array().max() == 0


def test_a_blocking_source_waits_for_data_fed_from_another_thread():
    pipe = Pipeline(batch_size=1)
    with pipe:
        pipe.set_outputs(fn.external_source(name="x", blocking=True))

    def feed():
        time.sleep(0.2)
        pipe.feed_input("x", np.array([[9.0]]))

    feeder = threading.Thread(target=feed)
    feeder.start()
    assert pipe.run()[0].as_array().tolist() == [[9.0]]
    feeder.join()
    pipe.close()


def test_sources_with_a_source_cannot_be_fed_and_fed_sources_have_one_output():
    pipe = Pipeline(batch_size=1)
    with pipe:
        pipe.set_outputs(fn.external_source(source=[[np.zeros(1)]], name="s"))
    with pytest.raises(KeyError, match="no external source without a source="):
        pipe.feed_input("s", np.zeros((1, 1)))
    for bad in ({"num_outputs": 2}, {"parallel": True}, {"batch": False}):
        with pytest.raises(TypeError, match="need a source="), Pipeline(batch_size=1):
            fn.external_source(**bad)


def test_repeat_last_reuses_the_last_fed_batch():
    pipe = Pipeline(batch_size=1)
    with pipe:
        pipe.set_outputs(fn.external_source(name="x", repeat_last=True))
    pipe.feed_input("x", np.array([[1]]))
    assert [pipe.run()[0].as_array().tolist() for _ in range(3)] == [[[1]]] * 3


def test_define_graph_errors():
    class Nested(Pipeline):
        def define_graph(self):
            return [fn.random.uniform(), fn.random.uniform()], fn.random.uniform()

    with pytest.raises(TypeError, match="nested `DataNode`"):
        Nested(batch_size=1).build()
    with pytest.raises(PipestateError, match="before set_outputs"):
        Pipeline(batch_size=1).build()

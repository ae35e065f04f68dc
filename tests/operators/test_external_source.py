"""fn.external_source: every source kind, epochs, and checkpointing by position."""

import warnings

import numpy as np
import pytest

from pipestate import CheckpointError, OperatorError, fn, pipeline_def, types
from pipestate.testing import END_OF_EPOCH, assert_equal_output_after_checkpoint, record

BATCH = 3


def ids(iteration, epoch):
    return [np.array([epoch, iteration, k], dtype=np.int32) for k in range(BATCH)]


def make(source, steps=None, **kwargs):
    @pipeline_def(batch_size=BATCH, seed=1, enable_checkpointing=True)
    def p():
        return fn.external_source(source=source, **kwargs), fn.random.uniform()

    return p


def values(pipe, steps):
    events, _ = record(pipe, steps)
    return [e if e == END_OF_EPOCH else e[0][0].tolist() for e in events]


def epoch_limited_batch_info(info: types.BatchInfo):
    if info.iteration >= 2:
        raise StopIteration
    return ids(info.iteration, info.epoch_idx)


def test_callable_gets_the_iteration_index():
    pipe = make(lambda i: ids(i, 0))()
    assert values(pipe, 3) == [[0, 0, 0], [0, 1, 0], [0, 2, 0]]


def test_callable_without_arguments():
    pipe = make(lambda: ids(7, 7))()
    assert values(pipe, 1) == [[7, 7, 0]]


def test_batch_info_and_epochs_end_with_stop_iteration():
    pipe = make(epoch_limited_batch_info, batch_info=True)()
    assert values(pipe, 7) == [[0, 0, 0], [0, 1, 0], END_OF_EPOCH, [1, 0, 0], [1, 1, 0], END_OF_EPOCH, [2, 0, 0]]


def test_run_keeps_raising_stop_iteration_until_reset():
    pipe = make(epoch_limited_batch_info, batch_info=True)()
    pipe.run(), pipe.run()
    for _ in range(2):
        with pytest.raises(StopIteration):
            pipe.run()
    pipe.reset()
    assert pipe.run()[0][0].tolist() == [1, 0, 0]


def test_sample_info():
    seen = []

    def sample(info: types.SampleInfo):
        seen.append(info)
        return np.array([info.idx_in_epoch, info.idx_in_batch, info.iteration, info.epoch_idx], np.int64)

    pipe = make(sample, batch=False)()
    out = [pipe.run()[0].as_array().tolist() for _ in range(2)]
    assert out[1] == [[3, 0, 1, 0], [4, 1, 1, 0], [5, 2, 1, 0]]


def test_sequence_source_is_indexed_and_ends_the_epoch():
    data = [ids(i, 9) for i in range(2)]
    pipe = make(data)()
    assert values(pipe, 4) == [[9, 0, 0], [9, 1, 0], END_OF_EPOCH, [9, 0, 0]]


def test_array_batches_and_num_outputs():
    def two(i):
        return np.full((BATCH, 2), i, np.float32), [np.array(i * 10)] * BATCH

    @pipeline_def(batch_size=BATCH, seed=1)
    def p():
        a, b = fn.external_source(source=two, num_outputs=2)
        return a, b

    a, b = p().run()
    assert a.as_array().shape == (BATCH, 2) and b.as_array().tolist() == [0, 0, 0]


def test_generator_function_restarts_each_epoch():
    def gen():
        for i in range(2):
            yield ids(i, 5)

    with pytest.warns(UserWarning, match="cannot be checkpointed by position"):
        pipe = make(gen)()
    assert values(pipe, 4) == [[5, 0, 0], [5, 1, 0], END_OF_EPOCH, [5, 0, 0]]


def test_generator_function_restore_replays_and_continues():
    def gen():
        for i in range(3):
            yield ids(i, 5)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_equal_output_after_checkpoint(make(gen), steps=8)


def test_one_shot_iterator_is_read_on_after_restore_or_refused():
    """As DALI: restoring reads a one-shot iterator on from where it is (everything else is restored);
    uncaptured_sources="refuse" refuses the restore instead."""
    factory = make(iter([ids(i, 0) for i in range(5)]))
    with pytest.warns(UserWarning, match="reads on from where it is"):
        pipe = factory()
    pipe.run()
    cpt = pipe.checkpoint()
    expected_random = pipe.run()[1].as_array()
    with pytest.warns(UserWarning):
        restored = make(iter([ids(i, 7) for i in range(5)]))(checkpoint=cpt)
    data, random = restored.run()
    assert data[0].tolist() == [7, 0, 0]  # the new iterator's first batch
    np.testing.assert_array_equal(random.as_array(), expected_random)  # the rest continues exactly
    with pytest.warns(UserWarning, match="fails for a one-shot one"), pytest.raises(CheckpointError, match="one-shot"):
        make(iter([ids(i, 0) for i in range(5)]))(checkpoint=cpt, uncaptured_sources="refuse")


def test_callable_without_arguments_is_called_again_after_restore_or_refused():
    calls = []

    def source():
        calls.append(len(calls))
        return ids(len(calls), 0)

    with pytest.warns(UserWarning, match="called again"):
        pipe = make(source)()
    pipe.run(), pipe.run()
    cpt = pipe.checkpoint()
    expected_random = pipe.run()[1].as_array()
    pipe.close()  # its prefetch thread calls the source no more
    calls.clear()
    with pytest.warns(UserWarning):
        restored = make(source)(checkpoint=cpt, prefetch_queue_depth=1)
    data, random = restored.run()
    assert data[0].tolist() == [0, 1, 0]  # the source is simply called again
    np.testing.assert_array_equal(random.as_array(), expected_random)
    with pytest.warns(UserWarning, match="refused"), pytest.raises(CheckpointError, match="uncaptured_sources"):
        make(source)(checkpoint=cpt, uncaptured_sources="refuse")
    with pytest.raises(ValueError, match="uncaptured_sources"):
        make(source)(uncaptured_sources="ignore")


class CountingSource:
    """A stateful source object: counts batches, restores from bytes."""

    def __init__(self):
        self.n = 0

    def __call__(self):
        self.n += 1
        if self.n % 4 == 0:
            raise StopIteration
        return ids(self.n, 0)

    def state(self) -> bytes:
        return self.n.to_bytes(8, "little")

    def restore(self, data: bytes) -> None:
        self.n = int.from_bytes(data, "little")


def test_stateful_source_object_is_checkpointed():
    assert_equal_output_after_checkpoint(lambda **kw: make(CountingSource())(**kw), steps=10)


@pytest.mark.parametrize(
    "source,kwargs",
    [
        (epoch_limited_batch_info, {"batch_info": True}),
        ([ids(i, 3) for i in range(3)], {}),
        (lambda info: np.full((2,), info.idx_in_epoch % 5, np.int32), {"batch": False}),
    ],
)
def test_checkpoint_conformance_across_epochs(source, kwargs):
    assert_equal_output_after_checkpoint(make(source, **kwargs), steps=9)


def test_reset_mid_epoch_rewinds_prefetched_batches():
    """reset() mid-epoch gives the same next epoch whatever the prefetch depth."""
    results = []
    for depth in (1, 5):
        pipe = make(epoch_limited_batch_info, batch_info=True)(prefetch_queue_depth=depth)
        pipe.run()
        pipe.reset()
        results.append(values(pipe, 3))
    assert results[0] == results[1] == [[1, 0, 0], [1, 1, 0], END_OF_EPOCH]


@pytest.mark.parametrize(
    "source,match",
    [
        (lambda: ids(0, 0)[:2], "returned 2 samples; batch_size is 3"),
        (lambda: np.zeros((2, 3)), "shape \\(2, 3\\)"),
        (lambda: 5, "returned int"),
    ],
)
def test_bad_batches_name_the_operator(source, match):
    pipe = make(source)()
    with pytest.raises(OperatorError, match=match) as info:
        pipe.run()
    assert info.value.operator == "external_source_0"


def test_declared_dtype_is_checked():
    pipe = make(lambda: ids(0, 0), dtype=types.FLOAT)()
    with pytest.raises(OperatorError, match="dtype=float32 was declared"):
        pipe.run()


def test_definition_errors():
    with pytest.raises(TypeError, match="need a source="):
        make(None, num_outputs=2)()
    with pytest.raises(TypeError, match="batch_info=True"):
        make([1, 2], batch_info=True)()
    with pytest.raises(TypeError, match="not callable"):
        make(42)()

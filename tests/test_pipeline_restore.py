"""``Pipeline.restore``: move an existing pipeline to a checkpoint, before or after running it."""

from __future__ import annotations

import numpy as np
import pytest

from pipestate import CheckpointMismatchError, PipestateError, fn, pipeline_def
from pipestate.testing import assert_events_equal, record


def _ids(info):
    return np.arange(4, dtype=np.int64) + 4 * info.iteration


@pipeline_def(batch_size=4, enable_checkpointing=True, prefetch_queue_depth=3)
def noisy(scale=1.0):
    ids = fn.external_source(source=_ids, batch_info=True)
    return fn.random.uniform(shape=(2,)) * scale, ids


def _epochs_source(info):
    if info.iteration == 3:
        raise StopIteration
    return np.full((4, 1), 10 * info.epoch_idx + info.iteration, np.int32)


@pipeline_def(batch_size=4, enable_checkpointing=True, seed=5)
def epochs():
    return fn.external_source(source=_epochs_source, batch_info=True)


@pytest.mark.parametrize("position", [0, 1, 3])
def test_restore_in_place_after_running_ahead(position):
    pipe = noisy(seed=3)
    reference, _ = record(pipe, position + 4)
    pipe.close()
    pipe = noisy(seed=3)
    record(pipe, position)
    blob = pipe.checkpoint()
    record(pipe, 3)  # the prefetcher is now further ahead still
    pipe.restore(blob)
    got, _ = record(pipe, 4)
    assert_events_equal(reference[position:], got, f"in place at {position}")
    assert pipe.is_restored_from_checkpoint
    pipe.close()


def test_restore_before_first_run_adopts_the_seed_across_an_epoch_end():
    pipe = epochs()
    events, checkpoints = record(pipe, 8)
    fresh = epochs()
    fresh.restore(checkpoints[2])
    got, got_checkpoints = record(fresh, 5)
    assert_events_equal(events[3:], got, "fresh")
    assert got_checkpoints == checkpoints[3:]

    unseeded = noisy()
    expected, _ = record(unseeded, 3)
    blob = unseeded.checkpoint()
    after, _ = record(unseeded, 2)
    other = noisy()  # another random seed: restore adopts the checkpoint's
    other.restore(blob)
    assert other.seed == unseeded.seed
    got, _ = record(other, 2)
    assert_events_equal(after, got, "seed adopted")


def test_restore_mismatch_leaves_the_pipeline_unchanged():
    source = noisy(seed=3, scale=2.0)
    record(source, 2)
    blob = source.checkpoint()
    pipe = noisy(seed=3)
    reference = noisy(seed=3)
    expected, _ = record(reference, 4)
    record(pipe, 1)
    with pytest.raises(CheckpointMismatchError):
        pipe.restore(blob)
    got, _ = record(pipe, 3)
    assert_events_equal(expected[1:], got, "after a failed restore")
    for p in (source, pipe, reference):
        p.close()


def test_restore_needs_checkpointing_and_an_open_pipeline():
    @pipeline_def(batch_size=2)
    def plain():
        return fn.random.uniform()

    blob = noisy(seed=1).checkpoint()
    with pytest.raises(PipestateError, match="enable_checkpointing"):
        plain().restore(blob)
    pipe = noisy(seed=1)
    pipe.close()
    with pytest.raises(PipestateError, match="closed"):
        pipe.restore(blob)

"""Well-formed but wrong checkpoints (valid checksum): one regression test per defect of issue 9.

Each test crafts the checkpoint a buggy or malicious writer would produce (decode, change, re-seal) and
checks that restoring raises a :class:`CheckpointError` subclass naming the problem, and that a pipeline
whose :meth:`Pipeline.restore` failed continues exactly as before. ``tests/test_checkpoint_fuzz.py``
checks the same property over thousands of random mutations.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pipestate import CheckpointError, CheckpointMismatchError, PipestateError, fn, pipeline_def
from pipestate import checkpoint as ckpt
from pipestate._proto.pipestate.v2 import checkpoint_pb2 as pb2
from pipestate.operators.external_source import MAX_REPLAY
from pipestate.testing import assert_events_equal, record


def _edit(blob: bytes, change) -> bytes:
    """``blob`` with its payload changed by ``change(payload)``, re-sealed with a valid checksum."""
    version, payload_bytes = ckpt.open_envelope(blob)
    payload = pb2.Payload.FromString(payload_bytes)
    change(payload)
    return ckpt.seal(version, payload.SerializeToString(deterministic=True))


def _entry(payload: pb2.Payload, name: str) -> pb2.OperatorState:
    return next(op for op in payload.operators if op.name == name)


def _set_state(payload: pb2.Payload, name: str, **values: int) -> None:
    for entry in _entry(payload, name).state.map.entries:
        if entry.key in values:
            entry.value.Clear()
            entry.value.int = values[entry.key]


def _ids(info):
    return np.arange(4, dtype=np.int64) + 4 * info.iteration


class Counter:
    """A source object: state() is the next value as 8 bytes; restore() refuses anything else."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self):
        self.n += 1
        return np.full((4, 1), self.n - 1, np.int64)

    def state(self) -> bytes:
        return self.n.to_bytes(8, "little")

    def restore(self, data: bytes) -> None:
        if len(data) != 8:
            raise ValueError(f"expected 8 bytes, got {len(data)}")
        self.n = int.from_bytes(data, "little")


@pipeline_def(batch_size=4, num_threads=2, seed=12, enable_checkpointing=True, prefetch_queue_depth=3)
def two_sources():
    """Two stateful operators (a BatchInfo callable, then a source object) and a random stream."""
    a = fn.external_source(source=_ids, batch_info=True, name="ids")
    b = fn.external_source(source=Counter(), name="counter")
    return a, b, fn.random.uniform(shape=[2])


def _checkpoint_after(steps: int) -> bytes:
    pipe = two_sources()
    record(pipe, steps)
    blob = pipe.checkpoint()
    pipe.close()
    return blob


def _assert_refused_and_unchanged(blob: bytes, error: type[Exception], match: str) -> None:
    """Restoring ``blob`` raises ``error``, both into a new pipeline and in place; in place, the pipeline
    then continues exactly like an uninterrupted one."""
    with pytest.raises(error, match=match):
        two_sources(checkpoint=blob)
    reference = two_sources()
    expected, expected_checkpoints = record(reference, 6)
    reference.close()
    pipe = two_sources()
    record(pipe, 2)
    before = pipe.checkpoint()
    with pytest.raises(error, match=match):
        pipe.restore(blob)
    assert pipe.checkpoint() == before
    got, got_checkpoints = record(pipe, 4)
    pipe.close()
    assert_events_equal(expected[2:], got, "after the failed restore")
    assert got_checkpoints == expected_checkpoints[2:]


def test_an_operator_entry_missing_or_renamed_is_a_mismatch_not_a_key_error():
    blob = _checkpoint_after(3)
    missing = _edit(blob, lambda p: p.operators.remove(_entry(p, "counter")))
    _assert_refused_and_unchanged(missing, CheckpointMismatchError, "operator entries")

    def rename(payload: pb2.Payload) -> None:
        _entry(payload, "ids").name = "renamed"

    _assert_refused_and_unchanged(_edit(blob, rename), CheckpointMismatchError, "operator entries")


def test_a_restore_that_fails_after_moving_an_operator_leaves_the_pipeline_unchanged():
    """The first stateful operator accepts its state, the second refuses its own: all or nothing."""
    blob = _edit(
        _checkpoint_after(3), lambda p: setattr(_entry(p, "counter").state.map.entries[2].value, "bytes", b"\x01")
    )
    _assert_refused_and_unchanged(blob, CheckpointError, "'counter'.*ValueError: expected 8 bytes")


def test_a_source_objects_restore_error_is_a_checkpoint_error_naming_the_operator():
    blob = _edit(
        _checkpoint_after(2), lambda p: setattr(_entry(p, "counter").state.map.entries[2].value, "bytes", b"short")
    )
    with pytest.raises(CheckpointError, match="operator 'counter' \\(external_source\\)") as info:
        two_sources(checkpoint=blob)
    assert isinstance(info.value.__cause__, ValueError)


def test_one_operators_position_from_another_checkpoint_is_refused():
    """Counters that no run produces: the BatchInfo source's position is taken from a later checkpoint."""
    early, late = _checkpoint_after(2), _checkpoint_after(5)
    late_state = _entry(pb2.Payload.FromString(ckpt.open_envelope(late)[1]), "ids").state

    def graft(payload: pb2.Payload) -> None:
        _entry(payload, "ids").state.CopyFrom(late_state)

    _assert_refused_and_unchanged(_edit(early, graft), CheckpointError, "disagrees with the pipeline's")


@pytest.mark.parametrize(
    ("iteration", "epoch", "in_epoch"),
    [
        (2**64 - 1, 0, 2**64 - 1),  # the uint64 limit
        (2**63 // 4, 0, 2**63 // 4),  # first position whose sample counter passes 2**63 - 1
        (3, 2**64 - 1, 0),  # an epoch at the limit
        (5, 0, 3),  # epoch 0 holds every batch so far
        (3, 1, 4),  # more batches in the epoch than in all
    ],
)
def test_positions_no_run_reaches_are_refused(iteration, epoch, in_epoch):
    def move(payload: pb2.Payload) -> None:
        payload.iteration, payload.epoch, payload.iteration_in_epoch = iteration, epoch, in_epoch
        for name in ("ids", "counter"):
            _set_state(payload, name, epoch=min(epoch, 2**63 - 1), iteration=min(in_epoch, 2**63 - 1))

    _assert_refused_and_unchanged(_edit(_checkpoint_after(3), move), CheckpointError, "position")


def test_the_last_position_before_the_counter_limit_restores_and_checkpoints_again():
    """The largest position accepted round-trips through checkpoint(); the next run() is a clear error."""
    last = (2**63 - 1) // 4

    def move(payload: pb2.Payload) -> None:
        payload.iteration = payload.iteration_in_epoch = last
        for name in ("ids", "counter"):
            _set_state(payload, name, iteration=last)

    blob = _edit(_checkpoint_after(1), move)
    pipe = two_sources(checkpoint=blob)
    assert pipe.checkpoint() == blob
    with pytest.raises(PipestateError, match="overflow"):
        pipe.run()
    pipe.close()


def test_batch_size_or_seed_fields_that_disagree_with_the_fingerprint_are_refused():
    blob = _checkpoint_after(2)
    _assert_refused_and_unchanged(
        _edit(blob, lambda p: setattr(p, "batch_size", 8)),
        CheckpointMismatchError,
        "batch_size is 4, the checkpoint states 8",
    )
    _assert_refused_and_unchanged(
        _edit(blob, lambda p: setattr(p, "seed", 13)), CheckpointMismatchError, "seed is 12, the checkpoint states 13"
    )


def _five_batches():
    for i in range(5):
        yield np.full((2, 1), i, np.int32)


def _endless():
    for i in itertools.count():
        yield np.full((2, 1), i, np.int64)


@pytest.mark.filterwarnings("ignore:external source .* cannot be checkpointed by position")
@pytest.mark.timeout(60)
def test_generator_positions_past_the_end_or_the_replay_bound_are_checkpoint_errors():
    @pipeline_def(batch_size=2, seed=1, enable_checkpointing=True)
    def generated(source=_five_batches):
        return fn.external_source(source=source, name="gen")

    def at(position: int):
        def move(payload: pb2.Payload) -> None:
            payload.iteration = payload.iteration_in_epoch = position
            _set_state(payload, "gen", iteration=position)

        return move

    blob = generated().checkpoint()
    with pytest.raises(CheckpointError, match="ends before batch 7"):
        generated(checkpoint=_edit(blob, at(7)))  # not a StopIteration escaping the constructor
    pipe = generated(checkpoint=_edit(blob, at(5)))  # the end of the epoch is a position
    with pytest.raises(StopIteration):
        pipe.run()
    pipe.close()
    endless = generated(source=_endless).checkpoint()
    with pytest.raises(CheckpointError, match=f"more than {MAX_REPLAY} batches"):
        generated(source=_endless, checkpoint=_edit(endless, at(2**40)))  # refused at once, no endless replay
    pipe = generated(source=_endless, checkpoint=_edit(endless, at(MAX_REPLAY)))  # the bound itself replays
    assert int(np.asarray(pipe.run()[0])[0, 0]) == MAX_REPLAY
    pipe.close()


def test_a_sequence_position_past_its_end_is_refused():
    data = [np.full((2, 1), i, np.int32) for i in range(3)]

    @pipeline_def(batch_size=2, seed=1, enable_checkpointing=True)
    def listed():
        return fn.external_source(source=data, name="seq")

    def at(position: int):
        def move(payload: pb2.Payload) -> None:
            payload.iteration = payload.iteration_in_epoch = position
            _set_state(payload, "seq", iteration=position)

        return move

    blob = listed().checkpoint()
    pipe = listed(checkpoint=_edit(blob, at(3)))  # after the last batch: the next run() ends the epoch
    with pytest.raises(StopIteration):
        pipe.run()
    pipe.close()
    with pytest.raises(CheckpointError, match="'seq'.*holds 3 batches"):
        listed(checkpoint=_edit(blob, at(4)))


@pytest.mark.parametrize("how", ["duplicate", "reorder"])
def test_a_version_1_checkpoint_with_duplicated_or_reordered_entries_is_refused(how):
    """Version 1 looked operators up by name: a duplicated entry (which of the two states?) was accepted."""
    import os

    from pipestate._proto.pipestate.v1 import checkpoint_pb2 as pb1
    from tests.golden import pipelines as golden

    with open(os.path.join(os.path.dirname(__file__), "golden", "v1", "random_ops.cpt"), "rb") as f:
        blob = f.read()
    version, payload_bytes = ckpt.open_envelope(blob)
    payload = pb1.Payload.FromString(payload_bytes)
    entries = list(payload.operators)
    entries = entries + entries[:1] if how == "duplicate" else entries[1:2] + entries[:1] + entries[2:]
    del payload.operators[:]
    payload.operators.extend(entries)
    with pytest.raises(CheckpointMismatchError, match="operator entries"):
        golden.random_ops(checkpoint=ckpt.seal(version, payload.SerializeToString()))
    assert golden.random_ops(checkpoint=blob).is_restored_from_checkpoint  # control: the golden restores

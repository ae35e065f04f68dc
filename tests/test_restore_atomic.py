"""A refused restore leaves the pipeline exactly as it was (issue 15, items 1 and 2).

Every stateful operator of the registry is covered by the conformance suite (``check_operator`` runs
:func:`pipestate.testing.assert_refused_restores_change_nothing` on its example). Here: the kinds of
external source the example does not use (generators, iterables, one-shot iterators, source objects,
sequences, parallel sources), the defects the issue reports, controls showing that the check catches a
half-applied restore, and seeds no pipeline runs with.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import warnings

import numpy as np
import pytest

from pipestate import CheckpointError, CorruptCheckpointError, fn, pipeline_def
from pipestate import checkpoint as ckpt
from pipestate.operators.external_source import MAX_REPLAY, ExternalSource
from pipestate.testing import assert_events_equal, assert_refused_restores_change_nothing, record

pytestmark = pytest.mark.filterwarnings("ignore:external source .* cannot be checkpointed by position")

BATCH = 2


def _batch(i: int) -> list[np.ndarray]:
    return [np.array([i, j], np.int32) for j in range(BATCH)]


def _five():
    for i in range(5):
        yield _batch(i)


def _endless():
    for i in itertools.count():
        yield _batch(i)


class Reiterable:
    """An iterable that is not an iterator: ``iter()`` starts it again."""

    def __iter__(self):
        return (_batch(i) for i in range(4))


class Ticker:
    """A source object whose restore() refuses bytes it did not write."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> list[np.ndarray]:
        self.n += 1
        if self.n % 5 == 0:
            raise StopIteration
        return _batch(self.n)

    def state(self) -> bytes:
        return self.n.to_bytes(8, "little")

    def restore(self, data: bytes) -> None:
        if len(data) != 8:
            raise ValueError(f"a Ticker state is 8 bytes, not {len(data)}")
        self.n = int.from_bytes(data, "little")


def _by_sample(info):
    if info.idx_in_epoch >= 4 * BATCH:
        raise StopIteration
    return np.array([info.idx_in_epoch, info.epoch_idx], np.int64)


def _ids(info):
    return np.arange(BATCH, dtype=np.int64) + BATCH * info.iteration


SOURCES = {
    "generator function": (lambda: _five, {}),
    "generator function, cycle": (lambda: _five, {"cycle": "quiet"}),
    "generator function, cycle='raise'": (lambda: _five, {"cycle": "raise"}),
    "re-iterable": (Reiterable, {}),
    "one-shot iterator": (lambda: iter([_batch(i) for i in range(4)]), {}),
    "source object": (Ticker, {}),
    "sequence": (lambda: [_batch(i) for i in range(3)], {}),
    "sequence of samples": (lambda: [np.array([i], np.int16) for i in range(7)], {"batch": False}),
    "callable taking no argument": (lambda: lambda: _batch(7), {}),
    "parallel, samples": (lambda: _by_sample, {"parallel": True, "batch": False}),
}


def _pipeline(kind: str, **options):
    make_source, kwargs = SOURCES[kind]

    @pipeline_def(
        batch_size=BATCH,
        num_threads=2,
        seed=3,
        enable_checkpointing=True,
        prefetch_queue_depth=3,
        py_num_workers=2,
        py_start_method="fork",
    )
    def pipe():
        ids = fn.external_source(source=_ids, batch_info=True, name="ids")  # moved before the source is
        return ids, fn.external_source(source=make_source(), name="src", **kwargs)

    return pipe(**options)


@pytest.mark.parametrize("kind", SOURCES)
def test_refused_restores_of_every_kind_of_external_source_change_nothing(kind):
    refused = assert_refused_restores_change_nothing(functools.partial(_pipeline, kind), steps=9)
    assert refused["a state of another kind"] > 0


# ---- the defects of the issue ----------------------------------------------------------------------------
@pipeline_def(batch_size=BATCH, seed=1, enable_checkpointing=True, prefetch_queue_depth=2)
def generated(source=_five):
    ids = fn.external_source(source=_ids, batch_info=True, name="ids")
    return ids, fn.external_source(source=source, name="gen")


def at(blob: bytes, position: int) -> bytes:
    """``blob`` moved to batch ``position`` of epoch 0, every source's state with it (a crafted checkpoint
    whose counters all agree)."""
    data = ckpt.decode(blob)
    ops = tuple(
        dataclasses.replace(op, state={**op.state, "iteration": position}) if op.has_state else op
        for op in data.operators
    )
    return ckpt.encode(dataclasses.replace(data, iteration=position, iteration_in_epoch=position, operators=ops))


def _first_value(pipe) -> int:
    return int(np.asarray(pipe.run()[1])[0, 0])


@pytest.mark.parametrize(
    ("source", "position", "match"),
    [
        (_five, 9, "ends before batch 9"),  # found while replaying: "ids" was moved already, and is moved back
        (_endless, MAX_REPLAY + 1, f"more than {MAX_REPLAY} batches"),  # refused before anything moves
    ],
)
def test_a_refused_generator_position_leaves_the_generator_where_it_was(source, position, match):
    pipe = generated(source=source)
    assert [_first_value(pipe) for _ in range(2)] == [0, 1]
    before = pipe.checkpoint()
    with pytest.raises(CheckpointError, match=match):
        pipe.restore(at(before, position))
    assert pipe.checkpoint() == before
    assert _first_value(pipe) == 2  # not StopIteration (an exhausted generator), not 0 (a new one)
    ids = pipe.run()[0]
    assert np.asarray(ids).tolist() == [6, 7]  # "ids" continues too
    pipe.close()
    with pytest.raises(CheckpointError, match=match):
        generated(source=source, checkpoint=at(before, position))


def test_own_rewinds_replay_past_the_replay_bound(monkeypatch):
    """The bound is on what a checkpoint asks for: the pipeline's own position is always restorable (a
    rollback must never fail on it)."""
    monkeypatch.setattr("pipestate.operators.external_source.MAX_REPLAY", 3)
    pipe = generated(source=_endless)
    record(pipe, 5)
    blob = pipe.checkpoint()
    pipe.reset()  # rewinds 5 batches (prefetched further), then the next epoch starts the generator again
    assert _first_value(pipe) == 0
    with pytest.raises(CheckpointError, match="more than 3 batches"):
        pipe.restore(blob)
    assert _first_value(pipe) == 1


def test_one_shot_iterators_keep_their_prefetched_batches_when_a_restore_is_refused():
    source = iter([_batch(i) for i in range(9)])

    @pipeline_def(batch_size=BATCH, seed=1, enable_checkpointing=True, prefetch_queue_depth=4)
    def once():
        return fn.external_source(source=source, name="once")

    pipe = once()
    pipe.run()
    assert pipe.run()[0].as_array()[0, 0] == 1
    blob = pipe.checkpoint()
    bad = ckpt.decode(blob)
    bad = dataclasses.replace(bad, operators=(dataclasses.replace(bad.operators[0], state={"epoch": 0}),))
    with pytest.raises(CheckpointError, match="is not an external source's"):
        pipe.restore(ckpt.encode(bad))
    assert [int(pipe.run()[0].as_array()[0, 0]) for _ in range(3)] == [2, 3, 4]
    pipe.close()


# ---- controls: the check catches a restore that changes a pipeline it refuses -----------------------------
def test_the_check_catches_the_defect_of_the_issue(monkeypatch):
    """The defect: the generator replaced before the replay fails; the rollback cannot restore it."""

    def replaces_then_fails(self, batches):
        self.iterator = self._new_iterator()
        raise CheckpointError("refused after replacing the iterator")

    monkeypatch.setattr(ExternalSource, "_replayed", replaces_then_fails)
    with pytest.raises(AssertionError, match="continuing after refused restores after 1 steps: step 0, .* differs"):
        assert_refused_restores_change_nothing(functools.partial(_pipeline, "generator function"), steps=9)


def test_the_check_catches_an_operator_that_moves_before_refusing(monkeypatch, tmp_path):
    """A reader that checks its state only after moving to it (and a runtime without rollback)."""
    from pipestate import testing
    from pipestate.operators import REGISTRY
    from pipestate.operators.readers._base import Reader

    check, move = Reader.check_state, Reader.restore

    def moves_then_checks(self, state, at):
        if isinstance(state, dict):
            move(self, {"epoch": state.get("epoch"), "consumed": state.get("consumed")}, at)
        check(self, state, at)

    def no_rollback(self, states, at, previous):
        self.check(states, at)
        for op, state in zip(self.stateful, states):
            op.restore(state, at)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Reader, "check_state", lambda self, state, at: None)
    monkeypatch.setattr(Reader, "restore", moves_then_checks)
    monkeypatch.setattr("pipestate.runtime.Runtime.restore", no_rollback)
    args = testing.example_setup(REGISTRY["readers.file"].EXAMPLE)
    make = functools.partial(testing.example_pipeline, "readers.file", setup_args=args)
    with pytest.raises(AssertionError, match="continuing after refused restores after 0 steps"):
        assert_refused_restores_change_nothing(make, steps=9)


# ---- seeds no pipeline runs with (item 2) -----------------------------------------------------------------
@pipeline_def(batch_size=BATCH, enable_checkpointing=True)
def unseeded():
    return fn.random.uniform(shape=[2]), fn.external_source(source=_ids, batch_info=True)


@pytest.mark.parametrize("seed", [-1, -2, -(2**63)])
def test_a_checkpoint_seed_no_pipeline_runs_with_is_refused(seed):
    """The fingerprint is recomputed for the seed (what a tool rewriting checkpoints would do): the seed
    itself is refused, by the constructor and in place, and the pipeline continues unchanged."""
    pipe = unseeded()
    events, _ = record(pipe, 5)
    data = ckpt.decode(pipe.checkpoint())
    crafted = ckpt.encode(dataclasses.replace(data, seed=seed, fingerprint=pipe._identity_for(seed).fingerprint))
    with pytest.raises(CorruptCheckpointError, match=f"seed {seed} is not one a pipeline runs with"):
        unseeded(checkpoint=crafted)
    with pytest.raises(CorruptCheckpointError, match=f"seed {seed} is not one a pipeline runs with"):
        unseeded(seed=7, checkpoint=crafted)  # a seeded pipeline too
    again = unseeded(checkpoint=ckpt.encode(data))
    record(again, 2)
    before = again.checkpoint()
    with pytest.raises(CorruptCheckpointError, match=f"seed {seed}"):
        again.restore(crafted)
    assert again.checkpoint() == before and again.seed == data.seed
    got, _ = record(again, 3)
    again.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reference = unseeded(checkpoint=ckpt.encode(data))
    expected, _ = record(reference, 5)
    reference.close()
    assert_events_equal(expected[2:], got, "after the refused seed")
    pipe.close()
    assert events  # the first pipeline ran

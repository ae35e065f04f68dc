"""The framework-neutral iterator core: restore at every position, DALI parity, state, errors.

A numpy iterator (the core plus a one-line conversion) keeps these tests free of any framework; the
plugins share this core and differ only in conversion (tested in test_pytorch.py and test_jax.py).
"""

from __future__ import annotations

import itertools
import json
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipestate import (
    CheckpointError,
    CheckpointMismatchError,
    CorruptCheckpointError,
    UnsupportedCheckpointVersionError,
    fn,
    pipeline_def,
)
from pipestate.plugin.base_iterator import BaseIterator, LastBatchPolicy


class NumpyIterator(BaseIterator):
    def __init__(self, pipelines, output_map, **kwargs):
        self.output_map = output_map
        super().__init__(pipelines, **kwargs)
        self._prepare()

    def _convert(self, outputs):
        return [{k: np.asarray(b) for k, b in zip(self.output_map, outs)} for outs in outputs]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    os.mkdir(root / "0")
    for i in range(11):
        (root / "0" / f"{i:02}.bin").write_bytes(bytes([i]))
    return str(root)


def make_pipes(data_dir, bs, shards, pad, stick, shuffle=False, checkpoints=None):
    @pipeline_def(batch_size=bs, num_threads=1, seed=7, enable_checkpointing=True)
    def pipe(sid):
        data, _ = fn.readers.file(
            file_root=data_dir,
            file_filters="*.bin",
            name="Reader",
            pad_last_batch=pad,
            num_shards=shards,
            shard_id=sid,
            stick_to_shard=stick,
            random_shuffle=shuffle,
            initial_fill=4,
        )
        return data + fn.random.uniform(range=[0.0, 0.5])

    cpts = checkpoints or [None] * shards
    return [pipe(s, checkpoint=c) for s, c in zip(range(shards), cpts)]


def observe(it, steps):
    """One entry per next(): the batch (arrays of every pipeline) or None for StopIteration."""
    seen = []
    for _ in range(steps):
        try:
            seen.append([o["x"].tolist() for o in next(it)])
        except StopIteration:
            seen.append(None)
    return seen


CONFIGS = list(itertools.product((1, 3, 4), (1, 2, 3), LastBatchPolicy, (False, True), (False, True), (True, False)))


def check_restore_everywhere(data_dir, bs, shards, policy, pad, stick, auto_reset, steps=16):
    """Restore at every position of a run crossing several epoch ends; the continuation must match."""

    def make(checkpoints=None):
        return NumpyIterator(
            make_pipes(data_dir, bs, shards, pad, stick, shuffle=True, checkpoints=checkpoints),
            ["x"],
            reader_name="Reader",
            last_batch_policy=policy,
            auto_reset=auto_reset,
        )

    def step(it):
        try:
            return [o["x"].tolist() for o in next(it)]
        except StopIteration:
            if not auto_reset:
                it.reset()
            return None

    try:
        reference = make()
    except RuntimeError:  # PARTIAL with a batch larger than the shard: no data, as DALI
        return
    cpts, outs = [reference.checkpoints()], []
    for _ in range(steps):
        outs.append(step(reference))
        cpts.append(reference.checkpoints())
    for k in range(steps):
        restored = make(cpts[k])
        assert [step(restored) for _ in range(steps - k)] == outs[k:], f"restored at step {k}"
        assert restored.checkpoints() == cpts[-1], f"checkpoint after restoring at step {k}"


@pytest.mark.parametrize("policy", list(LastBatchPolicy))
@pytest.mark.parametrize("pad", [False, True])
def test_restore_at_every_position_each_policy(data_dir, policy, pad):
    check_restore_everywhere(data_dir, 3, 2, policy, pad, stick=False, auto_reset=True)


@settings(max_examples=25, deadline=None)
@given(config=st.sampled_from(CONFIGS))
def test_restore_at_every_position_property(data_dir, config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_restore_everywhere(data_dir, *config)


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_restore_at_every_position_all_configs(data_dir, config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_restore_everywhere(data_dir, *config)


def test_restoring_without_iterator_state_counts_again_with_a_warning(data_dir):
    it = NumpyIterator(make_pipes(data_dir, 3, 1, False, False), ["x"], reader_name="Reader")
    next(it), next(it)
    plain = it._pipes[0].checkpoint()
    with pytest.warns(UserWarning, match="holds no iterator state"):
        NumpyIterator(make_pipes(data_dir, 3, 1, False, False, checkpoints=[plain]), ["x"], reader_name="Reader")


def test_state_is_plain_json_counters(data_dir):
    it = NumpyIterator(make_pipes(data_dir, 4, 2, False, False), ["x"], reader_name="Reader")
    for _ in range(4):
        try:
            next(it)
        except StopIteration:
            it.reset()
    restored = make_pipes(data_dir, 4, 2, False, False, checkpoints=it.checkpoints())
    state = json.loads(restored[0].iterator_data)
    assert set(state) == {"version", "counter", "size", "counter_per_shard", "shard_sizes", "shard_ids"}
    assert all(isinstance(v, int) for k in ("counter", "size") for v in [state[k]])
    assert state["shard_ids"] == [1, 0]  # the epoch ended: each pipeline moved to the next shard


def test_load_state_dict_in_place_rewinds(data_dir):
    it = NumpyIterator(make_pipes(data_dir, 3, 2, False, False), ["x"], reader_name="Reader", auto_reset=True)
    next(it)
    sd = it.state_dict()
    after = observe(it, 9)
    it.load_state_dict(sd)
    assert observe(it, 9) == after
    assert it.state_dict() != sd  # moved on


def test_checkpoints_before_consuming_are_the_start_even_with_a_prepared_batch(data_dir):
    it = NumpyIterator(make_pipes(data_dir, 3, 1, False, False), ["x"], reader_name="Reader")
    first = observe(it, 3)
    it2 = NumpyIterator(make_pipes(data_dir, 3, 1, False, False), ["x"], reader_name="Reader")
    cpts = it2.checkpoints()
    it3 = NumpyIterator(make_pipes(data_dir, 3, 1, False, False, checkpoints=cpts), ["x"], reader_name="Reader")
    assert observe(it3, 3) == first


def test_reset_mid_epoch_is_ignored_with_a_warning(data_dir):
    it = NumpyIterator(make_pipes(data_dir, 3, 1, False, False), ["x"], reader_name="Reader")
    next(it)
    with pytest.warns(UserWarning, match="middle of an epoch"):
        it.reset()
    assert it._counter == 3


def test_len_and_size_follow_the_reader(data_dir):
    for policy, expected in [(LastBatchPolicy.FILL, 2), (LastBatchPolicy.DROP, 1), (LastBatchPolicy.PARTIAL, 2)]:
        pipes = make_pipes(data_dir, 4, 2, False, False)
        it = NumpyIterator(pipes, ["x"], reader_name="Reader", last_batch_policy=policy)
        assert len(it) == expected  # shards of 5 and 6 samples, batch 4


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"size": 0}, ValueError, "size=0"),
        ({"size": 8, "reader_name": "Reader"}, ValueError, "either size"),
        ({"reader_name": "Reader", "last_batch_padded": True}, ValueError, "last_batch_padded"),
        ({"auto_reset": "sometimes"}, ValueError, "auto_reset"),
        ({"last_batch_policy": "FILL"}, TypeError, "LastBatchPolicy"),
    ],
)
def test_bad_arguments_name_the_argument(data_dir, kwargs, error, match):
    with pytest.raises(error, match=match):
        NumpyIterator(make_pipes(data_dir, 3, 1, False, False), ["x"], **kwargs)


def test_pipelines_must_be_pipestate_pipelines():
    with pytest.raises(TypeError, match=r"pipelines\[0\]"):
        NumpyIterator([object()], ["x"])


def test_checkpoints_need_checkpointing(data_dir):
    @pipeline_def(batch_size=2, seed=1)
    def pipe():
        return fn.random.uniform()

    it = NumpyIterator(pipe(), ["x"], size=10)
    with pytest.raises(ValueError, match="enable_checkpointing"):
        it.checkpoints()


def test_state_from_another_iterator_configuration_is_refused(data_dir):
    it = NumpyIterator(make_pipes(data_dir, 3, 1, False, False), ["x"], size=11)
    next(it)
    cpts = it.checkpoints()
    with pytest.raises(ValueError, match="iterator state"):
        NumpyIterator(make_pipes(data_dir, 3, 1, False, False, checkpoints=cpts), ["x"], reader_name="Reader")


# ---- iterator states that no iterator writes (issue 15) -----------------------------------------------------
def _with_iterator_data(data_dir, data, shards=1):
    """Pipelines restored from checkpoints whose iterator state is ``data`` (the pipelines' own are valid)."""
    pipes = make_pipes(data_dir, 3, shards, False, False)
    cpts = [p.checkpoint(iterator_data=data) for p in pipes]
    return make_pipes(data_dir, 3, shards, False, False, checkpoints=cpts)


def _state(**changes):
    state = {"version": 1, "counter": 3, "size": 6, "counter_per_shard": [0], "shard_sizes": [11], "shard_ids": [0]}
    return json.dumps({**state, **changes})


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (_state(counter=1e999), CorruptCheckpointError, "not valid JSON of integers"),  # was an OverflowError
        (_state(counter=3.0), CorruptCheckpointError, "not valid JSON of integers"),
        (_state().replace('"counter":3', '"counter":NaN').replace('"counter": 3', '"counter": NaN'),
         CorruptCheckpointError, "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, CorruptCheckpointError, "not valid JSON"),  # was a RecursionError
        ('{"version": 1, "counter": ' + "[" * 100_000 + "]" * 100_000 + "}", CorruptCheckpointError, "JSON"),
        (_state(counter=-6, size=-1), CheckpointMismatchError, "size -1"),  # was accepted
        (_state(counter=-6), CorruptCheckpointError, "counter -6"),
        (_state(counter=9), CorruptCheckpointError, "counter 9"),  # past one batch beyond the end
        (_state(counter=True), CorruptCheckpointError, "counter True"),
        (_state(size=13), CheckpointMismatchError, "size 13"),  # more than the shard (11), in batches (12)
        (_state(size="6"), CheckpointMismatchError, "not an integer"),
        (_state(version=2), UnsupportedCheckpointVersionError, "version 2"),
        (_state(version="1"), CorruptCheckpointError, "version '1'"),
        (_state(shard_sizes=[10]), CheckpointMismatchError, "shard sizes"),
        (_state(shard_ids=[1]), CorruptCheckpointError, "shard ids"),
        (_state(counter_per_shard=[-1]), CorruptCheckpointError, "out of range"),
        (_state(counter_per_shard=[[0]]), CorruptCheckpointError, "lists of integers"),
        (_state(shard_ids=[0, 0]), CheckpointMismatchError, "2 pipelines"),
        (json.dumps({"version": 1, "counter": 3, "size": 6}), CheckpointMismatchError, "same reader_name"),
        ("5", CorruptCheckpointError, "JSON object"),
    ],
)
def test_iterator_states_no_iterator_writes_are_clear_checkpoint_errors(data_dir, data, error, match):
    pipes = _with_iterator_data(data_dir, data)
    with pytest.raises(error, match=match):
        NumpyIterator(pipes, ["x"], reader_name="Reader")


def test_the_largest_iterator_state_values_a_run_reaches_are_accepted(data_dir):
    pipes = _with_iterator_data(data_dir, _state(counter=8, size=6, counter_per_shard=[13]))
    it = NumpyIterator(pipes, ["x"], reader_name="Reader")
    assert it._counter == 8 and it.size == 6


@pytest.mark.parametrize(("data", "match"), [(_state(size=5), "size 5"), (_state(counter=-1, size=11), "counter")])
def test_iterator_states_for_size_are_checked_against_size(data_dir, data, match):
    data = data.replace(',"counter_per_shard":[0],"shard_sizes":[11],"shard_ids":[0]', "")
    data = json.dumps({k: v for k, v in json.loads(data).items() if k in ("version", "counter", "size")})
    with pytest.raises(CheckpointError, match=match):
        NumpyIterator(_with_iterator_data(data_dir, data), ["x"], size=11)


def test_load_state_dict_with_a_bad_iterator_state_moves_nothing(data_dir):
    it = NumpyIterator(make_pipes(data_dir, 3, 2, False, False), ["x"], reader_name="Reader", auto_reset=True)
    good = it.state_dict()
    bad = [p.checkpoint(iterator_data=_state(counter=-6)) for p in it._pipes]
    reference = NumpyIterator(make_pipes(data_dir, 3, 2, False, False), ["x"], reader_name="Reader", auto_reset=True)
    next(it), next(reference)
    with pytest.raises(CorruptCheckpointError, match="counter -6"):
        it.load_state_dict({"checkpoints": bad})
    assert observe(it, 8) == observe(reference, 8)
    it.load_state_dict(good)  # a good state still loads
    fresh = NumpyIterator(make_pipes(data_dir, 3, 2, False, False), ["x"], reader_name="Reader", auto_reset=True)
    assert observe(it, 8) == observe(fresh, 8)


def test_load_state_dict_is_all_or_nothing_over_the_pipelines(data_dir):
    """The second pipeline refuses its checkpoint (another pipeline's): the first is moved back."""
    it = NumpyIterator(make_pipes(data_dir, 3, 2, False, False), ["x"], reader_name="Reader", auto_reset=True)
    reference = NumpyIterator(make_pipes(data_dir, 3, 2, False, False), ["x"], reader_name="Reader", auto_reset=True)
    observe(it, 3), observe(reference, 3)
    start = NumpyIterator(make_pipes(data_dir, 3, 2, False, False), ["x"], reader_name="Reader").checkpoints()
    with pytest.raises(CheckpointMismatchError):
        it.load_state_dict({"checkpoints": [start[0], start[0]]})  # shard 0's checkpoint for shard 1
    assert observe(it, 8) == observe(reference, 8)


@pytest.mark.parametrize(("value", "error"), [(5, TypeError), (b"{}", TypeError), (1.5, TypeError),
                                              ("\ud800", ValueError)])
def test_checkpoint_iterator_data_must_be_a_string(value, error):
    @pipeline_def(batch_size=2, seed=1, enable_checkpointing=True)
    def pipe():
        return fn.random.uniform()

    with pytest.raises(error, match="iterator_data"):
        pipe().checkpoint(iterator_data=value)


def test_an_elastic_reader_is_refused_as_reader_name(data_dir):
    """Its epochs are the job's, cut into global batches: DALI's per-shard epoch accounting would be wrong."""

    @pipeline_def(batch_size=2, num_threads=1, seed=7, enable_checkpointing=True)
    def pipe():
        data, _ = fn.readers.file(file_root=data_dir, file_filters="*.bin", name="Reader", elastic=True)
        return data

    with pytest.raises(ValueError, match="elastic=True: its epochs are the whole job's"):
        NumpyIterator([pipe()], ["x"], reader_name="Reader")
    it = NumpyIterator([pipe()], ["x"], size=6)
    assert len(observe(it, 3)) == 3

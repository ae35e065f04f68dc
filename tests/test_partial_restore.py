"""Partial restore (issue 20): a checkpoint of an earlier version of a definition restores operator by
operator: unchanged operators get their state back, changed stateless ones start fresh, and a changed
reader or source is never restored (a ``CheckpointMismatchError`` naming the operator and the argument)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipestate import CheckpointMismatchError, PartialRestoreWarning, RestoreReport, fn, pipeline_def
from pipestate.testing import record
from tests.golden import pipelines as golden
from tests.operators.readers.conftest import make_files

SIZE = 23


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("partial23"))
    make_files(path, SIZE)
    return path


@pipeline_def(batch_size=4, num_threads=1, seed=5, enable_checkpointing=True)
def train(root, probability=0.5, extra=False, label_offset=0, reader_args=None, source=False):
    _, label = fn.readers.file(
        file_root=root, file_list=os.path.join(root, "list.txt"), name="reader", **(reader_args or {})
    )
    flip = fn.random.coin_flip(probability=probability, name="flip")
    outputs = [label + label_offset, flip, fn.random.uniform(range=[0.0, 1.0], name="jitter")]
    if extra:
        outputs.append(fn.random.normal(name="noise"))
    if source:
        outputs.append(fn.external_source(source=lambda info: np.zeros((4, 1), np.int8), batch_info=True))
    return tuple(outputs)


def outputs(pipe, n: int) -> list[list[np.ndarray]]:
    return [[np.asarray(o) for o in pipe.run()] for _ in range(n)]


def checkpoint_after(root, steps: int, **kwargs) -> tuple[bytes, list]:
    pipe = train(root, **kwargs)
    outputs(pipe, steps)
    return pipe.checkpoint(), outputs(pipe, 8)


def test_changed_augmentations_restore_the_reader_and_start_fresh_with_a_warning(root):
    blob, expected = checkpoint_after(root, 7)  # across the end of the first reader epoch (23 samples)
    with pytest.raises(CheckpointMismatchError, match="'flip'.*changed arguments: probability"):
        train(root, probability=1.0, checkpoint=blob)  # the default stays all or nothing
    with pytest.warns(PartialRestoreWarning) as caught:
        pipe = train(root, probability=1.0, extra=True, checkpoint=blob, partial_restore=True)
    message = str(caught[0].message)
    assert "restored: reader" in message and "flip (changed arguments: probability)" in message
    assert "noise" in message and caught[0].filename == __file__
    report = pipe.restore_report
    assert report == RestoreReport(
        restored=("reader",),
        reset=("flip",),
        added=("noise",),
        changed_arguments={"flip": ("probability",)},
        outputs_changed=True,
    )
    assert report.partial
    got = outputs(pipe, 8)
    for new, old in zip(got, expected):
        assert (new[0] == old[0]).all()  # the reader continues exactly
        assert (new[1] == 1).all()  # the changed augmentation is the new one
        assert (new[2] == old[2]).all()  # an unchanged random operator draws as the uninterrupted run


def test_an_unchanged_pipeline_restores_fully_without_a_warning(root):
    blob, expected = checkpoint_after(root, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe = train(root, checkpoint=blob, partial_restore=True)
    assert pipe.restore_report == RestoreReport(restored=("reader",)) and not pipe.restore_report.partial
    got = outputs(pipe, 8)
    assert all((a == b).all() for new, old in zip(got, expected) for a, b in zip(new, old))


READER_CHANGES = {
    "random_shuffle": {"random_shuffle": True},
    "initial_fill": {"random_shuffle": True, "initial_fill": 7},
    "shard_id": {"num_shards": 2, "shard_id": 1},
    "stick_to_shard": {"stick_to_shard": True},
    "pad_last_batch": {"pad_last_batch": True},
    "seed": {"seed": 3},
    "file_root": {"file_root": "."},
}


@pytest.mark.parametrize("argument", sorted(READER_CHANGES))
def test_a_reader_whose_arguments_changed_is_never_restored(root, argument, monkeypatch):
    blob, _ = checkpoint_after(root, 2)
    change = dict(READER_CHANGES[argument])
    if argument == "file_root":
        monkeypatch.chdir(root)
        change = {}
        root_arg = "."
    else:
        root_arg = root
    with pytest.raises(CheckpointMismatchError) as info:
        train(root_arg, probability=0.9, reader_args=change, checkpoint=blob, partial_restore=True)
    line = next(d for d in info.value.differences if "'reader'" in d)
    assert "operator 'reader' (readers.file) keeps state" in line and argument in line


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sets(st.sampled_from(sorted(set(READER_CHANGES) - {"file_root", "initial_fill"}))),
    st.sampled_from([0.5, 0.1]),
    st.booleans(),
    st.sampled_from([0, 100]),
)
def test_partial_restore_never_restores_a_changed_reader(root, reader_changes, probability, extra, offset):
    blob, expected = checkpoint_after(root, 4)
    reader_args = {k: v for name in sorted(reader_changes) for k, v in READER_CHANGES[name].items()}
    kwargs = {"probability": probability, "extra": extra, "label_offset": offset, "reader_args": reader_args}
    if reader_changes:
        with pytest.raises(CheckpointMismatchError) as info:
            train(root, checkpoint=blob, partial_restore=True, **kwargs)
        text = str(info.value)
        assert all(name in text for name in reader_changes) and "operator 'reader'" in text
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialRestoreWarning)
        pipe = train(root, checkpoint=blob, partial_restore=True, **kwargs)
    got = outputs(pipe, 5)
    assert all((new[0] == old[0] + offset).all() for new, old in zip(got, expected))
    assert pipe.restore_report.restored == ("reader",)


def test_stateful_operators_added_or_changed_are_refused_removed_ones_dropped(root):
    blob, _ = checkpoint_after(root, 2)
    with pytest.raises(
        CheckpointMismatchError, match="'external_source_0' .* keeps state and is not in the checkpoint"
    ):
        train(root, source=True, checkpoint=blob, partial_restore=True)
    with_source, _ = checkpoint_after(root, 2, source=True)
    with pytest.warns(PartialRestoreWarning, match="dropped .*: external_source_0"):
        pipe = train(root, checkpoint=with_source, partial_restore=True)
    assert pipe.restore_report.removed == ("external_source_0",)


def test_batch_size_and_seed_must_be_the_checkpoints(root):
    blob, _ = checkpoint_after(root, 2)
    with pytest.raises(CheckpointMismatchError, match="batch_size is 8, the checkpoint has 4"):
        train(root, batch_size=8, checkpoint=blob, partial_restore=True)
    with pytest.raises(CheckpointMismatchError, match="seed is 6, the checkpoint has 5"):
        train(root, seed=6, probability=0.9, checkpoint=blob, partial_restore=True)
    with pytest.warns(PartialRestoreWarning):
        unseeded = train(root, seed=None, probability=0.9, checkpoint=blob, partial_restore=True)
    assert unseeded.seed == 5


def test_restore_takes_the_option_and_a_refusal_changes_nothing(root):
    blob, expected = checkpoint_after(root, 3)
    pipe = train(root, probability=0.9)
    _, checkpoints = record(pipe, 2)
    before = pipe.checkpoint()
    with pytest.raises(CheckpointMismatchError):
        pipe.restore(blob)
    changed_reader, _ = checkpoint_after(root, 3, reader_args={"random_shuffle": True})
    with pytest.raises(CheckpointMismatchError):
        pipe.restore(changed_reader, partial_restore=True)
    assert pipe.checkpoint() == before
    with pytest.warns(PartialRestoreWarning) as caught:
        report = pipe.restore(blob, partial_restore=True)
    assert caught[0].filename == __file__
    assert report is pipe.restore_report and report.reset == ("flip",)
    assert all((new[0] == old[0]).all() for new, old in zip(outputs(pipe, 4), expected))
    with pytest.raises(TypeError, match="partial_restore=1 must be True or False"):
        pipe.restore(blob, partial_restore=1)
    with pytest.raises(TypeError, match="partial_restore='yes'"):
        train(root, partial_restore="yes")
    strict = train(root, probability=0.9, partial_restore=True)
    with pytest.raises(CheckpointMismatchError):
        strict.restore(blob, partial_restore=False)


def test_golden_checkpoints_restore_partly_into_changed_augmentations(monkeypatch):
    @pipeline_def(batch_size=golden.BATCH, num_threads=2, seed=golden.SEED, enable_checkpointing=True)
    def changed():
        data, label = fn.readers.file(file_root="data/files", random_shuffle=True, initial_fill=6, name="reader")
        return data, label, fn.random.coin_flip(probability=0.9)

    here = os.path.join(os.path.dirname(__file__), "golden")
    monkeypatch.chdir(os.path.join(here, "v2"))
    with open("file_reader.cpt", "rb") as f:
        blob = f.read()
    with pytest.warns(PartialRestoreWarning, match="random.coin_flip_0 \\(changed arguments: probability\\)"):
        pipe = changed(checkpoint=blob, partial_restore=True)
    reference = golden.file_reader(checkpoint=blob)
    for _ in range(3):
        (data, label, _), (ref_data, ref_label, _) = pipe.run(), reference.run()
        assert [np.asarray(s).tobytes() for s in data] == [np.asarray(s).tobytes() for s in ref_data]
        assert (np.asarray(label) == np.asarray(ref_label)).all()
    monkeypatch.chdir(os.path.join(here, "v1"))
    with open("file_reader.cpt", "rb") as f:
        old = f.read()
    with pytest.raises(CheckpointMismatchError, match="partial_restore reads format-2 checkpoints"):
        changed(checkpoint=old, partial_restore=True)
    assert golden.file_reader(checkpoint=old, partial_restore=True).restore_report.restored == ("reader",)

"""Skipping and excluding data in a checkpoint (``pipestate.checkpoint.edit``, issue 20).

The defining properties, over readers with and without shuffling, sharding, padding and epoch ends:
- skip N then run = run N then continue: the same batches (indices and random draws) and the same later
  checkpoints, whatever was excluded before;
- an exclusion never yields an excluded index and loses nothing else: the stream is the uninterrupted
  one without the excluded indices (with ``pad_last_batch``: with each replaced by a kept sample, so the
  epochs keep their length), and the random draws stay those of the uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipestate import CheckpointError, distributed, fn, pipeline_def
from pipestate import checkpoint as ckpt
from pipestate.checkpoint import edit
from pipestate.testing import assert_refused_restores_change_nothing
from tests.operators.readers.conftest import make_files

SIZE = 29


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("edit29"))
    make_files(path, SIZE)  # file i holds label i: the label is the dataset index
    return path


@pipeline_def(num_threads=1, seed=17, enable_checkpointing=True)
def reader_pipe(root, **reader_args):
    _, label = fn.readers.file(file_root=root, file_list=os.path.join(root, "list.txt"), name="reader", **reader_args)
    return label, fn.random.uniform(range=[0.0, 1.0])


def run(pipe, n: int) -> tuple[list[list[int]], list[list[float]]]:
    labels, draws = [], []
    for _ in range(n):
        label, uniform = pipe.run()
        labels.append(np.asarray(label).ravel().tolist())
        draws.append(np.asarray(uniform).ravel().tolist())
    return labels, draws


SHUFFLES = {"none": {}, "buffer": {"random_shuffle": True}, "after_epoch": {"shuffle_after_epoch": True}}
configs = st.fixed_dictionaries(
    {
        "batch_size": st.integers(1, 6),
        "num_shards": st.integers(1, 3),
        "shard_id": st.integers(0, 2),
        "stick_to_shard": st.booleans(),
        "pad_last_batch": st.booleans(),
        "shuffle": st.sampled_from(sorted(SHUFFLES)),
        "initial_fill": st.integers(1, 40),
    }
).filter(lambda c: not (c["shuffle"] == "after_epoch" and c["stick_to_shard"]))
exclusions = st.lists(st.tuples(st.integers(0, SIZE + 3), st.integers(1, 6)), min_size=1, max_size=3).map(
    lambda items: [(b, b + n) for b, n in items]
)


def reader_args(config: dict) -> dict:
    args = {k: v for k, v in config.items() if k not in ("batch_size", "shuffle", "shard_id")}
    args["shard_id"] = config["shard_id"] % config["num_shards"]
    return {**args, **SHUFFLES[config["shuffle"]]}


def make(root: str, config: dict, **options):
    return reader_pipe(root, batch_size=config["batch_size"], **reader_args(config), **options)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(configs, st.integers(0, 9), st.integers(0, 25), st.integers(1, 3), st.one_of(st.none(), exclusions))
def test_skip_then_run_equals_run_then_continue(root, config, before, skipped, after, excluded):
    reference = make(root, config)
    run(reference, before)
    start = reference.checkpoint()
    if excluded is not None:
        start = edit.exclude(start, excluded)
        reference = restorable(root, config, start)
        if reference is None:
            return
    expected = run(reference, skipped + after)
    expected_end = reference.checkpoint()
    resumed = make(root, config, checkpoint=edit.skip(start, skipped))
    got = run(resumed, after)
    assert got == (expected[0][skipped:], expected[1][skipped:])
    assert resumed.checkpoint() == expected_end  # later checkpoints are the uninterrupted run's too
    if excluded is not None:  # skip and exclude commute
        assert edit.skip(start, skipped) == edit.exclude(edit.skip(start, skipped), excluded)


def edit_range(pairs) -> list[int]:
    return [i for b, e in pairs for i in range(b, e)]


def restorable(root: str, config: dict, blob: bytes):
    """The pipeline restored from ``blob``, or ``None`` when the exclusion leaves a shard nothing to read in
    an epoch (with padding: nothing to pad with; sticking to a shard: nothing at all), which is refused."""
    try:
        return make(root, config, checkpoint=blob)
    except CheckpointError as exc:
        assert config["pad_last_batch"] or config["stick_to_shard"], exc
        assert "excludes every sample" in str(exc)
        return None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(configs, st.integers(0, 9), st.integers(1, 12), exclusions)
def test_exclusion_never_yields_an_excluded_index_and_loses_nothing_else(root, config, before, steps, excluded):
    bad = set(edit_range(excluded))
    reference = make(root, config)
    run(reference, before)
    start = reference.checkpoint()
    pipe = restorable(root, config, edit.exclude(start, excluded))
    if pipe is None:
        return
    labels, draws = run(pipe, steps)
    flat = [i for batch in labels for i in batch]
    assert not bad & set(flat)
    unfiltered = make(root, config, checkpoint=start)
    if config["pad_last_batch"]:  # the epochs keep their length: excluded samples are replaced in place
        ref_labels, _ = run(unfiltered, steps)
        ref = [i for batch in ref_labels for i in batch]
        assert [x for x, r in zip(flat, ref) if r not in bad] == [r for r in ref if r not in bad]
    else:  # the stream is the uninterrupted one without the excluded indices
        kept: list[int] = []
        while len(kept) < len(flat):
            kept += [i for i in run(unfiltered, 1)[0][0] if i not in bad]
        assert flat == kept[: len(flat)]
    assert draws == run(make(root, config, checkpoint=start), steps)[1]  # draws by position: unchanged
    again = make(root, config, checkpoint=pipe.checkpoint())  # later checkpoints keep the exclusion
    more = [i for batch in run(again, 4)[0] for i in batch]
    assert not bad & set(more)


def test_exclusions_merge_and_persist(root):
    pipe = reader_pipe(root, batch_size=4)
    run(pipe, 2)
    once = edit.exclude(pipe.checkpoint(), [range(10, 12), 20])
    twice = edit.exclude(once, ["11:15", "21", (30, 40)])
    state = ckpt.decode(twice).operators[0].state
    assert state["excluded"] == [10, 15, 20, 22, 30, 40] and state["passed"] == 0
    resumed = reader_pipe(root, batch_size=4, checkpoint=twice)
    labels = [i for batch in run(resumed, 20)[0] for i in batch]
    assert not {10, 11, 12, 13, 14, 20, 21} & set(labels)
    assert sorted(set(labels)) == sorted(set(range(SIZE)) - {10, 11, 12, 13, 14, 20, 21})
    later = ckpt.decode(resumed.checkpoint()).operators[0].state
    assert later["excluded"] == state["excluded"] and later["passed"] > 0


def test_a_far_skip_costs_no_reading_and_composes(root):
    for args, ranges in [({}, None), ({"random_shuffle": True}, [range(3, 9)]), ({"num_shards": 3}, [5, 17])]:
        pipe = reader_pipe(root, batch_size=4, **args)
        run(pipe, 3)
        start = pipe.checkpoint() if ranges is None else edit.exclude(pipe.checkpoint(), ranges)
        far = reader_pipe(root, batch_size=4, checkpoint=edit.skip(start, 10**9), **args)
        near = reader_pipe(root, batch_size=4, checkpoint=edit.skip(start, 10**9 - 5), **args)
        stepwise = reader_pipe(root, batch_size=4, checkpoint=edit.skip(near.checkpoint(), 5), **args)
        assert far.checkpoint() == stepwise.checkpoint()
        assert far.iteration == 10**9 + 3
        run(near, 5)
        assert near.checkpoint() == far.checkpoint()
        assert run(far, 3) == run(stepwise, 3)


def test_a_skip_that_would_count_too_many_epochs_one_by_one_is_refused(root):
    args = {"num_shards": 2, "shuffle_after_epoch": True}
    pipe = reader_pipe(root, batch_size=4, **args)
    run(pipe, 2)
    excluded = edit.exclude(pipe.checkpoint(), [range(0, 3)])
    near = reader_pipe(root, batch_size=4, checkpoint=edit.skip(excluded, 500), **args)  # ~140 epochs: counted
    assert not {0, 1, 2} & {i for batch in run(near, 5)[0] for i in batch}
    with pytest.raises(CheckpointError, match="operator 'reader'.*crosses more than 1000 reader epochs"):
        reader_pipe(root, batch_size=4, checkpoint=edit.skip(excluded, 10**6), **args)
    far = reader_pipe(root, batch_size=4, checkpoint=edit.skip(pipe.checkpoint(), 10**6), **args)
    assert far.iteration == 10**6 + 2  # without exclusions it is arithmetic


@pipeline_def(batch_size=3, seed=4, enable_checkpointing=True)
def sources(root):
    _, label = fn.readers.file(file_root=root, file_list=os.path.join(root, "list.txt"), random_shuffle=True)
    by_info = fn.external_source(source=lambda info: np.full((3, 1), info.iteration, np.int32), batch_info=True)
    by_sample = fn.external_source(source=lambda s: np.array([s.idx_in_epoch], np.int64), batch=False, name="samples")
    sequence = fn.external_source(source=[np.full((3, 1), k, np.int16) for k in range(40)])
    return label, by_info, by_sample, sequence, fn.random.normal(shape=[2])


def test_external_sources_move_with_the_skip(root):
    pipe = sources(root)
    for _ in range(4):
        pipe.run()
    start = pipe.checkpoint()
    expected = [[np.asarray(o).tobytes() for o in pipe.run()] for _ in range(12)]
    resumed = sources(root, checkpoint=edit.skip(start, samples=27))  # 9 batches of 3
    assert [[np.asarray(o).tobytes() for o in resumed.run()] for _ in range(3)] == expected[9:]
    with pytest.raises(CheckpointError, match="40 batches per epoch"):  # the sequence ends within the skip
        sources(root, checkpoint=edit.skip(start, to_iteration=45))


class _Stateful:
    def __init__(self) -> None:
        self.i = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.i += 1
        return np.full((2, 1), self.i, np.int32)

    def state(self) -> bytes:
        return self.i.to_bytes(4, "little")

    def restore(self, data: bytes) -> None:
        self.i = int.from_bytes(data, "little")


def test_what_cannot_be_skipped_is_refused_naming_it(root):
    @pipeline_def(batch_size=2, seed=1, enable_checkpointing=True)
    def own_state():
        return fn.external_source(source=_Stateful(), name="counter")

    pipe = own_state()
    pipe.run()
    with pytest.raises(ValueError, match="operator 'counter'.*keeps its own state"):
        edit.skip(pipe.checkpoint(), 1)
    with pytest.raises(ValueError, match="no reader"):
        edit.exclude(pipe.checkpoint(), [1])
    reader = reader_pipe(root, batch_size=4)
    reader.run()
    blob = reader.checkpoint()
    with pytest.raises(ValueError, match="iterator_data"):
        edit.skip(reader.checkpoint(iterator_data='{"version": 1}'), 1)
    with pytest.raises(ValueError, match="not a whole number of batches of 4: skip 8 or 12"):
        edit.skip(blob, samples=10)
    with pytest.raises(ValueError, match="iteration 1 already"):
        edit.skip(blob, to_iteration=0)
    with pytest.raises(ValueError, match="exactly one of"):
        edit.skip(blob, 1, samples=4)
    with pytest.raises(TypeError, match="an int"):
        edit.skip(blob, 1.5)
    with pytest.raises(ValueError, match=r"no such reader; the pipeline's readers: \['reader'\]"):
        edit.exclude(blob, [1], reader="other")
    for bad in ([(5, 5)], [-1], ["x:y"], [(1.0, 2)], [range(0, 10, 2)]):
        with pytest.raises((TypeError, ValueError)):
            edit.exclude(blob, bad)
    golden = os.path.join(os.path.dirname(__file__), "golden", "v1", "file_reader.cpt")
    with open(golden, "rb") as f:
        with pytest.raises(ValueError, match="format version 1"):
            edit.skip(f.read(), 1)


def test_a_checkpoint_excluding_everything_is_refused(root):
    pipe = reader_pipe(root, batch_size=4)
    with pytest.raises(CheckpointError, match="operator 'reader'.*excludes every sample of the dataset"):
        reader_pipe(root, batch_size=4, checkpoint=edit.exclude(pipe.checkpoint(), [range(0, SIZE)]))
    sticky = reader_pipe(root, batch_size=4, num_shards=3, stick_to_shard=True)
    with pytest.raises(CheckpointError, match="every sample this shard reads"):
        reader_pipe(
            root, batch_size=4, num_shards=3, stick_to_shard=True, checkpoint=edit.exclude(sticky.checkpoint(), ["0:9"])
        )


@pytest.mark.parametrize("pad", [False, True])
def test_refused_restores_of_edited_states_change_nothing(root, pad):
    def make_pipeline(**options):
        batch_size = options.pop("batch_size", 4)
        if "checkpoint" in options:
            return reader_pipe(root, batch_size=batch_size, pad_last_batch=pad, random_shuffle=True, **options)
        fresh = reader_pipe(root, batch_size=batch_size, pad_last_batch=pad, random_shuffle=True)
        blob = edit.exclude(fresh.checkpoint(), [3, range(10, 14)])
        fresh.close()
        return reader_pipe(root, batch_size=batch_size, pad_last_batch=pad, random_shuffle=True, checkpoint=blob)

    refused = assert_refused_restores_change_nothing(make_pipeline, steps=10)
    assert refused["key 'excluded' dropped"] and refused["key 'passed' dropped"] and refused["excluded=-1"]


def test_skip_with_a_pending_skip_is_checked_against_the_position(root):
    pipe = reader_pipe(root, batch_size=4)
    run(pipe, 2)
    data = ckpt.decode(edit.skip(pipe.checkpoint(), 3))
    reader = data.operators[0]
    assert reader.state["skip"] == 12 and data.iteration == 5
    altered = dataclasses.replace(reader, state={**reader.state, "skip": 8})
    with pytest.raises(CheckpointError, match="operator 'reader'.*does not fit"):
        reader_pipe(
            root,
            batch_size=4,
            checkpoint=ckpt.encode(dataclasses.replace(data, operators=(altered, *data.operators[1:]))),
        )


# ---- the elastic mode: a job's checkpoint edited once, resumed on any layout -------------------------------
@pipeline_def(seed=11, num_threads=1, enable_checkpointing=True)
def job_pipe(root, shard_id, num_shards, global_batch_size, **reader_args):
    _, label = fn.readers.file(
        file_root=root,
        file_list=os.path.join(root, "list.txt"),
        elastic=True,
        shard_id=shard_id,
        num_shards=num_shards,
        global_batch_size=global_batch_size,
        name="reader",
        **reader_args,
    )
    return label, fn.random.uniform(range=[0.0, 1.0])


def job(root, num_shards: int, global_batch_size: int, checkpoints=None, **reader_args) -> list:
    return [
        job_pipe(
            root,
            k,
            num_shards,
            global_batch_size,
            batch_size=distributed.local_batch_size(global_batch_size, num_shards, k),
            checkpoint=None if checkpoints is None else checkpoints[k],
            **reader_args,
        )
        for k in range(num_shards)
    ]


def samples(pipes, steps: int) -> list[tuple[int, float]]:
    """(dataset index, draw) of every sample of ``steps`` global steps, in the job's order."""
    out = []
    for _ in range(steps):
        for pipe in pipes:
            label, uniform = pipe.run()
            out += zip(np.asarray(label).ravel().tolist(), np.asarray(uniform).ravel().tolist())
    return out


layouts = st.integers(1, 3).flatmap(lambda m: st.tuples(st.just(m), st.integers(m, 8)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    layouts,
    layouts,
    st.booleans(),
    st.sampled_from(sorted(SHUFFLES)),
    st.integers(0, 6),
    st.integers(0, 12),
    st.one_of(st.none(), exclusions),
)
def test_elastic_jobs_skip_and_exclude_on_any_layout(root, layout, new_layout, pad, shuffle, before, skipped, excluded):
    (m, g), args = layout, {"pad_last_batch": pad, **SHUFFLES[shuffle]}
    if pad:
        new_layout = layout  # a pending skip is whole global batches of the layout it was made on
    pipes = job(root, m, g, **args)
    samples(pipes, before)
    start = distributed.combine([p.checkpoint() for p in pipes])
    if excluded is not None:
        start = edit.exclude(start, excluded)
        try:
            pipes = job(root, m, g, distributed.split(start, m, g), **args)
        except CheckpointError as exc:  # padding with every sample of the dataset excluded
            assert "excludes every sample" in str(exc)
            return
    expected = samples(pipes, skipped + 3)[skipped * g :]
    m2, g2 = new_layout
    resumed = job(root, m2, g2, distributed.split(edit.skip(start, skipped), m2, g2), **args)
    got = samples(resumed, -(-len(expected) // g2))[: len(expected)]
    assert got == expected  # the same samples with the same draws, on whichever layout
    if excluded is not None:
        assert not set(edit_range(excluded)) & {index for index, _ in got}


def test_a_job_checkpoint_is_edited_on_every_shard(root):
    pipes = job(root, 2, 6)
    samples(pipes, 2)
    start = distributed.combine([p.checkpoint() for p in pipes])
    edited = edit.exclude(edit.skip(start, 3), [range(0, 5)])
    manifest = distributed.read_job(edited)
    assert manifest.iteration == 5
    for shard in manifest.shards:
        state = ckpt.decode(shard).operators[0].state
        assert state["skip"] == 18 and state["excluded"] == [0, 5]
    odd = [ckpt.decode(s) for s in manifest.shards]
    reader = odd[1].operators[0]
    odd[1] = dataclasses.replace(odd[1], operators=(dataclasses.replace(reader, state={**reader.state, "skip": 12}),))
    with pytest.raises(CheckpointError, match="shard 1: its reader's excluded samples or pending skip differ"):
        distributed.combine([ckpt.encode(d) for d in odd])

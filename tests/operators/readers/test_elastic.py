"""The elastic reader mode: one global sequence per epoch, cut into global batches, resumable on any layout.

The defining property (issue 19): the job's sample sequence is one fixed sequence per epoch and global
batches cut it into consecutive pieces, so after a restart on M shards with another global batch size the
samples, global step by global step, continue the uninterrupted run's sequence exactly (nothing lost,
nothing repeated, same order), each with the same augmentation.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipestate import distributed, fn, pipeline_def
from pipestate.errors import CheckpointMismatchError
from pipestate.operators import REGISTRY
from pipestate.operators.readers import Reader
from tests.operators.readers.conftest import make_files

SLOW = os.environ.get("PIPESTATE_SLOW", "") in ("1", "true", "yes")
SHUFFLES = {
    "none": {},
    "buffer": {"random_shuffle": True},
    "after_epoch": {"shuffle_after_epoch": True},
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    root = str(tmp_path_factory.mktemp("elastic40"))
    make_files(root, 40)
    return [os.path.join(root, f"f{i}.bin") for i in range(40)]


@pipeline_def(seed=11, num_threads=1, enable_checkpointing=True)
def job_pipe(files, shard_id, num_shards, global_batch_size, **reader_args):
    data, label = fn.readers.file(
        files=files,
        elastic=True,
        shard_id=shard_id,
        num_shards=num_shards,
        global_batch_size=global_batch_size,
        name="reader",
        **reader_args,
    )
    return label, fn.random.uniform(range=[0.0, 1.0]), fn.random.normal(shape=[2])


def shards(files, num_shards: int, global_batch_size: int, checkpoints=None, **reader_args) -> list:
    """The pipelines of every shard of a layout (from the checkpoints :func:`distributed.split` gave)."""
    return [
        job_pipe(
            files,
            k,
            num_shards,
            global_batch_size,
            batch_size=distributed.local_batch_size(global_batch_size, num_shards, k),
            checkpoint=None if checkpoints is None else checkpoints[k],
            **reader_args,
        )
        for k in range(num_shards)
    ]


def samples(outputs) -> list[tuple]:
    """(dataset index, uniform draw, normal draws) of every sample of one pipeline's batch."""
    label, uniform, normal = outputs
    return [
        (int(l_[0]), u.item(), n.tobytes())
        for l_, u, n in zip(np.asarray(label), np.asarray(uniform), np.asarray(normal))
    ]


def global_step(pipes) -> list[tuple]:
    """One global step: every shard's batch, in shard order."""
    return [s for p in pipes for s in samples(p.run())]


def reference_stream(files, epochs: int, **reader_args) -> list[tuple]:
    """The uninterrupted job sequence, epoch after epoch (one shard reading one epoch per batch)."""
    n = len(files)
    (pipe,) = shards(files, 1, n, **reader_args)
    stream = [s for _ in range(epochs) for s in samples(pipe.run())]
    pipe.close()
    return stream


def expected_steps(stream, n: int, g: int, pad: bool, position: int, steps: int) -> tuple[list[list[tuple]], int]:
    """The next ``steps`` global batches of ``g`` from stream ``position`` (a stream index), and the position
    after them. With ``pad`` a global batch ends at the epoch's end, filled with its last sample."""
    batches = []
    for _ in range(steps):
        if pad:
            epoch, consumed = divmod(position, n)
            batches.append([stream[epoch * n + min(consumed + j, n - 1)] for j in range(g)])
            position = position + g if consumed + g < n else (epoch + 1) * n
        else:
            batches.append(stream[position : position + g])
            position += g
    return batches, position


layouts = st.integers(1, 4).flatmap(lambda m: st.tuples(st.just(m), st.integers(m, 11)))


@settings(max_examples=200 if SLOW else 25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    n=st.integers(1, 40),
    before=layouts,
    after=layouts,
    steps_before=st.integers(0, 9),
    steps_after=st.integers(1, 6),
    shuffle=st.sampled_from(sorted(SHUFFLES)),
    initial_fill=st.integers(1, 45),
    pad=st.booleans(),
)
def test_resharded_job_continues_the_uninterrupted_sequence(
    files, n, before, after, steps_before, steps_after, shuffle, initial_fill, pad
):
    (m1, g1), (m2, g2) = before, after
    reader_args = dict(SHUFFLES[shuffle], pad_last_batch=pad)
    if shuffle == "buffer":
        reader_args["initial_fill"] = initial_fill
    data = files[:n]
    epochs = -(-(steps_before * g1 + steps_after * g2) // n) + 2
    stream = reference_stream(data, epochs, **reader_args)

    job = shards(data, m1, g1, **reader_args)
    want, position = expected_steps(stream, n, g1, pad, 0, steps_before)
    for k, expected in enumerate(want):
        assert global_step(job) == expected, f"step {k} before the restart"
    checkpoint = distributed.combine([p.checkpoint() for p in job])
    for p in job:
        p.close()

    resumed = shards(data, m2, g2, distributed.split(checkpoint, m2, g2), **reader_args)
    want, _ = expected_steps(stream, n, g2, pad, position, steps_after)
    for k, expected in enumerate(want):
        got = global_step(resumed)
        assert [s[0] for s in got] == [s[0] for s in expected], f"step {k} after the restart: samples"
        assert got == expected, f"step {k} after the restart: augmentations"
    for p in resumed:
        p.close()


def test_the_property_test_can_fail(files):
    """Controls: resuming from an older job checkpoint repeats samples, which the comparison catches; a stale
    shard checkpoint is refused by combine; a shard checkpoint used on another layout by the reader."""
    data = files[:10]
    stream = reference_stream(data, 3)
    job = shards(data, 2, 4)
    global_step(job)
    old = distributed.combine([p.checkpoint() for p in job])
    stale = job[0].checkpoint()
    global_step(job)
    want, _ = expected_steps(stream, 10, 4, False, 8, 1)
    (repeated,) = [global_step(shards(data, 2, 4, distributed.split(old, 2)))]
    assert repeated != want[0]
    with pytest.raises(CheckpointMismatchError, match="shard 1 is at global step 2 .* shard 0 at global step 1"):
        distributed.combine([stale, job[1].checkpoint()])
    with pytest.raises(CheckpointMismatchError, match="shard 1 of 2"):
        shards(data, 3, 6, [job[1].checkpoint()] * 3)


def test_augmentation_follows_the_sample_not_the_shard(files):
    """A sample's draws depend on (epoch, dataset index) only: the same in a 1-shard and a 3-shard job."""
    one = shards(files[:12], 1, 6)
    three = shards(files[:12], 3, 3)
    a = sorted(s for _ in range(4) for s in global_step(one))
    b = sorted(s for _ in range(8) for s in global_step(three))
    assert a == b
    assert len({s[1] for s in a}) == len(a)  # epochs 0 and 1 of each sample draw differently


def test_layout_is_not_in_the_fingerprint_but_the_definition_is(files):
    a, b = shards(files[:10], 2, 4)
    (c,) = shards(files[:10], 1, 7)
    assert a.fingerprint == b.fingerprint == c.fingerprint
    (other,) = shards(files[:10], 1, 7, random_shuffle=True)
    assert other.fingerprint != c.fingerprint
    plain = pipeline_def(batch_size=2, seed=11)(lambda: fn.readers.file(files=files[:10])[1])()
    plain_sharded = pipeline_def(batch_size=2, seed=11)(lambda: fn.readers.file(files=files[:10], num_shards=2)[1])()
    assert plain.fingerprint != plain_sharded.fingerprint  # the default mode keeps its layout in the fingerprint


def test_batch_size_must_be_the_shards_part_of_the_global_batch(files):
    with pytest.raises(ValueError, match=r"shard 1 of 3 takes samples \[2, 4\) .* batch_size=2"):
        job_pipe(files, 1, 3, 7, batch_size=3)
    assert [distributed.local_batch_size(7, 3, k) for k in range(3)] == [2, 2, 3]
    with pytest.raises(ValueError, match="global_batch_size=2 must be in"):
        distributed.local_batch_size(2, 3, 0)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"global_batch_size": 4}, "applies to elastic=True only"),
        ({"elastic": True, "stick_to_shard": True}, "stick_to_shard=True cannot be combined"),
        ({"elastic": True, "num_shards": 3, "global_batch_size": 2}, "smaller than num_shards=3"),
    ],
)
def test_elastic_argument_errors(files, args, match):
    with pytest.raises(ValueError, match=match):
        pipeline_def(batch_size=1)(lambda: fn.readers.file(files=files, **args)[1])()


def test_a_pipeline_has_one_elastic_reader(files):
    def two():
        a = fn.readers.file(files=files, elastic=True)[1]
        b = fn.readers.file(files=files, elastic=True)[1]
        return a, b

    with pytest.raises(ValueError, match="at most one elastic reader"):
        pipeline_def(batch_size=1)(two)()


def test_reader_meta_in_the_elastic_mode(files):
    (pipe,) = shards(files[:10], 1, 4, pad_last_batch=True)
    meta = pipe.reader_meta("reader")
    assert meta["elastic"] == 1 and meta["global_batch_size"] == 4
    assert meta["epoch_size"] == 10 and meta["epoch_size_padded"] == 12


# ---- every reader has the mode, through the base class --------------------------------------------------
READERS = sorted(t for t, cls in REGISTRY.items() if issubclass(cls, Reader))


@pytest.mark.parametrize("op_type", READERS)
def test_every_reader_resumes_on_another_layout(op_type, tmp_path, monkeypatch):
    from pipestate import testing
    from pipestate.tracing import add_operator

    monkeypatch.chdir(tmp_path)
    cls = REGISTRY[op_type]
    example = cls.EXAMPLE
    args = {**example.args, **(testing.example_setup(example) or {})}
    args.update(elastic=True, stick_to_shard=False, pad_last_batch=False)  # padding: the property test

    def make(shard_id, num_shards, g, checkpoint=None):
        @pipeline_def(seed=5, num_threads=1, enable_checkpointing=True)
        def pipe():
            out = add_operator(
                cls, [], {**args, "shard_id": shard_id, "num_shards": num_shards, "global_batch_size": g}
            )
            out = list(out.values()) if isinstance(out, dict) else out
            first = out[0] if isinstance(out, (list, tuple)) else out
            return first, fn.random.uniform()

        return pipe(batch_size=distributed.local_batch_size(g, num_shards, shard_id), checkpoint=checkpoint)

    def step(pipes):
        return [(np.asarray(x).tobytes(), np.asarray(x).shape, float(u)) for p in pipes for x, u in zip(*p.run())]

    (ref,) = [make(0, 1, 1)]
    stream = [s for _ in range(4 * 3 + 5 * 3) for s in step([ref])]
    job = [make(k, 2, 4) for k in range(2)]
    before = [s for _ in range(3) for s in step(job)]
    parts = distributed.split(distributed.combine([p.checkpoint() for p in job]), 3, 5)
    resumed = [make(k, 3, 5, parts[k]) for k in range(3)]
    after = [s for _ in range(3) for s in step(resumed)]
    assert before + after == stream


def test_another_batch_size_is_refused_with_the_way_to_reshard(files):
    (pipe,) = shards(files[:10], 1, 4)
    pipe.run()
    with pytest.raises(CheckpointMismatchError, match=r"batch_size=4, this pipeline has batch_size=3: .*distributed"):
        shards(files[:10], 1, 3, [pipe.checkpoint()])

"""Resume tests over a grid like DALI's own: run 2 epochs plus k iterations, checkpoint, restore, and
compare the next (num_shards + 1) epochs with the uninterrupted run; restore time is flat in the position."""

from __future__ import annotations

import functools
import itertools
import os

import pytest

from pipestate import fn, pipeline_def

SHUFFLES = {
    "none": {},
    "buffer1": {"random_shuffle": True, "initial_fill": 1},
    "buffer5": {"random_shuffle": True, "initial_fill": 5},
    "buffer100": {"random_shuffle": True, "initial_fill": 100},
    "after_epoch": {"shuffle_after_epoch": True},
}


@pipeline_def(seed=7, num_threads=1, enable_checkpointing=True)
def reader_pipe(list_path: str, **reader_args):
    data, label = fn.readers.file(file_list=list_path, name="r", **reader_args)
    return label, fn.random.coin_flip()


def labels(pipe, steps: int) -> list[list[int]]:
    out = []
    for _ in range(steps):
        label, coin = pipe.run()
        out.append([int(v[0]) for v in label] + [int(c) for c in coin])
    return out


@pytest.mark.parametrize("shuffle", sorted(SHUFFLES))
@pytest.mark.parametrize("shard_id,num_shards", [(0, 1), (1, 2), (0, 3), (2, 3), (3, 4)])
@pytest.mark.parametrize("batch_size", [1, 4, 7])
def test_resume_continues_exactly(
    tmp_path_factory, shuffle: str, shard_id: int, num_shards: int, batch_size: int
) -> None:
    from tests.operators.readers.conftest import make_files

    root = tmp_path_factory.getbasetemp() / "grid23"
    list_path = os.fspath(root / "list.txt")
    if not os.path.exists(list_path):
        make_files(os.fspath(root), 23)
    for stick, pad in itertools.product([False, True], [False, True]):
        if stick and shuffle == "after_epoch":
            continue
        args = dict(
            SHUFFLES[shuffle],
            shard_id=shard_id,
            num_shards=num_shards,
            stick_to_shard=stick,
            pad_last_batch=pad,
        )
        make = functools.partial(reader_pipe, list_path, batch_size=batch_size, **args)
        ref = make()
        meta = ref.reader_meta("r")
        per_epoch = -(-meta["epoch_size_padded"] // (num_shards * batch_size))
        for k in sorted({0, 1, per_epoch - 1}):
            ref = make()
            labels(ref, 2 * per_epoch + k)
            blob = ref.checkpoint()
            expected = labels(ref, (num_shards + 1) * per_epoch)
            ref.close()
            restored = make(checkpoint=blob)
            got = labels(restored, (num_shards + 1) * per_epoch)
            restored.close()
            assert got == expected, f"{args}, batch_size={batch_size}, restored at 2 epochs + {k}"


def test_restore_work_is_flat_in_the_position(files_20k: str, monkeypatch) -> None:
    """Restoring at 0 %, 50 % and 95 % of a 20,000-file epoch does the same work: no sample is read
    before the first batch and the epoch order is computed once (counted, not timed: timing belongs to
    benchmarks/readers.py, which reports restore times by position against DALI)."""
    from pipestate.operators.readers import _sampler, file

    def make(**kw):
        return reader_pipe(files_20k, batch_size=64, random_shuffle=True, initial_fill=1024, **kw)

    pipe = make()
    per_epoch = -(-pipe.reader_meta("r")["epoch_size"] // 64)
    blobs, done = {}, 0
    for fraction in (0.0, 0.5, 0.95):
        target = int(per_epoch * fraction)
        labels(pipe, target - done)
        done = target
        blobs[fraction] = (pipe.checkpoint(), labels(pipe, 1))
        done += 1
    pipe.close()
    counts = {"orders": 0, "reads": 0}
    real_order, real_read = _sampler.epoch_order, file.read_samples

    def counting_order(*args):
        counts["orders"] += 1
        return real_order(*args)

    def counting_read(paths, where, indices):
        counts["reads"] += len(indices)
        return real_read(paths, where, indices)

    monkeypatch.setattr(_sampler, "epoch_order", counting_order)
    monkeypatch.setattr(file, "read_samples", counting_read)
    work = {}
    for fraction, (blob, expected_next) in blobs.items():
        counts.update(orders=0, reads=0)
        restored = make(checkpoint=blob, prefetch_queue_depth=1)
        got = labels(restored, 1)
        restored.close()
        assert got == expected_next
        work[fraction] = (counts["orders"], counts["reads"])
    assert len(set(work.values())) == 1, f"(epoch orders computed, samples read) by position: {work}"
    assert work[0.0][1] <= 64 * 2  # the first batch and at most one prefetched: nothing is replayed

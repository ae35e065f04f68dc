"""pipestate.distributed without a distributed engine: combining shard checkpoints into a job checkpoint,
validating it (every shard present, one definition, one global position), and splitting it for a new layout."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from pipestate import checkpoint as ckpt
from pipestate import distributed, fn, pipeline_def
from pipestate.cli import describe
from pipestate.errors import CheckpointError, CheckpointMismatchError, CorruptCheckpointError


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("dist")
    paths = []
    for i in range(20):
        path = root / f"{i:02d}.bin"
        path.write_bytes(i.to_bytes(4, "little"))
        paths.append(os.fspath(path))
    return paths


class Counter:
    """A source object with state (bytes): sample ``n`` is ``n + offset``."""

    def __init__(self, offset: int) -> None:
        self.offset, self.n = offset, 0

    def __call__(self) -> np.ndarray:
        self.n += 1
        return np.array([self.n + self.offset], np.int64)

    def state(self) -> bytes:
        return bytes([self.offset, self.n])

    def restore(self, data: bytes) -> None:
        self.offset, self.n = data[0], data[1]


@pipeline_def(seed=3, num_threads=1, enable_checkpointing=True)
def elastic(files, shard_id, num_shards, global_batch_size=0, with_source=None):
    _, label = fn.readers.file(
        files=files, elastic=True, shard_id=shard_id, num_shards=num_shards, global_batch_size=global_batch_size
    )
    if with_source is None:
        return label, fn.random.uniform()
    # A source object's state: the same on every shard, or (per-shard) different.
    offset = shard_id if with_source == "per-shard" else 0
    return label, fn.external_source(source=Counter(offset), batch=False)


def job_at(files, steps: int, num_shards: int = 3, g: int = 6, **kwargs) -> tuple[list, list[bytes]]:
    pipes = [
        elastic(files, k, num_shards, g, batch_size=distributed.local_batch_size(g, num_shards, k), **kwargs)
        for k in range(num_shards)
    ]
    for _ in range(steps):
        for p in pipes:
            p.run()
    return pipes, [p.checkpoint() for p in pipes]


def test_job_checkpoint_is_a_manifest_and_the_shards(files):
    _, parts = job_at(files, 4)
    job = distributed.combine(parts[::-1])  # any order
    data = distributed.read_job(job)
    assert (data.num_shards, data.global_batch_size, data.iteration) == (3, 6, 4)
    assert (data.reader_epoch, data.reader_consumed) == (1, 4)  # 24 samples of a 20-sample dataset
    assert data.shards == tuple(parts)
    assert len(job) < sum(map(len, parts)) + 120  # O(shards): the manifest is tens of bytes
    assert distributed.split(job, 3) == parts  # the same layout: each shard's own checkpoint
    assert "job checkpoint" in describe(job) and "3 shards" in describe(job)


@pytest.mark.parametrize("name", ["job.pscpt", "job.ckpt"])  # .ckpt: read by its bytes, not as Lightning's
def test_the_cli_inspects_and_verifies_a_job_checkpoint(files, tmp_path, capsys, name):
    import json

    from pipestate.cli import main

    _, parts = job_at(files, 4)
    path = tmp_path / name
    path.write_bytes(distributed.combine(parts))
    assert main(["inspect", str(path)]) == 0
    assert "pipestate job checkpoint" in capsys.readouterr().out
    assert main(["inspect", "--json", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["kind"], info["num_shards"], info["global_batch_size"], info["iteration"]) == ("job", 3, 6, 4)
    assert main(["verify", str(path)]) == 0


def test_missing_duplicate_and_foreign_shards_are_named(files):
    _, parts = job_at(files, 2)
    with pytest.raises(CheckpointMismatchError, match=r"shard\(s\) 1 of 3 missing"):
        distributed.combine([parts[0], parts[2]])
    with pytest.raises(CheckpointMismatchError, match="shard 2 appears twice"):
        distributed.combine([parts[2], parts[0], parts[2]])
    _, other_layout = job_at(files, 2, num_shards=2, g=6)
    with pytest.raises(CheckpointMismatchError, match="checkpoint 1 is shard 1 of 2 .* different jobs"):
        distributed.combine([parts[0], other_layout[1], parts[2]])
    other_seed = elastic(files, 1, 3, 6, batch_size=2, seed=4)
    other_seed.run(), other_seed.run()
    with pytest.raises(CheckpointMismatchError, match="shard 1 was taken from another pipeline than shard 0: seed"):
        distributed.combine([parts[0], other_seed.checkpoint(), parts[2]])
    with pytest.raises(CorruptCheckpointError, match="checkpoint 1: .*damaged"):
        distributed.combine([parts[0], parts[1][:-3] + b"xyz", parts[2]])
    plain = pipeline_def(batch_size=2, seed=3, enable_checkpointing=True)(lambda: fn.readers.file(files=files)[1])()
    with pytest.raises(CheckpointMismatchError, match="no elastic reader"):
        distributed.combine([plain.checkpoint()])
    with pytest.raises(ValueError, match="list of the shards' checkpoints"):
        distributed.combine(parts[0])


def _altered(job: bytes, **changes) -> bytes:
    return ckpt.encode_job(dataclasses.replace(ckpt.decode_job(job), **changes))


def test_a_job_checkpoint_with_a_missing_or_inconsistent_shard_is_refused_naming_it(files):
    _, parts = job_at(files, 2)
    job = distributed.combine(parts)
    bad = {
        r"shard\(s\) 2 missing": _altered(job, shards=tuple(parts[:2])),
        "shard 1: its checkpoint is shard 2 of 3": _altered(job, shards=(parts[0], parts[2], parts[1])),
        "shard 1: .*damaged": _altered(job, shards=(parts[0], parts[1][:-1] + b"!", parts[2])),
        "shard 0 is at global step 2 .* the job's manifest at global step 5": _altered(job, iteration=5),
        "shard 0 was taken from another pipeline": _altered(job, fingerprint=b"\0" * 16),
        "layout": _altered(job, global_batch_size=2),
    }
    for match, blob in bad.items():
        for use in (
            distributed.read_job,
            lambda b: distributed.split(b, 2),
            lambda b: distributed.shard_checkpoint(b, 0, 4),
        ):
            with pytest.raises(CheckpointError, match=match):
                use(blob)
    with pytest.raises(CorruptCheckpointError, match="job checkpoint is damaged"):
        distributed.read_job(job[:-1] + bytes([job[-1] ^ 1]))
    with pytest.raises(CorruptCheckpointError, match="not a pipestate job checkpoint"):
        distributed.read_job(parts[0])
    with pytest.raises(CorruptCheckpointError, match="this is a job checkpoint.*shard_checkpoint"):
        elastic(files, 0, 3, 6, batch_size=2, checkpoint=job)


def test_split_gives_each_new_shard_its_part(files):
    pipes, parts = job_at(files, 3)
    job = distributed.combine(parts)
    new = distributed.split(job, 4, 10)
    assert new[2] == distributed.shard_checkpoint(job, 2, 4, 10)
    sizes = [ckpt.decode(b).batch_size for b in new]
    assert sizes == [distributed.local_batch_size(10, 4, k) for k in range(4)] == [2, 3, 2, 3]
    for k, blob in enumerate(new):
        state = next(r.state for r in ckpt.decode(blob).operators if r.has_state)
        assert state["layout"] == {"global_batch_size": 10, "num_shards": 4, "shard_id": k}
    resumed = [elastic(files, k, 4, 10, batch_size=sizes[k], checkpoint=new[k]) for k in range(4)]
    after = [int(v) for p in resumed for v in np.asarray(p.run()[0]).ravel()]
    before = [int(v) for p in pipes for v in np.asarray(p.run()[0]).ravel()]  # the old layout's next step
    assert after[:6] == before  # the same sequence, cut into a larger global batch
    for bad, error in [((job, "2"), TypeError), ((job, 0), ValueError), ((job, 3, 2), ValueError)]:
        with pytest.raises(error):
            distributed.split(*bad)
    with pytest.raises(ValueError, match="shard_id=4"):
        distributed.shard_checkpoint(job, 4, 4)


def test_states_that_differ_between_shards_do_not_move_to_another_layout(files):
    _, same = job_at(files, 2, with_source="same")
    moved = distributed.split(distributed.combine(same), 2, 6)
    resumed = elastic(files, 0, 2, 6, with_source="same", batch_size=3, checkpoint=moved[0])
    assert int(np.asarray(resumed.run()[1])[0][0]) == 5  # the source continues after its 2 * 2 samples
    _, different = job_at(files, 2, with_source="per-shard")
    job = distributed.combine(different)
    assert distributed.split(job, 3) == different  # the same layout: each shard keeps its own
    with pytest.raises(CheckpointMismatchError, match="operator 'external_source_0' .* different state on each shard"):
        distributed.split(job, 2)


def test_split_writes_the_bytes_the_new_shards_pipelines_write(files):
    """The re-issued checkpoints are exactly those of the new layout's pipelines at the same position (so a
    job whose shards differ only by their place is validated without decoding each shard)."""
    _, (one,) = job_at(files, 5, num_shards=1, g=6)
    _, three = job_at(files, 5, num_shards=3, g=6)
    assert distributed.split(distributed.combine([one]), 3) == three
    assert distributed.split(distributed.combine(three), 1) == [one]

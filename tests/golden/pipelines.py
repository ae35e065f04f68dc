"""The pipelines behind the golden checkpoints (tests/golden/vN/).

Frozen: a golden checkpoint restores only into the definition that wrote it, so these functions never
change. A new pipeline for a new format version is added beside them. Reader pipelines use paths relative
to the golden directory (the test changes into it), so the dataset listing, and so the checkpoint's
dataset digest and fingerprint, do not depend on where the repository is checked out.
"""

from __future__ import annotations

import os

import numpy as np

from pipestate import fn, pipeline_def, types

BATCH = 4
SEED = 20261123


def make_data(root: str) -> None:
    """Write the small datasets the reader pipelines read (deterministic; committed under data/)."""
    rng = np.random.default_rng(7)
    for label in range(3):
        d = os.path.join(root, "files", f"class{label}")
        os.makedirs(d, exist_ok=True)
        for i in range(5):
            with open(os.path.join(d, f"f{i}.jpg"), "wb") as f:
                f.write(rng.integers(0, 256, 8 + i, dtype=np.uint8).tobytes())
    d = os.path.join(root, "npy")
    os.makedirs(d, exist_ok=True)
    for i in range(11):
        np.save(os.path.join(d, f"a{i:02d}.npy"), rng.standard_normal((2, 3)).astype(np.float32))
    import struct

    from pipestate import tfrecord as tfr
    from pipestate._proto.pipestate.tfrecord.v1 import example_pb2

    os.makedirs(os.path.join(root, "tfr"), exist_ok=True)
    path = os.path.join(root, "tfr", "data.tfrecord")
    with open(path, "wb") as f:
        for i in range(13):
            ex = example_pb2.Example()
            ex.features.feature["x"].int64_list.value.extend([i, i * i])
            ex.features.feature["y"].float_list.value.append(i / 4.0)
            data = ex.SerializeToString()
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", tfr.masked_crc32c(length)))
            f.write(data + struct.pack("<I", tfr.masked_crc32c(data)))
    tfr.tfrecord2idx(path, path + ".idx")


@pipeline_def(batch_size=BATCH, num_threads=2, device_id=None, seed=SEED, enable_checkpointing=True)
def random_ops():
    """Every random operator, arithmetic on them, and a cast."""
    u = fn.random.uniform(range=[-2.0, 3.0], shape=[3])
    n = fn.random.normal(mean=1.0, stddev=0.5, shape=[2])
    c = fn.random.coin_flip(probability=0.3)
    k = fn.random.choice(5)
    r = fn.random.uniform(range=[0, 10], dtype=types.INT32, seed=99)
    return u * 2.0 + 1.0, n, c, k, fn.cast(u, dtype=types.UINT8) + r


@pipeline_def(batch_size=BATCH, num_threads=2, device_id=None, seed=SEED, enable_checkpointing=True)
def file_reader():
    """fn.readers.file over class directories with a shuffle buffer, plus a random op."""
    data, label = fn.readers.file(file_root="data/files", random_shuffle=True, initial_fill=6, name="reader")
    return data, label, fn.random.coin_flip()


@pipeline_def(batch_size=BATCH, num_threads=2, device_id=None, seed=SEED, enable_checkpointing=True)
def numpy_reader():
    """fn.readers.numpy with shuffle_after_epoch over a sharded dataset."""
    a = fn.readers.numpy(file_root="data/npy", shuffle_after_epoch=True, num_shards=2, shard_id=1, name="reader")
    return a, a * 0.5


@pipeline_def(batch_size=BATCH, num_threads=2, device_id=None, seed=SEED, enable_checkpointing=True)
def tfrecord_reader():
    """fn.readers.tfrecord with an index and a shuffle buffer."""
    from pipestate import tfrecord as tfr

    out = fn.readers.tfrecord(
        path="data/tfr/data.tfrecord",
        index_path="data/tfr/data.tfrecord.idx",
        features={"x": tfr.FixedLenFeature([2], tfr.int64, 0), "y": tfr.FixedLenFeature([1], tfr.float32, 0.0)},
        random_shuffle=True,
        initial_fill=5,
        name="reader",
    )
    return out["x"], out["y"]


class CountingSource:
    """A source object with state() -> bytes and restore(bytes): batch i holds i, i+1, ..."""

    def __init__(self) -> None:
        self.i = 0

    def __call__(self):
        batch = [np.array([self.i + j], dtype=np.int64) for j in range(BATCH)]
        self.i += 1
        return batch

    def state(self) -> bytes:
        return self.i.to_bytes(8, "little")

    def restore(self, data: bytes) -> None:
        self.i = int.from_bytes(data, "little")


def _by_info(info):
    return [np.full((2,), info.iteration * 10 + j + info.epoch_idx * 1000, dtype=np.int32) for j in range(BATCH)]


@pipeline_def(batch_size=BATCH, num_threads=1, device_id=None, seed=SEED, enable_checkpointing=True)
def external_sources():
    """A stateful source object, a BatchInfo callable, python_function and arithmetic between them."""
    a = fn.external_source(source=CountingSource(), name="counter")
    b = fn.external_source(source=_by_info, batch_info=True, name="by_info")
    c = fn.python_function(b, function=lambda x: x * 3)
    return a + 1, b - c, fn.random.normal(a)

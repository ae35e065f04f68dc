"""Job checkpoint bytes: the checkpoints of every shard of an elastic job and their manifest.

The message is ``pipestate.job.v1.Job`` (``proto/pipestate/job/v1/job.proto``) in the checkpoint envelope
with the magic :data:`~pipestate.checkpoint.codec.JOB_MAGIC`. This module only encodes and parses; what a
job checkpoint must satisfy (every shard present, one definition, one global position) is checked by
:mod:`pipestate.distributed`, which writes and reads them. Nothing here pickles.
"""

from __future__ import annotations

import dataclasses

from google.protobuf.message import DecodeError

from pipestate._proto.pipestate.job.v1 import job_pb2
from pipestate._proto.pipestate.v2 import checkpoint_pb2 as pb
from pipestate.checkpoint.codec import JOB_MAGIC, open_envelope, seal
from pipestate.checkpoint.records import FORMAT_VERSION
from pipestate.errors import CheckpointError, CorruptCheckpointError

JOB_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class JobData:
    """A decoded job checkpoint.

    Attributes:
        library_version: The pipestate version that combined the shards (informational).
        fingerprint: Every shard's pipeline fingerprint (an elastic pipeline's leaves the layout out).
        num_shards: Shards of the layout the checkpoints were taken on.
        global_batch_size: Samples per global step in that layout.
        iteration, epoch, iteration_in_epoch: Every shard's pipeline position (``iteration``: global steps).
        reader: The name of the elastic reader.
        reader_epoch, reader_consumed: The job's global position: reader epoch, samples consumed in it.
        shards: Shard ``k``'s checkpoint bytes at index ``k``.
    """

    library_version: str
    fingerprint: bytes
    num_shards: int
    global_batch_size: int
    iteration: int
    epoch: int
    iteration_in_epoch: int
    reader: str
    reader_epoch: int
    reader_consumed: int
    shards: tuple[bytes, ...]


def encode_job(job: JobData) -> bytes:
    """Serialize ``job`` into job checkpoint bytes."""
    message = job_pb2.Job(
        library_version=job.library_version,
        fingerprint=job.fingerprint,
        num_shards=job.num_shards,
        global_batch_size=job.global_batch_size,
        iteration=job.iteration,
        epoch=job.epoch,
        iteration_in_epoch=job.iteration_in_epoch,
        reader=job.reader,
        reader_epoch=job.reader_epoch,
        reader_consumed=job.reader_consumed,
        shards=list(job.shards),
    )
    return seal(JOB_FORMAT_VERSION, message.SerializeToString(deterministic=True), JOB_MAGIC)


def decode_job(blob: bytes) -> JobData:
    """Parse job checkpoint bytes (the envelope and the message; not the shards' consistency).

    Raises:
        TypeError: ``blob`` is not bytes.
        CorruptCheckpointError: the bytes are not an intact job checkpoint.
        UnsupportedCheckpointVersionError: the job format version is not one this library reads.
    """
    _, payload = open_envelope(blob, JOB_MAGIC, (JOB_FORMAT_VERSION,), "job checkpoint")
    message = job_pb2.Job()
    try:
        message.ParseFromString(payload)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise CorruptCheckpointError("the job checkpoint's payload does not parse") from exc
    return JobData(
        library_version=message.library_version,
        fingerprint=message.fingerprint,
        num_shards=message.num_shards,
        global_batch_size=message.global_batch_size,
        iteration=message.iteration,
        epoch=message.epoch,
        iteration_in_epoch=message.iteration_in_epoch,
        reader=message.reader,
        reader_epoch=message.reader_epoch,
        reader_consumed=message.reader_consumed,
        shards=tuple(message.shards),
    )


class ShardTemplate:
    """One shard's checkpoint, re-issued for other places in a layout.

    ``checkpoint(batch_size, layout)`` returns the same checkpoint with another pipeline batch size and
    another ``layout`` map in the state of operator ``reader`` (the elastic reader): the bytes that shard's
    pipeline writes at the same position, as protobuf's deterministic serialization (which the codec's
    encoder reproduces). A few microseconds per shard: the parsed message is changed in place.

    Args:
        blob: A shard's checkpoint (format version 2).
        reader: Index of the elastic reader among the checkpoint's operators.
    """

    def __init__(self, blob: bytes, reader: int) -> None:
        _, payload = open_envelope(blob)
        self._message = pb.Payload.FromString(payload)
        state = self._message.operators[reader].state
        (layout,) = [entry.value.map.entries for entry in state.map.entries if entry.key == "layout"]
        self._layout = {entry.key: entry.value for entry in layout}

    def checkpoint(self, batch_size: int, layout: dict[str, int]) -> bytes:
        """The checkpoint with this pipeline ``batch_size`` and these ``layout`` values (the same keys)."""
        self._message.batch_size = batch_size
        for key, value in layout.items():
            self._layout[key].int = value
        return seal(FORMAT_VERSION, self._message.SerializeToString(deterministic=True))


def peek_layout(blob: bytes, reader: int) -> dict[str, int] | None:
    """The ``layout`` map of operator ``reader``'s state in a shard's checkpoint, read without decoding the
    rest; ``None`` when the bytes hold no such map (decode them to learn why)."""
    try:
        _, payload = open_envelope(blob)
        operators = pb.Payload.FromString(payload).operators
    except (CheckpointError, DecodeError, TypeError):
        return None
    if reader >= len(operators):
        return None
    for entry in operators[reader].state.map.entries:
        if entry.key == "layout":
            values = {e.key: e.value for e in entry.value.map.entries}
            if all(v.WhichOneof("kind") == "int" for v in values.values()):
                return {k: v.int for k, v in values.items()}
    return None

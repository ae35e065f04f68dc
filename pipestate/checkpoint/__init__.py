"""Checkpoints: the byte format (:mod:`~pipestate.checkpoint.codec`, version 2, and
:mod:`~pipestate.checkpoint.v1` for pipestate 0.1's), the decoded records
(:mod:`~pipestate.checkpoint.records`), the one-pass restore (:mod:`~pipestate.checkpoint.restore`) and the
job checkpoints of elastic jobs (:mod:`~pipestate.checkpoint.job`, written by :mod:`pipestate.distributed`).

The format is specified in ``docs/checkpoint-format.md``. Nothing here pickles: a checkpoint from an
untrusted source is safe to parse.
"""

from pipestate.checkpoint.codec import (
    JOB_MAGIC,
    MAGIC,
    MAX_DEPTH,
    READABLE_VERSIONS,
    Encoder,
    check_iterator_data,
    decode,
    decode_value,
    encode,
    encode_value,
    open_envelope,
    seal,
)
from pipestate.checkpoint.job import JOB_FORMAT_VERSION, JobData, ShardTemplate, decode_job, encode_job, peek_layout
from pipestate.checkpoint.partial import RestoreReport
from pipestate.checkpoint.records import (
    FORMAT_VERSION,
    CheckpointData,
    OperatorRecord,
    check_matches,
    describe_differences,
    identity,
    mismatch,
)
from pipestate.checkpoint.restore import Restored, Target, resolve

__all__ = [
    "FORMAT_VERSION",
    "JOB_FORMAT_VERSION",
    "JOB_MAGIC",
    "MAGIC",
    "MAX_DEPTH",
    "READABLE_VERSIONS",
    "CheckpointData",
    "Encoder",
    "JobData",
    "OperatorRecord",
    "RestoreReport",
    "Restored",
    "ShardTemplate",
    "Target",
    "check_iterator_data",
    "check_matches",
    "decode",
    "decode_job",
    "decode_value",
    "describe_differences",
    "encode",
    "encode_job",
    "encode_value",
    "identity",
    "mismatch",
    "open_envelope",
    "peek_layout",
    "resolve",
    "seal",
]

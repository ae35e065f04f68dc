"""Checkpoints: the byte format (:mod:`~pipestate.checkpoint.codec`, version 2, and
:mod:`~pipestate.checkpoint.v1` for pipestate 0.1's), the decoded records
(:mod:`~pipestate.checkpoint.records`) and the one-pass restore (:mod:`~pipestate.checkpoint.restore`).

The format is specified in ``docs/checkpoint-format.md``. Nothing here pickles: a checkpoint from an
untrusted source is safe to parse.
"""

from pipestate.checkpoint.codec import (
    MAGIC,
    MAX_DEPTH,
    READABLE_VERSIONS,
    Encoder,
    decode,
    decode_value,
    encode,
    encode_value,
    open_envelope,
    seal,
)
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
    "MAGIC",
    "MAX_DEPTH",
    "READABLE_VERSIONS",
    "CheckpointData",
    "Encoder",
    "OperatorRecord",
    "Restored",
    "Target",
    "check_matches",
    "decode",
    "decode_value",
    "describe_differences",
    "encode",
    "encode_value",
    "identity",
    "mismatch",
    "open_envelope",
    "resolve",
    "seal",
]

"""Shared helpers for the checkpoint-storage tests (imported as ``_io_helpers``; a unique name so it
never collides with another test folder's helpers)."""

from __future__ import annotations

import os

from pipestate.checkpoint import CheckpointData, OperatorRecord, decode, encode


def make_checkpoint(step: int = 0, pad: int = 0) -> bytes:
    """Valid checkpoint bytes whose ``iteration`` is ``step``, optionally padded to grow the file."""
    ops = [OperatorRecord("reader_0", "readers.file", 7, {}, {"epoch": 0, "consumed": step * 4}, True)]
    if pad:
        filler = (step.to_bytes(8, "little") * (pad // 8 + 1))[:pad]
        ops.append(OperatorRecord("custom_0", "custom", 9, {}, filler, True))
    data = CheckpointData(
        library_version="0.1.0",
        fingerprint=b"\x01" * 16,
        batch_size=4,
        seed=1234,
        iteration=step,
        epoch=0,
        iteration_in_epoch=step,
        operators=tuple(ops),
    )
    return encode(data)


def step_of(blob: bytes) -> int:
    """The ``iteration`` recorded in checkpoint bytes."""
    return decode(blob).iteration


def temp_files(directory: str) -> list[str]:
    """Names of LocalCheckpointIO temp files left in ``directory``."""
    from pipestate.io.local import is_temp_name

    return [n for n in os.listdir(directory) if is_temp_name(n)]

"""Checkpoint storage: pluggable backends, crash-safe local files, background saving, a Checkpointer that
saves the data position together with model, optimizer and trainer state.

``FsspecCheckpointIO`` is imported lazily (on first attribute access), so ``import pipestate`` never
imports fsspec.
"""

from __future__ import annotations

from typing import Any

from pipestate.io.async_ import AsyncCheckpointIO
from pipestate.io.base import CheckpointIO, resolve_checkpoint_io, validate_checkpoint
from pipestate.io.checkpointer import CheckpointBytes, Checkpointer, StepState
from pipestate.io.local import LocalCheckpointIO

__all__ = [
    "AsyncCheckpointIO",
    "CheckpointBytes",
    "CheckpointIO",
    "Checkpointer",
    "FsspecCheckpointIO",
    "LocalCheckpointIO",
    "StepState",
    "resolve_checkpoint_io",
    "validate_checkpoint",
]


def __getattr__(name: str) -> Any:
    if name == "FsspecCheckpointIO":
        from pipestate.io.fsspec_ import FsspecCheckpointIO

        return FsspecCheckpointIO
    raise AttributeError(f"module 'pipestate.io' has no attribute {name!r}")

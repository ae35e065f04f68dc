"""pipestate: deterministic ML input pipelines whose state checkpoints and restores exactly."""

from pipestate.errors import (
    CheckpointError,
    CheckpointMismatchError,
    CorruptCheckpointError,
    OperatorError,
    PipestateError,
    UnsupportedCheckpointVersionError,
)
from pipestate.io import Checkpointer

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "Checkpointer",
    "CorruptCheckpointError",
    "OperatorError",
    "PipestateError",
    "UnsupportedCheckpointVersionError",
]

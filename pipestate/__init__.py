"""pipestate: deterministic ML input pipelines whose state checkpoints and restores exactly."""

from pipestate.errors import (
    CheckpointError,
    CheckpointMismatchError,
    CorruptCheckpointError,
    OperatorError,
    PipestateError,
    UnsupportedCheckpointVersionError,
)

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "CorruptCheckpointError",
    "OperatorError",
    "PipestateError",
    "UnsupportedCheckpointVersionError",
]

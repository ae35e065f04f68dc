"""The exceptions pipestate raises.

Every checkpoint problem is a :class:`CheckpointError`, itself a ``ValueError``, so code that already
catches ``ValueError`` around a restore keeps working; the subclasses say which check failed.
"""

from __future__ import annotations


class PipestateError(Exception):
    """Base class of every error raised by pipestate itself."""


class CheckpointError(PipestateError, ValueError):
    """A checkpoint cannot be used to restore this pipeline."""


class CorruptCheckpointError(CheckpointError):
    """The bytes are not an intact pipestate checkpoint (wrong magic, truncated, checksum mismatch)."""


class UnsupportedCheckpointVersionError(CheckpointError):
    """The checkpoint was written in a format version this pipestate cannot read."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint is intact but was taken from a different pipeline.

    Attributes:
        differences: One human-readable line per difference found (missing or extra operators, changed
            arguments, batch size, seed, ...).
    """

    def __init__(self, message: str, differences: list[str] | None = None) -> None:
        super().__init__(message)
        self.differences = list(differences or [])


class OperatorError(PipestateError, RuntimeError):
    """An operator failed while computing a batch; ``__cause__`` holds the original exception.

    Attributes:
        operator: The stable name of the operator that failed.
    """

    def __init__(self, message: str, operator: str) -> None:
        super().__init__(message)
        self.operator = operator

"""The exceptions pipestate raises.

Every checkpoint problem is a :class:`CheckpointError`, itself a ``ValueError``, so code that already
catches ``ValueError`` around a restore keeps working; the subclasses say which check failed.
"""

from __future__ import annotations


class PipestateError(Exception):
    """Base class of every error raised by pipestate itself.

    Catch it to handle any pipestate error. It is never raised directly: the errors are its subclasses
    :class:`CheckpointError` (restoring or storing a checkpoint) and :class:`OperatorError` (``run()``).
    Mistakes in a call (a wrong argument or option, an operator called outside a pipeline definition)
    raise the usual ``TypeError``/``ValueError``/``RuntimeError`` instead, and storage failures the
    original ``OSError``.
    """


class CheckpointError(PipestateError, ValueError):
    """A checkpoint cannot be used to restore this pipeline (also a ``ValueError``).

    Raised by ``pipe(checkpoint=...)``, :meth:`Pipeline.restore`, the built-in backends'
    ``load_checkpoint``, ``Checkpointer.save`` of bytes that are not a checkpoint, and
    ``pipestate inspect``, as one of the subclasses below. Raised itself when an external source cannot
    be moved to the checkpoint's position (a one-shot iterator restored past its start).
    """


class CorruptCheckpointError(CheckpointError):
    """The bytes are not an intact pipestate checkpoint (wrong magic, truncated, checksum mismatch).

    Raised when damaged, truncated, empty or foreign bytes are restored, loaded by a built-in
    ``CheckpointIO`` (the message names the path) or passed to ``Checkpointer.save``.
    """


class UnsupportedCheckpointVersionError(CheckpointError):
    """The checkpoint was written in a format version this pipestate cannot read.

    Raised where :class:`CorruptCheckpointError` is, when the checksum is intact but the format version
    is unknown (a checkpoint written by a newer pipestate).
    """


class CheckpointMismatchError(CheckpointError):
    """The checkpoint is intact but was taken from a different pipeline.

    Raised by ``pipe(checkpoint=...)`` and :meth:`Pipeline.restore` when the checkpoint's fingerprint
    differs from the pipeline's; the pipeline is left unchanged.

    Attributes:
        differences: One human-readable line per difference found (missing or extra operators, changed
            arguments, batch size, seed, ...).
    """

    def __init__(self, message: str, differences: list[str] | None = None) -> None:
        super().__init__(message)
        self.differences = list(differences or [])


class PartialRestoreWarning(UserWarning):
    """A restore with ``partial_restore=True`` started operators fresh or dropped some: the message lists
    what was restored, started fresh (with the changed arguments) and dropped; ``Pipeline.restore_report``
    holds the same as data."""


class OperatorError(PipestateError, RuntimeError):
    """An operator failed while computing a batch; ``__cause__`` holds the original exception.

    Raised by ``Pipeline.run()`` (also a ``RuntimeError``), naming the operator, the epoch and the
    iteration; later ``run()`` calls raise it again until ``reset()``.

    Attributes:
        operator: The stable name of the operator that failed.
    """

    def __init__(self, message: str, operator: str) -> None:
        super().__init__(message)
        self.operator = operator

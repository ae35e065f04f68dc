"""Checkpointer: save every ``period`` steps, find the newest valid checkpoint, keep the last few.

Files are named ``{prefix}-{step:012d}.pscpt`` (more digits past step 999,999,999,999) in one
directory; a name sorts by step, and a Checkpointer only ever lists, loads or deletes names that match
its own prefix exactly. ``latest()`` validates candidates from the highest step down and skips temp
files, foreign files, files still being written by this process's asynchronous backend, and damaged
ones, so a crash at any moment leaves a loadable "latest".
"""

from __future__ import annotations

import functools
import logging
import os
import re
from concurrent.futures import Future
from typing import Any

from pipestate.checkpoint import decode
from pipestate.errors import CheckpointError
from pipestate.io.base import CheckpointIO, PathLike, resolve_checkpoint_io, validate_checkpoint
from pipestate.io.local import LocalCheckpointIO

logger = logging.getLogger("pipestate.io")

SUFFIX = ".pscpt"


class Checkpointer:
    """Periodic, crash-safe checkpoints of a pipeline in one directory.

    Args:
        directory: Where checkpoints go: a local directory or (with an fsspec backend) a URL such as
            ``s3://bucket/run1``. Created on the first save.
        prefix: File-name prefix; checkpoints are ``{prefix}-{step:012d}.pscpt``. Several Checkpointers
            (or processes) can share a directory if their prefixes differ.
        period: :meth:`save` writes only when ``step % period == 0`` (or when forced).
        keep_last: Keep this many most recent checkpoints and delete older ones of this prefix (never
            the newest valid one, and only once the new one is durable). ``None`` keeps all.
        checkpoint_io: A :class:`CheckpointIO` instance, a fully-qualified class name such as
            ``"mypkg.io.MyIO"`` (instantiated without arguments), or ``None`` for
            :class:`LocalCheckpointIO` (:class:`FsspecCheckpointIO` when ``directory`` is a URL).

    Raises:
        ValueError: an argument is out of range, or ``checkpoint_io`` names no importable class.
        TypeError: ``checkpoint_io`` is not a CheckpointIO.
    """

    def __init__(
        self,
        directory: PathLike,
        prefix: str = "checkpoint",
        period: int = 1,
        keep_last: int | None = None,
        checkpoint_io: CheckpointIO | str | None = None,
    ) -> None:
        directory = os.fspath(directory)
        if not prefix or "/" in prefix or os.sep in prefix or prefix.startswith("."):
            raise ValueError(
                f"prefix={prefix!r} must be a non-empty file-name prefix without path separators that does "
                "not start with '.'"
            )
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(f"period={period!r} must be an integer >= 1")
        if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1):
            raise ValueError(f"keep_last={keep_last!r} must be None (keep all) or an integer >= 1")
        self._is_url = "://" in directory
        self.directory = directory if self._is_url else os.path.abspath(directory)
        self.prefix = prefix
        self.period = period
        self.keep_last = keep_last
        self._owns_io = checkpoint_io is None or isinstance(checkpoint_io, str)
        if checkpoint_io is None and self._is_url:
            from pipestate.io.fsspec_ import FsspecCheckpointIO

            self.checkpoint_io: CheckpointIO = FsspecCheckpointIO()
        else:
            self.checkpoint_io = resolve_checkpoint_io(checkpoint_io, LocalCheckpointIO)
        self._name_re = re.compile(rf"^{re.escape(prefix)}-(\d{{12,}}){re.escape(SUFFIX)}$")
        self._pending: dict[str, Future] = {}

    def path_for(self, step: int) -> str:
        """Return the path (or URL) of the checkpoint for ``step``.

        Args:
            step: A non-negative step number.

        Returns:
            ``{directory}/{prefix}-{step:012d}.pscpt``.
        """
        name = f"{self.prefix}-{step:012d}{SUFFIX}"
        if self._is_url:
            return self.directory.rstrip("/") + "/" + name
        return os.path.join(self.directory, name)

    def save(self, pipeline_or_checkpoint: Any, step: int, force: bool = False) -> str | None:
        """Save a checkpoint for ``step`` if ``step % period == 0`` or ``force``, then apply retention.

        Args:
            pipeline_or_checkpoint: Checkpoint bytes, or an object with a ``checkpoint()`` method
                returning them (a :class:`~pipestate.Pipeline`).
            step: The training step (a non-negative integer) the checkpoint belongs to.
            force: Save even when ``step`` is not a multiple of ``period``.

        Returns:
            The path saved to, or ``None`` when this step is skipped.

        Raises:
            ValueError: ``step`` is negative, or the bytes are not a valid pipestate checkpoint
                (``CorruptCheckpointError``/``UnsupportedCheckpointVersionError``, both ValueErrors).
            TypeError: the first argument is neither bytes nor has ``checkpoint()``.
            OSError: the backend failed (for an asynchronous backend: an earlier background save).
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step={step!r} must be a non-negative integer")
        if not force and step % self.period != 0:
            return None
        blob = _checkpoint_bytes(pipeline_or_checkpoint)
        validate_checkpoint(
            blob,
            where=f"refusing to save step {step}",
            advice="Pass Pipeline.checkpoint() bytes or the pipeline itself.",
        )
        path = self.path_for(step)
        submit = getattr(self.checkpoint_io, "submit", None)
        if callable(submit):
            # An asynchronous backend: one background task saves, then (once the save returned, i.e. the
            # checkpoint is durable, and only if it succeeded) applies retention. Errors are raised by the
            # backend's next call, like a failed save.
            self._pending[path] = submit(functools.partial(self._save_and_retain, blob, path), path=path)
            return path
        result = self.checkpoint_io.save_checkpoint(blob, path)
        if isinstance(result, Future):
            self._pending[path] = result
        self._apply_retention()
        return path

    def steps(self) -> list[int]:
        """List the steps of this prefix's checkpoint files that are not still being written.

        The files are not validated (see :meth:`latest`).

        Returns:
            Steps in increasing order.
        """
        return sorted(step for step, _ in self._entries())

    def latest(self) -> str | None:
        """Return the path of the newest valid checkpoint, or ``None`` if there is none.

        Candidates are tried from the highest step down; temp files, foreign files, checkpoints still
        being written asynchronously, and truncated, damaged or empty files are skipped (logged).

        Returns:
            A path that :meth:`CheckpointIO.load_checkpoint` loads, or ``None``.

        Raises:
            OSError: the backend failed other than by a missing file (e.g. permission denied on the
                directory, or an earlier asynchronous save failed).
        """
        found = self._find_latest()
        return found[1] if found else None

    def latest_step(self) -> int | None:
        """Return the step of the newest valid checkpoint (see :meth:`latest`), or ``None``.

        The checkpoint saved at step ``s`` holds the pipeline's state *after* step ``s``, so a training
        loop resumes at ``s + 1``.

        Returns:
            The step number, or ``None`` when there is no valid checkpoint.

        Raises:
            OSError: as for :meth:`latest`.
        """
        found = self._find_latest()
        return found[0] if found else None

    def load_latest(self) -> bytes | None:
        """Return the bytes of the newest valid checkpoint (see :meth:`latest`), or ``None``.

        Returns:
            Checkpoint bytes to pass as ``pipe(checkpoint=...)``, or ``None``.

        Raises:
            OSError: as for :meth:`latest`.
        """
        found = self._find_latest()
        return found[2] if found else None

    def wait(self) -> None:
        """Wait for asynchronous saves to finish, then apply retention.

        Raises:
            OSError: an asynchronous save failed (raised once).
        """
        wait = getattr(self.checkpoint_io, "wait", None)
        if callable(wait):
            wait()
        for future in list(self._pending.values()):
            future.exception()  # block; the backend reports the error itself
        self._apply_retention()

    def close(self) -> None:
        """Wait for pending saves, apply retention, and tear down a backend this object created.

        Raises:
            OSError: an asynchronous save failed (raised once).
        """
        try:
            self.wait()
        finally:
            if self._owns_io:
                self.checkpoint_io.teardown()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()

    def _is_pending(self, path: str) -> bool:
        future = self._pending.get(path)
        if future is not None:
            if not future.done():
                return True
            self._pending.pop(path, None)  # may run on the writer thread too
        is_pending = getattr(self.checkpoint_io, "is_pending", None)
        return bool(callable(is_pending) and is_pending(path))

    def _entries(self, io: CheckpointIO | None = None, saved: str | None = None) -> list[tuple[int, str]]:
        out = []
        for name in (io or self.checkpoint_io).list_dir(self.directory):
            m = self._name_re.match(name)
            if m is None:
                continue
            path = self._join(name)
            if path == saved or not self._is_pending(path):
                out.append((int(m[1]), path))
        return out

    def _join(self, name: str) -> str:
        if self._is_url:
            return self.directory.rstrip("/") + "/" + name
        return os.path.join(self.directory, name)

    def _find_latest(self) -> tuple[int, str, bytes] | None:
        for step, path in sorted(self._entries(), reverse=True):
            blob = self._load_valid(path)
            if blob is not None:
                return step, path, blob
        return None

    def _load_valid(self, path: str, io: CheckpointIO | None = None) -> bytes | None:
        try:
            blob = (io or self.checkpoint_io).load_checkpoint(path)
            decode(blob)  # also for backends that do not validate
        except (CheckpointError, FileNotFoundError, IsADirectoryError) as exc:
            logger.warning("skipping checkpoint %s: %s", path, exc)
            return None
        return blob

    def _save_and_retain(self, blob: bytes, path: str, io: CheckpointIO) -> None:
        io.save_checkpoint(blob, path)
        self._apply_retention(io, saved=path)  # this task's future is not done yet, the file is durable

    def _apply_retention(self, io: CheckpointIO | None = None, saved: str | None = None) -> None:
        """Delete old checkpoints; ``io`` is the backend to use (an asynchronous one's wrapped backend
        when this runs on its writer thread), ``saved`` a checkpoint this thread has just saved."""
        if self.keep_last is None:
            return
        io = io or self.checkpoint_io
        entries = sorted(self._entries(io, saved), reverse=True)
        if len(entries) <= self.keep_last:
            return
        keep = {path for _, path in entries[: self.keep_last]}
        # Never delete the newest valid checkpoint, even if newer ones are bad. A checkpoint this thread has
        # just saved (validated bytes, durable) is valid: if it is kept, so is the newest valid one.
        if saved not in keep:
            for _, path in entries:
                if self._load_valid(path, io) is not None:
                    keep.add(path)
                    break
            else:
                return  # nothing valid yet: keep everything rather than guess
        for _, path in entries:
            if path not in keep:
                io.remove_checkpoint(path)


def _checkpoint_bytes(obj: Any) -> bytes:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    method = getattr(obj, "checkpoint", None)
    if not callable(method):
        raise TypeError(
            f"Checkpointer.save takes checkpoint bytes or a pipeline with checkpoint(), not {type(obj).__name__}"
        )
    blob = method()
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"{type(obj).__name__}.checkpoint() returned {type(blob).__name__}, not bytes")
    return bytes(blob)

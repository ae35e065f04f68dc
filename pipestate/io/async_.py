"""Saving checkpoints in the background, behind any other CheckpointIO.

One writer thread runs the saves in the order they were made. ``save_checkpoint`` copies mutable
buffers before it returns, so the caller may reuse them at once. A failed background save is
remembered and raised *once*: by the next ``save_checkpoint``/``load_checkpoint``/``remove_checkpoint``
call (which is then not performed), by ``wait()`` or by ``close()``. ``load_checkpoint`` and
``remove_checkpoint`` first wait for pending saves to the same path. ``submit`` queues other work (the
``Checkpointer``'s retention) behind the saves, on the same thread.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pipestate.io.base import CheckpointIO, PathLike
from pipestate.io.local import LocalCheckpointIO

logger = logging.getLogger("pipestate.io")


class AsyncCheckpointIO(CheckpointIO):
    """Run another backend's saves on one background thread.

    Use it as a context manager, or call :meth:`close` (or :meth:`teardown`) when done: both drain the
    pending saves. Pending saves also finish at normal interpreter exit.

    Args:
        checkpoint_io: The backend that does the writing; ``LocalCheckpointIO()`` by default.
    """

    def __init__(self, checkpoint_io: CheckpointIO | None = None) -> None:
        self.checkpoint_io = checkpoint_io if checkpoint_io is not None else LocalCheckpointIO()
        self._executor: ThreadPoolExecutor | None = None
        self._cond = threading.Condition()
        self._pending: dict[str, int] = {}  # path -> number of saves queued or running
        self._error: BaseException | None = None
        self._closed = False

    def save_checkpoint(self, data: bytes, path: PathLike, storage_options: Mapping[str, Any] | None = None) -> Future:
        """Queue a save of ``data`` to ``path`` and return at once.

        Args:
            data: The checkpoint bytes; copied now if mutable, so later changes are not saved.
            path: Passed to the wrapped backend.
            storage_options: Passed to the wrapped backend.

        Returns:
            A future that completes when the wrapped backend's save returned (the bytes are durable)
            or failed. Its exception is the same one this object raises once on a later call.

        Raises:
            OSError: (or whatever the wrapped backend raised) an *earlier* background save failed;
                this save was not queued.
            RuntimeError: the object is closed.
        """
        self._raise_pending_error()
        if self._closed:
            raise RuntimeError("AsyncCheckpointIO is closed; create a new one to save more checkpoints")
        blob = data if isinstance(data, bytes) else bytes(memoryview(data).cast("B"))
        options = dict(storage_options) if storage_options else None
        return self._enqueue(_key(path), self.checkpoint_io.save_checkpoint, blob, path, options)

    def submit(self, fn: Callable[[CheckpointIO], Any], path: PathLike | None = None) -> Future:
        """Run ``fn(wrapped_backend)`` on the writer thread, after every save queued so far.

        :class:`~pipestate.io.Checkpointer` uses it to save and then apply retention in one background
        task, so that neither runs on the caller's thread. The task counts as pending work: :meth:`wait`
        and :meth:`close` wait for it, and an exception it raises is handled like a failed save (raised
        once by the next call).

        Args:
            fn: Called with the wrapped backend; its return value is the future's result.
            path: The checkpoint ``fn`` writes, if any: until ``fn`` returns, :meth:`is_pending` is true
                for it, and :meth:`load_checkpoint`/:meth:`remove_checkpoint` of it wait.

        Returns:
            A future for ``fn``'s result.

        Raises:
            OSError: (or whatever was raised) an earlier background save or task failed; ``fn`` was not
                queued.
            RuntimeError: the object is closed.
        """
        self._raise_pending_error()
        if self._closed:
            raise RuntimeError("AsyncCheckpointIO is closed")
        return self._enqueue(_TASK_KEY if path is None else _key(path), fn, self.checkpoint_io)

    def _enqueue(self, key: str, fn: Callable[..., Any], *args: Any) -> Future:
        with self._cond:
            self._pending[key] = self._pending.get(key, 0) + 1
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipestate-ckpt")
        try:
            return self._executor.submit(self._run, key, fn, *args)
        except BaseException:
            self._done(key)
            raise

    def load_checkpoint(self, path: PathLike) -> bytes:
        """Wait for pending saves to ``path``, then load it with the wrapped backend.

        Args:
            path: The checkpoint to load.

        Returns:
            Its bytes.

        Raises:
            OSError: an earlier background save failed (raised once; nothing is loaded).
            FileNotFoundError, CorruptCheckpointError: from the wrapped backend.
        """
        self._wait_path(path)
        self._raise_pending_error()
        return self.checkpoint_io.load_checkpoint(path)

    def remove_checkpoint(self, path: PathLike) -> None:
        """Wait for pending saves to ``path``, then remove it with the wrapped backend.

        Args:
            path: The checkpoint to remove.

        Raises:
            OSError: an earlier background save failed (raised once; nothing is removed).
        """
        self._wait_path(path)
        self._raise_pending_error()
        self.checkpoint_io.remove_checkpoint(path)

    def list_dir(self, directory: PathLike) -> list[str]:
        """List ``directory`` with the wrapped backend (pending saves are not waited for).

        Args:
            directory: The directory to list.

        Returns:
            Entry names.
        """
        return self.checkpoint_io.list_dir(directory)

    def is_pending(self, path: PathLike) -> bool:
        """Tell whether a save to ``path`` is queued or running.

        Args:
            path: A checkpoint path.

        Returns:
            ``True`` until the last queued save to ``path`` has finished.
        """
        with self._cond:
            return self._pending.get(_key(path), 0) > 0

    def wait(self) -> None:
        """Block until every queued save has finished.

        Raises:
            OSError: (or whatever the wrapped backend raised) a background save failed and this
                error has not been raised before.
        """
        with self._cond:
            self._cond.wait_for(lambda: not self._pending)
        self._raise_pending_error()

    def close(self) -> None:
        """Drain the queue, stop the writer thread and tear down the wrapped backend. Idempotent.

        Raises:
            OSError: a background save failed and this error has not been raised before.
        """
        if not self._closed:
            self._closed = True
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            self.checkpoint_io.teardown()
        self._raise_pending_error()

    def teardown(self) -> None:
        """Same as :meth:`close`."""
        self.close()

    def __enter__(self) -> AsyncCheckpointIO:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # do not hide the exception already in flight
            self.close()
        except BaseException as close_exc:
            logger.error("a background checkpoint save failed: %s", close_exc)

    def _run(self, key: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except BaseException as exc:
            with self._cond:
                if self._error is None:
                    self._error = exc
                else:
                    logger.error("another background checkpoint save failed: %s", exc)
            raise
        finally:
            self._done(key)

    def _done(self, key: str) -> None:
        with self._cond:
            n = self._pending.get(key, 0) - 1
            if n > 0:
                self._pending[key] = n
            else:
                self._pending.pop(key, None)
            self._cond.notify_all()

    def _wait_path(self, path: PathLike) -> None:
        key = _key(path)
        with self._cond:
            self._cond.wait_for(lambda: self._pending.get(key, 0) == 0)

    def _raise_pending_error(self) -> None:
        with self._cond:
            error, self._error = self._error, None
        if error is not None:
            raise error


_TASK_KEY = "\0task"  # pending-count key of submitted tasks: never a path


def _key(path: PathLike) -> str:
    p = os.fspath(path)
    return p if "://" in p else os.path.abspath(p)

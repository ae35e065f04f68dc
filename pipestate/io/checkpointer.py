"""Checkpointer: save the training state every ``period`` steps, find the newest valid step, keep the last few.

A step is one file, ``{prefix}-{step:012d}.pscpt`` (more digits past step 999,999,999,999), in one
directory. It holds either one pipestate checkpoint (a pipeline, or an iterator over one pipeline: the
bytes ``pipe(checkpoint=...)`` takes) or a *step file* of named parts (:mod:`pipestate.io.step`): the
data position (pipelines, iterators with their counters) together with model, optimizer and trainer
state. Either way the backend writes it atomically, so a step is there with all of its parts or not at
all, and retention deletes all of its parts at once.

One directory scan decides which step is the newest valid one (:meth:`Checkpointer.load_latest` returns
its step with its state); candidates are validated from the highest step down, skipping temp files,
foreign files, files still being written by this process's asynchronous backend, and damaged ones
(each skip is logged), so a crash at any moment leaves a loadable "latest". A Checkpointer only ever
lists, loads or deletes names that match its own prefix exactly. Saves, fallbacks and deletions are
logged on this module's logger (``pipestate.io.checkpointer``).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Mapping, MutableMapping
from concurrent.futures import Future
from typing import Any

from pipestate.checkpoint import decode
from pipestate.errors import CheckpointError
from pipestate.io import parts as parts_mod
from pipestate.io.base import CheckpointIO, PathLike, resolve_checkpoint_io, validate_checkpoint
from pipestate.io.local import LocalCheckpointIO
from pipestate.io.step import StepFile, decode_step, encode, is_step
from pipestate.pipeline import Pipeline

logger = logging.getLogger(__name__)

SUFFIX = ".pscpt"


class CheckpointBytes(bytes):
    """The bytes of a one-pipeline step, as :meth:`Checkpointer.load_latest` returns them.

    They are the checkpoint itself (pass them as ``pipe(checkpoint=...)``), and say where they come from.

    Attributes:
        step: The step they were saved for (resume at ``step + 1``).
        path: The file they were read from.
    """

    step: int
    path: str

    def __new__(cls, blob: bytes, step: int, path: str) -> CheckpointBytes:
        self = super().__new__(cls, blob)
        self.step, self.path = step, path
        return self


class StepState(dict):
    """The parts of a step saved from a mapping, by name, as :meth:`Checkpointer.load_latest` returns them.

    Values: ``bytes`` for bytes and pipeline parts, the iterator's ``state_dict`` (``{"checkpoints":
    [...]}``) for an iterator, the ``state_dict`` for an object saved with one (load it with torch's
    ``load_state_dict``), the data for plain data, ``{path: numpy array}`` for arrays and Keras models.
    A TensorFlow checkpoint part is given as its :class:`~pipestate.io.step.Part` (its files): it restores
    only into objects, passed to ``load_latest``.

    Attributes:
        step: The step they were saved for (resume at ``step + 1``).
        path: The file they were read from.
    """

    step: int
    path: str


class Checkpointer:
    """Periodic, crash-safe checkpoints of the whole training state in one directory.

    Args:
        directory: Where checkpoints go: a local directory or (with an fsspec backend) a URL such as
            ``s3://bucket/run1``. Created on the first save.
        prefix: File-name prefix; checkpoints are ``{prefix}-{step:012d}.pscpt``. Several Checkpointers
            (or processes) can share a directory if their prefixes differ.
        period: :meth:`save` writes only when ``step % period == 0`` (or when forced).
        keep_last: Keep this many most recent *valid* checkpoints and delete older ones of this prefix
            (damaged ones older than the newest valid one too), only once the new one is durable.
            ``None`` keeps all.
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
        self._lock = threading.Lock()
        self._known_valid: dict[str, Any] = {}  # path -> file signature when last seen valid

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

    # ---- saving -----------------------------------------------------------------------------------------
    def save(self, state: Any, step: int, force: bool = False) -> str | None:
        """Save the state for ``step`` if ``step % period == 0`` or ``force``, then apply retention.

        ``state`` is what to resume from:

        * a :class:`~pipestate.Pipeline` (or its checkpoint bytes): written as the pipeline's checkpoint,
          which ``pipe(checkpoint=...)`` restores;
        * a framework iterator (``pipestate.plugin.pytorch``/``jax``): its checkpoints, *with its counters*
          (where the epoch ends, the last batch's padding);
        * a mapping of names to any of those and to other state, saved together as one step file: a
          model, an optimizer or any object with ``state_dict()``/``load_state_dict()`` (saved with
          ``torch.save``), a ``tf.train.Checkpoint`` or Keras/TensorFlow object (TensorFlow's checkpoint
          files), numpy/JAX arrays or pytrees of them (``.npz``), plain data such as trainer counters
          (JSON), or bytes you serialized yourself.

        Saving a pipeline that a framework iterator drives warns: the pipeline's checkpoint does not hold
        the iterator's counters; save the iterator.

        Args:
            state: See above.
            step: The training step (a non-negative integer) the state belongs to: the state *after* it.
            force: Save even when ``step`` is not a multiple of ``period``.

        Returns:
            The path saved to, or ``None`` when this step is skipped.

        Raises:
            ValueError: ``step`` is negative, or bytes given are not a valid pipestate checkpoint
                (``CorruptCheckpointError``/``UnsupportedCheckpointVersionError``, both ValueErrors), or a
                pipeline or iterator was built without ``enable_checkpointing=True``.
            TypeError: ``state`` (or a part of it, named in the message) is none of the kinds above.
            OSError: the backend failed (for an asynchronous backend: an earlier background save).
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step={step!r} must be a non-negative integer")
        if not force and step % self.period != 0:
            return None
        blob, what = self._encode(state, step)
        path = self.path_for(step)
        submit = getattr(self.checkpoint_io, "submit", None)
        if callable(submit):
            # An asynchronous backend: one background task saves, then (once the save returned, i.e. the
            # checkpoint is durable, and only if it succeeded) applies retention. Errors are raised by the
            # backend's next call, like a failed save.
            self._pending[path] = submit(functools.partial(self._save_and_retain, blob, path, what), path=path)
            return path
        result = self.checkpoint_io.save_checkpoint(blob, path)
        if isinstance(result, Future):
            self._pending[path] = result
            result.add_done_callback(lambda f: f.exception() is None and self._log_saved(path, what, len(blob)))
        else:
            self._log_saved(path, what, len(blob))
        self._remember_valid(path)
        self._apply_retention()
        return path

    def _encode(self, state: Any, step: int) -> tuple[bytes, str]:
        """The bytes of a step and a description of what it holds (for the log)."""
        if isinstance(state, (bytes, bytearray, memoryview)):
            blob = bytes(state)
            validate_checkpoint(
                blob, where=f"refusing to save step {step}",
                advice="Pass Pipeline.checkpoint() bytes, the pipeline or iterator itself, or a mapping of parts.",
            )
            return blob, "a checkpoint"
        if isinstance(state, Pipeline):
            return parts_mod.to_part("", state, stacklevel=4).blobs[0], "a pipeline"
        if parts_mod._is_iterator(state):
            cpts = state.checkpoints()
            if len(cpts) == 1:
                return cpts[0], f"a {type(state).__name__}"
            part = parts_mod.to_part("iterator", state)
            return encode(step, [part], _version()), f"a {type(state).__name__} over {len(cpts)} pipelines"
        if isinstance(state, Mapping):
            if not state:
                raise ValueError("Checkpointer.save got an empty mapping: give at least one part")
            for name in state:
                if not isinstance(name, str) or not name:
                    raise TypeError(f"part names must be non-empty strings; got {name!r}")
            built = [parts_mod.to_part(name, value, stacklevel=4) for name, value in state.items()]
            text = ", ".join(f"{p.name} ({p.kind})" for p in built)
            return encode(step, built, _version()), f"parts {text}"
        method = getattr(state, "checkpoint", None)
        if callable(method):  # duck-typed: an object whose checkpoint() returns pipestate checkpoint bytes
            blob = method()
            if not isinstance(blob, (bytes, bytearray, memoryview)):
                raise TypeError(f"{type(state).__name__}.checkpoint() returned {type(blob).__name__}, not bytes")
            return self._encode(blob, step)
        raise TypeError(
            f"Checkpointer.save takes checkpoint bytes, a pipeline, a framework iterator (e.g. "
            f"pipestate.plugin.pytorch.DALIGenericIterator) or a mapping of named parts such as "
            f"{{'data': iterator, 'model': model, 'optimizer': optimizer}}; not a {type(state).__name__}"
        )

    def _log_saved(self, path: str, what: str, size: int) -> None:
        logger.info("saved %s to %s (%s)", what, path, parts_mod.describe_size(size))

    # ---- finding and loading ------------------------------------------------------------------------------
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

        The checkpoint saved at step ``s`` holds the state *after* step ``s``, so a training loop resumes
        at ``s + 1``. To resume, prefer the ``step`` that :meth:`load_latest` returns with the state: one
        scan decides both, while a save completing between two calls could make them disagree.

        Returns:
            The step number, or ``None`` when there is no valid checkpoint.

        Raises:
            OSError: as for :meth:`latest`.
        """
        found = self._find_latest()
        return found[0] if found else None

    def load_latest(self, into: Any = None) -> Any:
        """Load the newest valid step (see :meth:`latest`); restore it into ``into`` if given.

        With ``into`` — what was given to :meth:`save` (a pipeline, an iterator, or a mapping with the
        same names; a mapping may name only some of the parts) — every part is restored: pipelines,
        iterators (their counters included), objects with ``load_state_dict`` and TensorFlow objects in
        place; bytes, plain data and arrays (JAX pytrees are immutable) are *replaced* in the mapping, so
        read them back from it. Everything is checked before anything changes, and the pipestate parts
        are rolled back if a later part fails.

        Args:
            into: ``None``, a pipeline, a framework iterator, or a mutable mapping of names to objects.

        Returns:
            With ``into``: the step restored (resume at ``step + 1``), or ``None`` when there is no valid
            checkpoint (nothing changed). Without: ``None``, or a :class:`CheckpointBytes` (the
            checkpoint of a step saved from one pipeline or iterator, with ``.step``) or a
            :class:`StepState` (the parts of a step saved from a mapping, with ``.step``).

        Raises:
            CheckpointMismatchError: a part named in ``into`` is missing from the step, or does not fit
                its object (another pipeline, other iterator options, another structure of arrays).
            TypeError: ``into`` is not one of the above, or does not fit how the step was saved (e.g. a
                pipeline for a step of several parts).
            OSError: as for :meth:`latest`.
        """
        found = self._find_latest()
        if found is None:
            return None
        step, path, blob, decoded = found
        if into is None:
            if decoded is None:
                return CheckpointBytes(blob, step, path)
            state = StepState({part.name: parts_mod.load_value(part) for part in decoded.parts})
            state.step, state.path = step, path
            return state
        self._restore(step, path, blob, decoded, into)
        return step

    def _restore(self, step: int, path: str, blob: bytes, decoded: StepFile | None, into: Any) -> None:
        if isinstance(into, Mapping):
            if not isinstance(into, MutableMapping):
                raise TypeError("load_latest(into) takes a mutable mapping (a dict): values are replaced in it")
            if decoded is None:
                raise TypeError(
                    f"step {step} ({path}) holds one pipeline's checkpoint, not named parts: restore it with "
                    "load_latest(pipeline) or load_latest(iterator)"
                )
            parts = {p.name: p for p in decoded.parts}
            restorer = parts_mod.Restorer(step, parts, into)
        elif isinstance(into, Pipeline) or parts_mod._is_iterator(into):
            if decoded is None:
                if isinstance(into, Pipeline):
                    parts_mod.warn_if_driven(into, "", "restore", 4)
                    into.restore(blob)
                else:
                    into.load_state_dict({"checkpoints": [blob]})
                logger.info("restored step %d from %s", step, path)
                return
            if len(decoded.parts) != 1:
                raise TypeError(
                    f"step {step} ({path}) holds the parts {', '.join(map(repr, decoded.names))}: restore it "
                    "with load_latest({name: object, ...})"
                )
            only = decoded.parts[0]
            restorer = parts_mod.Restorer(step, {only.name: only}, {only.name: into})
        else:
            raise TypeError(
                f"load_latest(into) takes a pipeline, a framework iterator or a mapping of names to objects, "
                f"not a {type(into).__name__}"
            )
        restorer.check()
        restorer.apply()
        logger.info("restored step %d from %s", step, path)

    # ---- lifecycle ----------------------------------------------------------------------------------------
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

    # ---- internals ----------------------------------------------------------------------------------------
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

    def _find_latest(self) -> tuple[int, str, bytes, StepFile | None] | None:
        """One scan, one decision: the newest step whose file is valid, with its bytes."""
        skipped = []
        for step, path in sorted(self._entries(), reverse=True):
            loaded = self._load_valid(path)
            if loaded is not None:
                if skipped:
                    logger.warning(
                        "falling back to step %d (%s): newer checkpoint(s) of steps %s are damaged or unreadable",
                        step, path, ", ".join(map(str, skipped)),
                    )
                return (step, path, *loaded)
            skipped.append(step)
        if skipped:
            logger.warning("no valid checkpoint in %s: steps %s are all damaged", self.directory,
                           ", ".join(map(str, skipped)))
        return None

    def _load_valid(self, path: str, io: CheckpointIO | None = None) -> tuple[bytes, StepFile | None] | None:
        try:
            blob = (io or self.checkpoint_io).load_checkpoint(path)
            decoded = decode_step(blob) if is_step(blob) else None
            if decoded is None:
                decode(blob)  # also for backends that do not validate
        except (CheckpointError, FileNotFoundError, IsADirectoryError) as exc:
            logger.warning("skipping checkpoint %s: %s", path, exc)
            with self._lock:
                self._known_valid.pop(path, None)
            return None
        self._remember_valid(path)
        return blob, decoded

    def _signature(self, path: str) -> Any:
        if self._is_url:
            return "url"  # trusted while this object knows it (it saved or validated it)
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ino)

    def _remember_valid(self, path: str) -> None:
        signature = self._signature(path)
        if signature is not None:
            with self._lock:
                self._known_valid[path] = signature

    def _is_valid(self, path: str, io: CheckpointIO) -> bool:
        """Whether ``path`` holds a valid checkpoint; files seen valid and unchanged since are not read again."""
        with self._lock:
            known = self._known_valid.get(path)
        if known is not None and known == self._signature(path):
            return True
        return self._load_valid(path, io) is not None

    def _save_and_retain(self, blob: bytes, path: str, what: str, io: CheckpointIO) -> None:
        io.save_checkpoint(blob, path)
        self._log_saved(path, what, len(blob))
        self._remember_valid(path)
        self._apply_retention(io, saved=path)  # this task's future is not done yet, the file is durable

    def _apply_retention(self, io: CheckpointIO | None = None, saved: str | None = None) -> None:
        """Keep the ``keep_last`` newest valid checkpoints; delete older ones and damaged ones older than
        the newest valid one. ``io`` is the backend to use (an asynchronous one's wrapped backend when this
        runs on its writer thread), ``saved`` a checkpoint this thread has just saved (valid, durable)."""
        if self.keep_last is None:
            return
        io = io or self.checkpoint_io
        entries = sorted(self._entries(io, saved), reverse=True)
        if len(entries) <= self.keep_last:
            return
        kept = 0
        doomed = []
        for step, path in entries:
            if kept >= self.keep_last:
                doomed.append((step, path, "older than the last kept"))
            elif path == saved or self._is_valid(path, io):
                kept += 1
            elif kept:
                doomed.append((step, path, "damaged"))
            else:
                logger.warning("keeping the damaged checkpoint %s: no valid checkpoint is newer", path)
        for step, path, why in doomed:
            io.remove_checkpoint(path)
            with self._lock:
                self._known_valid.pop(path, None)
            logger.info("deleted the checkpoint of step %d (%s): %s", step, why, path)


def _version() -> str:
    from pipestate import __version__

    return __version__

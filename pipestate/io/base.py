"""The CheckpointIO protocol: how checkpoint bytes reach storage and come back.

A backend implements three calls (``save_checkpoint``, ``load_checkpoint``, ``remove_checkpoint``) and
may implement ``teardown`` and ``list_dir``. Backends store bytes verbatim; integrity is the checkpoint
format's job (its envelope carries a length and a checksum), so the built-in backends validate what they
load with :func:`validate_checkpoint` and raise :class:`~pipestate.errors.CorruptCheckpointError` for
damaged bytes.

Error policy of the built-in backends: an operating-system failure surfaces as the *original*
``OSError`` subclass with its ``errno`` preserved (``PermissionError`` for ``EACCES``, ``OSError`` with
``errno.ENOSPC`` for a full disk, ...), re-raised with a message that names the checkpoint path and says
what to do; the low-level exception is kept as ``__cause__``. Damaged bytes raise
``CorruptCheckpointError`` (a ``ValueError``), naming the path.
"""

from __future__ import annotations

import abc
import errno as errno_mod
import importlib
import os
from collections.abc import Mapping
from typing import Any, Union

from pipestate.checkpoint import decode
from pipestate.errors import CheckpointError, CorruptCheckpointError, UnsupportedCheckpointVersionError

PathLike = Union[str, "os.PathLike[str]"]

MAX_CHECKPOINT_BYTES = 2**31 - 1
"""The largest checkpoint a load accepts: a protobuf message cannot exceed 2 GiB, so anything larger is
refused as corrupt before it is read into memory."""

_ADVICE = {
    errno_mod.ENOSPC: "free space on that filesystem or save elsewhere",
    errno_mod.EDQUOT: "free space within your quota or save elsewhere",
    errno_mod.EACCES: "check the permissions of the file and its directory",
    errno_mod.EPERM: "check the permissions of the file and its directory",
    errno_mod.EROFS: "the filesystem is read-only; save elsewhere",
    errno_mod.EIO: "the storage reported an I/O error; check the device and save elsewhere",
    errno_mod.ENOENT: "check that the path exists",
}


class CheckpointIO(abc.ABC):
    """Base class of checkpoint storage backends.

    Subclasses implement :meth:`save_checkpoint`, :meth:`load_checkpoint` and :meth:`remove_checkpoint`;
    :meth:`teardown` and :meth:`list_dir` have defaults. See ``docs/plugins.md`` for a worked example.
    """

    @abc.abstractmethod
    def save_checkpoint(self, data: bytes, path: PathLike, storage_options: Mapping[str, Any] | None = None) -> Any:
        """Store ``data`` at ``path`` so that a crash never leaves a partial file visible there.

        Args:
            data: The checkpoint bytes, stored verbatim.
            path: Where to store them (a local path or, for URL backends, a URL).
            storage_options: Backend-specific options for this one call.

        Returns:
            ``None`` once the bytes are durable, or (asynchronous backends) a
            ``concurrent.futures.Future`` that completes when they are.

        Raises:
            OSError: the storage failed; the previous content of ``path`` is intact.
        """

    @abc.abstractmethod
    def load_checkpoint(self, path: PathLike) -> bytes:
        """Return the bytes stored at ``path``.

        Args:
            path: What :meth:`save_checkpoint` was given.

        Returns:
            The checkpoint bytes.

        Raises:
            FileNotFoundError: nothing (committed) is stored at ``path``.
            CorruptCheckpointError: the stored bytes are not an intact pipestate checkpoint.
        """

    @abc.abstractmethod
    def remove_checkpoint(self, path: PathLike) -> None:
        """Delete the checkpoint at ``path``; a missing checkpoint is not an error.

        Args:
            path: What :meth:`save_checkpoint` was given.
        """

    def teardown(self) -> None:  # noqa: B027 - optional hook, intentionally empty
        """Release resources (threads, connections). The default does nothing."""

    def list_dir(self, directory: PathLike) -> list[str]:
        """List the names (not paths) of the visible entries in ``directory``.

        :class:`~pipestate.io.Checkpointer` uses it to find checkpoints. The default lists a local
        directory; URL backends override it. A missing directory lists as empty.

        Args:
            directory: A directory given to this backend's paths.

        Returns:
            Entry names, in no particular order.
        """
        try:
            return os.listdir(directory)
        except FileNotFoundError:
            return []


def validate_checkpoint(
    blob: bytes,
    path: PathLike | None = None,
    *,
    where: str | None = None,
    advice: str = "The file is damaged or is not a pipestate checkpoint; restore an earlier one "
    "(Checkpointer.latest() skips damaged files).",
) -> bytes:
    """Check that ``blob`` is an intact pipestate checkpoint.

    Args:
        blob: The bytes.
        path: Where they were read from, named in the error (unless ``where`` is given).
        where: What to name in the error instead of ``path``.
        advice: What the error tells the user to do about damaged bytes.

    Returns:
        ``blob`` unchanged.

    Raises:
        CorruptCheckpointError: the bytes are empty, truncated, altered or not a pipestate checkpoint.
        UnsupportedCheckpointVersionError: the bytes were written in a format version this pipestate
            does not read.
    """
    where = where if where is not None else os.fspath(path)
    try:
        decode(blob)
    except UnsupportedCheckpointVersionError as exc:
        raise UnsupportedCheckpointVersionError(f"{where}: {exc}") from exc
    except CheckpointError as exc:
        raise CorruptCheckpointError(f"{where}: {exc}. {advice}") from exc
    return blob


def reraise_os_error(exc: OSError, path: PathLike, action: str) -> OSError:
    """Build an exception of the same ``OSError`` subclass and errno, naming ``path`` and a remedy.

    Args:
        exc: The low-level error.
        path: The checkpoint path being accessed.
        action: What was being done, e.g. ``"saving the checkpoint"``.

    Returns:
        The new exception (raise it ``from exc``). If the subclass cannot be rebuilt, ``exc`` itself.
    """
    reason = exc.strerror or str(exc)
    advice = _ADVICE.get(exc.errno or -1, "check the storage and retry")
    message = f"{action} failed: {reason} ({advice})"
    try:
        new = type(exc)(exc.errno, message, os.fspath(path))
    except Exception:  # an exotic OSError subclass with another constructor
        return exc
    return new


def resolve_checkpoint_io(spec: CheckpointIO | str | None, default: type[CheckpointIO]) -> CheckpointIO:
    """Turn a ``checkpoint_io`` option into a backend instance.

    Args:
        spec: An instance, a fully-qualified class name (``"mypkg.io.MyIO"`` or ``"mypkg.io:MyIO"``) of
            a class constructible without arguments, or ``None`` for ``default()``.
        default: The class to instantiate when ``spec`` is ``None``.

    Returns:
        A backend instance.

    Raises:
        ValueError: ``spec`` is a string that does not name an importable class.
        TypeError: ``spec`` is not a CheckpointIO (or does not name one).
    """
    if spec is None:
        return default()
    if isinstance(spec, str):
        cls = _import_class(spec)
        if not (isinstance(cls, type) and _is_checkpoint_io(cls)):
            raise TypeError(
                f"checkpoint_io={spec!r} names {cls!r}, which is not a CheckpointIO class; name a subclass "
                "of pipestate.io.CheckpointIO"
            )
        return cls()
    if isinstance(spec, type) and _is_checkpoint_io(spec):
        raise TypeError(
            f"checkpoint_io={spec.__name__} is a class; pass an instance ({spec.__name__}()) or its "
            "fully-qualified name as a string"
        )
    if _is_checkpoint_io(spec):
        return spec
    raise TypeError(
        f"checkpoint_io must be a CheckpointIO instance or a fully-qualified class name, not {type(spec).__name__}"
    )


def _is_checkpoint_io(obj: Any) -> bool:
    if isinstance(obj, type) and issubclass(obj, CheckpointIO) or isinstance(obj, CheckpointIO):
        return True
    return all(callable(getattr(obj, m, None)) for m in ("save_checkpoint", "load_checkpoint", "remove_checkpoint"))


def _import_class(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise ValueError(
            f"checkpoint_io={spec!r} is not a fully-qualified class name; write it as 'package.module.Class'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"checkpoint_io={spec!r}: cannot import module {module_name!r} ({exc}); check the name and that "
            "the package is installed"
        ) from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ValueError(
                f"checkpoint_io={spec!r}: module {module_name!r} has no attribute {attr!r}; check the class name"
            ) from exc
    return obj

"""Crash-safe checkpoint files on a local (POSIX) filesystem.

A save writes a temp file in the *same directory* as the target, fsyncs it, ``os.replace``-s it over
the target and fsyncs the directory. A reader therefore sees the old file or the new one, never a
mixture, and once ``save_checkpoint`` returns the new file survives a power loss (as far as the
filesystem honours fsync).

Temp files are named ``.{name}.tmp-{host}-{pid}-{random}`` (``host`` is 8 hex digits of the host
name's CRC32). A temp name never exceeds ``NAME_MAX`` (255 bytes): when ``name`` is too long for the
suffix to fit, it is shortened to its start plus ``~`` and 16 hex digits of its SHA-256, so every valid
target name can be saved. A temp file is *stale* and may be deleted when its writer is certainly gone: it was
written on this host by a process that no longer exists, or (another host, or a pid that is alive
again and may have been reused) it has not been modified for ``stale_temp_age`` seconds. A live
writer's temp file is never touched, so two processes can checkpoint into one directory.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import secrets
import socket
import stat
import time
import zlib
from collections.abc import Mapping
from typing import Any

from pipestate.errors import CorruptCheckpointError
from pipestate.io.base import (
    MAX_CHECKPOINT_BYTES,
    CheckpointIO,
    PathLike,
    reraise_os_error,
    validate_checkpoint,
)

logger = logging.getLogger("pipestate.io")

TEMP_RE = re.compile(r"\.(?P<target>.+)\.tmp-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[0-9a-f]{8}\Z", re.DOTALL)
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"
_CAN_FSYNC_DIR = os.name == "posix"
NAME_MAX = 255  # bytes in one file name: Linux, macOS and the BSDs
_OPEN_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def temp_name(target_name: str) -> str:
    """Return a fresh temp-file name for writing ``target_name`` in the same directory.

    Args:
        target_name: The final file name (no directory).

    Returns:
        ``.{target_name}.tmp-{host}-{pid}-{random}``, at most :data:`NAME_MAX` bytes: a target name too
        long for that is shortened to its start, ``~`` and 16 hex digits of its SHA-256.
    """
    suffix = f".tmp-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
    budget = NAME_MAX - 1 - len(suffix)
    encoded = os.fsencode(target_name)
    if len(encoded) > budget:
        digest = hashlib.sha256(encoded).hexdigest()[:16]
        keep = budget - 1 - len(digest)
        base = os.fsdecode(encoded[:keep])
        while len(os.fsencode(base)) > keep:  # a multi-byte character was cut: drop it whole
            base = base[:-1]
        target_name = f"{base}~{digest}"
    return f".{target_name}{suffix}"


def is_temp_name(name: str) -> bool:
    """Tell whether ``name`` is a temp file written by :class:`LocalCheckpointIO`.

    Args:
        name: A file name (no directory).

    Returns:
        ``True`` for names made by :func:`temp_name`.
    """
    return TEMP_RE.match(name) is not None


def fsync_dir(directory: PathLike) -> None:
    """Flush a directory's entries (new, renamed, deleted files) to stable storage.

    Args:
        directory: The directory to flush. Ignored where directories cannot be fsynced (Windows).

    Raises:
        OSError: the directory cannot be opened or flushed.
    """
    if not _CAN_FSYNC_DIR:
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


class LocalCheckpointIO(CheckpointIO):
    """Atomic, durable checkpoint files on the local filesystem.

    The bytes are stored verbatim: a file it wrote restores with
    ``pipe(checkpoint=open(path, "rb").read())``.

    Args:
        fsync: Flush the file and its directory before returning (default). ``False`` keeps
            atomicity (readers never see a partial file) but not durability across a power loss.
        stale_temp_age: Seconds after which a temp file whose writer cannot be proven dead (another
            host, or a reused pid) is considered abandoned and deleted.
    """

    def __init__(self, fsync: bool = True, stale_temp_age: float = 3600.0) -> None:
        self.fsync = fsync
        self.stale_temp_age = stale_temp_age

    def save_checkpoint(self, data: bytes, path: PathLike, storage_options: Mapping[str, Any] | None = None) -> None:
        """Write ``data`` to ``path`` atomically and durably, creating parent directories.

        The bytes must be a checkpoint that :meth:`load_checkpoint` accepts (it is checked first), so
        that what is saved can always be loaded.

        Args:
            data: The checkpoint bytes, stored verbatim.
            path: The target file.
            storage_options: Not supported by this backend; must be ``None`` or empty.

        Raises:
            OSError: of the original subclass and errno (``PermissionError``, ``errno.ENOSPC``, ...),
                naming ``path``. The previous file at ``path`` is intact and no temp file remains,
                except when only the final directory fsync failed: then the new file is in place
                but may not survive a power loss.
            TypeError: ``data`` is not bytes-like, or ``storage_options`` were given.
            CorruptCheckpointError: ``data`` is not an intact pipestate checkpoint (what
                :meth:`load_checkpoint` would refuse); nothing is written.
            UnsupportedCheckpointVersionError: ``data`` is in a format version this pipestate does not
                read; nothing is written.
        """
        if storage_options:
            raise TypeError(
                f"LocalCheckpointIO takes no storage_options (got {sorted(storage_options)}); "
                "use FsspecCheckpointIO for remote storage options"
            )
        view = _as_bytes_view(data)
        validate_before_save(view, os.path.abspath(os.fspath(path)))
        self.write_bytes(view, path)

    def write_bytes(self, data: bytes | memoryview, path: PathLike) -> None:
        """Write any ``data`` to ``path`` atomically and durably (as :meth:`save_checkpoint`, without
        checking that the bytes are a pipestate checkpoint: for other formats, e.g. Lightning's).

        Args:
            data: The bytes, stored verbatim.
            path: The target file (parent directories are created).

        Raises:
            OSError: as :meth:`save_checkpoint`; the previous file at ``path`` is intact.
            TypeError: ``data`` is not bytes-like.
        """
        view = _as_bytes_view(data)
        path = os.path.abspath(os.fspath(path))
        directory, name = os.path.split(path)
        try:
            self._makedirs(directory)
            tmp = os.path.join(directory, temp_name(name))
            self._write_temp(tmp, view)
            try:
                os.replace(tmp, path)
            except BaseException:
                _unlink_quietly(tmp)
                raise
        except OSError as exc:
            raise reraise_os_error(exc, path, f"saving the checkpoint {path!r}") from exc
        if self.fsync:
            try:
                fsync_dir(directory)
            except OSError as exc:
                raise reraise_os_error(
                    exc,
                    path,
                    f"flushing the directory of the new checkpoint {path!r} (the file is in "
                    "place but may not survive a power loss)",
                ) from exc
        self.clean_stale_temp_files(directory)

    def load_checkpoint(self, path: PathLike) -> bytes:
        """Read and validate the checkpoint at ``path``.

        Args:
            path: The checkpoint file.

        Returns:
            Its bytes.

        Raises:
            FileNotFoundError: there is no file at ``path``.
            IsADirectoryError: ``path`` is a directory.
            OSError: the file cannot be read (original subclass and errno).
            CorruptCheckpointError: the file is empty, truncated, altered, larger than any checkpoint
                (:data:`~pipestate.io.base.MAX_CHECKPOINT_BYTES`), not a regular file (a FIFO or a
                device is refused without blocking on it), or not a pipestate checkpoint.
        """
        try:
            blob = read_checkpoint_file(path)
        except OSError as exc:
            raise reraise_os_error(exc, path, f"loading the checkpoint {os.fspath(path)!r}") from exc
        return validate_checkpoint(blob, path)

    def remove_checkpoint(self, path: PathLike) -> None:
        """Delete the file at ``path``; a missing file is not an error.

        Args:
            path: The checkpoint file.

        Raises:
            OSError: the file exists but cannot be deleted.
        """
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise reraise_os_error(exc, path, f"removing the checkpoint {os.fspath(path)!r}") from exc

    def clean_stale_temp_files(self, directory: PathLike) -> list[str]:
        """Delete temp files in ``directory`` whose writers are gone (see the module docstring).

        Failures to delete are logged, not raised: cleaning is best effort.

        Args:
            directory: The directory to scan.

        Returns:
            The names deleted.
        """
        removed = []
        try:
            names = os.listdir(directory)
        except OSError:
            return removed
        now = time.time()
        for name in names:
            m = TEMP_RE.match(name)
            if m is None:
                continue
            pid = int(m["pid"])
            if m["host"] == _HOST and pid == os.getpid():
                continue  # ours: possibly being written by another thread right now
            full = os.path.join(directory, name)
            if not (m["host"] == _HOST and not _pid_alive(pid)):
                try:
                    age = now - os.stat(full).st_mtime
                except OSError:
                    continue
                if age < self.stale_temp_age:
                    continue
            try:
                os.unlink(full)
                removed.append(name)
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("could not delete the stale temp file %s: %s", full, exc)
        if removed:
            logger.info("deleted %d stale checkpoint temp file(s) in %s", len(removed), directory)
        return removed

    def _makedirs(self, directory: str) -> None:
        missing = []
        d = directory
        while not os.path.isdir(d):
            missing.append(d)
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
        for d in reversed(missing):
            try:
                os.mkdir(d)
            except FileExistsError:
                continue
            if self.fsync:
                fsync_dir(os.path.dirname(d))

    def _write_temp(self, tmp: str, view: memoryview) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags, 0o666)
        try:
            while view:
                n = os.write(fd, view)
                if n <= 0:
                    raise OSError(errno.EIO, "the write made no progress")
                view = view[n:]
            if self.fsync:
                os.fsync(fd)
        except BaseException:
            _close_quietly(fd)
            _unlink_quietly(tmp)
            raise
        try:
            os.close(fd)
        except BaseException:
            _unlink_quietly(tmp)
            raise


def validate_before_save(data: Any, path: PathLike) -> None:
    """Refuse to save bytes that a load would refuse (a built-in backend's save/load symmetry).

    Args:
        data: The bytes about to be saved.
        path: Where they were to go, named in the error.

    Raises:
        CorruptCheckpointError / UnsupportedCheckpointVersionError: as :func:`validate_checkpoint`.
    """
    validate_checkpoint(
        data,
        where=f"refusing to save {os.fspath(path)!r}",
        advice="Only pipestate checkpoints (the bytes of Pipeline.checkpoint()) can be saved, so that every "
        "saved checkpoint loads; nothing was written.",
    )


def read_checkpoint_file(path: PathLike) -> bytes:
    """Read a whole checkpoint file, refusing what cannot be one without blocking or exhausting memory.

    Args:
        path: The file.

    Returns:
        Its bytes.

    Raises:
        CorruptCheckpointError: ``path`` is not a regular file (a FIFO, a device ...), or is larger than
            :data:`~pipestate.io.base.MAX_CHECKPOINT_BYTES`.
        OSError: it cannot be opened or read (``IsADirectoryError`` for a directory).
    """
    fd = os.open(path, _OPEN_READ)  # non-blocking: opening a FIFO must not wait for a writer
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(st.st_mode):
            raise CorruptCheckpointError(
                f"{os.fspath(path)}: not a regular file ({_file_kind(st.st_mode)}); a checkpoint is a regular "
                "file. Point to the checkpoint file itself."
            )
        if st.st_size > MAX_CHECKPOINT_BYTES:
            raise _too_large(path, st.st_size)
        chunks, total, want = [], 0, st.st_size + 1  # one byte more than stat says: notice growth
        while chunk := os.read(fd, want):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_CHECKPOINT_BYTES:
                raise _too_large(path, total)
            want = min(1 << 20, MAX_CHECKPOINT_BYTES + 1 - total)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_large(path: PathLike, size: int) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"{os.fspath(path)}: {size} bytes or more is larger than any pipestate checkpoint (at most "
        f"{MAX_CHECKPOINT_BYTES} bytes); this is not a checkpoint. Restore an earlier one."
    )


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _as_bytes_view(data: Any) -> memoryview:
    try:
        return memoryview(data).cast("B")
    except TypeError:
        raise TypeError(f"checkpoint data must be bytes-like, not {type(data).__name__}") from None


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not delete the temp file %s: %s", path, exc)

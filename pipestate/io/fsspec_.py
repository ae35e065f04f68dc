"""Checkpoints on any fsspec filesystem (``memory://``, ``file://``, ``s3://``, ``gs://`` ...).

fsspec is an optional dependency (``pip install pipestate[fsspec]``, ``pipestate[s3]`` for S3) and is
imported only when this backend is used.

How a save is committed depends on the filesystem:

- **rename** (local filesystems, ``file://``): delegated to :class:`LocalCheckpointIO` — temp file in
  the same directory, fsync, atomic rename, directory fsync.
- **marker** (object stores and everything else, where rename is a copy and not atomic): first delete
  the old marker, then write the data object at ``path``, then write the *marker* ``path + ".commit"``
  last. The marker is a small JSON document holding the data's size and CRC32. A checkpoint is visible
  only with a marker that matches its data: ``load_checkpoint`` raises ``FileNotFoundError`` without a
  marker and ``CorruptCheckpointError`` when the data does not match, and ``list_dir`` hides data without
  a marker (and hides the markers themselves). Overwriting an existing path makes it invisible until the
  new marker lands; :class:`~pipestate.io.Checkpointer` never overwrites (one name per step).

  Before anything else a save writes an *intent* object ``path + ".pending"`` (host, pid, time) and
  deletes it after the commit. An intent left behind marks an interrupted save: after every save,
  :meth:`FsspecCheckpointIO.clean_orphans` deletes the data of interrupted saves in that directory (and
  their intents) once the writer is certainly gone — a dead process on this host, or an intent older than
  ``orphan_age`` seconds. Only objects named by an intent are deleted; foreign files never are.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zlib
from collections.abc import Mapping
from typing import Any

from pipestate.errors import CorruptCheckpointError
from pipestate.io.base import MAX_CHECKPOINT_BYTES, CheckpointIO, PathLike, reraise_os_error, validate_checkpoint
from pipestate.io.local import _HOST, LocalCheckpointIO, _pid_alive, is_temp_name, temp_name, validate_before_save

logger = logging.getLogger("pipestate.io")

MARKER_SUFFIX = ".commit"
PENDING_SUFFIX = ".pending"
_MARKER_KIND = "pipestate-checkpoint-commit"
_PENDING_KIND = "pipestate-checkpoint-pending"
_MAX_MARKER_BYTES = 1 << 16


class FsspecCheckpointIO(CheckpointIO):
    """Store checkpoints at fsspec URLs.

    Args:
        storage_options: Filesystem options (credentials, ``endpoint_url`` ...), passed to
            ``fsspec.core.url_to_fs`` for every URL.
        commit: ``"auto"`` (rename on local filesystems, marker elsewhere), ``"rename"`` or ``"marker"``.
        fsync: Forwarded to the local backend in rename mode.
        orphan_age: Marker mode: seconds after which the data of an interrupted save whose writer cannot
            be proven dead (another host, or this process) is deleted. Rename mode: the local backend's
            ``stale_temp_age``.

    Raises:
        ImportError: fsspec is not installed.
        ValueError: ``commit`` is not one of the three values.
    """

    def __init__(
        self,
        storage_options: Mapping[str, Any] | None = None,
        commit: str = "auto",
        fsync: bool = True,
        orphan_age: float = 3600.0,
    ) -> None:
        if commit not in ("auto", "rename", "marker"):
            raise ValueError(f"commit must be 'auto', 'rename' or 'marker', not {commit!r}")
        try:
            import fsspec  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "FsspecCheckpointIO needs fsspec: pip install 'pipestate[fsspec]' (or 'pipestate[s3]')"
            ) from exc
        self.storage_options = dict(storage_options or {})
        self.commit = commit
        self.orphan_age = orphan_age
        self._local = LocalCheckpointIO(fsync=fsync, stale_temp_age=orphan_age)

    def save_checkpoint(self, data: bytes, path: PathLike, storage_options: Mapping[str, Any] | None = None) -> None:
        """Write ``data`` to the URL ``path`` and commit it (see the module docstring).

        Args:
            data: The checkpoint bytes, stored verbatim.
            path: An fsspec URL or a local path.
            storage_options: Extra keyword arguments for ``fs.open(path, "wb", ...)`` in marker mode
                (e.g. S3 ``ACL``); not supported in rename mode.

        Raises:
            OSError: the storage failed (original subclass and errno, naming ``path``); in marker mode
                the checkpoint at ``path`` is then invisible.
            CorruptCheckpointError / UnsupportedCheckpointVersionError: ``data`` is not a checkpoint that
                :meth:`load_checkpoint` accepts; nothing is written.
        """
        fs, fs_path, rename = self._resolve(path)
        if rename:
            self._local.save_checkpoint(data, fs_path, storage_options)
            return
        url = os.fspath(path)
        blob = bytes(memoryview(data).cast("B"))
        validate_before_save(blob, url)
        marker = {"kind": _MARKER_KIND, "version": 1, "size": len(blob), "crc32": zlib.crc32(blob)}
        intent = {"kind": _PENDING_KIND, "version": 1, "host": _HOST, "pid": os.getpid(), "time": time.time()}
        try:
            _put_whole(fs, fs_path + PENDING_SUFFIX, json.dumps(intent).encode())
            _rm_quietly(fs, fs_path + MARKER_SUFFIX)
            with fs.open(fs_path, "wb", **dict(storage_options or {})) as f:
                f.write(blob)
            _put_whole(fs, fs_path + MARKER_SUFFIX, json.dumps(marker).encode())
        except OSError as exc:
            for leftover in (fs_path, fs_path + PENDING_SUFFIX):  # best effort; else clean_orphans will
                try:
                    _rm_quietly(fs, leftover)
                except OSError:
                    pass
            raise reraise_os_error(exc, url, f"saving the checkpoint {url!r}") from exc
        try:
            _rm_quietly(fs, fs_path + PENDING_SUFFIX)
        except OSError as exc:  # committed: a leftover intent is only cleaned later
            logger.warning("could not delete the intent object of %s: %s", url, exc)
        if "/" in fs_path.rstrip("/"):
            self._clean_orphans(fs, fs_path.rsplit("/", 1)[0])

    def clean_orphans(self, directory: PathLike) -> list[str]:
        """Delete the data of interrupted marker-mode saves in ``directory`` whose writers are gone.

        An interrupted save leaves an intent object (``name.pending``); its data is deleted (then the
        intent) when the writer was on this host and its process no longer exists, or the intent is
        older than ``orphan_age`` seconds. A leftover intent of a committed save is simply deleted, and
        so is a pipestate commit marker whose data is gone (an interrupted removal). Other objects are
        never touched. Rename mode cleans stale temp files instead.
        Failures are logged, not raised: cleaning is best effort.

        Args:
            directory: An fsspec URL or a local path.

        Returns:
            The names of the data objects deleted.
        """
        fs, fs_path, rename = self._resolve(directory)
        if rename:
            return self._local.clean_stale_temp_files(fs_path)
        return self._clean_orphans(fs, fs_path.rstrip("/"))

    def _clean_orphans(self, fs: Any, directory: str) -> list[str]:
        if _is_local(fs):  # intents being written aside by writers that died
            self._local.clean_stale_temp_files(directory)
        try:
            fs.invalidate_cache(directory)
            names = {e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(directory, detail=False)}
        except OSError:
            return []
        removed = []
        for name in sorted(n for n in names if n.endswith(PENDING_SUFFIX)):
            target = name[: -len(PENDING_SUFFIX)]
            intent = f"{directory}/{name}"
            try:
                if not self._writer_gone(fs, intent):
                    continue
                if target + MARKER_SUFFIX not in names and target in names:
                    _rm_quietly(fs, f"{directory}/{target}")
                    removed.append(target)
                _rm_quietly(fs, intent)
            except OSError as exc:
                logger.warning("could not clean the interrupted save %s/%s: %s", directory, target, exc)
        for name in sorted(n for n in names if n.endswith(MARKER_SUFFIX)):
            target = name[: -len(MARKER_SUFFIX)]
            if target in names or target + PENDING_SUFFIX in names:
                continue
            try:
                if _is_marker(fs, f"{directory}/{name}") and not fs.exists(f"{directory}/{target}"):
                    _rm_quietly(fs, f"{directory}/{name}")  # its removal was interrupted after the data
            except OSError as exc:
                logger.warning("could not delete the dangling commit marker %s/%s: %s", directory, name, exc)
        if removed:
            logger.info("deleted %d orphaned checkpoint data object(s) in %s", len(removed), directory)
        return removed

    def _writer_gone(self, fs: Any, intent_path: str) -> bool:
        try:
            raw = fs.cat_file(intent_path, start=0, end=_MAX_MARKER_BYTES)
            intent = json.loads(raw)
            host, pid, started = str(intent["host"]), int(intent["pid"]), float(intent["time"])
        except FileNotFoundError:
            return False  # its save just finished
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError):  # damaged: go by its age
            host, pid = "", -1
            try:
                started = fs.modified(intent_path).timestamp()
            except (OSError, NotImplementedError, AttributeError, ValueError):
                return False
        if host == _HOST and pid not in (os.getpid(), -1) and not _pid_alive(pid):
            return True
        return time.time() - started >= self.orphan_age

    def load_checkpoint(self, path: PathLike) -> bytes:
        """Read, check against its commit marker, and validate the checkpoint at ``path``.

        Args:
            path: An fsspec URL or a local path.

        Returns:
            The checkpoint bytes.

        Raises:
            FileNotFoundError: no committed checkpoint at ``path`` (data without a marker is an
                interrupted write and counts as absent).
            CorruptCheckpointError: the data does not match its marker, or is not an intact checkpoint.
        """
        fs, fs_path, rename = self._resolve(path)
        if rename:
            return self._local.load_checkpoint(fs_path)
        url = os.fspath(path)
        try:
            raw_marker = fs.cat_file(fs_path + MARKER_SUFFIX, start=0, end=_MAX_MARKER_BYTES + 1)
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                2,
                f"no committed checkpoint (its commit marker {MARKER_SUFFIX!r} is missing: the save "
                "never finished or the checkpoint was removed)",
                url,
            ) from exc
        except OSError as exc:
            raise reraise_os_error(exc, url, f"loading the commit marker of {url!r}") from exc
        try:
            if len(raw_marker) > _MAX_MARKER_BYTES:
                raise ValueError(f"more than {_MAX_MARKER_BYTES} bytes")
            marker = json.loads(raw_marker)
            size, crc = int(marker["size"]), int(marker["crc32"])
            if marker.get("kind") != _MARKER_KIND:
                raise ValueError("not a pipestate commit marker")
            if not 0 <= size <= MAX_CHECKPOINT_BYTES:
                raise ValueError(f"size {size} is not that of a checkpoint")
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
            raise CorruptCheckpointError(f"{url}: the commit marker is damaged ({exc}); save again") from exc
        try:
            blob = fs.cat_file(fs_path, start=0, end=size + 1)  # never more than the marker promises
        except OSError as exc:
            raise reraise_os_error(exc, url, f"loading the checkpoint {url!r}") from exc
        if len(blob) != size or zlib.crc32(blob) != crc:
            raise CorruptCheckpointError(
                f"{url}: the data ({len(blob)}{'+' if len(blob) > size else ''} bytes) does not match its "
                f"commit marker ({size} bytes); it was overwritten or damaged after the commit. Restore an "
                "earlier checkpoint."
            )
        return validate_checkpoint(blob, url)

    def remove_checkpoint(self, path: PathLike) -> None:
        """Delete the checkpoint at ``path``; a missing one is not an error.

        The data goes first, then its marker: a checkpoint without data is already invisible, and a
        marker left by an interrupted removal is deleted by :meth:`clean_orphans`.

        Args:
            path: An fsspec URL or a local path.

        Raises:
            OSError: the storage refused the deletion.
        """
        fs, fs_path, rename = self._resolve(path)
        if rename:
            self._local.remove_checkpoint(fs_path)
            return
        try:
            _rm_quietly(fs, fs_path)
            _rm_quietly(fs, fs_path + MARKER_SUFFIX)
        except OSError as exc:
            url = os.fspath(path)
            raise reraise_os_error(exc, url, f"removing the checkpoint {url!r}") from exc

    def list_dir(self, directory: PathLike) -> list[str]:
        """List the committed entries of ``directory`` (markers, and data without a marker, hidden).

        Args:
            directory: An fsspec URL or a local path.

        Returns:
            Entry names (not paths).
        """
        fs, fs_path, rename = self._resolve(directory)
        if rename:
            return self._local.list_dir(fs_path)
        fs.invalidate_cache(fs_path)
        try:
            entries = fs.ls(fs_path, detail=False)
        except FileNotFoundError:
            return []
        names = {e.rstrip("/").rsplit("/", 1)[-1] for e in entries}
        return sorted(
            n for n in names if not n.endswith(MARKER_SUFFIX) and n + MARKER_SUFFIX in names and not is_temp_name(n)
        )

    def _resolve(self, path: PathLike) -> tuple[Any, str, bool]:
        from fsspec.core import url_to_fs
        from fsspec.implementations.local import LocalFileSystem

        fs, fs_path = url_to_fs(os.fspath(path), **self.storage_options)
        if self.commit == "auto":
            rename = isinstance(fs, LocalFileSystem)
        else:
            rename = self.commit == "rename"
        if rename and not isinstance(fs, LocalFileSystem):
            raise ValueError(
                f"commit='rename' needs a local filesystem, but {os.fspath(path)!r} is on "
                f"{type(fs).__name__}; use commit='marker' (or 'auto')"
            )
        return fs, fs_path, rename


def _put_whole(fs: Any, path: str, payload: bytes) -> None:
    """Write a small object so that it is never seen partially written (intents and markers)."""
    if not _is_local(fs):  # an object store PUT is atomic
        fs.pipe_file(path, payload)
        return
    directory, name = os.path.split(path)  # a local file is not: write it aside, then rename it
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, temp_name(name))
    try:
        with open(tmp, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _is_local(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _is_marker(fs: Any, path: str) -> bool:
    try:
        return json.loads(fs.cat_file(path, start=0, end=_MAX_MARKER_BYTES)).get("kind") == _MARKER_KIND
    except FileNotFoundError:
        return False
    except (ValueError, AttributeError, RecursionError):
        return False


def _rm_quietly(fs: Any, path: str) -> None:
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass

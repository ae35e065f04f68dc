"""LMDB databases for the Caffe readers: every key listed once at build, values read by key.

``lmdb`` (the py-lmdb binding) is an optional dependency (``pip install pipestate[lmdb]``), imported
when a Caffe reader is built. Keys are kept in one byte buffer with offsets (no Python object per record).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np


class LMDBError(ValueError):
    """An LMDB database cannot be read: damaged, truncated, or not an LMDB directory (names it)."""


def _lmdb() -> Any:
    try:
        import lmdb
    except ImportError:
        raise ImportError(
            "the Caffe readers need the 'lmdb' package: pip install 'pipestate[lmdb]' (or pip install lmdb)"
        ) from None
    return lmdb


_ENVS: dict[str, list] = {}  # real path -> [environment, users]: py-lmdb opens a path once per process
_ENVS_LOCK = threading.Lock()


def _open_env(path: str) -> tuple[Any, str]:
    """Open (or share) the read-only environment of ``path``; release it with :func:`_release_env`."""
    lmdb = _lmdb()
    real = os.path.realpath(path)
    with _ENVS_LOCK:
        entry = _ENVS.get(real)
        if entry is None:
            try:
                env = lmdb.open(
                    path,
                    readonly=True,
                    lock=False,
                    readahead=False,
                    subdir=os.path.isdir(path),
                    max_readers=1024,
                    max_spare_txns=64,
                )
            except lmdb.Error as exc:
                raise LMDBError(f"path: {path!r} is not a readable LMDB database ({exc})") from None
            entry = _ENVS[real] = [env, 0]
        entry[1] += 1
        return entry[0], real


def _release_env(real: str) -> None:
    with _ENVS_LOCK:
        entry = _ENVS.get(real)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del _ENVS[real]
                entry[0].close()


class Database:
    """One read-only LMDB environment and its keys in cursor (sorted) order.

    Raises:
        FileNotFoundError: no such directory. LMDBError: not an LMDB database, or its data file is shorter
            than its pages say (a truncated copy would crash the process with SIGBUS when mapped and read).
    """

    def __init__(self, path: str) -> None:
        lmdb = _lmdb()
        if not os.path.exists(path):
            raise FileNotFoundError(f"path: LMDB directory {path!r} does not exist")
        self.path = path
        data_file = os.path.join(path, "data.mdb") if os.path.isdir(path) else path
        self.env, self._real = _open_env(path)
        try:
            info, stat = self.env.info(), self.env.stat()
            needed = (info["last_pgno"] + 1) * stat["psize"]
            size = os.path.getsize(data_file)
            if size < needed:
                raise LMDBError(
                    f"{data_file}: the file has {size} bytes but its pages end at byte {needed}; the "
                    "database is truncated (copy it again)"
                )
            keys = []
            with self.env.begin(buffers=False) as txn:
                keys = list(txn.cursor().iternext(keys=True, values=False))
        except lmdb.Error as exc:
            _release_env(self._real)
            raise LMDBError(f"{path}: damaged LMDB database ({exc})") from None
        except BaseException:
            _release_env(self._real)
            raise
        lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
        self.key_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.key_buffer = b"".join(keys)
        self._local = threading.local()

    def __len__(self) -> int:
        return len(self.key_offsets) - 1

    def key(self, i: int) -> bytes:
        """The ``i``-th key in sorted order."""
        return self.key_buffer[int(self.key_offsets[i]) : int(self.key_offsets[i + 1])]

    def get(self, i: int) -> bytes:
        """The value of the ``i``-th key.

        Raises:
            LMDBError: the record cannot be read (names the database and key).
        """
        lmdb = _lmdb()
        key = self.key(i)
        try:
            with self.env.begin(buffers=False) as txn:
                value = txn.get(key)
        except lmdb.Error as exc:
            raise LMDBError(f"{self.path}: record {i} (key {key[:64]!r}) cannot be read ({exc})") from None
        if value is None:
            raise LMDBError(f"{self.path}: record {i} (key {key[:64]!r}) disappeared; was the database changed?")
        return value

    def close(self) -> None:
        """Release the environment (closed when no reader uses it any more)."""
        if self._real is not None:
            _release_env(self._real)
            self._real = None


class LMDBSource:
    """The records of one or more LMDB databases, concatenated in ``path`` order."""

    def __init__(self, paths: list[str]) -> None:
        self.dbs: list[Database] = []
        try:
            for p in paths:
                self.dbs.append(Database(p))
        except BaseException:
            self.close()
            raise
        self.bounds = np.cumsum([0] + [len(db) for db in self.dbs]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.bounds[-1])

    def locate(self, i: int) -> tuple[Database, int]:
        """The database and local index of record ``i``."""
        k = int(np.searchsorted(self.bounds, i, side="right")) - 1
        return self.dbs[k], i - int(self.bounds[k])

    def where(self, i: int) -> str:
        """Record ``i`` named for an error message: database, local index and key."""
        db, j = self.locate(i)
        return f"{db.path}: record {j} (key {db.key(j)[:64]!r})"

    def get_many(self, indices: list[int]) -> list[bytes]:
        """The values of records ``indices``, in order, one read transaction per database.

        Raises:
            LMDBError: a record cannot be read (names the database and key).
        """
        lmdb = _lmdb()
        out = []
        txns: dict[int, Any] = {}
        try:
            for i in indices:
                k = int(np.searchsorted(self.bounds, i, side="right")) - 1
                db, j = self.dbs[k], i - int(self.bounds[k])
                txn = txns.get(k)
                if txn is None:
                    txn = txns[k] = db.env.begin(buffers=False)
                key = db.key(j)
                try:
                    value = txn.get(key)
                except lmdb.Error as exc:
                    raise LMDBError(f"{db.path}: record {j} (key {key[:64]!r}) cannot be read ({exc})") from None
                if value is None:
                    raise LMDBError(f"{db.path}: record {j} (key {key[:64]!r}) disappeared; was the database changed?")
                out.append(value)
        finally:
            for txn in txns.values():
                txn.abort()
        return out

    def digest_parts(self) -> list[bytes]:
        """What identifies the listing: every database's keys (not its location)."""
        return [b"%d" % len(db) + db.key_offsets.tobytes() + db.key_buffer for db in self.dbs]

    def close(self) -> None:
        """Close every environment."""
        while self.dbs:
            self.dbs.pop().close()

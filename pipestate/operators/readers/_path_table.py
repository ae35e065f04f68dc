"""A dataset's file paths held compactly: one byte buffer and an array of offsets, no object per path.

A million-entry listing as a Python list of ``str`` costs ~100 bytes per path in objects alone; here a path
costs its UTF-8 bytes plus 8 bytes of offset, and the buffer is exactly the bytes the reader's dataset digest
hashes (the paths joined by NUL, which no path contains).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class PathTable(Sequence[str]):
    """The paths ``blob.split(b"\\0")``, decoded on access (``table[i]`` is a ``str``)."""

    __slots__ = ("blob", "_starts")

    def __init__(self, blob: bytes, count: int, starts: np.ndarray | None = None) -> None:
        """``blob``: ``count`` UTF-8 paths (surrogate escapes allowed) joined by NUL bytes; ``starts``: where
        each begins, and ``len(blob) + 1`` last, when the caller knows them already."""
        self.blob = blob
        if starts is not None:
            if len(starts) != count + 1 or (count and int(starts[-1]) != len(blob) + 1):
                raise ValueError(f"{len(starts)} path offsets for {count} paths in {len(blob)} bytes")
            self._starts = np.asarray(starts, dtype=np.int64)
            return
        if count == 0:
            self._starts = np.zeros(1, dtype=np.int64)
            return
        nuls = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == 0)
        if len(nuls) != count - 1:
            raise ValueError(f"a path table of {count} paths has {len(nuls) + 1} NUL-separated fields")
        # starts[i] is where path i begins; starts[count] is one past the end (as if a NUL followed the last)
        self._starts = np.concatenate(([0], nuls + 1, [len(blob) + 1])).astype(np.int64)

    @classmethod
    def of(cls, paths: Sequence[str] | PathTable) -> PathTable:
        """The table of ``paths`` (a table is returned as it is)."""
        if isinstance(paths, PathTable):
            return paths
        return cls("\0".join(paths).encode("utf-8", "surrogateescape"), len(paths))

    def __len__(self) -> int:
        return len(self._starts) - 1

    def __getitem__(self, index):  # noqa: ANN001 - int or slice, as a sequence
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"path index {index} out of range for {n} paths")
        start, end = int(self._starts[i]), int(self._starts[i + 1]) - 1
        return self.blob[start:end].decode("utf-8", "surrogateescape")

    def __iter__(self) -> Iterator[str]:
        return iter(self.blob.decode("utf-8", "surrogateescape").split("\0")) if len(self) else iter(())

    @property
    def nbytes(self) -> int:
        """Memory held: the buffer and the offsets."""
        return len(self.blob) + self._starts.nbytes

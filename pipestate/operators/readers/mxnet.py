"""``fn.readers.mxnet``: images and labels from MXNet RecordIO files (``.rec`` + ``.idx``)."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example
from pipestate.operators.readers import _files
from pipestate.operators.readers._base import Reader, archive_order, shard_args
from pipestate.operators.schema import Arg
from pipestate.rng import derive_key

MAGIC = 0xCED7230A
_HEADER = struct.Struct("<IfQQ")  # MXNet's IRHeader: flag, label, id, id2
_DEFAULT_FILE_SEED = 0x5EED_0A2D


class RecordIOError(ValueError):
    """A RecordIO file or its index is damaged or does not match (names the file, line or offset)."""


def parse_record(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one image record (possibly split in parts around embedded magic numbers).

    Returns:
        (image bytes as uint8, labels as float32 of shape (1,) or (flag,)).

    Raises:
        RecordIOError: a wrong magic number, a part longer than the record, or labels past its end.
    """
    parts, pos = [], 0
    while True:
        if pos + 8 > len(raw):
            raise RecordIOError(f"{where}: the record is truncated (a part header at byte {pos} of {len(raw)})")
        magic, lrec = struct.unpack_from("<II", raw, pos)
        if magic != MAGIC:
            raise RecordIOError(
                f"{where}: wrong magic number {magic:#010x} at byte {pos} of the record (expected "
                f"{MAGIC:#010x}); the index does not match the .rec file or the file is damaged"
            )
        cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
        if pos + 8 + length > len(raw):
            raise RecordIOError(
                f"{where}: a part of {length} bytes at byte {pos} ends past the record's "
                f"{len(raw)} bytes (truncated file, or an index entry cut short)"
            )
        parts.append(raw[pos + 8 : pos + 8 + length])
        pos += 8 + ((length + 3) & ~3)
        if cflag in (0, 3):
            break
    data = parts[0] if len(parts) == 1 else struct.pack("<I", MAGIC).join(parts)
    if len(data) < _HEADER.size:
        raise RecordIOError(f"{where}: the record has {len(data)} bytes, less than the 24-byte image header")
    flag, label, _, _ = _HEADER.unpack_from(data)
    body = data[_HEADER.size :]
    if flag == 0:
        return np.frombuffer(body, dtype=np.uint8), np.array([label], dtype=np.float32)
    if 4 * flag > len(body):
        raise RecordIOError(f"{where}: the header announces {flag} labels, more than the record holds")
    labels = np.frombuffer(body, dtype=np.float32, count=flag).copy()
    return np.frombuffer(body, dtype=np.uint8, offset=4 * flag), labels


def read_index(index_path: str, file_sizes: list[int]) -> np.ndarray:
    """Parse an MXNet ``.idx`` file (``key offset`` per line) into sorted record offsets (global, over the
    concatenated ``.rec`` files), as DALI does.

    Raises:
        FileNotFoundError: no index. RecordIOError: a malformed line (``file:line``), no record, or an
            offset past the end of the files.
    """
    try:
        text = _files.read_bytes(index_path, what="index_path: ").decode("ascii")
    except FileNotFoundError:
        raise FileNotFoundError(f"index_path: {index_path!r} does not exist") from None
    except UnicodeDecodeError:
        raise RecordIOError(f"{index_path}: not a RecordIO index (binary data); expected 'key offset' lines") from None
    fields = text.split()
    try:
        values = np.asarray(fields, dtype=np.int64).reshape(-1, 2) if len(fields) % 2 == 0 else None
    except ValueError:
        values = None
    if values is None or (values < 0).any():
        for number, line in enumerate(text.splitlines(), start=1):
            parts = line.split()
            if parts and (len(parts) != 2 or not all(p.isdigit() for p in parts)):
                raise RecordIOError(
                    f"{index_path}:{number}: expected 'key offset' (two non-negative integers), got {line[:80]!r}"
                )
        raise RecordIOError(f"{index_path}: malformed index")
    if not len(values):
        raise RecordIOError(f"{index_path}: the index lists no record")
    offsets = np.sort(values[:, 1])
    total = sum(file_sizes)
    if offsets[-1] >= total:
        line = int(np.argmax(values[:, 1] == offsets[-1])) + 1
        raise RecordIOError(
            f"{index_path}:{line}: offset {int(offsets[-1])} is past the end of the .rec files "
            f"({total} bytes); the index was made for other files"
        )
    return offsets


@register
class MXNetReader(Reader):
    """Read MXNet RecordIO image records (DALI's ``fn.readers.mxnet``), sharded and optionally shuffled.

    Records are located with the ``.idx`` file MXNet's ``im2rec.py`` writes next to the ``.rec`` file(s)
    (offsets over the files in ``path`` order); a record is the bytes between two listed offsets.


    Returns:
        (image bytes as 1-D uint8, labels as float32 of shape (1,), or (flag,) for multi-label records).

    Raises:
        ValueError / TypeError: invalid arguments (at definition); ``RecordIOError`` (a ``ValueError``) for
            a malformed index (naming its line) or a damaged record (naming the file and offset).
        FileNotFoundError: a missing ``.rec`` or ``.idx`` file (at build).
    """

    type = "readers.mxnet"
    EXAMPLE = Example(
        setup="tests.operators.readers.datasets:recordio",
        args={"random_shuffle": True, "initial_fill": 3, "pad_last_batch": True},
        dali="test:tests/operators/readers/test_dali_parity_formats.py",
    )
    ARCHIVE_ORDER_SHUFFLE = True
    ARGS = (
        Arg("path", sch.Seq(sch.Path(), min_length=1, broadcast=True), sch.REQUIRED, "The RecordIO (.rec) file(s)"),
        Arg(
            "index_path",
            sch.Seq(sch.Path(), length=1, broadcast=True),
            sch.REQUIRED,
            "A list of one index (.idx) file, offsets over the .rec files in order",
        ),
        Arg(
            "shuffle_after_epoch_seed",
            sch.Int(0, 2**63 - 1),
            None,
            "Seed of the file-order shuffle of shuffle_after_epoch (default: a fixed seed)",
        ),
        *shard_args(),
    )

    def validate(self) -> None:
        super().validate()
        self.num_outputs = 2

    def discover(self) -> tuple[int, Iterable[bytes]]:
        paths = list(self.args["path"])
        sizes = []
        for path in paths:
            try:
                fd = _files.open_regular(path, "path: RecordIO file ")
            except FileNotFoundError:
                raise FileNotFoundError(f"path: RecordIO file {path!r} does not exist") from None
            sizes.append(os.fstat(fd).st_size)
            os.close(fd)
        offsets = read_index(self.args["index_path"][0], sizes)
        bounds = np.cumsum([0, *sizes]).astype(np.int64)
        ends = np.append(offsets[1:], bounds[-1])
        keep = ends > offsets  # DALI skips zero-sized entries (repeated offsets)
        self.offsets, self.ends = offsets[keep], ends[keep]
        self.bounds = bounds
        self.files = paths
        file_of = np.searchsorted(bounds, self.offsets, side="right") - 1
        self.counts = np.bincount(file_of, minlength=len(paths)).astype(np.int64)
        self.open_files = _files.OpenFiles(self.files, "path: RecordIO file ")
        return len(self.offsets), [np.asarray(sizes, dtype=np.int64).tobytes(), self.offsets.tobytes()]

    def base_order(self, epoch: int) -> np.ndarray | None:
        """With ``shuffle_after_epoch``, the files are visited in a new order each epoch (as DALI 2.4)."""
        a = self.args
        if not a["shuffle_after_epoch"]:
            return None
        seed = a["shuffle_after_epoch_seed"]
        return archive_order(self.counts, derive_key("file-order", _DEFAULT_FILE_SEED if seed is None else seed), epoch)

    def _raw(self, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` of the concatenated files (a record may span two files)."""
        chunks = []
        k = int(np.searchsorted(self.bounds, start, side="right")) - 1
        while start < end:
            stop = min(end, int(self.bounds[k + 1]))
            chunks.append(os.pread(self.open_files.fd(k), stop - start, start - int(self.bounds[k])))
            start, k = stop, k + 1
        return b"".join(chunks)

    def _read(self, indices: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for i in indices:
            start, end = int(self.offsets[i]), int(self.ends[i])
            k = int(np.searchsorted(self.bounds, start, side="right")) - 1
            where = f"{self.files[k]} at offset {start - int(self.bounds[k])}"
            out.append(parse_record(self._raw(start, end), where))
        return out

    def read(self, ctx: RunContext, indices: list[int]) -> tuple[Batch, ...]:
        samples = self.read_chunks(ctx, self._read, indices)
        return Batch([s[0] for s in samples]), Batch.from_samples([s[1] for s in samples])

    def close(self) -> None:
        """Close the RecordIO files."""
        open_files = getattr(self, "open_files", None)
        if open_files is not None:
            open_files.close()

"""TFRecord files: feature specs for ``fn.readers.tfrecord``, record framing with CRC-32C checks, and
``tfrecord2idx`` (the index files DALI's ``tfrecord2idx`` script writes).

A TFRecord file is a sequence of records, each: ``uint64 length`` (little-endian), ``uint32`` masked
CRC-32C of those 8 bytes, ``length`` bytes of data (a serialized ``tf.train.Example``), ``uint32`` masked
CRC-32C of the data. An index file has one line ``offset size`` per record, ``size`` counting the whole
record (``length + 16``). No TensorFlow is needed: Examples are parsed with pipestate's own wire-compatible
protobuf messages (``proto/pipestate/tfrecord/v1/example.proto``).
"""

from __future__ import annotations

import dataclasses
import os
import struct
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import google_crc32c
import numpy as np


def crc32c(data: bytes) -> int:
    """Return the CRC-32C (Castagnoli) of ``data``."""
    return google_crc32c.value(data)


int64 = "int64"
"""Feature type: ``tf.train.Int64List`` values, output as ``numpy.int64``."""
float32 = "float32"
"""Feature type: ``tf.train.FloatList`` values, output as ``numpy.float32``."""
string = "string"
"""Feature type: one ``tf.train.BytesList`` value, output as a 1-D ``numpy.uint8`` array of its bytes."""

_DTYPES = {int64: np.dtype(np.int64), float32: np.dtype(np.float32), string: np.dtype(np.uint8)}


def _check_dtype(dtype: str) -> str:
    if dtype not in _DTYPES:
        raise ValueError(f"dtype={dtype!r} must be pipestate.tfrecord.int64, .float32 or .string")
    return dtype


@dataclasses.dataclass(frozen=True)
class FixedLenFeature:
    """A feature with a fixed number of values, output with ``shape``.

    Args:
        shape: Output shape (``[]`` for a scalar); the record must hold ``prod(shape)`` values. A
            ``string`` feature has one value and outputs its bytes (use ``[]``).
        dtype: ``int64``, ``float32`` or ``string`` from this module.
        default_value: Used when a record lacks the feature (a scalar fills the shape); without it a
            missing feature is an error.
    """

    shape: Sequence[int]
    dtype: str
    default_value: Any = None

    def __post_init__(self) -> None:
        _check_dtype(self.dtype)
        shape = tuple(int(d) for d in self.shape)
        if any(d < 0 for d in shape):
            raise ValueError(f"FixedLenFeature: shape={list(self.shape)} must be non-negative")
        object.__setattr__(self, "shape", shape)


@dataclasses.dataclass(frozen=True)
class VarLenFeature:
    """A feature with any number of values, output as a 1-D array.

    Args:
        dtype: ``int64``, ``float32`` or ``string`` (a ``string`` feature must hold at most one value).
        default_value: Used when a record lacks the feature; default: an empty array.
    """

    dtype: str
    default_value: Any = None

    def __post_init__(self) -> None:
        _check_dtype(self.dtype)


class TFRecordError(ValueError):
    """A TFRecord file is damaged (bad framing or checksum), or its index does not match it."""


def masked_crc32c(data: bytes) -> int:
    """Return TFRecord's masked CRC-32C of ``data``."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_records(path: str | os.PathLike, records: Iterable[bytes]) -> int:
    """Write serialized records (e.g. ``tf.train.Example`` bytes) as a TFRecord file, with checksums.

    Returns:
        The number of records written.
    """
    count = 0
    with open(path, "wb") as f:
        for data in records:
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data)))
            count += 1
    return count


def parse_record(raw: bytes, path: str, offset: int, check_crc: bool = True) -> bytes:
    """Check one framed record (``raw`` holds it whole) and return its data.

    Raises:
        TFRecordError: wrong length or checksum, naming ``path`` and ``offset``.
    """
    if len(raw) < 16:
        raise TFRecordError(f"{path}: record at offset {offset} is truncated ({len(raw)} bytes)")
    (length,) = struct.unpack_from("<Q", raw)
    if length + 16 != len(raw):
        raise TFRecordError(
            f"{path}: record at offset {offset} says it holds {length} bytes but is {len(raw) - 16} "
            "(is the index file made for this TFRecord file? rebuild it with `pipestate tfrecord2idx`)"
        )
    data = raw[12 : 12 + length]
    if check_crc:
        (len_crc,) = struct.unpack_from("<I", raw, 8)
        (data_crc,) = struct.unpack_from("<I", raw, 12 + length)
        if masked_crc32c(raw[:8]) != len_crc or masked_crc32c(data) != data_crc:
            raise TFRecordError(f"{path}: record at offset {offset} fails its CRC-32C check (corrupt file)")
    return data


def scan(path: str) -> Iterator[tuple[int, int]]:
    """Yield ``(offset, size)`` of every record in the TFRecord file ``path`` (framing checked).

    Raises:
        FileNotFoundError: ``path`` does not exist. TFRecordError: the file ends inside a record.
        ValueError: ``path`` is not a regular file (a FIFO, a device), naming it.
    """
    from pipestate.operators.readers._files import open_regular

    with open(open_regular(path, "TFRecord file "), "rb") as f:
        offset = 0
        while True:
            head = f.read(12)
            if not head:
                return
            if len(head) < 12:
                raise TFRecordError(f"{path}: truncated record header at offset {offset}")
            (length,) = struct.unpack_from("<Q", head)
            if masked_crc32c(head[:8]) != struct.unpack_from("<I", head, 8)[0]:
                raise TFRecordError(f"{path}: record at offset {offset} has a corrupt length (CRC mismatch)")
            f.seek(length + 4, os.SEEK_CUR)
            end = offset + 16 + length
            if f.tell() != end or end > os.fstat(f.fileno()).st_size:
                raise TFRecordError(f"{path}: the record at offset {offset} is truncated")
            yield offset, 16 + length
            offset = end


def tfrecord2idx(path: str | os.PathLike, index_path: str | os.PathLike) -> int:
    """Write the index of a TFRecord file as DALI's ``tfrecord2idx`` does: a line ``offset size`` per record.

    Returns:
        The number of records.

    Raises:
        FileNotFoundError: ``path`` does not exist. TFRecordError: it is not a valid TFRecord file.
    """
    lines = [f"{offset} {size}\n" for offset, size in scan(os.fspath(path))]
    with open(index_path, "w") as f:
        f.writelines(lines)
    return len(lines)


def read_index(index_path: str, data_path: str) -> list[tuple[int, int]]:
    """Read an index file into ``(offset, size)`` pairs.

    Raises:
        FileNotFoundError: no index file. TFRecordError: a malformed line (``file:line``), binary data, or
            an entry past the end of ``data_path``. ValueError: either file is not a regular file.
    """
    from pipestate.operators.readers._files import open_regular, read_bytes

    try:
        raw = read_bytes(index_path, what="index_path: ")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"index_path: {index_path!r} does not exist; create it with `pipestate tfrecord2idx {data_path} "
            f"{index_path}`"
        ) from None
    try:
        lines = raw.decode("ascii").splitlines()
    except UnicodeDecodeError as exc:
        number = raw.count(b"\n", 0, exc.start) + 1
        raise TFRecordError(
            f"{index_path}:{number}: not an index file (binary data); rebuild it with `pipestate tfrecord2idx "
            f"{data_path} {index_path}`"
        ) from None
    entries = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            offset, size = int(fields[0]), int(fields[1])
            if offset < 0 or size < 16 or len(fields) != 2:
                raise ValueError
        except (ValueError, IndexError):
            raise TFRecordError(f"{index_path}:{number}: expected 'offset size', got {line!r}") from None
        entries.append((offset, size))
    if entries:
        try:
            fd = open_regular(data_path, "path: TFRecord file ")
        except FileNotFoundError:
            raise FileNotFoundError(f"path: TFRecord file {data_path!r} does not exist") from None
        try:
            file_size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        for number, (offset, size) in enumerate(entries, start=1):
            if offset + size > file_size:
                raise TFRecordError(
                    f"{index_path}: entry {number} ({offset} {size}) ends at byte {offset + size} but "
                    f"{data_path!r} has {file_size} bytes; the index was made for another file (rebuild it "
                    f"with `pipestate tfrecord2idx {data_path} {index_path}`)"
                )
    return entries


def tfrecord2idx_main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``pipestate tfrecord2idx FILE INDEX``. Returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] in ("-h", "--help"):
        sys.stderr.write("usage: pipestate tfrecord2idx TFRECORD_FILE INDEX_FILE\n")
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    try:
        count = tfrecord2idx(args[0], args[1])
    except (OSError, TFRecordError) as exc:
        sys.stderr.write(f"tfrecord2idx: {exc}\n")
        return 1
    sys.stdout.write(f"{args[1]}: {count} records\n")
    return 0


if __name__ == "__main__":
    sys.exit(tfrecord2idx_main())

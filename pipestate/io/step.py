"""Step files: several named parts (data position, model, optimizer, counters) in one checksummed file.

A :class:`~pipestate.io.Checkpointer` step that holds more than one pipestate checkpoint is one file, so
the storage backends make it atomic (a crash leaves the old step or the new one, never some of its
parts) and retention deletes all of its parts at once. The layout follows safetensors: a small JSON
header, then the parts' bytes, each with its own CRC-32::

    offset 0   8 bytes   magic b"PSSTEP" + format version (uint16, big-endian): b"PSSTEP\\x00\\x01"
    offset 8   8 bytes   header length H (uint64, little-endian)
    offset 16  4 bytes   CRC-32 of the header bytes (uint32, little-endian; zlib's CRC-32)
    offset 20  H bytes   the header: a UTF-8 JSON object
    then                 the blobs of every part, in header order, nothing in between or after

The header is ``{"step": int, "library_version": str, "parts": [{"name": str, "kind": str, "meta":
{...}, "blobs": [{"length": int, "crc32": int}, ...]}, ...]}``. Parsing never executes anything (JSON
and bytes only; the parts of kind ``torch`` are read with ``torch.load(weights_only=True)``, ``arrays``
and ``keras`` with ``numpy.load(allow_pickle=False)``), so a step file from an untrusted source is safe to load.
What each kind holds is in ``docs/checkpoint-format.md``.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from collections.abc import Sequence
from typing import Any

from pipestate.checkpoint import decode
from pipestate.errors import CheckpointError, CorruptCheckpointError

MAGIC = b"PSSTEP"
FORMAT_VERSION = 1
PREFIX = MAGIC + struct.pack(">H", FORMAT_VERSION)
_FIXED = 20  # magic + version, header length, header CRC
MAX_HEADER_BYTES = 16 << 20
MAX_STEP_BYTES = (1 << 40) - 1
"""The largest step file a load accepts (1 TiB - 1 byte): unlike a pipestate checkpoint, a step holds model
state, which can exceed protobuf's 2 GiB."""

KINDS = ("pipeline", "iterator", "bytes", "data", "torch", "keras", "tensorflow", "arrays")
"""The part kinds: ``pipeline`` (one pipestate checkpoint), ``iterator`` (one per pipeline, the
iterator's counters inside), ``bytes`` (yours, verbatim), ``data`` (JSON), ``torch`` (``torch.save``),
``keras`` (an ``.npz`` of a Keras model's and its optimizer's variables), ``tensorflow`` (the files of
``tf.train.Checkpoint.write``), ``arrays`` (an ``.npz`` of a pytree's leaves)."""
PIPESTATE_KINDS = ("pipeline", "iterator")


@dataclasses.dataclass(frozen=True)
class Part:
    """One named part of a step.

    Attributes:
        name: The name it was saved under (a key of the mapping given to ``Checkpointer.save``).
        kind: One of :data:`KINDS`.
        blobs: Its bytes: one blob for most kinds, one per pipeline for ``iterator``, one per file for
            ``tensorflow``.
        meta: Plain JSON data describing the blobs (e.g. the file names of a TensorFlow checkpoint).
    """

    name: str
    kind: str
    blobs: tuple[bytes, ...]
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def size(self) -> int:
        """The bytes of all blobs."""
        return sum(len(b) for b in self.blobs)


@dataclasses.dataclass(frozen=True)
class StepFile:
    """A decoded step file.

    Attributes:
        step: The step number it was saved for.
        library_version: The pipestate version that wrote it (informational).
        parts: The parts, in the order they were saved.
    """

    step: int
    library_version: str
    parts: tuple[Part, ...]

    def part(self, name: str) -> Part:
        """Return the part named ``name``.

        Raises:
            KeyError: there is no such part.
        """
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        """The part names, in order."""
        return [p.name for p in self.parts]


def is_step(blob: bytes | memoryview) -> bool:
    """Tell whether ``blob`` starts like a step file (any format version).

    Args:
        blob: Bytes, or at least their first 6 bytes.

    Returns:
        ``True`` when it starts with :data:`MAGIC`.
    """
    return bytes(blob[: len(MAGIC)]) == MAGIC


def encode(step: int, parts: Sequence[Part], library_version: str = "") -> bytes:
    """Serialize a step file.

    Args:
        step: The step number.
        parts: The parts (distinct names, kinds from :data:`KINDS`).
        library_version: Recorded in the header.

    Returns:
        The file's bytes.

    Raises:
        ValueError: duplicate names, an unknown kind, or meta that is not JSON data.
    """
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise ValueError(f"part names must be distinct; got {names}")
    entries = []
    for part in parts:
        if part.kind not in KINDS:
            raise ValueError(f"part {part.name!r}: unknown kind {part.kind!r}")
        entries.append({
            "name": part.name,
            "kind": part.kind,
            "meta": part.meta,
            "blobs": [{"length": len(b), "crc32": zlib.crc32(b)} for b in part.blobs],
        })
    header = json.dumps(
        {"step": int(step), "library_version": library_version, "parts": entries},
        separators=(",", ":"), sort_keys=True, allow_nan=False,
    ).encode("utf-8")
    out = [PREFIX, struct.pack("<QI", len(header), zlib.crc32(header)), header]
    for part in parts:
        out.extend(part.blobs)
    return b"".join(out)


def decode_step(blob: bytes | memoryview, *, check_pipestate_parts: bool = True) -> StepFile:
    """Parse and check a step file: the header's checksum, every blob's checksum and the total length.

    Args:
        blob: The file's bytes.
        check_pipestate_parts: Also decode the pipestate checkpoints of ``pipeline``/``iterator`` parts.

    Returns:
        The decoded step.

    Raises:
        CorruptCheckpointError: the bytes are not an intact step file (the message says what is wrong).
        UnsupportedCheckpointVersionError: a pipestate part is in a format version this release does not
            read.
    """
    view = memoryview(blob).cast("B")
    if len(view) < _FIXED or not is_step(view):
        raise CorruptCheckpointError(f"not a pipestate step file, or truncated ({len(view)} bytes)")
    (version,) = struct.unpack(">H", view[6:8])
    if version != FORMAT_VERSION:
        raise CorruptCheckpointError(
            f"step file format version {version} is not supported (this pipestate reads version {FORMAT_VERSION})"
        )
    header_len, header_crc = struct.unpack("<QI", view[8:_FIXED])
    if header_len > MAX_HEADER_BYTES or _FIXED + header_len > len(view):
        raise CorruptCheckpointError(
            f"the step file is truncated or damaged: its header claims {header_len} bytes, the file has {len(view)}"
        )
    header_bytes = bytes(view[_FIXED : _FIXED + header_len])
    if zlib.crc32(header_bytes) != header_crc:
        raise CorruptCheckpointError("the step file is damaged: its header's checksum does not match")
    try:
        header = json.loads(header_bytes.decode("utf-8"))
        step, version_text, entries = header["step"], header["library_version"], header["parts"]
        if not (isinstance(step, int) and step >= 0 and isinstance(version_text, str) and isinstance(entries, list)):
            raise TypeError("bad header fields")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise CorruptCheckpointError(f"the step file's header is not valid ({exc})") from exc
    offset = _FIXED + header_len
    parts, seen = [], set()
    for i, entry in enumerate(entries):
        try:
            name, kind, meta, blob_entries = entry["name"], entry["kind"], entry["meta"], entry["blobs"]
            if not (isinstance(name, str) and kind in KINDS and isinstance(meta, dict)
                    and isinstance(blob_entries, list)):
                raise TypeError("bad part fields")
            spans = [(int(b["length"]), int(b["crc32"])) for b in blob_entries]
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptCheckpointError(f"the step file's header describes part {i} badly ({exc})") from exc
        if name in seen:
            raise CorruptCheckpointError(f"the step file has two parts named {name!r}")
        seen.add(name)
        blobs = []
        for length, crc in spans:
            if length < 0 or offset + length > len(view):
                raise CorruptCheckpointError(
                    f"the step file is truncated: part {name!r} ends past its end ({len(view)} bytes)"
                )
            data = bytes(view[offset : offset + length])
            if zlib.crc32(data) != crc:
                raise CorruptCheckpointError(f"the step file is damaged: part {name!r} fails its checksum")
            blobs.append(data)
            offset += length
        part = Part(name, kind, tuple(blobs), meta)
        if check_pipestate_parts and kind in PIPESTATE_KINDS:
            _check_pipestate_part(part)
        parts.append(part)
    if offset != len(view):
        raise CorruptCheckpointError(
            f"the step file has {len(view) - offset} bytes after its last part (appended to, or damaged)"
        )
    return StepFile(step, version_text, tuple(parts))


def _check_pipestate_part(part: Part) -> None:
    if not part.blobs or (part.kind == "pipeline" and len(part.blobs) != 1):
        raise CorruptCheckpointError(f"part {part.name!r} ({part.kind}) holds {len(part.blobs)} checkpoints")
    for blob in part.blobs:
        try:
            decode(blob)
        except CheckpointError as exc:
            raise type(exc)(f"part {part.name!r}: {exc}") from exc

"""Checkpoint bytes: the envelope, the version-2 payload and generic operator state.

The format is specified in ``docs/checkpoint-format.md``; the messages are in ``proto/``. An operator's
state is plain data (``None``, bool, int, float, str, bytes, lists, dicts with string keys), encoded as
a ``Value`` message: adding an operator never changes the format, the codec or ``pipestate inspect``.
Nothing here pickles, so a checkpoint from an untrusted source is safe to parse. Version-1 checkpoints
(pipestate 0.1) are read by :mod:`pipestate.checkpoint.v1`.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from google.protobuf.message import DecodeError

from pipestate._proto.pipestate.v1 import checkpoint_pb2 as envelope_pb
from pipestate._proto.pipestate.v2 import checkpoint_pb2 as pb
from pipestate.checkpoint import v1
from pipestate.checkpoint.records import FORMAT_VERSION, CheckpointData, OperatorRecord
from pipestate.errors import CorruptCheckpointError, UnsupportedCheckpointVersionError

MAGIC = 0x54535350  # b"PSST" read as a little-endian uint32
READABLE_VERSIONS = (1, 2)
MAX_DEPTH = 32  # nesting limit of a state value (lists and dicts), checked when encoding and decoding


# ---- encoding ---------------------------------------------------------------------------------------
_SMALL_VARINTS = [bytes([i]) for i in range(128)]
_MASK64 = (1 << 64) - 1


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL_VARINTS[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _uint(field: int, value: int) -> bytes:
    """A varint field numbered below 16 (proto3: omitted when zero)."""
    return _SMALL_VARINTS[field << 3] + _varint(value) if value else b""


def _delimited(tag: bytes, body: bytes) -> bytes:
    return tag + _varint(len(body)) + body


def encode_value(value: Any, depth: int = 0) -> bytes:
    """Serialize plain data as a ``pipestate.v2.Value`` (the bytes protobuf's deterministic
    serialization gives; the tests check it).

    Raises:
        TypeError: ``value`` is not plain data (the message says what is not).
        ValueError: an integer outside [-2**63, 2**64) or nesting deeper than :data:`MAX_DEPTH`.
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"operator state is nested deeper than {MAX_DEPTH} levels")
    if value is None:
        return b"\x08\x01"
    if value is True or value is False:
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        if -(1 << 63) <= value < (1 << 63):
            return b"\x18" + _varint(((value << 1) ^ (value >> 63)) & _MASK64)
        if value <= _MASK64:
            return b"\x20" + _varint(value)
        raise ValueError(f"operator state integer {value} is outside [-2**63, 2**64)")
    if isinstance(value, float):
        return b"\x29" + struct.pack("<d", value)
    if isinstance(value, str):
        return _delimited(b"\x32", value.encode("utf-8"))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _delimited(b"\x3a", bytes(value))
    if isinstance(value, (list, tuple)):
        return _delimited(b"\x42", b"".join(_delimited(b"\x0a", encode_value(v, depth + 1)) for v in value))
    if isinstance(value, dict):
        entries = []
        for key in sorted(value):
            if not isinstance(key, str):
                raise TypeError(f"operator state dict keys must be strings, not {type(key).__name__} ({key!r})")
            name = _delimited(b"\x0a", key.encode("utf-8")) if key else b""  # proto3 omits an empty key
            body = name + _delimited(b"\x12", encode_value(value[key], depth + 1))
            entries.append(_delimited(b"\x0a", body))
        return _delimited(b"\x4a", b"".join(entries))
    raise TypeError(
        f"operator state holds a {type(value).__name__}; state is plain data: None, bool, int, float, str, "
        "bytes, and lists and dicts (string keys) of them"
    )


class Encoder:
    """Encodes checkpoints of one pipeline quickly.

    The parts that never change (version, fingerprint, batch size, seed, operator identities) are
    serialized once; each :meth:`encode` serializes only the counters and the states of stateful
    operators and splices them in. The bytes are exactly protobuf's deterministic serialization of the
    same message (fields in number order, zero scalars omitted), which the tests check.
    """

    def __init__(self, header: CheckpointData) -> None:
        head = pb.Payload(
            library_version=header.library_version,
            fingerprint=header.fingerprint,
            batch_size=header.batch_size,
            seed=header.seed,
        )
        self._head = head.SerializeToString(deterministic=True)
        self._ops = [
            pb.OperatorState(
                name=r.name, type=r.type, digest=r.digest, arg_digests=dict(r.arg_digests)
            ).SerializeToString(deterministic=True)
            for r in header.operators
        ]

    def encode(
        self,
        iteration: int,
        epoch: int,
        iteration_in_epoch: int,
        states: list[tuple[bool, Any]],
        iterator_data: str = "",
    ) -> bytes:
        """Return checkpoint bytes for these counters, per-operator ``(has_state, state)`` (graph order) and
        a framework iterator's state."""
        parts = [self._head, _uint(5, iteration), _uint(6, epoch), _uint(7, iteration_in_epoch)]
        for static, (has_state, state) in zip(self._ops, states):
            entry = static + _delimited(b"\x2a", encode_value(state)) if has_state else static
            parts.append(_delimited(b"\x42", entry))
        if iterator_data:
            parts.append(_delimited(b"\x4a", iterator_data.encode("utf-8")))
        return seal(FORMAT_VERSION, b"".join(parts))


def seal(version: int, payload: bytes) -> bytes:
    """Wrap a payload in the envelope: magic, format version, checksum, payload."""
    return b"".join(
        (
            b"\x0d" + MAGIC.to_bytes(4, "little"),
            _uint(2, version),
            b"\x1d" + _crc(version, payload).to_bytes(4, "little"),
            _delimited(b"\x22", payload),
        )
    )


def encode(data: CheckpointData) -> bytes:
    """Serialize ``data`` (format version 2) into checkpoint bytes."""
    states = [(record.has_state, record.state) for record in data.operators]
    return Encoder(data).encode(data.iteration, data.epoch, data.iteration_in_epoch, states, data.iterator_data)


def _crc(version: int, payload: bytes) -> int:
    """CRC-32 of the format version (4 bytes, little-endian) followed by the payload."""
    return zlib.crc32(payload, zlib.crc32(version.to_bytes(4, "little")))


# ---- decoding ---------------------------------------------------------------------------------------
def open_envelope(blob: bytes) -> tuple[int, bytes]:
    """Check the envelope and return (format version, payload bytes).

    Raises:
        TypeError: ``blob`` is not bytes.
        CorruptCheckpointError: the bytes are not an intact pipestate checkpoint.
        UnsupportedCheckpointVersionError: the format version is not one this library reads.
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"a checkpoint is bytes, not {type(blob).__name__}; read the file in binary mode")
    blob = bytes(blob)
    if not blob:
        raise CorruptCheckpointError("the checkpoint is empty (0 bytes)")
    envelope = envelope_pb.Checkpoint()
    try:
        envelope.ParseFromString(blob)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise CorruptCheckpointError(
            f"not a pipestate checkpoint, or truncated: the envelope does not parse ({len(blob)} bytes)"
        ) from exc
    if envelope.magic != MAGIC:
        raise CorruptCheckpointError(
            f"not a pipestate checkpoint: magic is {envelope.magic:#010x}, expected {MAGIC:#010x}"
        )
    if not envelope.payload or not envelope.format_version:
        raise CorruptCheckpointError(f"the checkpoint is truncated: its envelope is incomplete ({len(blob)} bytes)")
    if _crc(envelope.format_version, envelope.payload) != envelope.payload_crc32:
        raise CorruptCheckpointError(
            "the checkpoint is damaged: the checksum does not match (truncated or altered bytes)"
        )
    if envelope.format_version not in READABLE_VERSIONS:
        raise UnsupportedCheckpointVersionError(
            f"checkpoint format version {envelope.format_version} is not supported; this pipestate reads "
            f"versions {', '.join(map(str, READABLE_VERSIONS))}. Restore it with a pipestate release that "
            "reads it (a newer one, if it was written by a newer release)."
        )
    return envelope.format_version, envelope.payload


def decode(blob: bytes) -> CheckpointData:
    """Parse and check checkpoint bytes of any readable format version.

    Raises:
        CorruptCheckpointError: the bytes are not an intact pipestate checkpoint, or hold values no
            writer produces.
        UnsupportedCheckpointVersionError: the format version is not one this library reads.
    """
    version, payload_bytes = open_envelope(blob)
    if version == 1:
        return v1.decode_payload(payload_bytes)
    payload = pb.Payload()
    try:
        payload.ParseFromString(payload_bytes)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise CorruptCheckpointError("the checkpoint payload does not parse") from exc
    return CheckpointData(
        library_version=payload.library_version,
        fingerprint=payload.fingerprint,
        batch_size=payload.batch_size,
        seed=payload.seed,
        iteration=payload.iteration,
        epoch=payload.epoch,
        iteration_in_epoch=payload.iteration_in_epoch,
        operators=tuple(
            OperatorRecord(
                name=op.name,
                type=op.type,
                digest=op.digest,
                arg_digests=dict(op.arg_digests),
                state=decode_value(op.state) if op.HasField("state") else None,
                has_state=op.HasField("state"),
            )
            for op in payload.operators
        ),
        format_version=2,
        iterator_data=payload.iterator_data,
    )


def decode_value(message: pb.Value, depth: int = 0) -> Any:
    """Convert a ``Value`` message to plain data (lists for lists, dicts for maps).

    Raises:
        CorruptCheckpointError: an empty value, nesting deeper than MAX_DEPTH, or duplicate map keys.
    """
    if depth > MAX_DEPTH:
        raise CorruptCheckpointError(f"an operator state is nested deeper than {MAX_DEPTH} levels")
    kind = message.WhichOneof("kind")
    if kind is None:
        raise CorruptCheckpointError("an operator state value is empty (no kind set)")
    if kind == "none":
        return None
    if kind == "list":
        return [decode_value(item, depth + 1) for item in message.list.items]
    if kind == "map":
        out = {}
        for entry in message.map.entries:
            if entry.key in out:
                raise CorruptCheckpointError(f"an operator state map has the key {entry.key!r} twice")
            out[entry.key] = decode_value(entry.value, depth + 1)
        return out
    value = getattr(message, kind)
    if kind == "uint" and value < (1 << 63):
        raise CorruptCheckpointError("an operator state integer is in the wrong field (uint below 2**63)")
    return value

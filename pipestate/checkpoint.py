"""Checkpoint bytes: the envelope, the payload, operator states, and validation on restore.

The format is specified in ``docs/checkpoint-format.md``; the message definitions are in
``proto/pipestate/v1/checkpoint.proto``. Nothing here pickles: every field is a number, a string or
opaque bytes owned by an operator, so a checkpoint from an untrusted source is safe to parse.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import NamedTuple, Union

from google.protobuf.message import DecodeError

from pipestate._proto.pipestate.v1 import checkpoint_pb2 as pb
from pipestate.errors import (
    CheckpointMismatchError,
    CorruptCheckpointError,
    UnsupportedCheckpointVersionError,
)

MAGIC = 0x54535350  # b"PSST" read as a little-endian uint32
FORMAT_VERSION = 1


class RngState(NamedTuple):
    """State of a counter-based random stream: its Philox key and the index of the next sample."""

    key: int
    counter: int


class ReaderState(NamedTuple):
    """Position of a reader: its own epoch and how many samples of that epoch's order it has taken.

    ``dataset_digest`` identifies the dataset listing the position refers to (0: not checked).
    """

    epoch: int
    consumed: int
    dataset_digest: int = 0


class ExternalSourceState(NamedTuple):
    """Position of an external source, plus the bytes of a stateful source object's ``state()``."""

    epoch: int
    iteration: int
    source_state: bytes | None = None


class CustomState(NamedTuple):
    """Opaque bytes owned by an operator."""

    data: bytes


OperatorStateValue = Union[RngState, ReaderState, ExternalSourceState, CustomState, None]  # noqa: UP007 (a runtime alias)


@dataclasses.dataclass(frozen=True)
class OperatorRecord:
    """One operator's entry: identity for validation, and its state (``None`` when stateless)."""

    name: str
    type: str
    digest: int
    arg_names: tuple[str, ...]
    arg_digests: tuple[int, ...]
    state: OperatorStateValue = None


@dataclasses.dataclass(frozen=True)
class CheckpointData:
    """The decoded payload of a checkpoint."""

    library_version: str
    fingerprint: bytes
    batch_size: int
    seed: int
    iteration: int
    epoch: int
    iteration_in_epoch: int
    operators: tuple[OperatorRecord, ...]
    iterator_data: str = ""


class Encoder:
    """Encodes checkpoints of one pipeline quickly.

    The parts that never change (version, fingerprint, batch size, seed, operator identities) are
    serialized once; each :meth:`encode` serializes only the counters and the operator states and
    splices them in. The bytes are exactly what protobuf's deterministic serialization of the same
    message gives (fields in number order, zero scalars omitted), which the tests check.
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
                name=r.name, type=r.type, digest=r.digest, arg_digests=r.arg_digests
            ).SerializeToString(deterministic=True)
            for r in header.operators
        ]

    def encode(
        self,
        iteration: int,
        epoch: int,
        iteration_in_epoch: int,
        states: list[OperatorStateValue],
        iterator_data: str = "",
    ) -> bytes:
        """Return checkpoint bytes for these counters and per-operator states (in operator order)."""
        parts = [self._head, _uint(5, iteration), _uint(6, epoch), _uint(7, iteration_in_epoch)]
        for static, state in zip(self._ops, states):
            entry = static + _state_bytes(state)
            parts.append(b"\x42" + _varint(len(entry)) + entry)
        if iterator_data:
            text = iterator_data.encode()
            parts.append(b"\x4a" + _varint(len(text)) + text)
        payload = b"".join(parts)
        return b"".join(
            (
                b"\x0d" + MAGIC.to_bytes(4, "little"),
                _uint(2, FORMAT_VERSION),
                b"\x1d" + _crc(FORMAT_VERSION, payload).to_bytes(4, "little"),
                b"\x22" + _varint(len(payload)) + payload,
            )
        )


def encode(data: CheckpointData) -> bytes:
    """Serialize ``data`` into checkpoint bytes (payload inside the checksummed envelope)."""
    states = [record.state for record in data.operators]
    return Encoder(data).encode(data.iteration, data.epoch, data.iteration_in_epoch, states, data.iterator_data)


_SMALL_VARINTS = [bytes([i]) for i in range(128)]


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


# Operator state kinds: the NamedTuple, its field in the OperatorState oneof, and its message type.
_KINDS = {
    RngState: ("rng", 10, pb.RngState),
    ReaderState: ("reader", 11, pb.ReaderState),
    ExternalSourceState: ("external_source", 12, pb.ExternalSourceState),
}
_BY_FIELD = {name: cls for cls, (name, _, _) in _KINDS.items()}


def _state_bytes(state: OperatorStateValue) -> bytes:
    """The oneof field of an OperatorState holding ``state`` (empty for a stateless operator)."""
    if state is None:
        return b""
    if isinstance(state, CustomState):
        return b"\x6a" + _varint(len(state.data)) + state.data
    try:
        _, field, message = _KINDS[type(state)]
    except KeyError:
        raise TypeError(f"operator state of type {type(state).__name__} has no protobuf form") from None
    if field == 10:  # the hot path for random operators: fixed64 key, varint counter
        body = (b"\x09" + state.key.to_bytes(8, "little") if state.key else b"") + _uint(2, state.counter)
    else:
        values = {k: v for k, v in state._asdict().items() if v is not None}
        body = message(**values).SerializeToString(deterministic=True)
    return _SMALL_VARINTS[field << 3 | 2] + _varint(len(body)) + body


def decode(blob: bytes) -> CheckpointData:
    """Parse and check checkpoint bytes.

    Returns:
        The decoded payload. Operator ``arg_names`` are empty: the names come from the schema of the
        pipeline being restored, not from the file.

    Raises:
        CorruptCheckpointError: the bytes are not an intact pipestate checkpoint.
        UnsupportedCheckpointVersionError: the format version is not one this library reads.
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"a checkpoint is bytes, not {type(blob).__name__}; read the file in binary mode")
    blob = bytes(blob)
    if not blob:
        raise CorruptCheckpointError("the checkpoint is empty (0 bytes)")
    envelope = pb.Checkpoint()
    try:
        envelope.ParseFromString(blob)
    except DecodeError as exc:
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
    if envelope.format_version != FORMAT_VERSION:
        raise UnsupportedCheckpointVersionError(
            f"checkpoint format version {envelope.format_version} is not supported; this pipestate reads "
            f"version {FORMAT_VERSION}. Restore it with the pipestate release that wrote it."
        )
    payload = pb.Payload()
    try:
        payload.ParseFromString(envelope.payload)
    except DecodeError as exc:
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
                arg_names=(),
                arg_digests=tuple(op.arg_digests),
                state=_state_from_proto(op),
            )
            for op in payload.operators
        ),
        iterator_data=payload.iterator_data,
    )


def _crc(version: int, payload: bytes) -> int:
    """CRC-32 of the format version (4 bytes, little-endian) followed by the payload."""
    return zlib.crc32(payload, zlib.crc32(version.to_bytes(4, "little")))


def _state_from_proto(msg: pb.OperatorState) -> OperatorStateValue:
    kind = msg.WhichOneof("state")
    if kind is None:
        return None
    if kind == "custom":
        return CustomState(msg.custom)
    cls = _BY_FIELD[kind]
    sub = getattr(msg, kind)
    return cls(**{f: getattr(sub, f) if _present(sub, f) else None for f in cls._fields})


def _present(message: object, field: str) -> bool:
    descriptor = message.DESCRIPTOR.fields_by_name[field]
    return not descriptor.has_presence or message.HasField(field)


def check_matches(expected: CheckpointData, found: CheckpointData) -> None:
    """Raise :class:`CheckpointMismatchError` if ``found`` was not taken from the pipeline ``expected``.

    ``expected`` describes the pipeline being restored (its operators carry ``arg_names``); only its
    identity fields are read.
    """
    if expected.fingerprint == found.fingerprint:
        return
    differences = describe_differences(expected, found)
    if not differences:
        differences = ["the graph's structure or outputs differ (operator wiring or set_outputs)"]
    raise CheckpointMismatchError(
        "the checkpoint was taken from a different pipeline:\n  - "
        + "\n  - ".join(differences)
        + "\nRestore it into the pipeline definition that wrote it, or start without checkpoint=.",
        differences,
    )


def describe_differences(expected: CheckpointData, found: CheckpointData) -> list[str]:
    """List what differs between the pipeline ``expected`` and the one that wrote ``found``."""
    diffs = []
    if expected.batch_size != found.batch_size:
        diffs.append(f"batch_size is {expected.batch_size}, the checkpoint has {found.batch_size}")
    if expected.seed != found.seed:
        diffs.append(f"seed is {expected.seed}, the checkpoint has {found.seed}")
    ours = {op.name: op for op in expected.operators}
    theirs = {op.name: op for op in found.operators}
    missing = [name for name in theirs if name not in ours]
    extra = [name for name in ours if name not in theirs]
    if missing:
        diffs.append(f"operators in the checkpoint but not in this pipeline: {', '.join(missing)}")
    if extra:
        diffs.append(f"operators in this pipeline but not in the checkpoint: {', '.join(extra)}")
    for name, op in ours.items():
        other = theirs.get(name)
        if other is None or op.digest == other.digest:
            continue
        if op.type != other.type:
            diffs.append(f"operator {name!r} is {op.type}, the checkpoint's is {other.type}")
            continue
        changed = [
            arg
            for arg, mine, old in zip(op.arg_names, op.arg_digests, other.arg_digests)
            if mine != old
        ]
        if changed:
            diffs.append(f"operator {name!r} ({op.type}): changed arguments: {', '.join(changed)}")
        else:
            diffs.append(f"operator {name!r} ({op.type}): its inputs are wired differently")
    return diffs

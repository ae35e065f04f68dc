"""Reading format-version-1 checkpoints (pipestate 0.1) into today's pipelines (used by
:mod:`pipestate.checkpoint.codec` and :mod:`pipestate.checkpoint.restore` only).

Version 1 differs from version 2 in three ways, all handled here and frozen by ``tests/golden/v1``:

- its fingerprint and per-operator digests covered every argument, defaults included, in the form
  pipestate 0.1 normalized them to, with module-qualified callable names; this module recomputes that
  legacy identity from the arguments the user gave (``Operator.raw_args``) and the 0.1 defaults below;
- operator states were a closed set of kinds (``rng``, ``reader``, ``external_source``, ``custom``);
  they become today's plain-data states;
- random operators stored their counter, which is now derived (``iteration * batch_size``): it is
  checked, together with the stream key, and dropped.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError

from pipestate._proto.pipestate.v1 import checkpoint_pb2 as pb
from pipestate.checkpoint.records import CheckpointData, OperatorRecord, mismatch
from pipestate.errors import CheckpointMismatchError, CorruptCheckpointError
from pipestate.graph import DataNode, canonical, canonical_json


class RngState(NamedTuple):
    """Version 1: a random operator's stream key and the index of its next sample."""

    key: int
    counter: int


class ReaderState(NamedTuple):
    """Version 1: a reader's epoch, position in it, and dataset digest."""

    epoch: int
    consumed: int
    dataset_digest: int = 0


class ExternalSourceState(NamedTuple):
    """Version 1: an external source's epoch and iteration, and a source object's state bytes."""

    epoch: int
    iteration: int
    source_state: bytes | None = None


def decode_payload(payload_bytes: bytes) -> CheckpointData:
    """Parse a version-1 payload (its envelope already checked).

    Raises:
        CorruptCheckpointError: the payload does not parse.
    """
    payload = pb.Payload()
    try:
        payload.ParseFromString(payload_bytes)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise CorruptCheckpointError("the checkpoint payload does not parse") from exc
    operators = []
    for op in payload.operators:
        state = _state(op)
        operators.append(OperatorRecord(op.name, op.type, op.digest, tuple(op.arg_digests), state, state is not None))
    return CheckpointData(
        library_version=payload.library_version,
        fingerprint=payload.fingerprint,
        batch_size=payload.batch_size,
        seed=payload.seed,
        iteration=payload.iteration,
        epoch=payload.epoch,
        iteration_in_epoch=payload.iteration_in_epoch,
        operators=tuple(operators),
        format_version=1,
    )


def _state(op: pb.OperatorState) -> Any:
    kind = op.WhichOneof("state")
    if kind is None:
        return None
    if kind == "custom":
        return op.custom
    if kind == "rng":
        return RngState(op.rng.key, op.rng.counter)
    if kind == "reader":
        return ReaderState(op.reader.epoch, op.reader.consumed, op.reader.dataset_digest)
    es = op.external_source
    return ExternalSourceState(es.epoch, es.iteration, es.source_state if es.HasField("source_state") else None)


# ---- the legacy identity ------------------------------------------------------------------------------
_SHARD = {
    "random_shuffle": False,
    "initial_fill": 1024,
    "shuffle_after_epoch": False,
    "seed": -1,
    "shard_id": 0,
    "num_shards": 1,
    "stick_to_shard": False,
    "pad_last_batch": False,
}
# A frozen copy of 0.1's default file_filters, deliberately not readers._files.DEFAULT_FILE_FILTERS: if
# that default ever changes, version-1 checkpoints must still be checked against 0.1's.
_IMAGE_FILTERS = (
    "*.jpg",
    "*.jpeg",
    "*.png",
    "*.bmp",
    "*.tif",
    "*.tiff",
    "*.pnm",
    "*.ppm",
    "*.pgm",
    "*.pbm",
    "*.jp2",
    "*.webp",
    "*.flac",
    "*.ogg",
    "*.wav",
)
_RANDOM = {"shape": None, "seed": -1}
# Every argument of every operator of pipestate 0.1, with its 0.1 default.
V1_DEFAULTS: dict[str, dict[str, Any]] = {
    "random.uniform": {"range": (-1.0, 1.0), "values": None, "dtype": None, **_RANDOM},
    "random.normal": {"mean": 0.0, "stddev": 1.0, "dtype": None, **_RANDOM},
    "random.coin_flip": {"probability": 0.5, "dtype": None, **_RANDOM},
    "random.choice": {"a": None, "p": None, **_RANDOM},
    "arithmetic": {"op": None, "left": None, "right": None},
    "cast": {"dtype": None},
    "external_source": {"source": None, "num_outputs": None, "batch": True, "batch_info": False, "dtype": None},
    "python_function": {"function": None, "num_outputs": 1, "batch_processing": False},
    "readers.file": {
        "file_root": None,
        "file_list": None,
        "files": None,
        "labels": None,
        "file_filters": _IMAGE_FILTERS,
        "case_sensitive_filter": False,
        **_SHARD,
    },
    "readers.numpy": {
        "file_root": None,
        "files": None,
        "file_list": None,
        "file_filter": "*.npy",
        "case_sensitive_filter": False,
        **_SHARD,
    },
    "readers.tfrecord": {"path": None, "index_path": None, "features": None, **_SHARD},
}


def _patterns(value: Any) -> tuple:
    return (value,) if isinstance(value, str) else tuple(value)


def _paths(value: Any) -> list:
    return [os.fspath(v) for v in ([value] if isinstance(value, (str, os.PathLike)) else value)]


def _features(features: dict) -> dict:
    import numpy as np

    def default(spec: Any) -> Any:
        value = spec.default_value
        if value is None or isinstance(value, (str, bytes)):
            return value.hex() if isinstance(value, bytes) else value
        return np.asarray(value).tolist()

    return {
        n: [type(spec).__name__, list(getattr(spec, "shape", ())), spec.dtype, default(spec)]
        for n, spec in features.items()
    }


def legacy_args(op_type: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The arguments of an operator as pipestate 0.1 normalized them (what its digests covered).

    Raises:
        CheckpointMismatchError: an argument pipestate 0.1 did not have is set to a non-default value
            (no version-1 checkpoint can come from such a pipeline).
    """
    defaults = V1_DEFAULTS[op_type]
    args = dict(defaults)
    for key, value in raw.items():
        if key in defaults:
            args[key] = value
    if op_type.startswith("random.") and args["shape"] is not None:
        shape = args["shape"]
        args["shape"] = (shape,) if isinstance(shape, int) or hasattr(shape, "__index__") else tuple(shape)
        args["shape"] = tuple(int(d) for d in args["shape"])
    if op_type in ("readers.file", "readers.numpy"):
        for key in ("file_root", "file_list"):
            if args[key] is not None:
                args[key] = os.fspath(args[key])
        if args["files"] is not None:
            args["files"] = [os.fspath(f) for f in args["files"]]
        key = "file_filters" if op_type == "readers.file" else "file_filter"
        args[key] = _patterns(args[key])
        if op_type == "readers.file" and args["labels"] is not None:
            args["labels"] = [int(v) for v in args["labels"]]
    if op_type == "readers.tfrecord":
        args["path"] = _paths(args["path"])
        if args["index_path"] is not None:
            args["index_path"] = _paths(args["index_path"])
        args["features"] = _features(args["features"])
    return args


def _identity(op: Any) -> tuple[int, tuple[str, ...], tuple[int, ...]]:
    args = {k: canonical(v, modules=True) for k, v in sorted(legacy_args(op.type, op.raw_args).items())}
    description = {"type": op.type, "args": args, "inputs": [canonical(n) for n in op.inputs]}
    digest = int.from_bytes(hashlib.sha256(canonical_json(description)).digest()[:8], "little")
    names = tuple(args)
    return digest, names, tuple(zlib.crc32(canonical_json(args[k])) for k in names)


def _fingerprint(batch_size: int, seed: int, digests: list[tuple[str, int]], outputs: Sequence[DataNode]) -> bytes:
    description = {
        "batch_size": batch_size,
        "seed": seed,
        "ops": digests,
        "outputs": [canonical(node) for node in outputs],
    }
    return hashlib.sha256(canonical_json(description)).digest()[:16]


# ---- migration ----------------------------------------------------------------------------------------
def migrate(
    data: CheckpointData, ops: Sequence[Any], batch_size: int, seed: int, outputs: Sequence[DataNode]
) -> CheckpointData:
    """Check a version-1 checkpoint against a pipeline and return it with today's operator states.

    Args:
        data: The decoded version-1 checkpoint.
        ops: The pipeline's operators (graph order).
        batch_size, seed, outputs: The pipeline's.

    Raises:
        CheckpointMismatchError: the checkpoint was taken from another pipeline (naming what differs), or
            an operator's stream or position disagrees with the pipeline's.
    """
    unknown = sorted({op.type for op in ops} - set(V1_DEFAULTS))
    if unknown:
        raise mismatch([f"operator types that did not exist in format version 1: {', '.join(unknown)}"])
    differences = []
    identities = {}
    for op in ops:
        extra = [
            k
            for k, v in op.raw_args.items()
            if k not in V1_DEFAULTS[op.type] and canonical(v) != canonical(_default_of(op, k))
        ]
        if extra:
            differences.append(f"operator {op.name!r} ({op.type}) sets arguments format version 1 lacks: {extra}")
        identities[op.name] = _identity(op)
    expected = _fingerprint(batch_size, seed, [(op.name, identities[op.name][0]) for op in ops], outputs)
    if differences or expected != data.fingerprint:
        raise mismatch(differences or _differences(data, ops, identities, batch_size, seed))
    if [r.name for r in data.operators] != [op.name for op in ops]:
        raise CheckpointMismatchError(
            "the checkpoint's operator entries do not match its fingerprint (entries missing, renamed, "
            "reordered or duplicated): the bytes were altered or written by another program"
        )
    counter = data.iteration * batch_size
    migrated = [_migrate_state(op, record, counter, seed) for op, record in zip(ops, data.operators)]
    return CheckpointData(
        data.library_version,
        data.fingerprint,
        data.batch_size,
        data.seed,
        data.iteration,
        data.epoch,
        data.iteration_in_epoch,
        tuple(migrated),
        format_version=1,
    )


def _default_of(op: Any, key: str) -> Any:
    return next(a.default for a in op.SCHEMA if a.name == key)


def _differences(data: CheckpointData, ops: Sequence[Any], identities: dict, batch_size: int, seed: int) -> list[str]:
    diffs = []
    if data.batch_size != batch_size:
        diffs.append(f"batch_size is {batch_size}, the checkpoint has {data.batch_size}")
    if data.seed != seed:
        diffs.append(f"seed is {seed}, the checkpoint has {data.seed}")
    theirs = {r.name: r for r in data.operators}
    ours = {op.name: op for op in ops}
    missing = [n for n in theirs if n not in ours]
    extra = [n for n in ours if n not in theirs]
    if missing:
        diffs.append(f"operators in the checkpoint but not in this pipeline: {', '.join(missing)}")
    if extra:
        diffs.append(f"operators in this pipeline but not in the checkpoint: {', '.join(extra)}")
    for name, op in ours.items():
        other = theirs.get(name)
        digest, names, arg_digests = identities[name]
        if other is None or other.digest == digest:
            continue
        if other.type != op.type:
            diffs.append(f"operator {name!r} is {op.type}, the checkpoint's is {other.type}")
            continue
        changed = [n for n, mine, old in zip(names, arg_digests, other.arg_digests) if mine != old]
        diffs.append(
            f"operator {name!r} ({op.type}): changed arguments: {', '.join(changed)}"
            if changed
            else f"operator {name!r} ({op.type}): its inputs are wired differently"
        )
    return diffs


def _migrate_state(op: Any, record: OperatorRecord, counter: int, seed: int) -> OperatorRecord:
    state = record.state
    where = f"operator {op.name!r} ({op.type})"
    if isinstance(state, RngState):
        key = op.stream_key(seed)
        if state.key != key or state.counter != counter:
            raise CheckpointMismatchError(
                f"{where}: the checkpoint's random stream (key {state.key:#x}, sample {state.counter}) is not the "
                f"one this pipeline is at (key {key:#x}, sample {counter}); it was written with another "
                "seed, or its counters were altered"
            )
        new = None
    elif isinstance(state, ReaderState):
        new = {"epoch": state.epoch, "consumed": state.consumed, "dataset_digest": state.dataset_digest}
    elif isinstance(state, ExternalSourceState):
        new = {"epoch": state.epoch, "iteration": state.iteration}
        if state.source_state is not None:
            new["source_state"] = state.source_state
    else:
        new = state
    has_state = new is not None
    if has_state != op.stateful:
        raise CheckpointMismatchError(
            f"{where}: the checkpoint {'holds' if has_state else 'lacks'} a state this operator "
            f"{'does not have' if has_state else 'needs'}"
        )
    return OperatorRecord(record.name, record.type, record.digest, record.arg_digests, new, has_state)

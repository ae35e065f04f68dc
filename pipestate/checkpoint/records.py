"""What a decoded checkpoint holds, and how two pipelines' identities are compared.

:class:`CheckpointData` is the decoded payload of any format version; :func:`identity` computes the same
record for a pipeline (no state), so validation compares like with like.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from pipestate.errors import CheckpointMismatchError
from pipestate.graph import DataNode, fingerprint, op_identity

FORMAT_VERSION = 2


@dataclasses.dataclass(frozen=True)
class OperatorRecord:
    """One operator's entry: identity for validation, and its state.

    Attributes:
        arg_digests: ``{argument name: CRC-32}`` of the non-default arguments (version 2); for a version-1
            checkpoint, the digests of every argument in sorted-name order, as a tuple.
        state: The operator's state (plain data), or ``None`` when ``has_state`` is False.
    """

    name: str
    type: str
    digest: int
    arg_digests: dict[str, int] | tuple[int, ...]
    state: Any = None
    has_state: bool = False


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
    format_version: int = FORMAT_VERSION
    iterator_data: str = ""


def identity(
    ops: Sequence[Any], outputs: Sequence[DataNode], batch_size: int, seed: int, version: str
) -> CheckpointData:
    """The identity of a pipeline (its operators in graph order, outputs, batch size and seed) as a
    checkpoint record without state, at position 0."""
    identities = [op_identity(op) for op in ops]
    return CheckpointData(
        library_version=version,
        fingerprint=fingerprint(batch_size, seed, [(op.name, d) for op, (d, _) in zip(ops, identities)], outputs),
        batch_size=batch_size,
        seed=seed,
        iteration=0,
        epoch=0,
        iteration_in_epoch=0,
        operators=tuple(
            OperatorRecord(op.name, op.type, digest, args, has_state=op.stateful)
            for op, (digest, args) in zip(ops, identities)
        ),
    )


def check_matches(expected: CheckpointData, found: CheckpointData) -> None:
    """Raise :class:`CheckpointMismatchError` if ``found`` was not taken from the pipeline ``expected``.

    Both are version 2 (a version-1 checkpoint is checked by :mod:`pipestate.checkpoint_v1`).
    """
    if expected.fingerprint == found.fingerprint:
        return
    differences = describe_differences(expected, found)
    if not differences:
        differences = ["the graph's structure or outputs differ (operator wiring or set_outputs)"]
    raise mismatch(differences)


def mismatch(differences: list[str]) -> CheckpointMismatchError:
    """The error for a checkpoint of another pipeline, listing ``differences``."""
    return CheckpointMismatchError(
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
        mine, old = dict(op.arg_digests), dict(other.arg_digests)
        changed = sorted(k for k in set(mine) | set(old) if mine.get(k) != old.get(k))
        if changed:
            diffs.append(f"operator {name!r} ({op.type}): changed arguments: {', '.join(changed)}")
        else:
            diffs.append(f"operator {name!r} ({op.type}): its inputs are wired differently")
    return diffs

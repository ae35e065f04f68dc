"""Restore in one pass: checkpoint bytes -> decode -> migrate -> validate -> what a pipeline applies.

:func:`resolve` is the only way a checkpoint reaches a pipeline. It never touches the pipeline: it checks
the bytes against the pipeline's graph and options and returns a :class:`Restored` (the seed to run with,
the position, one state per stateful operator). The pipeline then applies it, all or nothing. An elastic
pipeline's fingerprint leaves its shard layout and batch size out, so the checkpoint of one shard layout
restores on another once :mod:`pipestate.distributed` has given each new shard its checkpoint. With
``partial=True`` a checkpoint of an earlier version of the definition restores operator by operator
(:mod:`pipestate.checkpoint.partial`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from pipestate.checkpoint import v1
from pipestate.checkpoint.codec import decode
from pipestate.checkpoint.partial import RestoreReport, full_report, plan
from pipestate.checkpoint.records import CheckpointData, check_matches, mismatch
from pipestate.errors import CheckpointMismatchError, CorruptCheckpointError
from pipestate.graph import DataNode, is_elastic

MAX_POSITION = 2**63 - 1  # the global sample counter (iteration * batch_size) must fit an int64
SEEDS = range(0, 2**63)  # the seeds a pipeline runs with (a random one is drawn in this range)


@dataclasses.dataclass(frozen=True)
class Target:
    """The pipeline a checkpoint is restored into.

    Attributes:
        ops: Its operators, in graph order.
        outputs: Its outputs.
        batch_size: Its batch size.
        seed: Its seed, or ``None`` when it was constructed without one (it adopts the checkpoint's).
        identity: ``identity(seed)``: the pipeline's identity record with that seed.
    """

    ops: Sequence[Any]
    outputs: Sequence[DataNode]
    batch_size: int
    seed: int | None
    identity: Callable[[int], CheckpointData]


@dataclasses.dataclass(frozen=True)
class Restored:
    """A validated checkpoint, ready to apply.

    Attributes:
        seed: The seed to run with.
        iteration, epoch, iteration_in_epoch: The position after the checkpoint's last batch.
        states: The state of each stateful operator, in graph order.
        data: The decoded checkpoint (after migration), e.g. for ``iterator_data``.
        report: What is restored, started fresh or dropped, operator by operator.
    """

    seed: int
    iteration: int
    epoch: int
    iteration_in_epoch: int
    states: tuple
    data: CheckpointData
    report: RestoreReport


def resolve(checkpoint: bytes | CheckpointData, target: Target, partial: bool = False) -> Restored:
    """Decode, migrate and validate ``checkpoint`` for ``target``.

    Args:
        checkpoint: The bytes, or a decoded checkpoint.
        target: The pipeline.
        partial: Accept a checkpoint of another version of the pipeline's definition: restore the operators
            whose identity is unchanged and start the changed stateless ones fresh
            (:mod:`pipestate.checkpoint.partial`).

    Raises:
        CorruptCheckpointError: the bytes are damaged, or hold values no pipeline writes (a seed or a
            position out of range).
        UnsupportedCheckpointVersionError: the format version is not readable.
        CheckpointMismatchError: the checkpoint was taken from another pipeline (naming what differs); with
            ``partial``, an operator that keeps state changed or is new, or the batch size or seed differs.
    """
    data = checkpoint if isinstance(checkpoint, CheckpointData) else decode(checkpoint)
    if data.seed not in SEEDS:
        raise CorruptCheckpointError(
            f"the checkpoint's seed {data.seed} is not one a pipeline runs with (0 <= seed < 2**63): altered bytes"
        )
    seed = data.seed if target.seed is None else target.seed
    if data.format_version == 1:
        try:
            data = v1.migrate(data, target.ops, target.batch_size, seed, target.outputs)
        except CheckpointMismatchError as exc:
            if not partial:
                raise
            note = (
                "(partial_restore reads format-2 checkpoints: restore this one into the pipeline that wrote it "
                "and take a new checkpoint)"
            )
            raise mismatch([*exc.differences, note]) from None
    elif partial and target.identity(seed).fingerprint != data.fingerprint:
        report, states = plan(target.identity(seed), data, target.ops, target.outputs)
        _check_batch_size(data, target)
        _check_position(data, target)
        return Restored(seed, data.iteration, data.epoch, data.iteration_in_epoch, states, data, report)
    else:
        check_matches(target.identity(seed), data)
    _check_consistent(data, target, seed)
    states = tuple(r.state for r in data.operators if r.has_state)
    return Restored(seed, data.iteration, data.epoch, data.iteration_in_epoch, states, data, full_report(target.ops))


def _check_batch_size(data: CheckpointData, target: Target) -> None:
    if target.batch_size != data.batch_size and is_elastic(target.ops):
        raise CheckpointMismatchError(
            f"the checkpoint was taken with batch_size={data.batch_size}, this pipeline has "
            f"batch_size={target.batch_size}: an elastic pipeline restores on another shard layout or global "
            "batch size from the checkpoint pipestate.distributed gives its shard (combine the shards' "
            "checkpoints, then shard_checkpoint() or split() for the new layout)"
        )


def _check_position(data: CheckpointData, target: Target) -> None:
    if not (
        data.iteration_in_epoch <= data.iteration
        and (data.epoch > 0 or data.iteration_in_epoch == data.iteration)  # epoch 0 holds every batch so far
        and data.iteration * target.batch_size <= MAX_POSITION
        and data.epoch <= MAX_POSITION
    ):
        raise CorruptCheckpointError(
            f"the checkpoint's position (iteration {data.iteration}, epoch {data.epoch}, iteration in epoch "
            f"{data.iteration_in_epoch}) is not one a pipeline reaches"
        )


def _check_consistent(data: CheckpointData, target: Target, seed: int) -> None:
    """The fields a fingerprint does not cover agree with it and with each other."""
    _check_batch_size(data, target)
    stated = [
        f"{what} is {mine}, the checkpoint states {theirs}"
        for what, mine, theirs in (("batch_size", target.batch_size, data.batch_size), ("seed", seed, data.seed))
        if mine != theirs
    ]
    if stated:
        raise mismatch([*stated, "(the checkpoint's fields disagree with its fingerprint: altered bytes)"])
    records = data.operators
    if [r.name for r in records] != [op.name for op in target.ops] or any(
        r.has_state != op.stateful for r, op in zip(records, target.ops)
    ):
        raise CheckpointMismatchError(
            "the checkpoint's operator entries do not match its fingerprint (entries missing, renamed, "
            "reordered or with the wrong kind of state): the bytes were altered or written by another program"
        )
    _check_position(data, target)

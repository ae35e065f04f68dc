"""Restore in one pass: checkpoint bytes -> decode -> migrate -> validate -> what a pipeline applies.

:func:`resolve` is the only way a checkpoint reaches a pipeline. It never touches the pipeline: it checks
the bytes against the pipeline's graph and options and returns a :class:`Restored` (the seed to run with,
the position, one state per stateful operator). The pipeline then applies it, all or nothing. Elastic
restore plugs in here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from pipestate.checkpoint import v1
from pipestate.checkpoint.codec import decode
from pipestate.checkpoint.records import CheckpointData, check_matches, mismatch
from pipestate.errors import CheckpointMismatchError, CorruptCheckpointError
from pipestate.graph import DataNode

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
    """

    seed: int
    iteration: int
    epoch: int
    iteration_in_epoch: int
    states: tuple
    data: CheckpointData


def resolve(checkpoint: bytes | CheckpointData, target: Target) -> Restored:
    """Decode, migrate and validate ``checkpoint`` for ``target``.

    Raises:
        CorruptCheckpointError: the bytes are damaged, or hold values no pipeline writes (a seed or a
            position out of range).
        UnsupportedCheckpointVersionError: the format version is not readable.
        CheckpointMismatchError: the checkpoint was taken from another pipeline (naming what differs).
    """
    data = checkpoint if isinstance(checkpoint, CheckpointData) else decode(checkpoint)
    if data.seed not in SEEDS:
        raise CorruptCheckpointError(
            f"the checkpoint's seed {data.seed} is not one a pipeline runs with (0 <= seed < 2**63): altered bytes"
        )
    seed = data.seed if target.seed is None else target.seed
    if data.format_version == 1:
        data = v1.migrate(data, target.ops, target.batch_size, seed, target.outputs)
    else:
        check_matches(target.identity(seed), data)
    _check_consistent(data, target, seed)
    states = tuple(r.state for r in data.operators if r.has_state)
    return Restored(seed, data.iteration, data.epoch, data.iteration_in_epoch, states, data)


def _check_consistent(data: CheckpointData, target: Target, seed: int) -> None:
    """The fields a fingerprint does not cover agree with it and with each other."""
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

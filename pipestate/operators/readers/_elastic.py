"""The elastic mode of the readers (``elastic=True``): the shard's layout, its state checks, its metadata.

The order itself is in ``_sampler`` (:func:`~pipestate.operators.readers._sampler.global_order`,
:func:`~pipestate.operators.readers._sampler.elastic_step`); the reader base class calls these helpers, so
every reader has the mode. The state is the job's global position plus the shard's layout:
``{epoch, consumed, dataset_digest, layout: {global_batch_size, num_shards, shard_id}}``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipestate.errors import CheckpointMismatchError
from pipestate.operators.readers._sampler import Layout, ShardConfig

LAYOUT_ARGS = frozenset({"shard_id", "num_shards", "global_batch_size"})
POSITION_KEYS = {"epoch", "consumed", "dataset_digest"}
LAYOUT_KEYS = {"global_batch_size", "num_shards", "shard_id"}


def counters(value: Any, keys: set[str]) -> bool:
    """``value`` is a dict of exactly ``keys``, each an int in [0, 2**64)."""
    return (
        isinstance(value, dict)
        and set(value) == keys
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**64 for v in value.values())
    )


def check_arguments(args: Any, where: str) -> None:
    """Definition-time rules of the elastic arguments (``where``: ``"fn.readers.file()"``).

    Raises:
        ValueError: naming the arguments that conflict.
    """
    if args["global_batch_size"] and not args["elastic"]:
        raise ValueError(f"{where}: global_batch_size={args['global_batch_size']} applies to elastic=True only")
    if args["elastic"] and args["stick_to_shard"]:
        raise ValueError(
            f"{where}: elastic=True and stick_to_shard=True cannot be combined: an elastic job reads the "
            "whole dataset as one sequence, of which each shard takes its part of every global batch"
        )
    if args["elastic"] and 0 < args["global_batch_size"] < args["num_shards"]:
        raise ValueError(
            f"{where}: global_batch_size={args['global_batch_size']} is smaller than num_shards={args['num_shards']}; "
            "every shard takes at least one sample of each global batch"
        )


def layout(args: Any, size: int, batch_size: int, where: str) -> Layout:
    """The shard's layout from its arguments, checked against the pipeline's ``batch_size`` (at build).

    Raises:
        ValueError: the dataset is empty, or ``batch_size`` is not the shard's part of the global batch.
    """
    if size == 0:
        raise ValueError(f"{where}: the dataset is empty")
    num_shards = int(args["num_shards"])
    result = Layout(int(args["global_batch_size"]) or batch_size * num_shards, num_shards, int(args["shard_id"]))
    begin, end = result.bounds
    if end - begin != batch_size:
        raise ValueError(
            f"{where}: with elastic=True, shard {result.shard_id} of {num_shards} takes samples [{begin}, {end}) "
            f"of each global batch of {result.global_batch_size}: build its pipeline with batch_size={end - begin} "
            "(pipestate.distributed.local_batch_size)"
        )
    return result


def check_state(state: Any, mine: Layout, size: int, where: str) -> None:
    """An elastic position: any global position of this dataset, taken on this shard's layout (the position
    is the job's, so it does not depend on the pipeline's iteration). The digest is checked by the caller.

    Raises:
        CheckpointMismatchError: naming what does not fit.
    """
    if not (
        isinstance(state, dict)
        and set(state) == POSITION_KEYS | {"layout"}
        and counters({k: v for k, v in state.items() if k != "layout"}, POSITION_KEYS)
        and counters(state["layout"], LAYOUT_KEYS)
    ):
        raise CheckpointMismatchError(f"{where}: the checkpoint's state {state!r} is not an elastic reader position")
    if state["consumed"] >= size or state["epoch"] >= (2**63 - size) // size:  # identities fit an int64
        raise CheckpointMismatchError(
            f"{where}: position {state['consumed']} of epoch {state['epoch']} is not one a job reaches on this "
            f"dataset of {size} samples"
        )
    theirs, ours = state["layout"], dataclasses.asdict(mine)
    if theirs == ours:
        return
    if {**theirs, "shard_id": 0} == {**ours, "shard_id": 0}:
        raise CheckpointMismatchError(
            f"{where}: the checkpoint is shard {theirs['shard_id']}'s; this reader is shard {ours['shard_id']} of "
            "the same layout: restore each shard from its own checkpoint"
        )
    raise CheckpointMismatchError(
        f"{where}: the checkpoint is shard {theirs['shard_id']} of {theirs['num_shards']} with a global batch "
        f"of {theirs['global_batch_size']}; this reader is shard {ours['shard_id']} of {ours['num_shards']} "
        f"with a global batch of {ours['global_batch_size']}. To resume on another layout, combine the "
        "job's shard checkpoints and give this shard its own (pipestate.distributed.combine, then "
        "shard_checkpoint or split)"
    )


def advance(size: int, mine: Layout, pad_last_batch: bool, epoch: int, consumed: int, count: int) -> tuple[int, int]:
    """The global position ``count`` samples after ``(epoch, consumed)``, in O(1).

    Without padding the job reads one stream of epochs, so it is plain arithmetic. With ``pad_last_batch``
    an epoch's last global batch is padded and the next starts the next epoch: ``count`` must then be a
    whole number of global batches.

    Raises:
        ValueError: with ``pad_last_batch``, ``count`` is not a multiple of the global batch size.
    """
    if not pad_last_batch:
        total = consumed + count
        return epoch + total // size, total % size
    g = mine.global_batch_size
    if count % g:
        raise ValueError(
            f"a skip of {count} samples is not a whole number of global batches of {g}; with pad_last_batch=True "
            "skip whole global steps"
        )
    steps, per_epoch, left = count // g, -(-size // g), -(-(size - consumed) // g)
    if steps < left:
        return epoch, consumed + steps * g
    steps -= left
    return epoch + 1 + steps // per_epoch, steps % per_epoch * g


def reader_meta(cfg: ShardConfig, mine: Layout) -> dict[str, int]:
    """DALI's reader metadata in the elastic mode, plus ``elastic`` (1) and ``global_batch_size``;
    ``epoch_size_padded`` is what the whole job reads per epoch (with padding: whole global batches)."""
    g = mine.global_batch_size
    return {
        "epoch_size": cfg.size,
        "epoch_size_padded": -(-cfg.size // g) * g if cfg.pad_last_batch else cfg.size,
        "number_of_shards": cfg.num_shards,
        "shard_id": cfg.shard_id,
        "pad_last_batch": int(cfg.pad_last_batch),
        "stick_to_shard": 0,
        "elastic": 1,
        "global_batch_size": g,
    }

"""The reader base class: sharding and shuffling arguments, ``reader_meta``, and the position state.

A subclass lists its dataset in :meth:`Reader.discover` (at build time) and reads samples by index in
:meth:`Reader.read`. The base class decides which indices each batch holds (``_sampler``), and its state
is :class:`~pipestate.checkpoint.ReaderState` — a reader epoch and a position in it — so restoring never
re-reads a sample.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.checkpoint import ReaderState
from pipestate.errors import CheckpointMismatchError
from pipestate.ops.base import BuildEnv, Operator, RunContext
from pipestate.ops.readers import _sampler
from pipestate.rng import derive_key

# DALI's shuffle_after_epoch uses a fixed seed so that every shard (every process) permutes alike; with
# seed=-1 pipestate does the same, so shards stay disjoint even when their pipeline seeds differ.
_FIXED_EPOCH_SHUFFLE_SEED = 0x5EED_DA11

SHARD_ARGS: dict[str, Any] = {
    "random_shuffle": False,
    "initial_fill": 1024,
    "shuffle_after_epoch": False,
    "seed": -1,
    "shard_id": 0,
    "num_shards": 1,
    "stick_to_shard": False,
    "pad_last_batch": False,
}


class Reader(Operator):
    """Base class of readers: a sharded, optionally shuffled sequence of samples read by index.

    Subclasses define ``type``, ``ARGS`` (including :data:`SHARD_ARGS`), :meth:`discover` and :meth:`read`.

    ``next_epoch()`` (``Pipeline.reset()``) does not move a reader: as in DALI, readers never end the
    pipeline's epoch and wrap into their next reader epoch by themselves; use ``reader_meta()`` or
    ``epoch_size()`` to know how many batches make an epoch.
    """

    stateful = True

    def validate(self) -> None:
        where = f"fn.{self.type}()"
        for name in ("random_shuffle", "shuffle_after_epoch", "stick_to_shard", "pad_last_batch"):
            if not isinstance(self.args[name], (bool, np.bool_)):
                raise TypeError(f"{where}: {name}={self.args[name]!r} must be True or False")
        for name in ("initial_fill", "seed", "shard_id", "num_shards"):
            value = self.args[name]
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"{where}: {name}={value!r} must be an int")
        a = self.args
        if a["num_shards"] < 1:
            raise ValueError(f"{where}: num_shards={a['num_shards']} must be >= 1")
        if not 0 <= a["shard_id"] < a["num_shards"]:
            raise ValueError(
                f"{where}: shard_id={a['shard_id']} must be in [0, num_shards) = [0, {a['num_shards']})"
            )
        if a["initial_fill"] < 1:
            raise ValueError(f"{where}: initial_fill={a['initial_fill']} must be >= 1")
        if a["shuffle_after_epoch"] and a["random_shuffle"]:
            raise ValueError(
                f"{where}: shuffle_after_epoch=True and random_shuffle=True cannot be combined; "
                "choose one way to shuffle"
            )
        if a["shuffle_after_epoch"] and a["stick_to_shard"]:
            raise ValueError(
                f"{where}: shuffle_after_epoch=True and stick_to_shard=True cannot be combined: the epoch "
                "permutation moves samples between shards"
            )

    # ---- to implement -----------------------------------------------------------------------------
    def discover(self) -> tuple[int, Iterable[bytes]]:
        """List the dataset (at build time).

        Returns:
            The number of samples, and byte strings describing the listing (paths, labels, offsets) whose
            digest guards restores against a changed dataset.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement discover()")

    def read(self, ctx: RunContext, indices: list[int]) -> tuple[Batch, ...]:
        """Read the samples ``indices`` (dataset indices, in batch order) and return the output batches."""
        raise NotImplementedError(f"{type(self).__name__} must implement read()")

    def read_chunks(self, ctx: RunContext, read_chunk: Callable[[list[int]], list], indices: list[int]) -> list:
        """Return ``read_chunk(indices)``, computed as one contiguous chunk per worker thread when there
        are several (the result is the same list, in the same order, for any number of threads)."""
        if self.num_workers > 1 and len(indices) >= 2 * self.num_workers:
            parts = ctx.map(read_chunk, chunked(indices, self.num_workers))
            return [sample for part in parts for sample in part]
        return read_chunk(indices)

    # ---- lifecycle --------------------------------------------------------------------------------
    def setup(self, env: BuildEnv) -> None:
        a = self.args
        self.num_workers = env.num_threads
        size, listing = self.discover()
        if size < a["num_shards"]:
            raise ValueError(
                f"fn.{self.type}() ({self.name}): the dataset has {size} sample(s), fewer than "
                f"num_shards={a['num_shards']}; every shard needs at least one sample"
            )
        digest = hashlib.sha256(b"\0".join(listing)).digest()
        self.dataset_digest = int.from_bytes(digest[:8], "little")
        self.shard = _sampler.ShardConfig(
            size,
            int(a["shard_id"]),
            int(a["num_shards"]),
            env.batch_size,
            bool(a["stick_to_shard"]),
            bool(a["pad_last_batch"]),
        )
        seed = int(a["seed"])
        if seed >= 0:
            key = derive_key("reader-seed", seed)
        elif a["shuffle_after_epoch"]:
            key = derive_key("reader-seed", _FIXED_EPOCH_SHUFFLE_SEED)
        else:
            key = derive_key("pipeline", env.seed, self.name)
        self.shuffle = _sampler.ShuffleConfig(
            bool(a["random_shuffle"]), int(a["initial_fill"]), bool(a["shuffle_after_epoch"]), key
        )
        self.epoch = 0
        self.consumed = 0
        self._orders: dict[int, np.ndarray] = {}

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        return self.read(ctx, self.take(ctx.batch_size))

    def take(self, count: int) -> list[int]:
        """Advance the position by ``count`` samples and return their dataset indices."""
        parts = []
        while count > 0:
            order = self.order(self.epoch)
            n = min(len(order) - self.consumed, count)
            parts.append(order[self.consumed : self.consumed + n])
            self.consumed += n
            count -= n
            if self.consumed == len(order):
                self.epoch += 1
                self.consumed = 0
        return (parts[0] if len(parts) == 1 else np.concatenate(parts)).tolist()

    def order(self, epoch: int) -> np.ndarray:
        """Return reader epoch ``epoch``'s dataset indices (computed once, cached for two epochs)."""
        order = self._orders.get(epoch)
        if order is None:
            order = _sampler.epoch_order(self.shard, self.shuffle, epoch)
            self._orders = {e: o for e, o in self._orders.items() if e == epoch - 1}
            self._orders[epoch] = order
        return order

    def state(self) -> ReaderState:
        return ReaderState(self.epoch, self.consumed, self.dataset_digest)

    def restore(self, state: ReaderState) -> None:
        if not isinstance(state, ReaderState):
            raise CheckpointMismatchError(
                f"operator {self.name!r} ({self.type}): the checkpoint holds {type(state).__name__}, "
                "not a reader position"
            )
        if state.dataset_digest not in (0, self.dataset_digest):
            raise CheckpointMismatchError(
                f"operator {self.name!r} ({self.type}): the dataset differs from the one the checkpoint "
                "was taken on (files, labels or records were added, removed or renamed)"
            )
        if state.consumed >= _sampler.epoch_length(self.shard, state.epoch):
            raise CheckpointMismatchError(
                f"operator {self.name!r} ({self.type}): position {state.consumed} is past the end of "
                f"reader epoch {state.epoch}; the checkpoint does not fit this dataset"
            )
        self.epoch, self.consumed = int(state.epoch), int(state.consumed)

    def next_epoch(self) -> None:
        """No-op: readers wrap into their next epoch by themselves (as in DALI)."""

    def reader_meta(self) -> dict[str, int]:
        """Return DALI's reader metadata.

        Returns:
            ``epoch_size`` (samples in the dataset), ``epoch_size_padded`` (``num_shards *
            ceil(epoch_size / num_shards)`` with ``pad_last_batch``, else ``epoch_size``),
            ``number_of_shards``, ``shard_id``, ``pad_last_batch`` and ``stick_to_shard`` (0 or 1).
        """
        cfg = self.shard
        return {
            "epoch_size": cfg.size,
            "epoch_size_padded": _sampler.epoch_size_padded(cfg),
            "number_of_shards": cfg.num_shards,
            "shard_id": cfg.shard_id,
            "pad_last_batch": int(cfg.pad_last_batch),
            "stick_to_shard": int(cfg.stick_to_shard),
        }


def chunked(indices: list[int], parts: int) -> list[list[int]]:
    """Split ``indices`` into at most ``parts`` contiguous chunks of near-equal length."""
    parts = max(1, min(parts, len(indices)))
    step, extra = divmod(len(indices), parts)
    chunks, start = [], 0
    for k in range(parts):
        end = start + step + (k < extra)
        chunks.append(indices[start:end])
        start = end
    return chunks

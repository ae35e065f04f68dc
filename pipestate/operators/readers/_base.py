"""The reader base class: sharding and shuffling arguments, ``reader_meta``, and the position state.

A subclass lists its dataset in :meth:`Reader.discover` (at build time) and reads samples by index in
:meth:`Reader.read`. The base class decides which indices each batch holds (``_sampler``), and its state
is ``{epoch, consumed, dataset_digest}`` — a reader epoch and a position in it — so restoring never
re-reads a sample.

With ``elastic=True`` (every reader has it, through :data:`SHARD_ARGS`) the position is the whole job's:
each epoch is one global sequence, cut into global batches of which each shard takes its part, and the
state adds the shard's layout (``{epoch, consumed, dataset_digest, layout}``). The reader then decides
the pipeline's sample identities (``sample_origin``: the epoch and dataset index of every sample), and
its layout arguments stay out of the fingerprint, so a job's checkpoint restores on another number of
shards and global batch size (``pipestate.distributed``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.errors import CheckpointMismatchError
from pipestate.operators import schema as sch
from pipestate.operators.base import BuildEnv, Operator, Position, RunContext, SampleOrigin
from pipestate.operators.readers import _elastic, _exclusion, _sampler, _stdshuffle
from pipestate.operators.schema import Arg
from pipestate.rng import derive_key

# DALI's shuffle_after_epoch uses a fixed seed so that every shard (every process) permutes alike; with
# seed=-1 pipestate does the same, so shards stay disjoint even when their pipeline seeds differ.
_FIXED_EPOCH_SHUFFLE_SEED = 0x5EED_DA11

SHARD_ARGS: tuple[Arg, ...] = (
    Arg("random_shuffle", sch.Bool(), False, "Shuffle with a buffer of initial_fill samples"),
    Arg("initial_fill", sch.Int(1, 2**31 - 1), 1024, "Size of the shuffle buffer"),
    Arg("shuffle_after_epoch", sch.Bool(), False, "Permute the whole dataset at every reader epoch"),
    Arg("shard_id", sch.Int(0), 0, "Index of this shard"),
    Arg("num_shards", sch.Int(1), 1, "Number of shards the dataset is split into"),
    Arg("stick_to_shard", sch.Bool(), False, "Keep reading the same shard every epoch"),
    Arg("pad_last_batch", sch.Bool(), False, "Pad the shard with its last sample to a multiple of the batch size"),
    Arg("read_ahead", sch.Bool(), False, "Accepted for DALI compatibility"),
    Arg("lazy_init", sch.Bool(), False, "Accepted for DALI compatibility (the listing happens at build)"),
    Arg("prefetch_queue_depth", sch.Int(1), 1, "Accepted for DALI compatibility"),
    Arg("dont_use_mmap", sch.Bool(), False, "Accepted for DALI compatibility"),
    Arg("skip_cached_images", sch.Bool(), False, "Accepted for DALI compatibility"),
    Arg("tensor_init_bytes", sch.Int(0), 1048576, "Accepted for DALI compatibility"),
    Arg(
        "elastic",
        sch.Bool(),
        False,
        "One global, shard-independent sequence per epoch, cut into global batches of which each shard takes "
        "its part; the checkpoint restores on another number of shards or global batch size "
        "(pipestate.distributed; not a DALI argument)",
    ),
    Arg(
        "global_batch_size",
        sch.Int(0, 2**31 - 1),
        0,
        "With elastic=True: samples per global step over all shards (0: batch_size * num_shards)",
    ),
)


class Reader(Operator):
    """Base class of readers: a sharded, optionally shuffled sequence of samples read by index.

    Subclasses define ``type``, ``ARGS`` (including :data:`SHARD_ARGS`), :meth:`discover` and :meth:`read`.
    ``DALI_FIXED_SHUFFLE = True`` says that, as the DALI loader it mirrors, the reader permutes its listing
    with DALI's fixed seed before sharding when ``random_shuffle=True`` (see :meth:`base_order`).

    ``next_epoch()`` (``Pipeline.reset()``) does not move a reader: as in DALI, readers never end the
    pipeline's epoch and wrap into their next reader epoch by themselves; use ``reader_meta()`` or
    ``epoch_size()`` to know how many batches make an epoch.

    With ``elastic=True`` the order is global (``_sampler.global_order``, ``_sampler.elastic_step``) and
    the reader decides the pipeline's sample identities; see ``docs/distributed.md``.
    """

    DALI_FIXED_SHUFFLE: bool = False
    ARCHIVE_ORDER_SHUFFLE: bool = False  # shuffle_after_epoch permutes whole files, so random_shuffle may join it

    def validate(self) -> None:
        where = f"fn.{self.type}()"
        a = self.args
        if not a["shard_id"] < a["num_shards"]:
            raise ValueError(f"{where}: shard_id={a['shard_id']} must be in [0, num_shards) = [0, {a['num_shards']})")
        if a.get("shuffle_after_epoch", False) and a["random_shuffle"] and not self.ARCHIVE_ORDER_SHUFFLE:
            raise ValueError(
                f"{where}: shuffle_after_epoch=True and random_shuffle=True cannot be combined; "
                "choose one way to shuffle"
            )
        _elastic.check_arguments(a, where)
        if a.get("shuffle_after_epoch", False) and a["stick_to_shard"]:
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

    def base_order(self, epoch: int) -> np.ndarray | None:
        """The dataset order reader epoch ``epoch`` is sharded from, or ``None`` for the default.

        The default is ``range(size)`` (or the ``shuffle_after_epoch`` permutation). With
        ``DALI_FIXED_SHUFFLE`` and ``random_shuffle=True`` it is DALI's fixed pre-shuffle of the listing
        (``_stdshuffle``), as DALI's sequence, nemo_asr ... loaders do. A subclass may override it (e.g.
        to visit whole archives in a shuffled order); it must be a pure function of the epoch, a
        permutation of the dataset, and vary with the epoch only with ``shuffle_after_epoch=True`` (so the
        samples of a shard repeat every ``num_shards`` epochs otherwise).
        """
        if self.DALI_FIXED_SHUFFLE and self.args["random_shuffle"]:
            return _stdshuffle.dali_fixed_permutation(self.shard.size)
        return None

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
        self.batch_size = env.batch_size
        size, listing = self.discover()
        if size < a["num_shards"] and not a["elastic"]:
            raise ValueError(
                f"fn.{self.type}() ({self.name}): the dataset has {size} sample(s), fewer than "
                f"num_shards={a['num_shards']}; every shard needs at least one sample"
            )
        digest = _listing_digest(listing)
        if size >= _LARGE:
            release_freed_memory()  # the listing's parse: transient strings and arrays
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
        elif a.get("shuffle_after_epoch", False):
            key = derive_key("reader-seed", _FIXED_EPOCH_SHUFFLE_SEED)
        else:
            key = derive_key("pipeline", env.seed, self.name)
        self.shuffle = _sampler.ShuffleConfig(
            bool(a["random_shuffle"]), int(a["initial_fill"]), bool(a.get("shuffle_after_epoch", False)), key
        )
        self.epoch = 0
        self.consumed = 0
        self._orders: dict[int, np.ndarray] = {}
        self.layout: _sampler.Layout | None = None
        self._planned: tuple[tuple[int, int], tuple] | None = None
        self.exclusion: _exclusion.Exclusion | None = None  # excluded samples (pipestate.checkpoint.edit)
        self.passed = 0  # positions passed over because excluded
        if a["elastic"]:
            self.layout = _elastic.layout(a, size, env.batch_size, f"fn.{self.type}() ({self.name})")

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        if self.layout is None:
            return self.read(ctx, self.take(ctx.batch_size))
        _, indices, self.epoch, self.consumed = self._step()
        self._planned = None
        return self.read(ctx, indices.tolist())

    # ---- the elastic mode ---------------------------------------------------------------------------
    def layout_args(self) -> frozenset[str]:
        """``shard_id``, ``num_shards`` and ``global_batch_size`` with ``elastic=True``, else none."""
        return _elastic.LAYOUT_ARGS if self.args["elastic"] else frozenset()

    def sample_origin(self, count: int) -> SampleOrigin | None:
        """With ``elastic=True``: the epoch and dataset index of each sample of the next batch."""
        if self.layout is None:
            return None
        epochs, indices, _, _ = self._step()
        return SampleOrigin(epochs, indices, self.shard.size)

    def _step(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        """This shard's part of the next global step, computed once per position."""
        at = (self.epoch, self.consumed)
        planned = self._planned
        if planned is None or planned[0] != at:
            ex = self.exclusion
            if ex is not None and not ex.replace:  # the next global batch: the stream's next kept samples
                indices, epochs, epoch, consumed, _ = ex.walk(*at, self.layout.global_batch_size)
                begin, end = self.layout.bounds
                step = (epochs[begin:end], indices[begin:end], epoch, consumed)
            else:
                step = _sampler.elastic_step(
                    self.shard.size, self.layout, self.shard.pad_last_batch, *at, self.global_order
                )
                if ex is not None:
                    step = (step[0], ex.replaced(step[1], step[0]), *step[2:])
            planned = self._planned = (at, step)
        return planned[1]

    def global_order(self, epoch: int) -> np.ndarray:
        """The elastic mode's sequence of reader epoch ``epoch`` (computed once, cached for two epochs)."""
        order = self._orders.get(epoch)
        if order is None:
            order = self._global_order(epoch)
            self._orders = {e: o for e, o in self._orders.items() if e == epoch - 1}
            self._orders[epoch] = order
        return order

    def _global_order(self, epoch: int) -> np.ndarray:
        return _sampler.global_order(self.shard.size, self.shuffle, epoch, self.base_order(epoch))

    def take(self, count: int) -> list[int]:
        """Advance the position by ``count`` samples and return their dataset indices."""
        ex = self.exclusion
        if ex is not None and not ex.replace:
            indices, _, self.epoch, self.consumed, passed = ex.walk(self.epoch, self.consumed, count)
            self.passed += passed
            return indices.tolist()
        parts, epochs = [], []
        while count > 0:
            order = self.order(self.epoch)
            n = min(len(order) - self.consumed, count)
            parts.append(order[self.consumed : self.consumed + n])
            epochs.append(np.full(n, self.epoch, dtype=np.int64))
            self.consumed += n
            count -= n
            if self.consumed == len(order):
                self.epoch += 1
                self.consumed = 0
        indices = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if ex is not None:  # pad_last_batch: an excluded sample's place is taken by the padding sample
            indices = ex.replaced(indices, np.concatenate(epochs))
        return indices.tolist()

    def order(self, epoch: int) -> np.ndarray:
        """Return reader epoch ``epoch``'s dataset indices (computed once, cached for two epochs)."""
        order = self._orders.get(epoch)
        if order is None:
            order = self._epoch_order(epoch)
            if len(order) >= _LARGE:
                release_freed_memory()
            self._orders = {e: o for e, o in self._orders.items() if e == epoch - 1}
            self._orders[epoch] = order
        return order

    def _epoch_order(self, epoch: int) -> np.ndarray:
        return _sampler.epoch_order(self.shard, self.shuffle, epoch, self.base_order(epoch))

    def state(self) -> dict:
        position = {"epoch": self.epoch, "consumed": self.consumed, "dataset_digest": self.dataset_digest}
        if self.layout is not None:
            position["layout"] = dataclasses.asdict(self.layout)
        if self.exclusion is not None:
            position[_exclusion.EXCLUDED] = self.exclusion.ranges.flat
            if self.layout is None:
                position[_exclusion.PASSED] = self.passed
        return position

    def _split(self, state: Any, where: str) -> tuple[dict, _exclusion.Ranges | None, int, int]:
        keys = _elastic.POSITION_KEYS | ({"layout"} if self.layout is not None else set())
        return _exclusion.split_state(state, keys, self.layout is not None, where)

    def check_state(self, state: Any, at: Position) -> None:
        where = f"operator {self.name!r} ({self.type})"
        position, ranges, passed, skip = self._split(state, where)
        if self.layout is not None:
            _elastic.check_state(position, self.layout, self.shard.size, where)
            self._check_digest(position, where)
        else:
            if not _elastic.counters(position, _elastic.POSITION_KEYS):
                raise CheckpointMismatchError(f"{where}: the checkpoint's state {state!r} is not a reader position")
            self._check_digest(position, where)
            epoch, consumed = position["epoch"], position["consumed"]
            walked = _sampler.samples_before(self.shard, epoch) + consumed
            taken = at.iteration * self.batch_size  # a reader takes batch_size samples per batch
            length = _sampler.epoch_length(self.shard, epoch)
            if consumed >= length or passed > walked or walked - passed + skip != taken:
                raise CheckpointMismatchError(
                    f"{where}: position {consumed} of reader epoch {epoch} is not where this reader is after "
                    f"{at.iteration} batches of {self.batch_size} on this dataset; the checkpoint does not fit it"
                )
        if ranges is None and not skip:
            return
        exclusion = None if ranges is None else self._exclusion(ranges, cached=False)
        try:
            if exclusion is not None:
                exclusion.check_keeps(self.shard.size, position["epoch"])
            self._advance(exclusion, position["epoch"], position["consumed"], skip)
        except ValueError as exc:
            raise CheckpointMismatchError(f"{where}: {exc}") from None

    def _exclusion(self, ranges: _exclusion.Ranges, cached: bool = True) -> _exclusion.Exclusion:
        """The exclusion of ``ranges`` on this reader's epochs (``cached``: through the order cache, which
        only the thread computing batches may use)."""
        if self.layout is not None:
            order = self.global_order if cached else self._global_order
            return _exclusion.Exclusion(ranges, order, self.shard.pad_last_batch, 1)
        periodic = self.shard.num_shards == 1 or not self.shuffle.shuffle_after_epoch  # shards' sets repeat
        order = self.order if cached else self._epoch_order
        period = self.shard.num_shards if periodic else None
        return _exclusion.Exclusion(ranges, order, self.shard.pad_last_batch, period)

    def _advance(self, exclusion: _exclusion.Exclusion | None, epoch: int, consumed: int, count: int) -> tuple:
        """The position ``count`` samples (of what the reader yields) after ``(epoch, consumed)``, and the
        positions passed over; nothing is read.

        Raises:
            ValueError: the position cannot move so (every sample excluded; a count that is not a whole
                number of global batches with ``pad_last_batch``).
        """
        if not count:
            return epoch, consumed, 0
        if exclusion is not None and not exclusion.replace:
            return exclusion.advance(epoch, consumed, count)
        if self.layout is not None:
            moved = _elastic.advance(self.shard.size, self.layout, self.shard.pad_last_batch, epoch, consumed, count)
            return (*moved, 0)
        total = _sampler.samples_before(self.shard, epoch) + consumed + count
        return (*_sampler.position_after(self.shard, total), 0)

    def _check_digest(self, state: dict, where: str) -> None:
        if state["dataset_digest"] not in (0, self.dataset_digest):
            raise CheckpointMismatchError(
                f"{where}: the dataset differs from the one the checkpoint was taken on (files, labels or records "
                "were added, removed or renamed)"
            )

    def restore(self, state: Any, at: Position) -> None:
        flat = state.get(_exclusion.EXCLUDED)  # check_state accepted the state: its parts are well formed
        exclusion = self.exclusion
        if flat is None:
            exclusion = None
        elif exclusion is None or exclusion.ranges.flat != flat:
            exclusion = self._exclusion(_exclusion.Ranges(flat))
        skip = state.get(_exclusion.SKIP, 0)
        epoch, consumed, passed = self._advance(exclusion, state["epoch"], state["consumed"], skip)
        self.epoch, self.consumed, self.exclusion = epoch, consumed, exclusion
        self.passed = state.get(_exclusion.PASSED, 0) + passed
        self._planned = None

    def next_epoch(self) -> None:
        """No-op: readers wrap into their next epoch by themselves (as in DALI)."""

    def reader_meta(self) -> dict[str, int]:
        """Return DALI's reader metadata.

        Returns:
            ``epoch_size`` (samples in the dataset), ``epoch_size_padded`` (``num_shards *
            ceil(epoch_size / num_shards)`` with ``pad_last_batch``, else ``epoch_size``),
            ``number_of_shards``, ``shard_id``, ``pad_last_batch`` and ``stick_to_shard`` (0 or 1). With
            ``elastic=True`` also ``elastic`` (1) and ``global_batch_size``, and ``epoch_size_padded`` is
            the samples the whole job reads per epoch (with ``pad_last_batch``: whole global batches).
        """
        cfg = self.shard
        if self.layout is not None:
            return _elastic.reader_meta(cfg, self.layout)
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


def shard_args(*, shuffle_after_epoch: bool = True) -> tuple[Arg, ...]:
    """:data:`SHARD_ARGS`, without ``shuffle_after_epoch`` for the readers whose DALI schema lacks it."""
    return tuple(a for a in SHARD_ARGS if shuffle_after_epoch or a.name != "shuffle_after_epoch")


def archive_order(counts: np.ndarray, key: int, epoch: int) -> np.ndarray:
    """The dataset order visiting whole archives (files) in a permuted order, samples in file order.

    Args:
        counts: Samples per archive, in listing order.
        key: The shuffle key (from ``shuffle_after_epoch_seed``).
        epoch: The reader epoch: each epoch visits the archives in another order, the same on every shard.

    Returns:
        Dataset indices (int64), every sample once.
    """
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    perm = _sampler.dataset_permutation(len(counts), key, epoch)
    return np.concatenate([np.arange(starts[f], starts[f] + counts[f], dtype=np.int64) for f in perm])


def _listing_digest(listing: Iterable[bytes]) -> bytes:
    """SHA-256 of the listing's parts joined by NUL, without building the joined copy."""
    h = hashlib.sha256()
    for i, part in enumerate(listing):
        if i:
            h.update(b"\0")
        h.update(part)
    return h.digest()


_LARGE = 1 << 16  # listings and epochs from this size return the memory their building freed


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc (or no C library handle): nothing to call
        return None


def release_freed_memory() -> None:
    """Hand memory freed after building a large listing or epoch order back to the system (glibc keeps freed
    heap pages, so a million-entry listing's transient strings would otherwise stay in the resident set:
    ~180 MB instead of ~60 MB). A no-op where the C library has no ``malloc_trim``."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

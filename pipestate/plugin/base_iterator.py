"""The framework-neutral iterator core shared by the PyTorch and JAX plugins.

It implements the semantics of DALI's framework iterators (``nvidia.dali.plugin.base_iterator``) on
pipestate pipelines: the epoch length from ``size`` or a reader's metadata (``reader_name``), the three
:class:`LastBatchPolicy` values, ``last_batch_padded``, ``auto_reset``, ``prepare_first_batch``, several
pipelines at once (one per shard/device), and checkpoints. A plugin subclasses :class:`BaseIterator` and
only converts batches (:meth:`BaseIterator._convert`); this module never imports a framework.

The iterator's own state is a handful of integers (the sample counter of the epoch, where each shard
starts and ends, which shard each pipeline reads, the epoch length), stored as JSON in the
``iterator_data`` field of every pipeline's checkpoint, as DALI does: a pipeline constructed with
``checkpoint=iterator.checkpoints()[i]`` and wrapped in a new iterator continues exactly. No pickle.
"""

from __future__ import annotations

import enum
import json
import math
import warnings
import weakref
from collections.abc import Sequence
from typing import Any

from pipestate import checkpoint as ckpt
from pipestate.batch import Batch
from pipestate.errors import CheckpointMismatchError, CorruptCheckpointError, UnsupportedCheckpointVersionError
from pipestate.pipeline import Pipeline

__all__ = ["BaseIterator", "LastBatchPolicy"]

_STATE_VERSION = 1
_DRIVEN_BY: weakref.WeakKeyDictionary[Pipeline, weakref.ref] = weakref.WeakKeyDictionary()


def iterator_of(pipeline: Pipeline) -> BaseIterator | None:
    """Return the live iterator that drives ``pipeline`` (the last one created over it), or ``None``.

    ``Checkpointer.save`` uses it to warn that a pipeline's own checkpoint lacks its iterator's counters.
    """
    ref = _DRIVEN_BY.get(pipeline)
    return ref() if ref is not None else None


@enum.unique
class LastBatchPolicy(enum.Enum):
    """What an iterator does with the last batch of an epoch when the samples left do not fill it.

    * ``FILL``: the batch is filled, with the reader's padding (its last sample repeated,
      ``pad_last_batch=True``) or with the first samples of the next epoch.
    * ``DROP``: the incomplete batch is dropped.
    * ``PARTIAL``: the batch holds only the samples left in the epoch (it is shorter).
    """

    FILL = 0
    DROP = 1
    PARTIAL = 2


def _parse_auto_reset(auto_reset: Any) -> bool:
    if auto_reset is False or auto_reset is None or auto_reset == "no":
        return False
    if auto_reset is True or auto_reset == "yes":
        return True
    raise ValueError(f"auto_reset={auto_reset!r}: use True/'yes' or False/None/'no'")


class BaseIterator:
    """The shared core of the framework iterators (DALI's ``_DaliBaseIterator``); not used directly.

    Args:
        pipelines: A pipeline, or a list of them (one per shard); all with the same ``batch_size``.
        size: Samples in the shard (for several pipelines: their sum); ``-1`` (default) iterates until
            a pipeline raises ``StopIteration`` (one pipeline only). Exclusive with ``reader_name``.
        reader_name: Name of the reader whose metadata gives the epoch length and padding.
        auto_reset: ``True``/``"yes"``: reset at the end of every epoch after raising
            ``StopIteration``; ``False``/``None``/``"no"`` (default): call :meth:`reset` yourself.
        fill_last_batch: Deprecated (DALI): ``True`` means ``FILL``, ``False`` means ``PARTIAL``.
        last_batch_padded: Whether the reader pads its last batch (``pad_last_batch``); set from the
            reader with ``reader_name``.
        last_batch_policy: A :class:`LastBatchPolicy`.
        prepare_first_batch: Compute the first batch when the iterator is created.

    Raises:
        TypeError: a pipeline is not a pipestate ``Pipeline`` or ``last_batch_policy`` is not a
            :class:`LastBatchPolicy`.
        ValueError: inconsistent arguments (the message names them), or pipelines that disagree on
            ``batch_size``, checkpointing or the reader's configuration.
        CheckpointMismatchError: the pipelines were restored from checkpoints of an iterator with other
            options (``last_batch_policy``, ``size``/``reader_name``, number of pipelines); the message
            names each.
    """

    def __init__(
        self,
        pipelines: Pipeline | Sequence[Pipeline],
        size: int = -1,
        reader_name: str | None = None,
        auto_reset: bool | str | None = False,
        fill_last_batch: bool | None = None,
        last_batch_padded: bool = False,
        last_batch_policy: LastBatchPolicy = LastBatchPolicy.FILL,
        prepare_first_batch: bool = True,
    ) -> None:
        pipes = list(pipelines) if isinstance(pipelines, (list, tuple)) else [pipelines]
        if not pipes:
            raise ValueError("pipelines is empty: give at least one pipeline")
        for i, p in enumerate(pipes):
            if not isinstance(p, Pipeline):
                raise TypeError(f"pipelines[{i}] is a {type(p).__name__}, not a pipestate Pipeline")
        self._pipes = pipes
        for p in pipes:
            _DRIVEN_BY[p] = weakref.ref(self)
        self._num_gpus = len(pipes)
        self.batch_size = pipes[0].batch_size
        if any(p.batch_size != self.batch_size for p in pipes):
            raise ValueError(f"all pipelines must have the same batch_size; got {[p.batch_size for p in pipes]}")
        self._auto_reset = _parse_auto_reset(auto_reset)
        self._prepare_first_batch = bool(prepare_first_batch)
        if fill_last_batch is not None:
            warnings.warn("fill_last_batch is deprecated: use last_batch_policy", DeprecationWarning, stacklevel=3)
            last_batch_policy = LastBatchPolicy.FILL if fill_last_batch else LastBatchPolicy.PARTIAL
        if not isinstance(last_batch_policy, LastBatchPolicy):
            raise TypeError(
                f"last_batch_policy={last_batch_policy!r} must be a LastBatchPolicy (e.g. LastBatchPolicy.FILL)"
            )
        self._last_batch_policy = last_batch_policy
        self._last_batch_padded = bool(last_batch_padded)
        self._size = int(size)
        self._size_argument = self._size
        if self._size == 0:
            raise ValueError("size=0: give the number of samples in the shard, or -1 to read until StopIteration")
        if reader_name and self._size > 0:
            raise ValueError(f"give either size={size} or reader_name={reader_name!r}, not both")
        if reader_name and last_batch_padded:
            raise ValueError("last_batch_padded is taken from the reader when reader_name is given; don't set it")
        if self._size < 0 and not reader_name and self._num_gpus > 1:
            raise ValueError("size=-1 (read until StopIteration) works with one pipeline; give size or reader_name")
        if self._size < 0 and not reader_name:
            self._last_batch_policy = LastBatchPolicy.FILL
            self._last_batch_padded = False
        elastic = any(meta.get("elastic") for p in self._pipes for meta in p.reader_meta().values())
        if self._size > 0 and not reader_name and not elastic:  # an elastic reader's job has no per-shard epoch
            warnings.warn(
                "prefer reader_name to size and last_batch_padded: with them set by hand some samples can be "
                "missed or repeated (see DALI's Sharding documentation)",
                stacklevel=3,
            )
        self._reader_name = reader_name
        self._counter = 0
        for p in pipes:
            p.build()
        self._read_reader_meta()
        self._initial_size = self._size
        self._source_ended = False  # size=-1: a pipeline raised StopIteration and no reset() followed
        self._ever_consumed = False
        self._first_batch: Any = None
        self._pending_stop = False
        self._restored_at_end = False

        enabled = {p.enable_checkpointing for p in pipes}
        if len(enabled) > 1:
            raise ValueError("all pipelines must have the same enable_checkpointing")
        self._enable_checkpointing = enabled.pop()
        if self._enable_checkpointing:
            self._restore_from_pipelines()
            self._initial_checkpoints = self._pipeline_checkpoints()

    # ---- epoch accounting (DALI's semantics) -----------------------------------------------------
    def _read_reader_meta(self) -> None:
        if not self._reader_name:
            return
        metas = [p.reader_meta(self._reader_name) for p in self._pipes]
        if any(m.get("elastic") for m in metas):
            raise ValueError(
                f"the reader {self._reader_name!r} reads with elastic=True: its epochs are the whole job's, cut into "
                "global batches, not DALI's per-shard epochs; give size= instead of reader_name (this shard's "
                "batch_size times the global steps to run, see docs/distributed.md)"
            )

        def same(key: str, what: str) -> Any:
            values = [m[key] for m in metas]
            if any(v != values[0] for v in values):
                raise ValueError(
                    f"the reader {self._reader_name!r} must have the same {what} in every pipeline; got {values}"
                )
            return values[0]

        def all_or_none(key: str, what: str) -> bool:
            values = [bool(m[key]) for m in metas]
            if any(values) and not all(values):
                raise ValueError(f"set {what} of the reader {self._reader_name!r} in all pipelines or in none")
            return values[0]

        self._size_no_pad = same("epoch_size", "dataset size")
        self._shards_num = same("number_of_shards", "num_shards")
        self._last_batch_padded = all_or_none("pad_last_batch", "pad_last_batch")
        self._is_stick_to_shard = all_or_none("stick_to_shard", "stick_to_shard")
        self._shards_id = [int(m["shard_id"]) for m in metas]
        if self._last_batch_policy is LastBatchPolicy.DROP:
            self._size = self._size_no_pad // self._shards_num
        elif self._last_batch_padded:
            self._size = metas[0]["epoch_size_padded"] // self._shards_num
        else:
            self._size = _round_up(math.ceil(self._size_no_pad / self._shards_num), self.batch_size)
        self._counter_per_gpu = [0] * self._shards_num
        self._shard_sizes_per_gpu = [
            (k + 1) * self._size_no_pad // self._shards_num - k * self._size_no_pad // self._shards_num
            for k in range(self._shards_num)
        ]
        self._shard_sizes_initial = list(self._shard_sizes_per_gpu)

    def _ended(self) -> bool:
        return self._size > 0 and self._counter >= self._size

    def _end_iteration(self) -> None:
        if self._auto_reset:
            self.reset()
        raise StopIteration

    def _get_outputs(self) -> list[tuple[Batch, ...]]:
        if self._ended():
            self._end_iteration()
        outputs = []
        try:
            for p in self._pipes:
                outputs.append(p.run())
        except StopIteration:
            self._source_ended = True
            if self._size < 0 and self._auto_reset:
                self.reset()
            raise
        return outputs

    def _advance(self, dry_run: bool = False, end_iteration: bool = True) -> bool:
        """Count the batch just read; with DROP, tell (and, unless dry, act on) an incomplete batch."""
        drop = self._last_batch_policy is LastBatchPolicy.DROP
        if self._reader_name:
            counter = self._counter + self.batch_size
            should_end = drop and any(
                start + counter > shard for start, shard in zip(self._counter_per_gpu, self._shard_sizes_per_gpu)
            )
        else:
            counter = self._counter + self._num_gpus * self.batch_size
            should_end = drop and counter > self._size
        if not dry_run:
            self._counter = counter
            if should_end and end_iteration:
                self._end_iteration()
        return should_end

    def _valid_samples(self) -> list[int] | None:
        """With PARTIAL: the number of valid samples in the batch just counted, per pipeline."""
        if self._last_batch_policy is not LastBatchPolicy.PARTIAL:
            return None
        if self._reader_name:
            left = [self.batch_size - (self._counter - self._shard_sizes_initial[shard]) for shard in self._shards_id]
            return left if any(n < self.batch_size for n in left) else None
        if self._size > 0 and self._counter > self._size:
            valid = self._num_gpus * self.batch_size - (self._counter - self._size)
            return [max(0, min(self.batch_size, valid - i * self.batch_size)) for i in range(self._num_gpus)]
        return None

    def reset(self) -> None:
        """Start the next epoch, once the current one has ended.

        A reset in the middle of an epoch is ignored with a warning, as in DALI. With
        ``LastBatchPolicy.DROP``, a reset right after the last complete batch first reads and drops the
        incomplete one, so the next epoch starts where it should.
        """
        if self._last_batch_policy is LastBatchPolicy.DROP:
            if self._advance(dry_run=True, end_iteration=False) and not self._ended():
                self._get_outputs()
                self._advance(end_iteration=False)
        if not (self._counter >= self._size or self._size < 0):
            warnings.warn(
                "the iterator does not reset in the middle of an epoch (as DALI); ignoring reset()", stacklevel=2
            )
            return
        self._source_ended = False
        fill_wrapping = self._last_batch_policy is LastBatchPolicy.FILL and not self._last_batch_padded
        if fill_wrapping and self._reader_name:
            read = self._counter - min(self._counter_per_gpu)
            self._counter_per_gpu = [c + read - s for c, s in zip(self._counter_per_gpu, self._shard_sizes_per_gpu)]
            self._counter = min(self._counter_per_gpu)
        elif fill_wrapping:
            self._counter = self._counter % self._size
        else:
            self._counter = 0
        if self._reader_name:
            if not self._is_stick_to_shard:
                self._shards_id = [(s + 1) % self._shards_num for s in self._shards_id]
            if fill_wrapping:
                if not self._is_stick_to_shard:
                    self._shard_sizes_per_gpu = _roll(self._shard_sizes_per_gpu)
                ahead = [s - c for s, c in zip(self._shard_sizes_per_gpu, self._counter_per_gpu)]
                self._size = _round_up(max(ahead), self.batch_size)
                if self._size == 0:  # this epoch was read entirely ahead: skip it
                    self._counter_per_gpu = [0] * self._shards_num
                    self._counter = 0
                    self._shard_sizes_per_gpu = _roll(self._shard_sizes_per_gpu)
                    self._size = _round_up(max(self._shard_sizes_per_gpu), self.batch_size)
        for p in self._pipes:
            p.reset()

    # ---- iteration ---------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Compute the first batch now (``prepare_first_batch``).

        Restored at the end of an epoch, the iterator prepares nothing and stays at that end: ``next()``
        raises ``StopIteration`` (and resets, with ``auto_reset``) and ``iter()`` resets, as the original
        iterator would. (DALI's swallows that ``StopIteration`` while preparing, resets, and so skips the
        epoch end for ``next()``.) A source ending while preparing is likewise kept for the first ``next()``.
        """
        self._first_batch = None
        self._pending_stop = False
        self._restored_at_end = self._ended()
        if not self._prepare_first_batch or self._restored_at_end:
            return
        try:
            self._first_batch = self._next_batch()
        except StopIteration:
            if not any(p.is_restored_from_checkpoint for p in self._pipes):
                raise RuntimeError(
                    "there is no data in the pipeline: with LastBatchPolicy.PARTIAL the batch size may be larger "
                    "than the shard, or the source ended at once"
                ) from None
            self._pending_stop = True
        self._ever_consumed = False

    def _next_batch(self) -> Any:
        outputs = self._get_outputs()
        self._advance()
        valid = self._valid_samples()
        if valid is not None:
            outputs = [
                tuple(_head(b, n) for b in outs) for outs, n in zip(outputs, valid) if n > 0 or self._reader_name
            ]
        return self._convert(outputs)

    def _convert(self, outputs: list[tuple[Batch, ...]]) -> Any:
        """Turn the batches of every pipeline (already trimmed to the valid samples) into the result."""
        raise NotImplementedError

    def __next__(self) -> Any:
        self._ever_consumed = True
        self._restored_at_end = False
        if self._pending_stop:
            self._pending_stop = False
            raise StopIteration
        if self._first_batch is not None:
            batch, self._first_batch = self._first_batch, None
            return batch
        return self._next_batch()

    def next(self) -> Any:
        """Return the next batch (as ``next(iterator)``)."""
        return self.__next__()

    def __iter__(self) -> BaseIterator:
        if self._pending_stop:
            self._pending_stop = False
            if not self._auto_reset:
                self.reset()
        elif self._counter != 0 and (self._ever_consumed or self._restored_at_end):
            self.reset()
        return self

    @property
    def size(self) -> int:
        """Samples in the current epoch (of one shard with ``reader_name``), or ``-1``."""
        return self._size

    def __len__(self) -> int:
        per_batch = self.batch_size if self._reader_name else self._num_gpus * self.batch_size
        if self._last_batch_policy is LastBatchPolicy.DROP:
            return self.size // per_batch
        return math.ceil(self.size / per_batch)

    def _epoch_over(self) -> bool:
        """Whether the current epoch has no batch left (the next ``next()`` would raise ``StopIteration``)."""
        if self._pending_stop or self._source_ended or self._ended():
            return True
        return self._last_batch_policy is LastBatchPolicy.DROP and self._advance(dry_run=True, end_iteration=False)

    def _begin_epoch(self) -> None:
        """Start the next epoch if the current one is over; otherwise do nothing (no warning).

        What a training loop that counts its own epochs needs at the start of each of them (the Lightning
        data module calls it): unlike ``iter()``, it never tries to reset in the middle of an epoch, e.g.
        after ``auto_reset`` already reset or with the samples ``FILL`` carried into the next epoch.
        """
        if self._pending_stop:
            self._pending_stop = False
            if not self._auto_reset:
                self.reset()
        elif self._epoch_over():
            self.reset()
        self._restored_at_end = False

    def _max_batches_per_epoch(self) -> int | None:
        """The most batches any epoch of this iterator has (``None`` for ``size=-1``).

        ``len()`` is the length of the current epoch, as in DALI: with ``FILL`` and no padding it
        alternates (e.g. 8, 7, 8, ...: the samples that filled the last batch are not read again). Loops
        that read the length once (Lightning) need this bound instead, and end shorter epochs at
        ``StopIteration``.
        """
        if self._initial_size < 0:
            return None
        per_batch = self.batch_size if self._reader_name else self._num_gpus * self.batch_size
        if self._last_batch_policy is LastBatchPolicy.DROP:
            return self._initial_size // per_batch
        return math.ceil(self._initial_size / per_batch)

    # ---- checkpoints -------------------------------------------------------------------------------
    def _options(self) -> dict[str, int]:
        """The arguments, besides ``reader_name``/``size`` and the shards, that decide which samples later
        batches hold: stored with the state (as integers) and compared on restore."""
        return {
            "last_batch_policy": self._last_batch_policy.value,
            "last_batch_padded": int(self._last_batch_padded),
            "pipelines": self._num_gpus,
        }

    def _check_options(self, state: dict[str, Any]) -> None:
        """Raise :class:`CheckpointMismatchError` naming every option that differs from the saved ones (a
        state written before they were stored has none: nothing to compare)."""
        diffs = []
        for key, ours in self._options().items():
            if key not in state:
                continue
            saved = state[key]
            if not _is_int(saved):
                raise CorruptCheckpointError(f"the checkpoint's iterator option {key}={saved!r} is not an integer")
            if saved == ours:
                continue
            if key == "last_batch_policy":
                known = {p.value: p for p in LastBatchPolicy}
                if saved not in known:
                    raise CorruptCheckpointError(f"the checkpoint's iterator has last_batch_policy={saved}")
                diffs.append(f"last_batch_policy is {LastBatchPolicy(ours)}, the checkpoint's iterator had "
                             f"{known[saved]}")
            elif key == "last_batch_padded":
                diffs.append(f"last_batch_padded is {bool(ours)}, the checkpoint's iterator had {bool(saved)}")
            else:
                diffs.append(f"the number of pipelines is {ours}, the checkpoint's iterator had {saved}")
        if diffs:
            raise CheckpointMismatchError(
                "the checkpoint was taken by an iterator with other options:\n  - "
                + "\n  - ".join(diffs)
                + "\nConstruct the iterator with the options it was saved with (another last_batch_policy "
                "would change where every later epoch ends and which samples its batches hold), or start "
                "without the checkpoint.",
                diffs,
            )

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"version": _STATE_VERSION, "counter": int(self._counter), "size": int(self._size)}
        state.update(self._options())
        if self._reader_name:
            state["counter_per_shard"] = [int(v) for v in self._counter_per_gpu]
            state["shard_sizes"] = [int(v) for v in self._shard_sizes_per_gpu]
            state["shard_ids"] = [int(v) for v in self._shards_id]
        return state

    def _parse_state(self, data: str) -> dict[str, Any]:
        """Check the iterator state stored in a checkpoint against this iterator; changes nothing.

        Raises:
            CorruptCheckpointError: not an iterator state this library writes (not a JSON object of
                integers, non-integral or out-of-range numbers, nesting, values no iterator reaches).
            UnsupportedCheckpointVersionError: a state version this library does not read.
            CheckpointMismatchError: the state of an iterator configured otherwise (``last_batch_policy``,
                ``reader_name`` or ``size``, the number of shards or pipelines, the dataset's shard sizes).
        """

        def not_json(token: str) -> Any:
            raise ValueError(f"{token} is not an integer")

        try:
            state = json.loads(data, parse_float=not_json, parse_constant=not_json)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply to parse
            raise CorruptCheckpointError(
                f"the checkpoint's iterator state is not valid JSON of integers: {exc}"
            ) from None
        if not isinstance(state, dict) or "version" not in state:
            raise CorruptCheckpointError("the checkpoint's iterator state is not a JSON object with a version")
        version = state["version"]
        if version != _STATE_VERSION or isinstance(version, bool):
            if _is_int(version) and version > _STATE_VERSION:
                raise UnsupportedCheckpointVersionError(
                    f"the checkpoint's iterator state is version {version}; this pipestate reads version "
                    f"{_STATE_VERSION}: restore it with the release that wrote it, or a newer one"
                )
            raise CorruptCheckpointError(f"the checkpoint's iterator state has version {version!r}")
        keys = {"version", "counter", "size"} | (
            {"counter_per_shard", "shard_sizes", "shard_ids"} if self._reader_name else set()
        )
        if not keys <= set(state) <= keys | set(self._options()):  # the options are optional (older states)
            raise CheckpointMismatchError(
                f"the checkpoint's iterator state has the fields {sorted(state)}, this iterator's are "
                f"{sorted(keys)}: restore it into an iterator with the same reader_name or size"
            )
        self._check_options(state)
        per_batch = self.batch_size if self._reader_name else self._num_gpus * self.batch_size
        if self._reader_name:
            most = _round_up(math.ceil(self._size_no_pad / self._shards_num), self.batch_size)
            expected = f"between 1 and {most} (the reader's shard, in batches)"
            size_ok = _is_int(state["size"]) and 1 <= state["size"] <= most
        else:
            expected = str(self._size)
            size_ok = _is_int(state["size"]) and state["size"] == self._size
        if not size_ok:
            what = "" if _is_int(state["size"]) else " (not an integer)"
            raise CheckpointMismatchError(
                f"the checkpoint's iterator has size {state['size']!r}{what}; this iterator's is {expected}: "
                "restore it into an iterator with the same reader_name or size"
            )
        size, counter = state["size"], state["counter"]
        limit = size + per_batch - 1 if size > 0 else 2**63 - 1  # at most one batch past the epoch's end
        if not (_is_int(counter) and 0 <= counter <= limit):
            raise CorruptCheckpointError(
                f"the checkpoint's iterator counter {counter!r} is not one an iterator of size {size} reaches "
                f"(an integer from 0 to {limit})"
            )
        if self._reader_name:
            self._check_shard_lists(state, most + self.batch_size)
        return state

    def _check_shard_lists(self, state: dict[str, Any], bound: int) -> None:
        lists = {k: state[k] for k in ("counter_per_shard", "shard_sizes", "shard_ids")}
        if not all(isinstance(v, list) and all(_is_int(x) for x in v) for v in lists.values()):
            raise CorruptCheckpointError("the checkpoint's iterator shard positions are not lists of integers")
        starts, sizes, ids = lists.values()
        if len(starts) != self._shards_num or len(sizes) != self._shards_num or len(ids) != self._num_gpus:
            raise CheckpointMismatchError(
                f"the checkpoint's iterator was over {len(sizes)} shards and {len(ids)} pipelines; this one is over "
                f"{self._shards_num} shards and {self._num_gpus} pipelines"
            )
        initial = self._shard_sizes_initial
        if not any(sizes == initial[k:] + initial[:k] for k in range(len(initial))):
            raise CheckpointMismatchError(
                f"the checkpoint's iterator has shard sizes {sizes}; the reader's shards hold {initial} samples "
                "(another dataset or sharding)"
            )
        if not all(0 <= c < bound for c in starts) or not all(0 <= i < self._shards_num for i in ids):
            raise CorruptCheckpointError(
                f"the checkpoint's iterator shard positions {starts} or shard ids {ids} are out of range"
            )

    def _set_state(self, state: dict[str, Any]) -> None:
        """Move to a state :meth:`_parse_state` returned."""
        self._counter, self._size = state["counter"], state["size"]
        if self._reader_name:
            self._counter_per_gpu = list(state["counter_per_shard"])
            self._shard_sizes_per_gpu = list(state["shard_sizes"])
            self._shards_id = list(state["shard_ids"])

    def _restore_from_pipelines(self) -> None:
        restored = [p.is_restored_from_checkpoint for p in self._pipes]
        if not any(restored):
            return
        datas = [p.iterator_data for p in self._pipes]
        if not all(restored):
            warnings.warn("some, but not all, pipelines were restored from a checkpoint", stacklevel=4)
        elif any(d != datas[0] for d in datas):
            warnings.warn("the pipelines were restored from checkpoints with different iterator states", stacklevel=4)
        if datas[0] is None:
            warnings.warn(
                "the pipeline's checkpoint holds no iterator state (it was taken with Pipeline.checkpoint(), "
                "not iterator.checkpoints()): the iterator starts counting the epoch from zero",
                stacklevel=4,
            )
            return
        self._set_state(self._parse_state(datas[0]))

    def _pipeline_checkpoints(self) -> list[bytes]:
        data = json.dumps(self._state(), separators=(",", ":"))
        return [p.checkpoint(iterator_data=data) for p in self._pipes]

    def checkpoints(self) -> list[bytes]:
        """Return one checkpoint per pipeline: its state and the iterator's, after the last batch returned.

        Construct each pipeline again with ``checkpoint=checkpoints[i]`` and wrap them in an iterator with
        the same arguments: it continues exactly where this one is.

        Raises:
            ValueError: the pipelines were built without ``enable_checkpointing=True``.
        """
        if not self._enable_checkpointing:
            raise ValueError("cannot take checkpoints: build the pipelines with enable_checkpointing=True")
        if not self._ever_consumed:
            return list(self._initial_checkpoints)
        return self._pipeline_checkpoints()

    _STATE_KEY = "checkpoints"

    def _state_key(self) -> str:
        return self._STATE_KEY

    def state_dict(self) -> dict[str, Any]:
        """Return the iterator's state for ``torch.distributed.checkpoint``/Lightning (the ``Stateful`` protocol).

        Returns:
            ``{"checkpoints": [bytes, ...]}``: :meth:`checkpoints`, one per pipeline. (The PyTorch
            iterators name the key ``checkpoints_rank{rank}`` under ``torch.distributed``.)
        """
        return {self._state_key(): self.checkpoints()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Move the pipelines and the iterator to a state from :meth:`state_dict`, in place.

        Raises:
            ValueError: the state holds another number of checkpoints than there are pipelines.
            CheckpointMismatchError: the state was saved by an iterator with other options (e.g. another
                ``last_batch_policy``; the message names each) or from another pipeline.
            CheckpointError: a checkpoint is damaged, or its iterator state does not fit this iterator.
                Whatever the error, nothing moved (every pipeline and the iterator are as they were).
        """
        key = self._state_key()
        cpts = state_dict.get(key, state_dict.get(self._STATE_KEY)) if isinstance(state_dict, dict) else None
        if not isinstance(cpts, (list, tuple)) or len(cpts) != self._num_gpus:
            raise ValueError(
                f"state_dict must be {{{key!r}: [one bytes per pipeline]}} for {self._num_gpus} pipeline(s); "
                f"got {state_dict!r:.200}"
            )
        if not self._enable_checkpointing:
            raise ValueError("cannot restore: build the pipelines with enable_checkpointing=True")
        cpts = [bytes(c) for c in cpts]
        for cpt in cpts:  # the iterator's own state is checked before any pipeline moves
            data = ckpt.decode(cpt).iterator_data
            if data:
                self._parse_state(data)
        before = [p.checkpoint() for p in self._pipes]
        done = 0
        try:
            for p, cpt in zip(self._pipes, cpts):
                p.restore(cpt)
                done += 1
        except BaseException:
            for p, cpt in zip(self._pipes[:done], before):  # all pipelines or none
                p.restore(cpt)
            raise
        self._restore_from_pipelines()
        self._initial_checkpoints = cpts
        self._ever_consumed = False
        self._prepare()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _roll(values: list[int]) -> list[int]:
    return values[-1:] + values[:-1]


def _head(batch: Batch, n: int) -> Batch:
    """``batch[0:n]`` with Python's slice semantics (a negative ``n`` counts from the end, as DALI's slicing)."""
    if n >= len(batch):
        return batch
    if batch.is_dense_tensor():
        return Batch(batch.as_array()[0:n])
    return Batch(batch.samples[0:n])

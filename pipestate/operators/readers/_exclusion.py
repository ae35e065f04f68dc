"""Excluded samples and pending skips in a reader's state (written by :mod:`pipestate.checkpoint.edit`).

Beside its position (``{epoch, consumed, dataset_digest}``, plus ``layout`` in the elastic mode) a reader's
state may hold:

- ``excluded``: dataset index ranges ``[b0, e0, b1, e1, ...]`` (half-open, sorted, disjoint and not
  touching): the reader never yields these indices from its position on, and keeps the list in every later
  checkpoint. Without ``pad_last_batch`` an excluded sample is passed over (its epoch is shorter). With it,
  the shards must stay in step (as many samples per epoch on each), so the sample's place is taken by the
  epoch's padding sample (its last sample that is not excluded, as DALI pads with the last sample).
- ``passed`` (with ``excluded``, outside the elastic mode): positions passed over because they were
  excluded, so far; the reader checks that the positions walked minus these are the samples it returned.
- ``skip``: samples (of what the reader yields) to move past when the checkpoint is restored. Moving is
  arithmetic on the position, or, with exclusions, a count of the samples kept per epoch: the skipped data
  is never read. The restored reader's state has no ``skip``.

Positions stay indices into the unfiltered order of an epoch (:func:`~pipestate.operators.readers._sampler
.epoch_order`), so adding exclusions never moves a position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from pipestate.errors import CheckpointMismatchError

EXCLUDED, PASSED, SKIP = "excluded", "passed", "skip"
MAX_INDEX = 2**63 - 1
MAX_EMPTY_EPOCHS = 1000  # consecutive reader epochs without a kept sample before reading gives up
MAX_EPOCHS_COUNTED = 1000  # reader epochs a skip may cross when their kept samples do not repeat


def _is_int(value: Any, low: int = 0, high: int = MAX_INDEX) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def merge(pairs: Iterable[tuple[int, int]]) -> list[int]:
    """Sort and merge half-open ranges (overlapping or touching ones become one); return them flattened.

    Empty ranges are dropped.
    """
    out: list[int] = []
    for begin, end in sorted((b, e) for b, e in pairs if b < e):
        if out and begin <= out[-1]:
            out[-1] = max(out[-1], end)
        else:
            out += [begin, end]
    return out


class Ranges:
    """Excluded dataset indices: sorted, disjoint, non-touching half-open ranges.

    Args:
        flat: ``[b0, e0, b1, e1, ...]`` in that form (see :func:`parse`).
    """

    __slots__ = ("flat", "starts", "ends")

    def __init__(self, flat: list[int]) -> None:
        self.flat = list(flat)
        pairs = np.asarray(self.flat, dtype=np.int64).reshape(-1, 2)
        self.starts = np.ascontiguousarray(pairs[:, 0])
        self.ends = np.ascontiguousarray(pairs[:, 1])

    def mask(self, indices: np.ndarray) -> np.ndarray:
        """True where an index is excluded."""
        k = np.searchsorted(self.starts, indices, side="right") - 1
        return (k >= 0) & (indices < self.ends[np.maximum(k, 0)])

    def count(self, begin: int, end: int) -> int:
        """Excluded indices in ``[begin, end)``."""
        return int((np.clip(self.ends, begin, end) - np.clip(self.starts, begin, end)).sum())


def parse(value: Any, where: str) -> Ranges:
    """Check a state's ``excluded`` value and return its ranges.

    Raises:
        CheckpointMismatchError: not a flat list of increasing indices in ``[0, 2**63)`` (an even count of
            them, ``b < e`` in each pair, pairs apart), naming ``where``.
    """
    if not (
        isinstance(value, list)
        and value
        and len(value) % 2 == 0
        and all(_is_int(v) for v in value)
        and all(a < b for a, b in zip(value, value[1:]))
    ):
        raise CheckpointMismatchError(
            f"{where}: the checkpoint's excluded ranges {str(value)[:200]} are not [begin, end, ...] pairs of "
            "increasing dataset indices"
        )
    return Ranges(value)


def split_state(state: Any, position_keys: set[str], elastic: bool, where: str) -> tuple[dict, Ranges | None, int, int]:
    """Separate a reader state into its position and its optional parts.

    Returns:
        The position (the ``position_keys`` entries), the excluded ranges (``None``: none), the positions
        passed over and the samples to skip.

    Raises:
        CheckpointMismatchError: the state is not a position with optional parts of the right form.
    """
    optional = {EXCLUDED, SKIP} | (set() if elastic else {PASSED})
    if not isinstance(state, dict) or not position_keys <= set(state) <= position_keys | optional:
        raise CheckpointMismatchError(f"{where}: the checkpoint's state {state!r} is not a reader position")
    if not elastic and (EXCLUDED in state) != (PASSED in state):
        raise CheckpointMismatchError(
            f"{where}: the checkpoint's state has {'excluded' if EXCLUDED in state else 'passed'} without "
            f"{'passed' if EXCLUDED in state else 'excluded'}"
        )
    for key in (PASSED, SKIP):
        if key in state and not _is_int(state[key], 0 if key == PASSED else 1):
            raise CheckpointMismatchError(f"{where}: the checkpoint's {key}={state[key]!r} is not a count")
    ranges = parse(state[EXCLUDED], where) if EXCLUDED in state else None
    position = {k: state[k] for k in position_keys}
    return position, ranges, state.get(PASSED, 0), state.get(SKIP, 0)


class Exclusion:
    """A reader's excluded ranges applied to its epochs.

    Args:
        ranges: The excluded indices.
        order: ``order(epoch)``: the epoch's dataset indices, unfiltered (padding included).
        replace: Take an excluded sample's place with the epoch's padding sample (``pad_last_batch``)
            instead of passing it over.
        period: After how many epochs the number of kept samples per epoch repeats (``None``: it need not),
            so that moving far ahead costs a period of epochs, not the distance.
    """

    def __init__(self, ranges: Ranges, order: Callable[[int], np.ndarray], replace: bool, period: int | None) -> None:
        self.ranges = ranges
        self.replace = replace
        self.period = period
        self._order = order
        self._kept: dict[int, np.ndarray] = {}

    def kept(self, epoch: int) -> np.ndarray:
        """The positions of ``epoch``'s order whose index is not excluded (cached for two epochs)."""
        kept = self._kept.get(epoch)
        if kept is None:
            kept = np.flatnonzero(~self.ranges.mask(self._order(epoch)))
            self._kept = {e: k for e, k in self._kept.items() if e == epoch - 1}
            self._kept[epoch] = kept
        return kept

    def check_keeps(self, size: int, epoch: int) -> None:
        """Check that samples are left to read from reader epoch ``epoch`` on (with padding: in each epoch
        of a period) in a dataset of ``size`` samples.

        Raises:
            ValueError: naming what is excluded entirely.
        """
        if self.ranges.count(0, size) == size:
            raise ValueError(f"the checkpoint excludes every sample of the dataset ({size})")
        epochs = range(epoch, epoch + (self.period or 1))
        kept = [len(self.kept(e)) for e in epochs]
        if self.replace and not all(kept):
            raise ValueError(
                f"the checkpoint excludes every sample of reader epoch {epochs[kept.index(0)]} of this shard; with "
                "pad_last_batch=True an excluded sample is replaced by another of its epoch"
            )
        if self.period is not None and not any(kept):
            raise ValueError(
                f"the checkpoint excludes every sample this shard reads (reader epochs {epochs[0]}-{epochs[-1]})"
            )

    def replaced(self, indices: np.ndarray, epochs: np.ndarray) -> np.ndarray:
        """``indices`` (of reader epochs ``epochs``) with each excluded one replaced by its epoch's padding
        sample.

        Raises:
            ValueError: an epoch has no sample left.
        """
        mask = self.ranges.mask(indices)
        if not mask.any():
            return indices
        out = np.array(indices, dtype=np.int64)
        for epoch in np.unique(epochs[mask]).tolist():
            kept = self.kept(epoch)
            if not len(kept):
                raise ValueError(f"every sample of reader epoch {epoch} is excluded; there is nothing to pad with")
            out[mask & (epochs == epoch)] = self._order(epoch)[kept[-1]]
        return out

    def walk(self, epoch: int, consumed: int, count: int, collect: bool = True, max_epochs: int | None = None) -> tuple:
        """Take ``count`` kept samples from the position ``(epoch, consumed)``.

        Args:
            epoch, consumed: The position.
            count: Kept samples to take.
            collect: Return their indices and epochs (else only the position after them).
            max_epochs: Refuse to cross more epochs than this (``None``: no limit).

        Returns:
            ``(indices, epochs, epoch, consumed, passed)``: the samples' dataset indices and reader epochs
            (int64; empty when not ``collect``), the position after them (moved past every epoch with no
            kept sample left) and the positions passed over.

        Raises:
            ValueError: :data:`MAX_EMPTY_EPOCHS` epochs in a row keep no sample, or more than ``max_epochs``
                would be crossed.
        """
        indices, epochs = [], []
        passed = empty = crossed = 0
        while True:
            order, kept = self._order(epoch), self.kept(epoch)
            j = int(np.searchsorted(kept, consumed))
            n = min(len(kept) - j, count)
            if n:
                positions = kept[j : j + n]
                if collect:
                    indices.append(order[positions])
                    epochs.append(np.full(n, epoch, dtype=np.int64))
                after = int(positions[-1]) + 1
                passed += after - consumed - n
                consumed, count, empty = after, count - n, 0
            if count == 0 and j + n < len(kept):
                break
            passed += len(order) - consumed
            epoch, consumed, empty, crossed = epoch + 1, 0, empty + (n == 0), crossed + 1
            if empty > MAX_EMPTY_EPOCHS:
                raise ValueError(f"{MAX_EMPTY_EPOCHS} reader epochs in a row hold only excluded samples")
            if max_epochs is not None and crossed > max_epochs:
                raise ValueError(
                    f"the skip crosses more than {max_epochs} reader epochs whose samples differ from epoch to "
                    "epoch (shuffle_after_epoch over several shards, with exclusions): each one would be counted; "
                    "skip less at a time"
                )
        if collect and indices:
            return np.concatenate(indices), np.concatenate(epochs), epoch, consumed, passed
        empty_array = np.zeros(0, dtype=np.int64)
        return empty_array, empty_array, epoch, consumed, passed

    def advance(self, epoch: int, consumed: int, count: int) -> tuple[int, int, int]:
        """The position ``count`` kept samples after ``(epoch, consumed)`` and the positions passed over,
        without reading them: whole periods of epochs are jumped by their count of kept samples (without a
        period, at most :data:`MAX_EPOCHS_COUNTED` epochs are counted one by one).

        Raises:
            ValueError: no sample is kept, or the skip would count too many epochs one by one.
        """
        kept = self.kept(epoch)
        remaining = len(kept) - int(np.searchsorted(kept, consumed))
        if count < remaining or self.period is None:
            return self.walk(epoch, consumed, count, collect=False, max_epochs=MAX_EPOCHS_COUNTED)[2:]
        passed = len(self._order(epoch)) - consumed - remaining
        count -= remaining
        epoch += 1
        sizes = [(len(self.kept(e)), len(self._order(e))) for e in range(epoch, epoch + self.period)]
        per_period = sum(k for k, _ in sizes)
        if per_period == 0:
            raise ValueError("every sample is excluded")
        cycles = count // per_period
        epoch += cycles * self.period
        count -= cycles * per_period
        passed += cycles * sum(length - k for k, length in sizes)
        *_, epoch, consumed, more = self.walk(epoch, 0, count, collect=False)
        return epoch, consumed, passed + more

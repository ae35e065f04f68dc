"""PyTorch Lightning plugin: a ``LightningDataModule`` that resumes the data exactly, and a ``CheckpointIO``
writing Lightning's checkpoints through pipestate's crash-safe storage.

:class:`PipelineDataModule` serves pipestate iterators (``pipestate.plugin.pytorch``) as its dataloaders and
puts the training iterator's position in Lightning's checkpoint (its ``state_dict``), so
``Trainer.fit(model, datamodule=dm, ckpt_path=...)`` continues with the batch after the last one the model
trained on, mid-epoch included. :class:`PipestateCheckpointIO` saves checkpoints atomically and durably
(``LocalCheckpointIO``), optionally in the background (``AsyncCheckpointIO``). Importing this module
imports ``torch`` and ``pytorch_lightning``.
"""

from __future__ import annotations

import io
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.cloud_io import _load
from pytorch_lightning.plugins.io import CheckpointIO

from pipestate.io import AsyncCheckpointIO, LocalCheckpointIO
from pipestate.io import CheckpointIO as PipestateIO
from pipestate.plugin.base_iterator import BaseIterator

__all__ = ["PipelineDataModule", "PipestateCheckpointIO"]


class _EpochLoader:
    """What Lightning iterates: one pass (``iter()``) is one epoch of a pipestate iterator.

    * Each pass starts the iterator's next epoch only if the current one is over
      (:meth:`BaseIterator._begin_epoch`): never a mid-epoch ``reset()``, so ``auto_reset`` and the samples
      ``FILL`` carries into the next epoch give Lightning the iterator's own epochs.
    * ``len()`` is the longest epoch (:meth:`BaseIterator._max_batches_per_epoch`): Lightning reads it once
      per ``fit``, and a shorter epoch (``FILL``: e.g. 8, 7, 8, ... batches) ends at ``StopIteration``. With
      DALI's ``len()`` (the current epoch's) a resumed run would cut every epoch at the length of the epoch
      it resumed in.
    * Lightning fetches ahead of the training step and may abandon a pass with batches fetched but never
      trained on (the end of an epoch it knew was over, a sanity check): the next pass first rewinds the
      iterator to the state after the batches the model used (training) or to the start of the abandoned
      pass (validation), so no batch is lost or repeated.
    * For the training loader, :meth:`state` is the iterator's state after the batches handed to the model
      (``used``, counted by the data module), from the states kept before each of the last few fetches.
    """

    _KEEP = 8

    def __init__(
        self,
        iterator: BaseIterator,
        single: bool,
        track: bool,
        continuing: Callable[[bool], bool] | None = None,
    ) -> None:
        self.iterator = iterator
        self.single = single
        self.track = track
        self.continuing = continuing
        self.history: dict[int, dict[str, Any]] = {}
        self.fetched = 0
        self.used = 0
        self.finished = True  # the last pass reached the end of its epoch
        self.restored = False  # the iterator was restored and no pass has started since

    def __iter__(self) -> Iterator[Any]:
        return self._batches()

    def _start(self) -> bool:
        """Prepare the iterator for a pass; ``False``: this pass has no batch (see :meth:`_batches`)."""
        it = self.iterator
        restored, self.restored = self.restored, False
        if not self.finished and it._enable_checkpointing:
            rewind = self.history.get(self.used if self.track else 0)
            if rewind is not None and (not self.track or self.fetched > self.used):
                it.load_state_dict(rewind)
        self.history, self.fetched, self.used, self.finished = {}, 0, 0, False
        sized = it._max_batches_per_epoch() is not None
        if restored and it._epoch_over() and self.continuing is not None and self.continuing(sized):
            # Restored at the end of an epoch that Lightning has not closed yet (it saved after the last
            # batch of an epoch shorter than len(), or, training by max_steps, at an epoch end): it asks
            # for one more batch of that epoch; the answer is the end.
            self.finished = True
            return False
        it._begin_epoch()
        return True

    def _batches(self) -> Iterator[Any]:
        # Lazy: Lightning calls iter() before it restores its own loop state, and fetches from the pass
        # only once that state says which epoch the batches belong to.
        if not self._start():
            return
        it = self.iterator
        keep = it._enable_checkpointing
        while True:
            if keep and (self.track or self.fetched == 0):
                self.history[self.fetched] = it.state_dict()
                self.history.pop(self.fetched - self._KEEP, None)
            try:
                batch = next(it)
            except StopIteration:
                self.finished = True
                return
            self.fetched += 1
            yield batch[0] if self.single else batch

    def forget(self) -> None:
        """Drop what the current pass knew: the iterator was just restored from outside."""
        self.history, self.fetched, self.used, self.finished, self.restored = {}, 0, 0, True, True

    def state(self) -> dict[str, Any]:
        """The iterator's state after the batches the model used in this pass."""
        if self.used in self.history:
            return self.history[self.used]
        return self.iterator.state_dict()

    def __len__(self) -> int:
        bound = self.iterator._max_batches_per_epoch()
        if bound is None:  # size=-1: Lightning treats the loader as unsized and ends epochs at StopIteration
            raise TypeError("the iterator reads until its source ends (size=-1): its epochs have no length")
        return bound

    def state_dict(self) -> dict[str, Any]:
        """Nothing: the position travels in :meth:`PipelineDataModule.state_dict` (Lightning checks that a
        loader has this method to tell it is resumable)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing: :meth:`PipelineDataModule.load_state_dict` restores the position."""


class PipelineDataModule(pl.LightningDataModule):
    """A ``LightningDataModule`` over pipestate iterators whose position is saved in Lightning's checkpoints.

    The training batches are ``iterator`` outputs (``batch[0]`` for one pipeline, with ``single=True``).
    Lightning calls :meth:`state_dict` when it saves a checkpoint and :meth:`load_state_dict` when
    ``Trainer.fit(..., ckpt_path=...)`` restores one; the iterator then continues with the batch after
    the last one the model trained on (Lightning's look-ahead is accounted for), mid-epoch or at an epoch
    end, under every ``last_batch_policy``: Lightning's epochs are the iterator's epochs, and ``len()``
    of the training loader is the longest epoch (``FILL`` epochs can be one batch shorter; they end at
    ``StopIteration``).

    Any ``auto_reset`` works (each Lightning epoch starts the iterator's next epoch once the current one is
    over). Use one ``Trainer`` process per iterator (e.g. shard with ``shard_id=trainer.global_rank`` in
    ``train_iterator``). The module defines ``val_dataloader`` only when ``val_iterator`` is given, so
    Lightning runs no validation loop otherwise.

    Args:
        train_iterator: A pipestate iterator, or a callable returning one (called on first use).
        val_iterator: Optional validation iterator (or callable); not checkpointed. Each validation run
            is a whole epoch of it (a run Lightning cuts short, e.g. the sanity check, is rewound).
        single: Hand out ``batch[0]`` (the dict of the only pipeline) instead of the list of dicts.
    """

    def __init__(
        self,
        train_iterator: BaseIterator | Callable[[], BaseIterator],
        val_iterator: BaseIterator | Callable[[], BaseIterator] | None = None,
        single: bool = True,
    ) -> None:
        super().__init__()
        self._train_source = train_iterator
        self._val_source = val_iterator
        self.single = single
        self._train: _EpochLoader | None = None
        self._val: _EpochLoader | None = None
        self._pending: dict[str, Any] | None = None
        if val_iterator is None and type(self).val_dataloader is PipelineDataModule.val_dataloader:
            # Lightning runs validation when val_dataloader is overridden: without a validation iterator,
            # this instance has LightningDataModule's (which Lightning sees as not overridden).
            self.val_dataloader = types.MethodType(pl.LightningDataModule.val_dataloader, self)

    @staticmethod
    def _make(source: BaseIterator | Callable[[], BaseIterator], what: str) -> BaseIterator:
        it = source if isinstance(source, BaseIterator) else source()
        if not isinstance(it, BaseIterator):
            raise TypeError(
                f"{what} must be a pipestate iterator (e.g. pipestate.plugin.pytorch.DALIGenericIterator) or a "
                f"callable returning one; got {type(it).__name__}"
            )
        return it

    @property
    def train_iterator(self) -> BaseIterator:
        """The training iterator (created on first use, and restored if a checkpoint was loaded)."""
        if self._train is None:
            self._train = _EpochLoader(
                self._make(self._train_source, "train_iterator"), self.single, track=True,
                continuing=self._lightning_is_mid_epoch,
            )
            if self._pending is not None:
                self._train.iterator.load_state_dict(self._pending)
                self._train.forget()
                self._pending = None
        return self._train.iterator

    def train_dataloader(self) -> Any:
        """The training batches: an iterable Lightning iterates once per epoch."""
        self.train_iterator  # noqa: B018 - creates and restores the iterator
        return self._train

    def val_dataloader(self) -> Any:
        """The validation batches (defined only when a validation iterator was given)."""
        if self._val is None:
            self._val = _EpochLoader(self._make(self._val_source, "val_iterator"), self.single, track=False)
        return self._val

    def _lightning_is_mid_epoch(self, sized: bool) -> bool:
        """Whether Lightning's training epoch loop has already trained on batches of the epoch it runs.

        A sized loader is first read once Lightning has set up the epoch (its progress says whether the
        epoch goes on). An unsized one is read ahead while Lightning sets up, before it decides: there the
        restored progress is raw, and an epoch whose last batch was seen (``is_last_batch``) is over.
        """
        trainer = getattr(self, "trainer", None)
        progress = getattr(getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None), "batch_progress", None)
        if progress is None:
            return False
        return progress.current.ready > 0 and (sized or not progress.is_last_batch)

    def state_dict(self) -> dict[str, Any]:
        """The training iterator's state after the last batch handed to the model.

        Returns:
            ``{"iterator": {...}}`` (the iterator's ``state_dict``), or ``{}`` before any iterator exists.
        """
        if self._train is None:
            return {"iterator": self._pending} if self._pending is not None else {}
        return {"iterator": self._train.state()}

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Count the training batches handed to the model (Lightning hook)."""
        trainer = getattr(self, "trainer", None)
        if self._train is not None and trainer is not None and trainer.training:
            self._train.used += 1
        return batch

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the training iterator (now, or when it is created).

        Raises:
            CheckpointMismatchError: the saved state comes from other pipelines or an iterator with other
                options (e.g. ``last_batch_policy``); the message names what differs.
            CheckpointError: the saved state is damaged.
        """
        state = state_dict.get("iterator") if state_dict else None
        if state is None:
            return
        if self._train is None:
            self._pending = state
        else:
            self._train.iterator.load_state_dict(state)
            self._train.forget()


def _write(backend: Any, blob: bytes, path: Any, storage_options: Any) -> None:
    """Write Lightning's bytes (not a pipestate checkpoint) through a backend that can store any bytes."""
    write = getattr(backend, "write_bytes", None)
    if write is None:
        raise TypeError(
            f"{type(backend).__name__} stores only pipestate checkpoints; PipestateCheckpointIO needs a backend "
            "with write_bytes(data, path), e.g. LocalCheckpointIO"
        )
    if storage_options:
        raise TypeError("PipestateCheckpointIO with a local backend takes no storage_options")
    write(blob, path)


class PipestateCheckpointIO(CheckpointIO):
    """A Lightning ``CheckpointIO`` that writes through pipestate's storage (atomic, fsynced, optionally async).

    ``Trainer(plugins=[PipestateCheckpointIO()])``. Saving serializes the checkpoint with ``torch.save``
    and hands the bytes to ``LocalCheckpointIO`` (a crash never leaves a partial file at the path), or to
    ``AsyncCheckpointIO`` with ``async_save=True`` (the training step does not wait for the disk;
    ``teardown`` and loading wait for pending saves; :meth:`close` stops the writer thread). Loading
    reads the file with Lightning's loader (``torch.load``).

    Args:
        checkpoint_io: The pipestate backend; default ``LocalCheckpointIO()`` (wrapped in
            ``AsyncCheckpointIO`` when ``async_save``).
        async_save: Save in the background.
    """

    def __init__(self, checkpoint_io: PipestateIO | None = None, async_save: bool = False) -> None:
        backend = checkpoint_io if checkpoint_io is not None else LocalCheckpointIO()
        if async_save and not isinstance(backend, AsyncCheckpointIO):
            backend = AsyncCheckpointIO(backend)
        self.backend = backend

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        """Serialize ``checkpoint`` with ``torch.save`` and store it at ``path`` through the backend."""
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        blob = buffer.getvalue()
        if isinstance(self.backend, AsyncCheckpointIO):  # in the background, atomically, any bytes
            self.backend.submit(lambda backend: _write(backend, blob, path, storage_options), path=path)
        else:
            _write(self.backend, blob, path, storage_options)

    def load_checkpoint(self, path: Any, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        """Load the checkpoint at ``path`` (waiting for a pending background save to it)."""
        if isinstance(self.backend, AsyncCheckpointIO):
            self.backend.wait()
        return _load(path, map_location=map_location, weights_only=weights_only)

    def remove_checkpoint(self, path: Any) -> None:
        """Delete the checkpoint at ``path`` (a missing file is not an error)."""
        self.backend.remove_checkpoint(path)

    def teardown(self) -> None:
        """Wait for pending background saves (Lightning calls this after each ``fit``; the plugin stays usable)."""
        if isinstance(self.backend, AsyncCheckpointIO):
            self.backend.wait()

    def close(self) -> None:
        """Wait for pending saves and release the backend (its writer thread)."""
        self.backend.teardown()

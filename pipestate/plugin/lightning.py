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


class _TrackedLoader:
    """Iterates an iterator for Lightning, keeping its state before each of the last few batches fetched.

    Lightning may fetch ahead of the batch the model trains on (to detect the last batch), so the state
    to save is the one after the batches the model *used*: ``state()`` picks it by the count of batches
    the data module saw go to the model (``on_after_batch_transfer``).
    """

    _KEEP = 8

    def __init__(self, iterator: BaseIterator) -> None:
        self.iterator = iterator
        self.history: dict[int, dict[str, Any]] = {}
        self.fetched = 0
        self.used = 0

    def __iter__(self) -> Iterator[Any]:
        it = iter(self.iterator)
        self.history, self.fetched, self.used = {}, 0, 0
        while True:
            self.history[self.fetched] = it.state_dict()
            self.history.pop(self.fetched - self._KEEP, None)
            try:
                batch = next(it)
            except StopIteration:
                return
            self.fetched += 1
            yield batch

    def state(self) -> dict[str, Any]:
        """The iterator's state after the batches the model used in this epoch."""
        if self.used in self.history:
            return self.history[self.used]
        return self.iterator.state_dict()

    def __len__(self) -> int:
        return len(self.iterator)


class PipelineDataModule(pl.LightningDataModule):
    """A ``LightningDataModule`` over pipestate iterators whose position is saved in Lightning's checkpoints.

    The training batches are ``iterator`` outputs (``batch[0]`` for one pipeline, with ``single=True``).
    Lightning calls :meth:`state_dict` when it saves a checkpoint and :meth:`load_state_dict` when
    ``Trainer.fit(..., ckpt_path=...)`` restores one; the iterator then continues with the batch after
    the last one the model trained on (Lightning's one-batch look-ahead is accounted for).

    Use iterators with ``auto_reset=True`` or the default (Lightning calls ``iter()`` every epoch, which
    resets an ended iterator), and one ``Trainer`` process per iterator (e.g. shard with
    ``shard_id=trainer.global_rank`` in ``train_iterator``).

    Args:
        train_iterator: A pipestate iterator, or a callable returning one (called in ``setup``).
        val_iterator: Optional validation iterator (or callable); not checkpointed (validation runs
            whole epochs).
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
        self._train: _TrackedLoader | None = None
        self._val: BaseIterator | None = None
        self._pending: dict[str, Any] | None = None

    @staticmethod
    def _make(source: BaseIterator | Callable[[], BaseIterator]) -> BaseIterator:
        it = source if isinstance(source, BaseIterator) else source()
        if not isinstance(it, BaseIterator):
            raise TypeError(f"expected a pipestate iterator (pipestate.plugin.pytorch), got {type(it).__name__}")
        return it

    @property
    def train_iterator(self) -> BaseIterator:
        """The training iterator (created on first use)."""
        if self._train is None:
            self._train = _TrackedLoader(self._make(self._train_source))
            if self._pending is not None:
                self._train.iterator.load_state_dict(self._pending)
                self._pending = None
        return self._train.iterator

    def train_dataloader(self) -> Any:
        """The training batches (an iterable Lightning iterates once per epoch)."""
        self.train_iterator  # noqa: B018 - creates and restores the iterator
        loader = self._train
        single = self.single
        return _Mapped(loader, (lambda b: b[0]) if single else (lambda b: b))

    def val_dataloader(self) -> Any:
        """The validation batches, when a validation iterator was given."""
        if self._val_source is None:
            return []
        if self._val is None:
            self._val = self._make(self._val_source)
        return _Mapped(self._val, (lambda b: b[0]) if self.single else (lambda b: b))

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
            CheckpointError: the saved pipeline state does not fit this module's pipelines.
        """
        state = state_dict.get("iterator") if state_dict else None
        if state is None:
            return
        if self._train is None:
            self._pending = state
        else:
            self._train.iterator.load_state_dict(state)
            self._train.history, self._train.fetched, self._train.used = {}, 0, 0


class _Mapped:
    def __init__(self, source: Any, func: Callable[[Any], Any]) -> None:
        self.source, self.func = source, func

    def __iter__(self) -> Iterator[Any]:
        return map(self.func, iter(self.source))

    def __len__(self) -> int:
        return len(self.source)


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

"""PyTorch plugin: DALI's PyTorch iterators over pipestate pipelines, with exact checkpoints.

``DALIGenericIterator``, ``DALIClassificationIterator``, ``DALIRaggedIterator``, ``LastBatchPolicy`` and
``feed_ndarray`` have the signatures and semantics of ``nvidia.dali.plugin.pytorch`` (on the CPU). The
iterators also implement the ``Stateful`` protocol of ``torch.distributed.checkpoint`` and Lightning
(``state_dict()``/``load_state_dict()``), and :class:`DALIIterableDataset` adapts one for
``torch.utils.data.DataLoader``. ``torch`` is imported when this module is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.utils.data

from pipestate.batch import Batch
from pipestate.pipeline import Pipeline
from pipestate.plugin.base_iterator import BaseIterator, LastBatchPolicy

__all__ = [
    "DALIClassificationIterator",
    "DALIGenericIterator",
    "DALIIterableDataset",
    "DALIRaggedIterator",
    "LastBatchPolicy",
    "feed_ndarray",
    "to_torch_tensor",
]


def to_torch_tensor(array: np.ndarray) -> torch.Tensor:
    """Return ``array`` as a CPU tensor, sharing its memory when numpy and torch allow it."""
    if not array.flags.writeable:
        array = array.copy()
    elif not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    return torch.from_numpy(array)


def feed_ndarray(
    dali_tensor: Batch | np.ndarray, arr: torch.Tensor, cuda_stream: Any = None, non_blocking: bool = False
) -> torch.Tensor:
    """Copy a batch (or an array) into the preallocated tensor ``arr`` (DALI's ``feed_ndarray``).

    Args:
        dali_tensor: A dense :class:`~pipestate.Batch` or a numpy array.
        arr: The destination tensor, of the same shape and element type.
        cuda_stream: Accepted for compatibility; unused (pipestate runs on the CPU).
        non_blocking: Passed to ``Tensor.copy_``.

    Returns:
        ``arr``.

    Raises:
        ValueError: the shapes differ, or the batch is ragged.
        TypeError: the element types differ.
    """
    source = dali_tensor.as_array() if isinstance(dali_tensor, Batch) else np.asarray(dali_tensor)
    src = torch.from_numpy(np.ascontiguousarray(source))
    if tuple(src.shape) != tuple(arr.shape):
        raise ValueError(f"feed_ndarray: shapes differ: the data is {tuple(src.shape)}, arr is {tuple(arr.shape)}")
    if src.dtype != arr.dtype:
        raise TypeError(f"feed_ndarray: element types differ: the data is {src.dtype}, arr is {arr.dtype}")
    arr.copy_(src, non_blocking=non_blocking)
    return arr


class _TorchStateful(BaseIterator):
    """``state_dict`` keyed by rank under ``torch.distributed``: ``torch.distributed.checkpoint`` keeps one
    copy of a non-tensor value saved under the same key by several ranks, and every rank's position differs."""

    def _state_key(self) -> str:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return f"{self._STATE_KEY}_rank{dist.get_rank()}"
        return self._STATE_KEY


def _check_output_map(output_map: Sequence[str]) -> list[str]:
    names = list(output_map)
    if len(set(names)) != len(names):
        raise ValueError(f"output_map names must be distinct; got {names}")
    return names


def _categories(output_map: list[str], outputs: tuple[Batch, ...]) -> dict[str, Batch]:
    if len(outputs) != len(output_map):
        raise ValueError(
            f"the pipeline has {len(outputs)} outputs but output_map names {len(output_map)} ({output_map}); "
            "give one name per output"
        )
    return dict(zip(output_map, outputs))


def _dense(name: str, batch: Batch) -> torch.Tensor:
    try:
        return to_torch_tensor(batch.as_array())
    except ValueError as exc:
        raise ValueError(
            f"output {name!r} is ragged (samples differ in shape): use DALIRaggedIterator with "
            f"output_types=[..., DALIRaggedIterator.SPARSE_LIST_TAG] ({exc})"
        ) from exc


class DALIGenericIterator(_TorchStateful):
    """PyTorch iterator over one pipeline or several (one per shard), as DALI's.

    Each ``next()`` returns a list with one dict per pipeline mapping the ``output_map`` names to CPU
    ``torch.Tensor`` batches (sharing memory with the pipeline's output). See
    :class:`~pipestate.plugin.base_iterator.BaseIterator` for the epoch arguments, and :meth:`checkpoints`,
    :meth:`state_dict` and :meth:`load_state_dict` for restoring.

    Args:
        pipelines: A pipeline or a list of pipelines.
        output_map: One distinct name per pipeline output.
        size: Samples per epoch of the shard (sum over pipelines); ``-1``: until ``StopIteration``.
        reader_name: The reader whose metadata sets the epoch length and padding (preferred to ``size``).
        auto_reset: Reset by itself at the end of each epoch (``True``/``"yes"``).
        fill_last_batch: Deprecated, use ``last_batch_policy``.
        dynamic_shape: Ignored (DALI keeps it for backward compatibility).
        last_batch_padded: Whether the reader pads the last batch (set automatically with ``reader_name``).
        last_batch_policy: ``LastBatchPolicy.FILL`` (default), ``DROP`` or ``PARTIAL``.
        prepare_first_batch: Compute the first batch at construction.

    Raises:
        ValueError: duplicate ``output_map`` names, or inconsistent epoch arguments.
    """

    def __init__(
        self,
        pipelines: Pipeline | list[Pipeline],
        output_map: list[str],
        size: int = -1,
        reader_name: str | None = None,
        auto_reset: bool | str | None = False,
        fill_last_batch: bool | None = None,
        dynamic_shape: bool | None = False,
        last_batch_padded: bool = False,
        last_batch_policy: LastBatchPolicy = LastBatchPolicy.FILL,
        prepare_first_batch: bool = True,
    ) -> None:
        self.output_map = _check_output_map(output_map)
        super().__init__(
            pipelines,
            size,
            reader_name,
            auto_reset,
            fill_last_batch,
            last_batch_padded,
            last_batch_policy,
            prepare_first_batch,
        )
        self._prepare()

    def _convert(self, outputs: list[tuple[Batch, ...]]) -> list[dict[str, torch.Tensor]]:
        return [
            {name: _dense(name, batch) for name, batch in _categories(self.output_map, outs).items()}
            for outs in outputs
        ]

    def __next__(self) -> list[dict[str, torch.Tensor]]:
        return super().__next__()


class DALIClassificationIterator(DALIGenericIterator):
    """:class:`DALIGenericIterator` with ``output_map=["data", "label"]`` (DALI's classification iterator).

    Args:
        pipelines: A pipeline (with two outputs) or a list of them.
        size, reader_name, auto_reset, fill_last_batch, dynamic_shape, last_batch_padded,
            last_batch_policy, prepare_first_batch: As for :class:`DALIGenericIterator`.
    """

    def __init__(
        self,
        pipelines: Pipeline | list[Pipeline],
        size: int = -1,
        reader_name: str | None = None,
        auto_reset: bool | str | None = False,
        fill_last_batch: bool | None = None,
        dynamic_shape: bool | None = False,
        last_batch_padded: bool = False,
        last_batch_policy: LastBatchPolicy = LastBatchPolicy.FILL,
        prepare_first_batch: bool = True,
    ) -> None:
        super().__init__(
            pipelines,
            ["data", "label"],
            size,
            reader_name=reader_name,
            auto_reset=auto_reset,
            fill_last_batch=fill_last_batch,
            dynamic_shape=dynamic_shape,
            last_batch_padded=last_batch_padded,
            last_batch_policy=last_batch_policy,
            prepare_first_batch=prepare_first_batch,
        )


class DALIRaggedIterator(_TorchStateful):
    """PyTorch iterator whose outputs may be ragged (DALI's ``DALIRaggedIterator``).

    An output tagged ``DENSE_TAG`` (the default for all) is one tensor; ``SPARSE_LIST_TAG`` a list of
    per-sample tensors; ``SPARSE_COO_TAG`` a sparse COO tensor of 1-D samples (row = sample).

    Args:
        pipelines: A pipeline or a list of pipelines.
        output_map: One distinct name per pipeline output.
        size, reader_name: As for :class:`DALIGenericIterator`.
        output_types: One tag per output, or ``None`` for all dense.
        auto_reset, fill_last_batch, dynamic_shape, last_batch_padded, last_batch_policy,
            prepare_first_batch: As for :class:`DALIGenericIterator`.

    Raises:
        ValueError: duplicate ``output_map`` names or an unknown tag in ``output_types``.
    """

    DENSE_TAG: str = "dense"
    SPARSE_LIST_TAG: str = "sparse_list"
    SPARSE_COO_TAG: str = "sparse_coo"

    def __init__(
        self,
        pipelines: Pipeline | list[Pipeline],
        output_map: list[str],
        size: int = -1,
        reader_name: str | None = None,
        output_types: list[str] | None = None,
        auto_reset: bool | str | None = False,
        fill_last_batch: bool | None = None,
        dynamic_shape: bool | None = False,
        last_batch_padded: bool = False,
        last_batch_policy: LastBatchPolicy = LastBatchPolicy.FILL,
        prepare_first_batch: bool = True,
    ) -> None:
        self.output_map = _check_output_map(output_map)
        tags = {self.DENSE_TAG, self.SPARSE_LIST_TAG, self.SPARSE_COO_TAG}
        if output_types is not None and not set(output_types) <= tags:
            raise ValueError(f"output_types={output_types!r}: each must be one of {sorted(tags)}")
        self._outputs_types = list(output_types) if output_types is not None else None
        super().__init__(
            pipelines,
            size,
            reader_name,
            auto_reset,
            fill_last_batch,
            last_batch_padded,
            last_batch_policy,
            prepare_first_batch,
        )
        self._prepare()

    def _tag(self, j: int) -> str:
        return self.DENSE_TAG if self._outputs_types is None else self._outputs_types[j]

    def _convert(self, outputs: list[tuple[Batch, ...]]) -> list[dict[str, Any]]:
        result = []
        for outs in outputs:
            converted: dict[str, Any] = {}
            for j, (name, batch) in enumerate(_categories(self.output_map, outs).items()):
                tag = self._tag(j)
                if tag == self.DENSE_TAG:
                    converted[name] = _dense(name, batch)
                    continue
                tensors = [to_torch_tensor(np.asarray(s)) for s in batch]
                if tag == self.SPARSE_COO_TAG:
                    converted[name] = _sparse_coo(name, tensors)
                else:
                    converted[name] = tensors
            result.append(converted)
        return result

    def __next__(self) -> list[dict[str, Any]]:
        return super().__next__()


def _sparse_coo(name: str, tensors: list[torch.Tensor]) -> torch.Tensor:
    if any(t.dim() != 1 for t in tensors):
        raise ValueError(
            f"output {name!r}: SPARSE_COO_TAG needs 1-D samples; got shapes {[tuple(t.shape) for t in tensors][:4]}"
        )
    values = torch.hstack(tensors) if tensors else torch.empty(0)
    rows = torch.repeat_interleave(
        torch.arange(len(tensors)), torch.tensor([len(t) for t in tensors], dtype=torch.long)
    )
    cols = torch.cat([torch.arange(len(t)) for t in tensors]) if tensors else torch.empty(0, dtype=torch.long)
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), values)


class DALIIterableDataset(torch.utils.data.IterableDataset):
    """A ``torch.utils.data.IterableDataset`` over a pipestate iterator, for code built around ``DataLoader``.

    Use ``DataLoader(DALIIterableDataset(it), batch_size=None)`` (the iterator already batches) in the main
    process (``num_workers=0``: the pipeline has its own threads). Each element is the dict of the first
    pipeline (``single=True``, default, for one pipeline) or the iterator's list of dicts. Iterating the
    dataset runs one epoch of the iterator (resetting it first when the previous epoch ended).
    ``state_dict()``/``load_state_dict()`` delegate to the iterator, so torchdata's
    ``StatefulDataLoader`` saves and restores its position exactly.

    Args:
        iterator: A :class:`DALIGenericIterator` (or another pipestate framework iterator), or a
            callable returning one (called on first use).
        single: Yield ``batch[0]`` instead of the list of per-pipeline dicts.
    """

    def __init__(self, iterator: BaseIterator | Callable[[], BaseIterator], single: bool = True) -> None:
        super().__init__()
        self._iterator = iterator if isinstance(iterator, BaseIterator) else None
        self._factory = None if isinstance(iterator, BaseIterator) else iterator
        self.single = single

    @property
    def iterator(self) -> BaseIterator:
        """The wrapped iterator."""
        if self._iterator is None:
            self._iterator = self._factory()
            if not isinstance(self._iterator, BaseIterator):
                raise TypeError(
                    f"the iterator factory returned a {type(self._iterator).__name__}, not a pipestate iterator"
                )
        return self._iterator

    def __iter__(self) -> Iterator[Any]:
        info = torch.utils.data.get_worker_info()
        if info is not None:
            raise RuntimeError(
                "DALIIterableDataset runs in the main process: use DataLoader(..., num_workers=0); the pipeline "
                "has its own threads (num_threads)"
            )
        for batch in iter(self.iterator):
            yield batch[0] if self.single else batch

    def __len__(self) -> int:
        return len(self.iterator)

    def state_dict(self) -> dict[str, Any]:
        """The iterator's :meth:`~BaseIterator.state_dict`."""
        return self.iterator.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the iterator with :meth:`~BaseIterator.load_state_dict`."""
        self.iterator.load_state_dict(state_dict)

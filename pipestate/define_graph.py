"""DALI's class-style pipelines: ``define_graph``, ``iter_setup`` and ``feed_input``.

A ``Pipeline`` subclass creates operators in ``__init__`` (``ops.readers.File(...)``), calls them in
``define_graph(self)`` and returns the outputs; :meth:`Pipeline.build` (or the first ``run()``) calls it.
An external source without a ``source`` is *fed*: ``Pipeline.feed_input(node_or_name, batch)`` queues one
batch for it, usually from ``iter_setup()``, which the pipeline calls as DALI does: before the first
batch ``prefetch_queue_depth`` times, then once per ``run()``. A ``StopIteration`` raised by
``iter_setup()`` ends the epoch after the batches it already set up.

:class:`Feeding` holds the fed batches. The prefetch thread computes a batch only once every fed source
has data for it (its *gate*), so the outputs never depend on the prefetch depth, and ``run()`` raises at
once, instead of waiting forever, when the batch it needs was never fed (``blocking=True`` on the source
waits instead, for data fed from another thread).

Checkpoints (what is restored): a fed source's position (epoch and batch) is restored, like every other
operator's state; the fed data is not part of the checkpoint, as in DALI. ``reset()`` and ``restore()``
drop the fed batches no returned batch has used and start the ``iter_setup()`` schedule afresh, so a
restored pipeline computes its next batch from the data fed after the restore. To continue bit for bit,
the feeder resumes from the batch after the checkpoint's, :attr:`Pipeline.iteration` (batches returned
before the checkpoint) tells which.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from pipestate.batch import Batch
from pipestate.errors import PipestateError
from pipestate.graph import DataNode

if TYPE_CHECKING:
    from pipestate.operators.external_source import ExternalSource


def build_graph(pipe: Any) -> None:
    """Call ``pipe.define_graph()`` inside the pipeline's definition and set its outputs (DALI's ``_build_graph``).

    Raises:
        TypeError: an output is a nested list of DataNodes (a missing ``*``), or not a DataNode or constant.
    """
    with pipe:
        outputs = pipe.define_graph()
    outputs = tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)
    for i, out in enumerate(outputs):
        if isinstance(out, (list, tuple)) and any(isinstance(x, DataNode) for x in out):
            raise TypeError(
                f"Illegal pipeline output type. The output {i} contains a nested `DataNode`. Missing list/tuple "
                "expansion (*) is the likely cause."
            )
    pipe.set_outputs(*outputs)


def _samples(data: Any, where: str) -> Any:
    """``data`` (an array with the batch as its first axis, a list of samples, a ``Batch``), copied."""
    if isinstance(data, Batch):
        return [np.array(s) for s in data]
    if isinstance(data, (list, tuple)):
        return [np.array(s) for s in data]
    if hasattr(data, "__array__"):
        return np.array(data)
    raise TypeError(f"{where}: feed a numpy array (the batch as its first axis), a list of arrays or a TensorListCPU")


class Feeding:
    """The fed external sources of one pipeline and the ``iter_setup()`` schedule.

    Args:
        sources: The pipeline's external sources without a ``source``.
        depth: The pipeline's ``prefetch_queue_depth`` (``iter_setup()`` calls before the first batch).
        schedules: Whether the pipeline overrides ``iter_setup()`` (then each batch needs one call).
    """

    def __init__(self, sources: list[ExternalSource], depth: int, schedules: bool) -> None:
        self._sources = {op.name: op for op in sources}
        self._queues: dict[str, collections.deque] = {name: collections.deque() for name in self._sources}
        self._last: dict[str, Batch] = {}
        self._depth = depth
        self._schedules = schedules
        self._cond = threading.Condition()
        self.restart(0)

    def restart(self, index: int) -> None:
        """Forget the fed batches; the next batch computed is batch ``index`` of the epoch."""
        with self._cond:
            for q in self._queues.values():
                q.clear()
            self._last.clear()
            self._admitted = self._scheduled = index
            self._first = True
            self._ended = False

    def feed(self, name: str, data: Any, layout: str | None) -> None:
        """Queue one batch for the fed source ``name`` (``Pipeline.feed_input``).

        Raises:
            KeyError: no fed external source is called ``name``.
            TypeError, ValueError: the data does not fit the source (type, dimensions, layout, batch size).
        """
        if name not in self._sources:
            raise KeyError(
                f"feed_input({name!r}): no external source without a source= is called {name!r}; fed sources: "
                f"{sorted(self._sources) or 'none'}"
            )
        op = self._sources[name]
        where = f"feed_input({name!r})"
        data = _samples(data, where) if not op.args["no_copy"] else data
        declared = op.layouts[0]
        if layout is not None and declared and layout != declared:
            raise ValueError(f"{where}: layout={layout!r} differs from the source's layout={declared!r}")
        batch = op._to_batch(data, op.batch_size_hint, 0)
        if layout is not None:
            if any(len(s) != len(layout) for s in batch.shape()):
                raise ValueError(f"{where}: layout={layout!r} does not match samples of shapes {batch.shape()[:3]}")
            batch = batch.with_meta(layout, None)
        with self._cond:
            self._queues[name].append(batch)
            self._cond.notify_all()

    def before_run(self, iter_setup: Callable[[], None], index: int) -> bool:
        """Call ``iter_setup`` as DALI does before ``run()`` returns batch ``index`` of the epoch; return False
        when the epoch ended there (``iter_setup`` raised ``StopIteration``).

        Raises:
            PipestateError: batch ``index`` needs data that was never fed (and no source waits for it).
        """
        if self._schedules and not self._ended:
            for _ in range(self._depth if self._first else 1):
                try:
                    iter_setup()
                except StopIteration:
                    self._ended = True
                    break
                with self._cond:
                    self._scheduled += 1
                    self._cond.notify_all()
            self._first = False
        with self._cond:
            if index < self._admitted or self._ready():
                return True
            if self._schedules and self._ended and index >= self._scheduled:
                return False
            if any(op.args["blocking"] for op in self._sources.values()):
                return True
            missing = sorted(name for name, q in self._queues.items() if not q and not self._repeats(name))
            raise PipestateError(
                f"batch {index} of the epoch has no data: feed the external sources without a source= "
                f"({', '.join(missing or self._sources)}) with pipe.feed_input(name, batch) before run(), "
                "or from iter_setup(); or give the source blocking=True to wait for data fed from another thread"
            )

    def _ready(self) -> bool:
        if self._schedules and self._admitted >= self._scheduled:
            return False
        return all(q or self._repeats(name) for name, q in self._queues.items())

    def _repeats(self, name: str) -> bool:
        return self._sources[name].args["repeat_last"] and name in self._last

    def gate(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until the next batch has its data; then hand each fed source its
        batch and return True (the prefetch thread's gate)."""
        with self._cond:
            if not self._cond.wait_for(self._ready, timeout):
                return False
            for name, q in self._queues.items():
                batch = q.popleft() if q else self._last[name]
                self._last[name] = batch
                self._sources[name].fed.append(batch)
            self._admitted += 1
            return True

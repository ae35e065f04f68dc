"""Worker threads and the prefetch queue.

One producer thread computes batches ahead of ``run()``, up to ``prefetch_queue_depth`` queued. Each
queued item carries the outputs *and* the pipeline state snapshot taken right after that batch, so
``Pipeline.checkpoint()`` can describe exactly the last batch the user received, however far ahead the
producer is. Errors and end-of-data travel through the queue in order and surface in ``run()``.

The producer holds only a weak reference to the pipeline: a pipeline dropped mid-epoch is collected, and
its producer notices and exits instead of blocking forever on a full queue.
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

from pipestate.errors import PipestateError
from pipestate.runtime import EndOfData

_POLL_SECONDS = 0.05


@dataclasses.dataclass(frozen=True)
class Produced:
    """A computed batch and the state snapshot taken right after it."""

    outputs: tuple
    snapshot: Any


@dataclasses.dataclass(frozen=True)
class Ended:
    """End of the epoch: a source raised ``StopIteration``."""


@dataclasses.dataclass(frozen=True)
class Failed:
    """Computing the batch raised ``error``."""

    error: BaseException


class Prefetcher:
    """Runs ``produce`` on a background thread, keeping up to ``depth`` results queued.

    ``gate(timeout) -> bool``, if given, is asked before each batch: it waits up to ``timeout`` seconds for
    the batch's inputs (data given to ``Pipeline.feed_input``) and says whether ``produce`` may run.
    """

    def __init__(
        self, produce: Callable[[], Produced], depth: int, gate: Callable[[float], bool] | None = None
    ) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_produce_loop,
            args=(weakref.WeakMethod(produce), self._queue, self._stop, gate),
            name="pipestate-prefetch",
            daemon=True,
        )
        self._thread.start()

    def get(self) -> Produced | Ended | Failed:
        """Return the next item, waiting for the producer (a ``Failed`` item if :meth:`stop` is called)."""
        while True:
            try:
                return self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self._stop.is_set():
                    return Failed(PipestateError("the pipeline was closed while run() was waiting for a batch"))
                if not self._thread.is_alive() and self._queue.empty():
                    return Failed(PipestateError("the prefetch thread stopped unexpectedly"))

    def stop(self) -> None:
        """Stop the producer, discard what it computed ahead, and wait for its thread to end."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(_POLL_SECONDS)


def _produce_loop(
    produce_ref: weakref.WeakMethod, out: queue.Queue, stop: threading.Event, gate: Callable[[float], bool] | None
) -> None:
    while not stop.is_set():
        if gate is not None and not gate(_POLL_SECONDS):
            if produce_ref() is None:
                return
            continue
        produce = produce_ref()
        if produce is None:
            return
        try:
            item: Produced | Ended | Failed = produce()
        except EndOfData:
            item = Ended()
        except BaseException as exc:  # noqa: BLE001 - every error is handed to run()
            item = Failed(exc)
        del produce
        while not stop.is_set():
            try:
                out.put(item, timeout=_POLL_SECONDS)
                break
            except queue.Full:
                if produce_ref() is None:
                    return
        if not isinstance(item, Produced):
            return


class _Job:
    """One ``map`` call: items taken by index by every participating thread."""

    __slots__ = ("func", "items", "results", "next", "remaining", "lock", "done", "error")

    def __init__(self, func: Callable[..., Any], items: list[tuple]) -> None:
        self.func = func
        self.items = items
        self.results: list[Any] = [None] * len(items)
        self.next = itertools.count()
        self.remaining = len(items)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.error: BaseException | None = None

    def work(self) -> None:
        while True:
            i = next(self.next)
            if i >= len(self.items):
                return
            try:
                self.results[i] = self.func(*self.items[i])
            except BaseException as exc:  # noqa: BLE001 - re-raised by map() in the caller
                self.error = self.error or exc
            with self.lock:
                self.remaining -= 1
                if self.remaining == 0:
                    self.done.set()


class WorkerPool:
    """``num_threads`` threads for per-sample work (the caller and ``num_threads - 1`` daemon workers).

    ``map`` keeps input order. The workers are daemon threads of pipestate's own, not a
    ``concurrent.futures`` executor, so a pipeline keeps running in a non-daemon thread while the
    interpreter shuts down (an executor refuses new work then).
    """

    def __init__(self, num_threads: int) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._worker, name=f"pipestate-worker-{i}", daemon=True)
            for i in range(num_threads - 1)
        ]
        for t in self._threads:
            t.start()

    def _worker(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            job.work()

    def map(self, func: Callable[..., Any], *iterables: Any) -> list:
        """Return ``[func(*args) for args in zip(*iterables)]``, computed on the pool.

        Raises:
            The first exception ``func`` raised (after every item finished).
        """
        items = list(zip(*iterables))
        if not self._threads or len(items) < 2:
            return [func(*args) for args in items]
        job = _Job(func, items)
        for _ in range(min(len(self._threads), len(items) - 1)):
            self._queue.put(job)
        job.work()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.results

    def shutdown(self) -> None:
        """End the worker threads (after the work they have)."""
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(5.0)
        self._threads = []

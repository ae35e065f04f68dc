"""Worker threads and the prefetch queue.

One producer thread computes batches ahead of ``run()``, up to ``prefetch_queue_depth`` queued. Each
queued item carries the outputs *and* the pipeline state snapshot taken right after that batch, so
``Pipeline.checkpoint()`` can describe exactly the last batch the user received, however far ahead the
producer is. Errors and end-of-data travel through the queue in order and surface in ``run()``.

The producer holds only a weak reference to the pipeline: a pipeline dropped mid-epoch is collected, and
its producer notices and exits instead of blocking forever on a full queue.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

_POLL_SECONDS = 0.05


class EndOfData(Exception):
    """Raised by a batch computation when a source ended the epoch."""


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
    """Runs ``produce`` on a background thread, keeping up to ``depth`` results queued."""

    def __init__(self, produce: Callable[[], Produced], depth: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_produce_loop,
            args=(weakref.WeakMethod(produce), self._queue, self._stop),
            name="pipestate-prefetch",
            daemon=True,
        )
        self._thread.start()

    def get(self) -> Produced | Ended | Failed:
        """Return the next item, waiting for the producer."""
        while True:
            try:
                return self._queue.get(timeout=1.0)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    return Failed(RuntimeError("the prefetch thread stopped unexpectedly"))

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


def _produce_loop(produce_ref: weakref.WeakMethod, out: queue.Queue, stop: threading.Event) -> None:
    while not stop.is_set():
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


class WorkerPool:
    """``num_threads`` worker threads for per-sample work; ``map`` keeps input order."""

    def __init__(self, num_threads: int) -> None:
        self._pool = (
            concurrent.futures.ThreadPoolExecutor(num_threads, thread_name_prefix="pipestate-worker")
            if num_threads > 1
            else None
        )

    def map(self, func: Callable[..., Any], *iterables: Any) -> list:
        """Return ``[func(*args) for args in zip(*iterables)]``, computed on the pool."""
        if self._pool is None:
            return list(map(func, *iterables))
        return list(self._pool.map(func, *iterables))

    def shutdown(self) -> None:
        """Wait for running work and end the threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

"""Worker processes for ``fn.external_source(parallel=True)``: a pool that calls a source in other processes.

A :class:`ProcessPool` starts ``num_workers`` processes with a :mod:`multiprocessing` start method
(``"fork"``, ``"spawn"`` or ``"forkserver"``) and hands each of them the source: inherited with ``fork``,
serialized otherwise. A task is a list of arguments; a worker calls the source on each in order and
sends back the list of results (pickled in the worker, so a result that cannot be pickled is reported
as an error instead of being lost). Tasks are numbered; :meth:`ProcessPool.result` waits for one,
keeping the others that arrive first, so the caller decides the order and gets the same results for
any number of workers. A failure names the argument it failed on; a ``StopIteration`` from the source
is reported as the end of the data.

Serialization of the source (for ``spawn``/``forkserver``) uses the standard :mod:`pickle` machinery,
extended as DALI's default callback pickler is: functions that cannot be imported by name in a worker
(lambdas, functions defined inside other functions, functions of an interactive ``__main__``) are sent
by value (their code, the globals they use, their closure). ``py_callback_pickler`` replaces it with any
module (or ``(module, dumps_kwargs, loads_kwargs)``) that has ``dumps``/``loads``, e.g. ``dill``. This is
only how the user's source reaches the workers: checkpoints never contain pickled data.

Workers end on :meth:`ProcessPool.close`, when the pool is garbage-collected, and (being daemon
processes) when the main process exits; they are joined, so none is left as a zombie.
"""

from __future__ import annotations

import builtins
import importlib
import io
import marshal
import multiprocessing
import pickle
import queue
import signal
import sys
import traceback
import types
import weakref
from collections.abc import Sequence
from typing import Any

_POLL_SECONDS = 0.1
_JOIN_SECONDS = 2.0


class WorkerError(RuntimeError):
    """The source failed in a worker process (``__cause__`` is its exception, when it could be sent back)."""


class WorkerStop(Exception):  # noqa: N818 - a signal, not an error
    """The source raised ``StopIteration`` for argument ``index`` of a task."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class TaskFailure(Exception):  # noqa: N818 - carries a worker's failure to the caller
    """The source raised for argument ``index`` of a task; ``error`` is the exception (or None),
    ``description`` its type and message, ``worker_traceback`` the traceback text from the worker."""

    def __init__(self, index: int, error: BaseException | None, description: str, worker_traceback: str) -> None:
        super().__init__(description)
        self.index = index
        self.error = error
        self.description = description
        self.worker_traceback = worker_traceback


# ---- serialization of the source -----------------------------------------------------------------------
def _importable(func: types.FunctionType) -> bool:
    """True if a worker can import ``func`` by module and qualified name."""
    if "<" in func.__qualname__:  # <lambda>, <locals>
        return False
    module = sys.modules.get(func.__module__)
    if module is None or (func.__module__ == "__main__" and not getattr(module, "__file__", None)):
        return False
    obj: Any = module
    for part in func.__qualname__.split("."):
        obj = getattr(obj, part, None)
    return obj is func


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _new_function(code: bytes, name: str, module: str, cells: int) -> types.FunctionType:
    closure = tuple(types.CellType() for _ in range(cells)) or None
    scope = {"__builtins__": builtins, "__name__": module}
    return types.FunctionType(marshal.loads(code), scope, name, None, closure)  # noqa: S302 - our own code object


def _set_function_state(func: types.FunctionType, state: tuple) -> None:
    scope, contents, defaults, kwdefaults, attributes, qualname = state
    func.__globals__.update(scope)
    for cell, value in zip(func.__closure__ or (), contents):
        cell.cell_contents = value
    func.__defaults__, func.__kwdefaults__, func.__qualname__ = defaults, kwdefaults, qualname
    func.__dict__.update(attributes)


def _import(name: str) -> types.ModuleType:
    return importlib.import_module(name)


class CallbackPickler(pickle.Pickler):
    """A standard pickler that also sends lambdas and local functions by value (as DALI's default)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.FunctionType) and not _importable(obj):
            code = obj.__code__
            scope = {n: obj.__globals__[n] for n in _global_names(code) if n in obj.__globals__}
            cells = obj.__closure__ or ()
            state = (
                scope,
                tuple(c.cell_contents for c in cells),
                obj.__defaults__,
                obj.__kwdefaults__,
                dict(obj.__dict__),
                obj.__qualname__,
            )
            args = (marshal.dumps(code), obj.__name__, obj.__module__, len(cells))
            return _new_function, args, state, None, None, _set_function_state
        if isinstance(obj, types.ModuleType):
            return _import, (obj.__name__,)
        return NotImplemented


def callback_dumps(obj: Any) -> bytes:
    """Serialize ``obj`` with :class:`CallbackPickler`."""
    buffer = io.BytesIO()
    CallbackPickler(buffer, pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def serializer(py_callback_pickler: Any) -> tuple[Any, Any]:
    """Return ``(dumps, loads)`` for the pipeline option ``py_callback_pickler`` (``None``: the default).

    Raises:
        TypeError: the option is neither ``None``, an object with ``dumps``/``loads``, nor a tuple
            ``(such an object, dumps kwargs, loads kwargs)``.
    """
    if py_callback_pickler is None:
        return callback_dumps, pickle.loads
    module, dumps_kwargs, loads_kwargs = py_callback_pickler, None, None
    if isinstance(py_callback_pickler, (tuple, list)):
        module, dumps_kwargs, loads_kwargs = (list(py_callback_pickler) + [None, None])[:3]
    if not (callable(getattr(module, "dumps", None)) and callable(getattr(module, "loads", None))):
        raise TypeError(
            f"pipeline option py_callback_pickler={py_callback_pickler!r}: give a module or object with dumps() "
            "and loads() (e.g. dill), or a tuple (module, dumps_kwargs, loads_kwargs)"
        )
    dumps_kwargs, loads_kwargs = dict(dumps_kwargs or {}), dict(loads_kwargs or {})

    def dumps(obj: Any) -> bytes:
        return module.dumps(obj, **dumps_kwargs)

    loads = module.loads if not loads_kwargs else _KwargsLoads(module.loads, loads_kwargs)
    return dumps, loads


class _KwargsLoads:
    """``loads`` with keyword arguments, picklable by reference (sent to spawned workers)."""

    def __init__(self, loads: Any, kwargs: dict) -> None:
        self.loads, self.kwargs = loads, kwargs

    def __call__(self, data: bytes) -> Any:
        return self.loads(data, **self.kwargs)


# ---- the worker ----------------------------------------------------------------------------------------
def _describe(exc: BaseException) -> tuple[bytes | None, str, str]:
    try:
        sent = pickle.dumps(exc)
        pickle.loads(sent)  # noqa: S301 - our own bytes, checked to round-trip
    except Exception:  # noqa: BLE001 - an exception that cannot travel is described by text
        sent = None
    return sent, f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))


def _worker_main(source: Any, loads: Any, tasks: Any, results: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    results.cancel_join_thread()  # exiting never waits for the main process to read
    try:
        target = loads(source) if loads is not None else source
    except BaseException as exc:  # noqa: BLE001 - reported to the main process
        results.put((-1, "error", (0, *_describe(exc))))
        return
    while True:
        task = tasks.get()
        if task is None:
            return
        task_id, items = task
        out: list[bytes] = []  # each result pickled here, so one that cannot be is reported with its item
        try:
            for item in items:
                out.append(pickle.dumps(target(item), pickle.HIGHEST_PROTOCOL))
        except StopIteration:
            results.put((task_id, "stop", len(out)))
        except BaseException as exc:  # noqa: BLE001 - reported to the main process
            results.put((task_id, "error", (len(out), *_describe(exc))))
        else:
            results.put((task_id, "ok", out))


# ---- the pool ------------------------------------------------------------------------------------------
class ProcessPool:
    """``num_workers`` processes that call ``source`` on the arguments of submitted tasks.

    Args:
        source: The callable the workers call (sent once to each worker).
        num_workers: Number of processes (>= 1).
        start_method: ``"fork"``, ``"spawn"`` or ``"forkserver"``.
        py_callback_pickler: The pipeline option (see :func:`serializer`); used unless forking.
        name: Who owns the pool, for error messages (e.g. ``"external source 'es'"``).

    Raises:
        TypeError: with ``spawn``/``forkserver``, ``source`` cannot be serialized (the message says what
            to change).
    """

    def __init__(
        self, source: Any, num_workers: int, start_method: str, py_callback_pickler: Any = None, name: str = ""
    ) -> None:
        self.name = name
        context = multiprocessing.get_context(start_method)
        loads = None
        if start_method != "fork":
            dumps, loads = serializer(py_callback_pickler)
            try:
                source = dumps(source)
            except Exception as exc:
                raise TypeError(
                    f"{name}: parallel=True with py_start_method={start_method!r} sends the source to worker "
                    f"processes, but it cannot be pickled ({type(exc).__name__}: {exc}). Make the source picklable "
                    "(e.g. a module-level function or class), use py_start_method='fork', or pass "
                    "py_callback_pickler= (e.g. dill)"
                ) from exc
        self._tasks = context.Queue()
        self._results = context.Queue()
        self._processes = [
            context.Process(
                target=_worker_main,
                args=(source, loads, self._tasks, self._results),
                name=f"pipestate-source-worker-{i}",
                daemon=True,
            )
            for i in range(num_workers)
        ]
        self._finalizer = weakref.finalize(self, _stop, self._processes, self._tasks, self._results)
        for process in self._processes:
            process.start()
        self._next_id = 0
        self._done: dict[int, tuple[str, Any]] = {}
        self._forgotten: set[int] = set()

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return [p.pid for p in self._processes]

    def submit(self, items: Sequence[Any]) -> int:
        """Queue a task (the source is called on each of ``items``); return its id."""
        task_id = self._next_id
        self._next_id += 1
        self._tasks.put((task_id, list(items)))
        return task_id

    def forget(self, task_ids: Sequence[int]) -> None:
        """Drop the results of tasks no longer wanted (now or when they arrive)."""
        for task_id in task_ids:
            if self._done.pop(task_id, None) is None:
                self._forgotten.add(task_id)

    def result(self, task_id: int) -> list:
        """Wait for task ``task_id`` and return the source's results for its items, in order.

        Raises:
            WorkerStop: the source raised ``StopIteration`` (``.index``: for which item).
            TaskFailure: the source raised (``.index``, ``.error``, ``.description``).
            WorkerError: a worker process died, or could not load the source.
        """
        while task_id not in self._done:
            try:
                got_id, status, value = self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                self._check_alive()
                continue
            if got_id == -1:
                _, error, description, text = value
                raise WorkerError(f"{self.name}: a worker process could not load the source: {description}\n{text}")
            if got_id in self._forgotten:
                self._forgotten.discard(got_id)
            else:
                self._done[got_id] = (status, value)
        status, value = self._done.pop(task_id)
        if status == "ok":
            return [pickle.loads(data) for data in value]  # noqa: S301 - written by our own worker process
        if status == "stop":
            raise WorkerStop(value)
        index, error, description, text = value
        original = pickle.loads(error) if error is not None else None  # noqa: S301 - checked in the worker
        raise TaskFailure(index, original, description, text)

    def _check_alive(self) -> None:
        for process in self._processes:
            if process.exitcode is not None:
                raise WorkerError(
                    f"{self.name}: worker process {process.pid} exited unexpectedly (exit code {process.exitcode})"
                )

    def close(self) -> None:
        """Stop and join the worker processes. Idempotent."""
        self._finalizer()


def _stop(processes: list, tasks: Any, results: Any) -> None:
    for process in processes:
        if process.is_alive():
            try:
                tasks.put(None)
            except (OSError, ValueError):
                break
    for process in processes:
        if process.pid is None:  # never started (starting an earlier one failed)
            continue
        process.join(_JOIN_SECONDS)
        if process.is_alive():
            process.terminate()
            process.join(_JOIN_SECONDS)
        if process.is_alive() and hasattr(process, "kill"):
            process.kill()
            process.join()
    for q in (tasks, results):
        q.cancel_join_thread()
        q.close()

"""``fn.external_source``: data from user Python code, checkpointed by position.

A source is one of (as in DALI):
- a callable taking the iteration index, a ``types.BatchInfo`` (``batch_info=True``) or, with
  ``batch=False``, a ``types.SampleInfo``: restored exactly (called with the same indices again);
- a callable taking no argument: called once per batch (``batch=False``: once per sample); its position
  cannot be restored unless it has ``state()``/``restore()``: pipestate warns at build, as DALI does,
  and refuses to restore it mid-stream (``CheckpointError``) instead of silently starting over;
- a sequence (list, tuple): item ``i`` of the epoch (``batch=False``: sample ``i``); restored exactly;
- an object with ``state() -> bytes`` and ``restore(bytes)``: its bytes are stored in the checkpoint;
- an iterable or a generator function: read with ``next()``; restored by re-creating it and skipping the
  items consumed (at most :data:`MAX_REPLAY` batches), or refused for a one-shot iterator.

A source raising ``StopIteration`` ends the epoch (unless ``cycle`` wraps it around); ``Pipeline.reset()``
starts the next one.

``parallel=True`` calls a callable taking ``SampleInfo`` (``batch=False``, the default then, as in DALI) or
an iteration index / ``BatchInfo`` (``batch=True``) in the pipeline's ``py_num_workers`` worker processes
(:mod:`pipestate.parallel`), started with ``py_start_method``. Work is handed out in the order of the
indices and the results are put back in that order, so the outputs are those of ``parallel=False`` for any
number of workers; batches are computed up to the pipeline's ``prefetch_queue_depth`` ahead (at most
:data:`MAX_WORKERS_AHEAD`). The position is the pipeline's, so a parallel source checkpoints and restores as
a sequential one. Sources that have their own state (iterables, generator functions, objects with
``state()``/``restore()``) and sequences run in the main process (DALI gives an iterable one dedicated
worker); ``py_num_workers=0`` runs every source there.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.errors import CheckpointError
from pipestate.operators import schema as sch
from pipestate.operators.base import BuildEnv, Operator, Position, RunContext, register
from pipestate.operators.example import Example
from pipestate.operators.schema import Arg
from pipestate.parallel import ProcessPool, TaskFailure, WorkerError, WorkerStop
from pipestate.types import BatchInfo, SampleInfo

MAX_REPLAY = 100_000  # batches an iterator source may be replayed to restore its position
MAX_WORKERS_AHEAD = 64  # batches a parallel source schedules ahead (the pipeline's prefetch depth, at most this)


def _arity(func: Any) -> int:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return 1
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    return 1 if positional else 0


def check_numeric(data: np.ndarray, where: str) -> np.ndarray:
    """Return ``data`` if it holds numbers or booleans, else raise ``TypeError`` naming ``where``."""
    if data.dtype.kind not in "biuf":
        raise TypeError(
            f"{where} returned {data.dtype} data ({type(data).__name__}); samples must be numeric arrays "
            "(numbers or booleans), e.g. numpy arrays, not None, strings or objects"
        )
    return data


def _example_source(info: SampleInfo) -> np.ndarray:
    return np.arange(info.idx_in_epoch % 4 + 1, dtype=np.int16) * (info.epoch_idx + 1)


@register
class ExternalSource(Operator):
    """Feed data produced by Python code into the pipeline (see the module documentation for the sources)."""

    type = "external_source"
    EXAMPLE = Example(
        args={"source": _example_source, "batch": False, "layout": "W"}, fixed=("batch", "batch_info", "num_outputs")
    )
    ends_epoch = True  # a StopIteration from the source ends the epoch (from any other operator, an error)
    ARGS = (
        Arg(
            "source",
            sch.Anything("a callable, a sequence, an iterable or a source object"),
            sch.REQUIRED,
            "The data source",
            positional=True,
        ),
        Arg(
            "num_outputs", sch.Int(1), None, "If set, the source returns a tuple of this many batches", positional=True
        ),
        Arg(
            "batch",
            sch.Bool(),
            None,
            "True: the source returns whole batches; False: samples (default: True, or False with parallel=True)",
        ),
        Arg("batch_info", sch.Bool(), False, "Give a callable a BatchInfo instead of the iteration index"),
        Arg(
            "cycle",
            sch.Either(sch.Bool(), sch.Str(("quiet", "raise"))),
            None,
            "For iterables: True/'quiet' wraps around at the end, 'raise' ends the epoch and restarts",
        ),
        Arg(
            "parallel",
            sch.Bool(),
            False,
            "Call a callable source in the pipeline's py_num_workers worker processes (same outputs)",
        ),
        Arg(
            "prefetch_queue_depth",
            sch.Int(1),
            1,
            "Accepted for DALI compatibility (parallel sources compute the pipeline's prefetch_queue_depth batches "
            "ahead)",
        ),
        Arg("bytes_per_sample_hint", sch.Int(1), None, "Accepted for DALI compatibility (no shared memory here)"),
        Arg("layout", sch.Either(sch.Str(), sch.Seq(sch.Str())), None, "Layout of the output(s), e.g. 'HWC'"),
        Arg("dtype", sch.Either(sch.DType(), sch.Seq(sch.DType())), None, "Required type of the output(s) (checked)"),
        Arg("ndim", sch.Either(sch.Int(0), sch.Seq(sch.Int(0))), None, "Required number of dimensions (checked)"),
        Arg("no_copy", sch.Bool(), False, "Accepted for DALI compatibility"),
        Arg("blocking", sch.Bool(), False, "Accepted for DALI compatibility"),
        Arg("cuda_stream", sch.Anything(), None, "Accepted for DALI compatibility (no GPU)"),
        Arg("use_copy_kernel", sch.Bool(), False, "Accepted for DALI compatibility"),
        Arg("repeat_last", sch.Bool(), False, "Accepted for DALI compatibility (feed_input is not supported)"),
    )

    def validate(self) -> None:
        source = self.args["source"]
        if self.inputs:
            raise TypeError("fn.external_source() takes no DataNode inputs")
        n = self.args["num_outputs"]
        self.num_outputs = n or 1
        self.dtypes = self._per_output("dtype")
        self.ndims = self._per_output("ndim")
        self.layouts = self._per_output("layout")
        self.stateful_source = callable(getattr(source, "state", None)) and callable(getattr(source, "restore", None))
        self.generator_function = inspect.isgeneratorfunction(source)
        if self.stateful_source:
            self.kind = "call" if callable(source) else "iterate"
        elif self.generator_function:
            self.kind = "iterate"
        elif isinstance(source, Sequence) and not isinstance(source, (str, bytes)) and not callable(source):
            self.kind = "index"
        elif callable(source):
            self.kind = "call"
        elif hasattr(source, "__iter__"):
            self.kind = "iterate"
        else:
            raise TypeError(
                f"fn.external_source(): source of type {type(source).__name__} is not callable, a sequence "
                "or an iterable"
            )
        self.arity = _arity(source) if self.kind == "call" else 0
        self.batch = self.args["batch"] if self.args["batch"] is not None else not self.args["parallel"]
        if self.args["parallel"]:
            self._check_parallel()
        # a stateless callable taking an index: computed in worker processes
        self.in_workers = self.args["parallel"] and self.kind == "call" and self.arity == 1 and not self.stateful_source
        if self.args["batch_info"] and not (self.kind == "call" and self.arity):
            raise TypeError("fn.external_source(batch_info=True) needs a callable taking one argument")
        if self.args["cycle"] not in (None, False) and self.kind != "iterate":
            raise TypeError("fn.external_source(cycle=...) applies to iterable and generator sources")

    def _check_parallel(self) -> None:
        if self.kind == "call" and not self.arity:
            raise TypeError(
                "fn.external_source(parallel=True): a callable source must take exactly one argument: a "
                "types.SampleInfo with batch=False, or the iteration index (a types.BatchInfo with batch_info=True) "
                "with batch=True; got a callable that takes no argument"
            )
        if not self.batch and self.kind != "call":
            what = "a generator function" if self.generator_function else "an iterable"
            raise TypeError(
                f"fn.external_source(parallel=True) with {what} must run in batch mode: pass batch=True and make "
                "the source return batches"
            )

    def _per_output(self, key: str) -> list:
        value = self.args[key]
        values = list(value) if isinstance(value, tuple) else [value] * self.num_outputs
        if len(values) != self.num_outputs:
            raise ValueError(f"fn.external_source(): {key}= has {len(values)} entries; num_outputs={self.num_outputs}")
        return values

    @property
    def restorable(self) -> bool:
        """Whether the source's position can be restored."""
        return self.stateful_source or self.kind == "index" or (self.kind == "call" and self.arity == 1)

    def setup(self, env: BuildEnv) -> None:
        self.epoch = 0
        self.iteration = 0
        self.iterator = None
        self.batch_size_hint = env.batch_size
        self.env = env
        self.pool: ProcessPool | None = None
        self.pending: dict[tuple[int, int], list[tuple[int, list]]] = {}
        if env.enable_checkpointing and not self.restorable:
            kind = "a callable taking no argument" if self.kind == "call" else "an iterator or generator"
            warnings.warn(
                f"external source {self.name!r}: pipestate doesn't capture state of such 'source'. "
                f"{kind[0].upper()}{kind[1:]} cannot be checkpointed by position; "
                + (
                    "restoring it mid-epoch is refused. "
                    if self.kind == "call"
                    else "restoring re-creates it and skips the items already read (slow), or fails for a one-shot "
                    "iterator. "
                )
                + "Use a callable taking BatchInfo/SampleInfo, a sequence, or an object with state() -> bytes "
                "and restore(bytes).",
                stacklevel=2,
            )

    # ---- worker processes ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker processes of a parallel source (``Pipeline.build()`` calls this)."""
        if self.in_workers and self.env.py_num_workers > 0 and self.pool is None:
            self.pool = ProcessPool(
                self.args["source"],
                self.env.py_num_workers,
                self.env.py_start_method,
                self.env.py_callback_pickler,
                f"external source {self.name!r}",
            )

    def close(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            self.pool = None
            self.pending = {}
            pool.close()

    def _submit(self, iteration: int, size: int) -> list[tuple[int, list]]:
        if self.batch:
            arg = BatchInfo(iteration, self.epoch) if self.args["batch_info"] else iteration
            return [(self.pool.submit([arg]), [arg])]
        infos = [SampleInfo(iteration * size + i, i, iteration, self.epoch) for i in range(size)]
        step = -(-size // (4 * self.env.py_num_workers))  # a few chunks per worker: idle workers take the next
        return [(self.pool.submit(infos[i : i + step]), infos[i : i + step]) for i in range(0, size, step)]

    def _from_workers(self, size: int) -> list:
        """This batch's results from the workers; keeps the next batches (up to the pipeline's prefetch
        depth) scheduled. Results are pure functions of the indices, so any scheduled ones stay valid."""
        if self.pool is None:
            self.start()
        for key in [k for k in self.pending if k[0] != self.epoch or k[1] < self.iteration]:
            self.pool.forget([task_id for task_id, _ in self.pending.pop(key)])
        ahead = min(self.env.prefetch_queue_depth, MAX_WORKERS_AHEAD)
        for iteration in range(self.iteration, self.iteration + ahead + 1):
            if (self.epoch, iteration) not in self.pending:
                self.pending[(self.epoch, iteration)] = self._submit(iteration, size)
        tasks = self.pending.pop((self.epoch, self.iteration))
        results: list = []
        for n, (task_id, items) in enumerate(tasks):
            try:
                results += self.pool.result(task_id)
            except WorkerStop:
                self.pool.forget([t for t, _ in tasks[n + 1 :]])
                raise StopIteration from None
            except TaskFailure as failure:
                self.pool.forget([t for t, _ in tasks[n + 1 :]])
                raise WorkerError(
                    f"external source {self.name!r}: the source raised {failure.description} for "
                    f"{items[failure.index]!r} in a worker process. Worker traceback:\n{failure.worker_traceback}"
                ) from failure.error
        return results

    # ---- reading ----------------------------------------------------------------------------------
    def _new_iterator(self) -> Any:
        source = self.args["source"]
        if self.stateful_source:
            return source
        return iter(source() if self.generator_function else source)

    def _iterator(self) -> Any:
        if self.iterator is None:
            self.iterator = self._new_iterator()
        return self.iterator

    def _next(self) -> Any:
        try:
            return next(self._iterator())
        except StopIteration:
            if self.args["cycle"] not in (True, "quiet"):
                raise
            self.iterator = None
            return next(self._iterator())  # an empty source ends the epoch

    def _fetch_batch(self) -> Any:
        source = self.args["source"]
        if self.kind == "index":
            if self.iteration >= len(source):
                raise StopIteration
            return source[self.iteration]
        if self.kind == "iterate":
            return self._next()
        if self.arity == 0:
            return source()
        if self.in_workers and self.env.py_num_workers > 0:
            return self._from_workers(1)[0]
        if self.args["batch_info"]:
            return source(BatchInfo(self.iteration, self.epoch))
        return source(self.iteration)

    def _fetch_samples(self, ctx: RunContext) -> list:
        source, size = self.args["source"], ctx.batch_size
        base = self.iteration * size
        if self.kind == "index":
            if base + size > len(source):
                raise StopIteration
            return [source[base + i] for i in range(size)]
        if self.kind == "iterate":
            return [self._next() for _ in range(size)]
        if self.arity == 0:
            return [source() for _ in range(size)]
        if self.in_workers and self.env.py_num_workers > 0:
            return self._from_workers(size)
        return [source(SampleInfo(base + i, i, self.iteration, self.epoch)) for i in range(size)]

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        if self.batch:
            data = self._fetch_batch()
            parts = tuple(data) if self.args["num_outputs"] else (data,)
            if len(parts) != self.num_outputs:
                raise ValueError(
                    f"external source {self.name!r} returned {len(parts)} outputs; num_outputs={self.num_outputs}"
                )
        else:
            samples = self._fetch_samples(ctx)
            parts = tuple(list(col) for col in zip(*samples)) if self.args["num_outputs"] else (samples,)
            if len(parts) != self.num_outputs:
                raise ValueError(f"external source {self.name!r}: samples must be tuples of {self.num_outputs} arrays")
        outputs = tuple(self._to_batch(part, ctx.batch_size, k) for k, part in enumerate(parts))
        self.iteration += 1
        return outputs

    def _to_batch(self, data: Any, batch_size: int, k: int) -> Batch:
        where = f"external source {self.name!r}"
        if isinstance(data, np.ndarray) or (hasattr(data, "__array__") and not isinstance(data, (list, tuple))):
            array = check_numeric(np.asarray(data), where)
            if array.ndim == 0 or len(array) != batch_size:
                raise ValueError(
                    f"{where} returned an array of shape {array.shape}; a batch needs {batch_size} samples along "
                    "the first axis"
                )
            batch = Batch(array, self.layouts[k])
        elif isinstance(data, (list, tuple)):
            if len(data) != batch_size:
                raise ValueError(f"{where} returned {len(data)} samples; batch_size is {batch_size}")
            batch = Batch.from_samples([check_numeric(np.asarray(s), where) for s in data], self.layouts[k])
        else:
            raise TypeError(
                f"{where} returned {type(data).__name__}; return a list of arrays or an array whose first axis "
                "is the batch"
            )
        if self.dtypes[k] is not None and batch.dtype != self.dtypes[k]:
            raise TypeError(f"{where} returned {batch.dtype} data; dtype={self.dtypes[k]} was declared")
        if self.ndims[k] is not None and any(len(s) != self.ndims[k] for s in batch.shape()):
            raise ValueError(
                f"{where} returned samples of shapes {batch.shape()[:3]}; ndim={self.ndims[k]} was declared"
            )
        if self.layouts[k] and any(len(s) != len(self.layouts[k]) for s in batch.shape()):
            raise ValueError(
                f"{where}: layout={self.layouts[k]!r} does not match samples of shapes {batch.shape()[:3]}"
            )
        return batch

    # ---- state --------------------------------------------------------------------------------------
    def state(self) -> dict:
        state = {"epoch": self.epoch, "iteration": self.iteration}
        if self.stateful_source:
            data = self.args["source"].state()
            if not isinstance(data, (bytes, bytearray)):
                raise TypeError(
                    f"external source {self.name!r}: source.state() must return bytes, not {type(data).__name__}"
                )
            state["source_state"] = bytes(data)
        return state

    def check_state(self, state: Any, at: Position) -> None:
        where = f"external source {self.name!r}"
        keys = {"epoch", "iteration"} | ({"source_state"} if self.stateful_source else set())
        if (
            not isinstance(state, dict)
            or set(state) != keys
            or not all(
                isinstance(state[k], int) and not isinstance(state[k], bool) and state[k] >= 0
                for k in ("epoch", "iteration")
            )
        ):
            raise CheckpointError(f"{where}: the checkpoint's state {state!r} is not an external source's")
        if (state["epoch"], state["iteration"]) != (at.epoch, at.iteration_in_epoch):
            raise CheckpointError(
                f"{where}: its position (epoch {state['epoch']}, batch {state['iteration']}) disagrees with the "
                f"pipeline's (epoch {at.epoch}, batch {at.iteration_in_epoch}); the checkpoint was altered"
            )
        if self.kind == "index":  # a sequence: every epoch holds at most its length in batches
            per_epoch = len(self.args["source"]) // (1 if self.batch else self.batch_size_hint)
            before = at.iteration - at.iteration_in_epoch
            if state["iteration"] > per_epoch or before > at.epoch * per_epoch:
                raise CheckpointError(
                    f"{where} holds {per_epoch} batches per epoch: batch {state['iteration']} of epoch "
                    f"{state['epoch']} after {before} batches in earlier epochs is not a position a run reaches"
                )
        if (
            at.from_checkpoint
            and not self.restorable
            and self.kind == "call"
            and (state["epoch"] or state["iteration"])
        ):
            raise CheckpointError(
                f"{where}: a callable taking no argument cannot be moved to batch {state['iteration']} of epoch "
                f"{state['epoch']}; give it state()/restore(), or make it take BatchInfo/SampleInfo"
            )
        if self.stateful_source and not isinstance(state["source_state"], bytes):
            raise CheckpointError(f"{where}: the checkpoint's source state is not bytes")
        if self.kind == "iterate" and not self.stateful_source and at.from_checkpoint and state["iteration"]:
            if self._one_shot():
                raise CheckpointError(
                    f"{where} is a one-shot iterator: it cannot be moved back to batch {state['iteration']}. Use a "
                    "callable, a sequence, or an object with state()/restore()."
                )
            if state["iteration"] > MAX_REPLAY:
                raise CheckpointError(
                    f"{where}: restoring batch {state['iteration']} would replay more than {MAX_REPLAY} batches of "
                    "an iterator; give the source state()/restore() or make it a callable taking BatchInfo"
                )

    def restore(self, state: Any, at: Position) -> None:
        epoch, iteration = state["epoch"], state["iteration"]
        if self.stateful_source:
            self.args["source"].restore(state["source_state"])  # if it raises, the runtime rolls it back
        elif self.kind == "iterate":
            moved = (epoch, iteration) != (self.epoch, self.iteration)
            if at.from_checkpoint or (moved and not self._one_shot()):  # a one-shot iterator cannot rewind
                self.iterator = self._replayed(iteration)  # what was prefetched: it continues
        self.epoch, self.iteration = epoch, iteration

    def _one_shot(self) -> bool:
        source = self.args["source"]
        return not self.generator_function and iter(source) is source

    def _replayed(self, batches: int) -> Any:
        """A new iterator of the source past its first ``batches`` batches (``None`` for none: created at the
        next read). The operator is not changed, so a source ending early leaves it as it was.

        Raises:
            CheckpointError: the source ends before ``batches`` batches.
        """
        if not batches:
            return None
        iterator = self._new_iterator()
        wrap = self.args["cycle"] in (True, "quiet")
        try:
            for _ in range(batches * (1 if self.batch else self.batch_size_hint)):
                try:
                    next(iterator)
                except StopIteration:
                    if not wrap:
                        raise
                    iterator = self._new_iterator()
                    next(iterator)
        except StopIteration:
            raise CheckpointError(
                f"external source {self.name!r}: the source ends before batch {batches}, the checkpoint's position"
            ) from None
        return iterator

    def next_epoch(self) -> None:
        self.epoch += 1
        self.iteration = 0
        self.iterator = None

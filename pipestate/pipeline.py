"""Pipeline: define, build, run, reset, checkpoint and restore; and the thin ``@pipeline_def``."""

from __future__ import annotations

import enum
import functools
import inspect
import os
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from pipestate import checkpoint as ckpt
from pipestate.batch import Batch
from pipestate.errors import OperatorError, PipestateError
from pipestate.executor import Ended, EndOfData, Failed, Prefetcher, Produced, WorkerPool
from pipestate.graph import DataNode, Graph, fingerprint, op_identity, pop_graph, push_graph
from pipestate.io.local import LocalCheckpointIO
from pipestate.ops.base import BuildEnv, RunContext

PIPELINE_OPTIONS = (
    "batch_size",
    "num_threads",
    "device_id",
    "seed",
    "prefetch_queue_depth",
    "enable_checkpointing",
    "checkpoint",
)


class _Stage(enum.Enum):
    DEFINING = "defining"  # operators are being added; no outputs yet
    DEFINED = "defined"  # outputs set: names, seeds and identity are final; restored if asked
    BUILT = "built"  # worker pool up; run() may be called
    CLOSED = "closed"


class _Snapshot(NamedTuple):
    iteration: int
    epoch: int
    iteration_in_epoch: int
    states: tuple


class Pipeline:
    """A data pipeline: a graph of operators producing one batch per output at each :meth:`run`.

    Args:
        batch_size: Samples per batch.
        num_threads: Worker threads for per-sample work. Outputs do not depend on it.
        device_id: Must be ``None``: pipestate runs on the CPU.
        seed: Pipeline seed; ``None`` or ``-1`` picks a random one (stored in checkpoints, and adopted
            when restoring into a pipeline constructed without a seed).
        prefetch_queue_depth: Batches computed ahead of :meth:`run`. Outputs do not depend on it.
        enable_checkpointing: Allow :meth:`checkpoint` and restoring with ``checkpoint=``.
        checkpoint: Bytes from :meth:`checkpoint` to continue from.

    Raises:
        ValueError: for an invalid option (the message names it).
        CorruptCheckpointError, UnsupportedCheckpointVersionError: if ``checkpoint`` cannot be read.
    """

    def __init__(
        self,
        batch_size: int,
        num_threads: int = 1,
        device_id: int | None = None,
        seed: int | None = None,
        prefetch_queue_depth: int = 2,
        enable_checkpointing: bool = False,
        checkpoint: bytes | None = None,
    ) -> None:
        _check_positive_int("batch_size", batch_size)
        _check_positive_int("num_threads", num_threads)
        _check_positive_int("prefetch_queue_depth", prefetch_queue_depth)
        if device_id is not None:
            raise ValueError(f"device_id={device_id!r}: pipestate runs on the CPU; pass device_id=None")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TypeError(f"seed={seed!r} must be an int (or None for a random seed)")
        if checkpoint is not None and not enable_checkpointing:
            raise ValueError("checkpoint= needs enable_checkpointing=True")
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.prefetch_queue_depth = prefetch_queue_depth
        self.enable_checkpointing = enable_checkpointing
        self._user_seed = None if seed is None or seed == -1 else seed
        self._restore_from = ckpt.decode(checkpoint) if checkpoint is not None else None
        self._graph = Graph()
        self._stage = _Stage.DEFINING
        self._scopes: list[bool] = []
        self._prefetcher: Prefetcher | None = None
        self._pool: WorkerPool | None = None
        self._failure: BaseException | None = None
        self._ended = False

    # ---- definition -------------------------------------------------------------------------------
    def __enter__(self) -> Pipeline:
        defining = self._stage is _Stage.DEFINING
        self._scopes.append(defining)
        if defining:
            push_graph(self._graph)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._scopes.pop():
            pop_graph()
        else:
            self.close()

    def set_outputs(self, *outputs: DataNode) -> None:
        """Declare the pipeline's outputs; this completes the definition.

        Raises:
            TypeError: if an output is not a DataNode of this pipeline.
            CheckpointMismatchError: if restoring a checkpoint taken from a different pipeline.
        """
        if self._stage is not _Stage.DEFINING:
            raise PipestateError("set_outputs() was already called; define a new Pipeline instead")
        if not outputs:
            raise TypeError("set_outputs() needs at least one DataNode")
        for i, node in enumerate(outputs):
            if not isinstance(node, DataNode) or node.op not in self._graph.ops:
                raise TypeError(f"output {i} ({node!r}) is not a DataNode defined in this pipeline")
        self._graph.outputs = list(outputs)
        self._finalize()

    def _finalize(self) -> None:
        restore = self._restore_from
        if self._user_seed is not None:
            seed = self._user_seed
        elif restore is not None:
            seed = restore.seed
        else:
            seed = int.from_bytes(os.urandom(8), "little") >> 1
        self._setup(seed)
        if restore is not None:
            self._apply_checkpoint(restore)
        self._last = self._snapshot()
        self._stage = _Stage.DEFINED

    def _setup(self, seed: int) -> None:
        """Set the seed, set every operator up with it, and compute the pipeline's identity."""
        self.seed = seed
        env = BuildEnv(self.seed, self.batch_size, self.num_threads, self.enable_checkpointing)
        for op in self._graph.ops:
            op.setup(env)
        self._fingerprint = fingerprint(
            self.batch_size, self.seed, [(op.name, op_identity(op)[0]) for op in self._graph.ops],
            self._graph.outputs,
        )
        self._stateful = [op for op in self._graph.ops if op.stateful]
        position = {id(op): i for i, op in enumerate(self._stateful)}
        self._state_index = [position.get(id(op), -1) for op in self._graph.ops]
        self._encoder = ckpt.Encoder(self._identity())
        self._iteration = self._epoch = self._iteration_in_epoch = 0

    def _apply_checkpoint(self, restore: ckpt.CheckpointData) -> None:
        """Validate a decoded checkpoint against this pipeline and move every operator to its state."""
        ckpt.check_matches(self._identity(), restore)
        states = {record.name: record.state for record in restore.operators}
        self._apply(
            _Snapshot(
                restore.iteration,
                restore.epoch,
                restore.iteration_in_epoch,
                tuple(states[op.name] for op in self._stateful),
            )
        )

    # ---- running ----------------------------------------------------------------------------------
    def build(self) -> None:
        """Prepare to run (start the worker pool). Optional: :meth:`run` builds. Idempotent."""
        if self._stage is _Stage.DEFINING:
            raise PipestateError("build() before set_outputs(): define the pipeline's outputs first")
        if self._stage is _Stage.CLOSED:
            raise PipestateError("the pipeline is closed; create a new one")
        if self._stage is _Stage.DEFINED:
            self._pool = WorkerPool(self.num_threads)
            weakref.finalize(self, _shutdown, self._pool, self._graph.ops)
            self._stage = _Stage.BUILT

    def run(self) -> tuple[Batch, ...]:
        """Return the next batch of every output, as a tuple with one :class:`Batch` per output.

        Raises:
            StopIteration: a source ended the epoch; call :meth:`reset` to start the next one.
            OperatorError: an operator failed (the message names it; ``__cause__`` is the original).
        """
        self.build()
        if self._failure is not None:
            raise self._failure
        if self._ended:
            raise StopIteration
        if self._prefetcher is None:
            self._prefetcher = Prefetcher(self._produce, self.prefetch_queue_depth)
        item = self._prefetcher.get()
        if isinstance(item, Produced):
            self._last = item.snapshot
            return item.outputs
        self._prefetcher.stop()
        self._prefetcher = None
        if isinstance(item, Ended):
            self._ended = True
            raise StopIteration
        assert isinstance(item, Failed)
        self._failure = item.error
        raise item.error

    def _produce(self) -> Produced:
        """Compute one batch (on the prefetch thread) and snapshot the state right after it."""
        ctx = RunContext(self.batch_size, self._epoch, self._iteration_in_epoch, self._pool.map)
        results: dict[int, tuple[Batch, ...]] = {}
        for op in self._graph.ops:
            inputs = [results[id(n.op)][n.index] for n in op.inputs]
            arg_inputs = {k: results[id(n.op)][n.index] for k, n in op.arg_inputs.items()}
            try:
                outputs = op.run(ctx, inputs, arg_inputs)
            except StopIteration as exc:
                raise EndOfData from exc
            except Exception as exc:
                raise OperatorError(
                    f"operator {op.name!r} ({op.type}) failed in epoch {self._epoch}, iteration "
                    f"{self._iteration_in_epoch}: {type(exc).__name__}: {exc}",
                    op.name,
                ) from exc
            for out in outputs:
                if len(out) != self.batch_size:
                    raise OperatorError(
                        f"operator {op.name!r} ({op.type}) produced {len(out)} samples; batch_size is "
                        f"{self.batch_size}",
                        op.name,
                    )
            results[id(op)] = outputs
        self._iteration += 1
        self._iteration_in_epoch += 1
        outputs = tuple(results[id(n.op)][n.index] for n in self._graph.outputs)
        return Produced(outputs, self._snapshot())

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(
            self._iteration, self._epoch, self._iteration_in_epoch, tuple(op.state() for op in self._stateful)
        )

    def _apply(self, snapshot: _Snapshot) -> None:
        self._iteration, self._epoch, self._iteration_in_epoch = snapshot[:3]
        for op, state in zip(self._stateful, snapshot.states):
            op.restore(state)

    def _stop_prefetch(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.stop()
            self._prefetcher = None

    def reset(self) -> None:
        """Start the next epoch (after ``run()`` raised ``StopIteration``, or to end this one early).

        Batches computed ahead are discarded and every operator is rewound to the last batch ``run()``
        returned before moving on, so the outputs do not depend on the prefetch depth.
        """
        self.build()
        self._stop_prefetch()
        self._apply(self._last)
        for op in self._graph.ops:
            op.next_epoch()
        self._epoch += 1
        self._iteration_in_epoch = 0
        self._failure = None
        self._ended = False
        self._last = self._snapshot()

    def close(self) -> None:
        """Stop the prefetch thread and the workers and release operator resources. Idempotent."""
        if self._stage is _Stage.CLOSED:
            return
        self._stop_prefetch()
        if self._pool is not None:
            _shutdown(self._pool, self._graph.ops)
        self._stage = _Stage.CLOSED

    # ---- checkpoints ------------------------------------------------------------------------------
    def checkpoint(self, filename: str | os.PathLike | None = None, *, iterator_data: str | None = None) -> bytes:
        """Return the state after the last batch :meth:`run` returned, as checkpoint bytes.

        Args:
            filename: If given, also write the bytes to this file through
                :class:`~pipestate.io.LocalCheckpointIO` (atomic and durable; parent directories
                are created).
            iterator_data: State of a framework iterator driving this pipeline (DALI's ``iterator_data``),
                stored in the checkpoint and returned by :attr:`iterator_data` of a pipeline restored
                from it. The plugins in ``pipestate.plugin`` use it.

        Raises:
            PipestateError: if the pipeline was built without ``enable_checkpointing=True``.
            OSError: writing ``filename`` failed (original subclass and errno); any previous file
                there is intact.
        """
        if not self.enable_checkpointing:
            raise PipestateError("checkpointing is disabled: construct the pipeline with enable_checkpointing=True")
        if self._stage is _Stage.DEFINING:
            raise PipestateError("checkpoint() before set_outputs(): define the pipeline's outputs first")
        last = self._last
        states = [last.states[i] if i >= 0 else None for i in self._state_index]
        data = self._encoder.encode(last.iteration, last.epoch, last.iteration_in_epoch, states, iterator_data or "")
        if filename is not None:
            LocalCheckpointIO().save_checkpoint(data, filename)
        return data

    def restore(self, checkpoint: bytes) -> None:
        """Move this pipeline to the state in ``checkpoint``, as if constructed with ``checkpoint=``.

        Works before the first :meth:`run` and at any later point (batches computed ahead are
        discarded); the next :meth:`run` returns the batch that followed the checkpoint. A pipeline
        constructed without a seed adopts the checkpoint's (its operators are set up again with it).

        Args:
            checkpoint: Bytes from :meth:`checkpoint` of a pipeline of the same definition.

        Raises:
            PipestateError: if checkpointing is disabled, or the pipeline is not defined yet or closed.
            CorruptCheckpointError, UnsupportedCheckpointVersionError: if the bytes cannot be read.
            CheckpointMismatchError: if the checkpoint was taken from a different pipeline (the pipeline
                is left unchanged).
        """
        if not self.enable_checkpointing:
            raise PipestateError(
                "restore() needs checkpointing: construct the pipeline with enable_checkpointing=True"
            )
        if self._stage is _Stage.DEFINING:
            raise PipestateError("restore() before set_outputs(): define the pipeline's outputs first")
        if self._stage is _Stage.CLOSED:
            raise PipestateError("the pipeline is closed; create a new one")
        data = ckpt.decode(checkpoint)
        self._stop_prefetch()
        self._apply(self._last)  # rewind what was computed ahead: a failed restore changes nothing
        if self._user_seed is None and data.seed != self.seed:
            previous = self.seed
            self._setup(data.seed)
            try:
                self._apply_checkpoint(data)
            except BaseException:
                self._setup(previous)
                self._apply(self._last)
                raise
        else:
            self._apply_checkpoint(data)
        self._restore_from = data
        self._failure = None
        self._ended = False
        self._last = self._snapshot()

    def _identity(self) -> ckpt.CheckpointData:
        """What identifies this pipeline in a checkpoint (counters zero, no operator states)."""
        return ckpt.CheckpointData(
            library_version=_version(),
            fingerprint=self._fingerprint,
            batch_size=self.batch_size,
            seed=self.seed,
            iteration=0,
            epoch=0,
            iteration_in_epoch=0,
            operators=tuple(
                ckpt.OperatorRecord(op.name, op.type, *op_identity(op)) for op in self._graph.ops
            ),
        )

    @property
    def is_restored_from_checkpoint(self) -> bool:
        """True if the pipeline was constructed with ``checkpoint=`` or moved by :meth:`restore`."""
        return self._restore_from is not None

    @property
    def iterator_data(self) -> str | None:
        """The ``iterator_data`` stored in the checkpoint this pipeline was restored from (``None``: not
        restored, or the checkpoint has none)."""
        restored = self._restore_from
        return restored.iterator_data or None if restored is not None else None

    @property
    def fingerprint(self) -> bytes:
        """The 16-byte fingerprint of what determines this pipeline's outputs (graph, arguments,
        batch size, seed), as stored in its checkpoints."""
        if self._stage is _Stage.DEFINING:
            raise PipestateError("the fingerprint is known once set_outputs() has been called")
        return self._fingerprint

    @property
    def operators(self) -> list[str]:
        """The stable names of the pipeline's operators, in graph order."""
        return [op.name for op in self._graph.ops]

    # ---- readers ----------------------------------------------------------------------------------
    def reader_meta(self, name: str | None = None) -> dict[str, Any]:
        """Return a reader's metadata (DALI's ``reader_meta``), or ``{reader name: metadata}`` for all.

        The metadata holds ``epoch_size``, ``epoch_size_padded``, ``number_of_shards``, ``shard_id``,
        ``pad_last_batch`` and ``stick_to_shard``.

        Raises:
            KeyError: no operator is called ``name``.
            ValueError: the operator ``name`` is not a reader.
        """
        if self._stage is _Stage.DEFINING:
            raise PipestateError("reader_meta() before set_outputs(): define the pipeline's outputs first")
        if name is None:
            return {op.name: op.reader_meta() for op in self._graph.ops if hasattr(op, "reader_meta")}
        op = self._graph.op(name)
        if not hasattr(op, "reader_meta"):
            raise ValueError(f"operator {name!r} ({op.type}) is not a reader; readers: {list(self.reader_meta())}")
        return op.reader_meta()

    def epoch_size(self, name: str | None = None) -> int | dict[str, int]:
        """Return a reader's ``epoch_size_padded`` (as DALI), or ``{reader name: size}`` when ``name`` is None.

        Raises:
            KeyError: no operator is called ``name``.
            ValueError: the operator ``name`` is not a reader.
        """
        if name is None:
            return {k: v["epoch_size_padded"] for k, v in self.reader_meta().items()}
        return self.reader_meta(name)["epoch_size_padded"]


def _shutdown(pool: WorkerPool, ops: list) -> None:
    pool.shutdown()
    for op in ops:
        op.close()


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive int")


def _version() -> str:
    from pipestate import __version__

    return __version__


def pipeline_def(fn: Callable[..., Any] | None = None, **options: Any) -> Callable[..., Any]:
    """Turn a function that calls ``fn.*`` operators into a pipeline factory.

    Usable bare (``@pipeline_def``) or with pipeline options (``@pipeline_def(batch_size=8, seed=1)``).
    The factory takes the function's own arguments plus any pipeline option, which overrides the
    decorator's: ``my_pipe(batch_size=16, checkpoint=cpt)``.

    Raises:
        TypeError: if an option is unknown, or a parameter of the function is also a pipeline option
            (rename the parameter).
    """
    unknown = sorted(set(options) - set(PIPELINE_OPTIONS))
    if unknown:
        raise TypeError(f"pipeline_def() got unknown option(s) {unknown}; valid: {list(PIPELINE_OPTIONS)}")

    def decorate(func: Callable[..., Any]) -> Callable[..., Pipeline]:
        clash = sorted(set(inspect.signature(func).parameters) & set(PIPELINE_OPTIONS))
        if clash:
            raise TypeError(
                f"{func.__qualname__}() has parameter(s) {clash} that are also pipeline options; rename them "
                "so pipeline options and the function's arguments cannot be confused"
            )

        @functools.wraps(func)
        def create(*args: Any, **kwargs: Any) -> Pipeline:
            pipe_options = {k: kwargs.pop(k) for k in list(kwargs) if k in PIPELINE_OPTIONS}
            pipe = Pipeline(**{**options, **pipe_options})
            with pipe:
                outputs = func(*args, **kwargs)
            outputs = tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)
            pipe.set_outputs(*outputs)
            return pipe

        return create

    return decorate(fn) if fn is not None else decorate

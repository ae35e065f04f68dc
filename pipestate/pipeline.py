"""Pipeline: define, build, run, reset, checkpoint and restore; and the thin ``@pipeline_def``.

The graph interpreter is :mod:`pipestate.runtime`, the prefetch thread and workers :mod:`pipestate.executor`,
options :mod:`pipestate.options`, the checkpoint format :mod:`pipestate.checkpoint`.
"""

from __future__ import annotations

import enum
import functools
import inspect
import os
import sys
import threading
import types
import warnings
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from pipestate import checkpoint as ckpt
from pipestate import define_graph as classic
from pipestate import options as opts
from pipestate.batch import Batch
from pipestate.conditionals_ast import do_not_convert
from pipestate.errors import PartialRestoreWarning, PipestateError
from pipestate.executor import Ended, Prefetcher, Produced, WorkerPool
from pipestate.graph import DataNode, Graph
from pipestate.operators.base import BuildEnv, Position, RunContext
from pipestate.options import OperatorConcurrency, StreamPolicy
from pipestate.runtime import Runtime
from pipestate.tracing import pop_graph, push_graph

PIPELINE_OPTIONS = tuple(sorted(opts.ALL))
__all__ = ["DataNode", "OperatorConcurrency", "Pipeline", "StreamPolicy", "do_not_convert", "pipeline_def"]
_MAX_POSITION = ckpt.restore.MAX_POSITION


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

    The graph is defined with :meth:`set_outputs` (what ``@pipeline_def`` does), or, as in DALI's class
    style, by a subclass's :meth:`define_graph`, which :meth:`build` calls; a subclass may also override
    :meth:`iter_setup` and feed external sources with :meth:`feed_input` (:mod:`pipestate.define_graph`).

    Args:
        batch_size: Samples per batch.
        num_threads: Worker threads for per-sample work (1 to 1024; ``None``: 1). Outputs do not depend on it.
        device_id: Accepted for DALI compatibility (any int or ``None``); pipestate runs on the CPU.
        seed: Pipeline seed (below 2**63); ``None`` picks a random one (stored in checkpoints, and adopted
            when restoring into a pipeline constructed without a seed), as does a negative seed, with
            DALI's deprecation warning.
        exec_pipelined, exec_async, bytes_per_sample, set_affinity, max_streams, default_cuda_stream_priority:
            DALI's positional options, in DALI's order, accepted and checked (see the user guide).
        prefetch_queue_depth: Batches computed ahead of :meth:`run` (1 to 2**31 - 1, as DALI; each costs
            the memory of a batch), or DALI's ``{"cpu_size": n, "gpu_size": m}`` (``cpu_size`` is used).
            Outputs do not depend on it.
        enable_checkpointing: Allow :meth:`checkpoint` and restoring with ``checkpoint=``.
        checkpoint: Bytes from :meth:`checkpoint` to continue from.
        uncaptured_sources: What restoring does with an external source whose position pipestate cannot
            capture (a callable taking no argument, a one-shot iterator): ``"continue"`` (default, as DALI)
            restores everything else and reads the source afresh; ``"refuse"`` raises
            :class:`CheckpointError` instead. Both warn when the pipeline is built.
        partial_restore: Restore ``checkpoint`` even if it was taken with another version of this
            definition: operators whose identity (type, arguments, inputs) is unchanged get their state
            back, and operators that keep no state (augmentations, decoders, random operators) may have
            changed, been added or removed and start fresh. A reader or external source that changed or is
            new is still a :class:`CheckpointMismatchError` naming its changed arguments; so are another
            batch size or seed. What happened is in :attr:`restore_report`, and in a
            :class:`~pipestate.errors.PartialRestoreWarning` when anything differed. Default ``False``:
            all or nothing.
        **dali_options: DALI's other pipeline options (``py_num_workers``, ``output_dtype``, ...), checked
            and accepted; see the user guide.

    Raises:
        TypeError, ValueError: for an invalid or unknown option (the message names it).
        CorruptCheckpointError, UnsupportedCheckpointVersionError: if ``checkpoint`` cannot be read.

    Thread safety: :meth:`run`, :meth:`checkpoint`, :meth:`reset` and :meth:`restore` may be called from
    several threads; each call is atomic, and ``checkpoint()`` describes exactly the batches returned to
    any caller so far. :meth:`close` from another thread makes a waiting ``run()`` raise
    :class:`PipestateError`.
    """

    def __init__(
        self,
        batch_size: int | None = None,
        num_threads: int | None = None,
        device_id: int | None = None,
        seed: int | None = None,
        exec_pipelined: bool | None = None,
        prefetch_queue_depth: int | dict = 2,
        exec_async: bool | None = None,
        bytes_per_sample: int | None = None,
        set_affinity: bool | None = None,
        max_streams: int | None = None,
        default_cuda_stream_priority: int | None = None,
        *,
        enable_checkpointing: bool = False,
        checkpoint: bytes | None = None,
        uncaptured_sources: str = "continue",
        partial_restore: bool = False,
        **dali_options: Any,
    ) -> None:
        positional = dict(
            exec_pipelined=exec_pipelined,
            exec_async=exec_async,
            bytes_per_sample=bytes_per_sample,
            set_affinity=set_affinity,
            max_streams=max_streams,
            default_cuda_stream_priority=default_cuda_stream_priority,
        )
        dali_options.update({k: v for k, v in positional.items() if v is not None})
        o = opts.check(
            batch_size, num_threads, device_id, seed, prefetch_queue_depth, enable_checkpointing, dali_options
        )
        self._uncaptured = opts.check_uncaptured(uncaptured_sources)
        self._partial = _check_partial(partial_restore)
        if checkpoint is not None and not o.enable_checkpointing:
            raise ValueError("checkpoint= needs enable_checkpointing=True")
        self.batch_size = o.batch_size
        self.num_threads = o.num_threads
        self.prefetch_queue_depth = o.prefetch_queue_depth
        self.enable_checkpointing = o.enable_checkpointing
        self.device_id = o.device_id
        self.options = o
        self._user_seed = o.seed
        self._restore_from = ckpt.decode(checkpoint) if checkpoint is not None else None
        self._report: ckpt.RestoreReport | None = None
        self._graph = Graph()
        self._stage = _Stage.DEFINING
        self._scopes: list[bool] = []
        self._prefetcher: Prefetcher | None = None
        self._pool: WorkerPool | None = None
        self._failure: BaseException | None = None
        self._ended = False
        self._feeding: classic.Feeding | None = None
        self._lock = threading.RLock()

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

    def set_outputs(self, *outputs: Any) -> None:
        """Declare the pipeline's outputs; this completes the definition.

        Outputs are DataNodes of this pipeline (numbers and numpy arrays become constants, as in DALI).

        Raises:
            TypeError: if an output is not a DataNode of this pipeline.
            CheckpointMismatchError: if restoring a checkpoint taken from a different pipeline.
        """
        if self._stage is not _Stage.DEFINING:
            raise PipestateError("set_outputs() was already called; define a new Pipeline instead")
        if not outputs:
            raise TypeError("set_outputs() needs at least one DataNode")
        nodes = []
        for i, node in enumerate(outputs):
            if not isinstance(node, DataNode):
                from pipestate.tracing import as_constant

                push_graph(self._graph)
                try:
                    node = as_constant(node, "set_outputs", i)
                finally:
                    pop_graph()
            if node.op.graph is None:
                self._graph.adopt(node)  # defined outside any pipeline, as DALI allows
            if node.op.graph is not self._graph:
                raise TypeError(f"output {i} ({node!r}) is not a DataNode defined in this pipeline")
            nodes.append(node)
        self._graph.outputs = nodes
        self._output_specs = opts.OutputSpecs.from_options(self.options.extra, len(nodes))
        self._runtime = Runtime(self._graph)
        self._finalize()

    def define_graph(self) -> Any:
        """Define the pipeline in a subclass (DALI's class style): call operators, return the output(s).

        :meth:`build` (and so the first :meth:`run`) calls it when :meth:`set_outputs` was not called.
        """
        raise NotImplementedError("define the pipeline by overriding define_graph() or by calling set_outputs()")

    def iter_setup(self) -> None:
        """Called before each batch is computed (``prefetch_queue_depth`` times before the first), as in DALI:
        override it to :meth:`feed_input` the external sources without a ``source``. A ``StopIteration`` it
        raises ends the epoch after the batches it already set up."""

    def feed_input(self, data_node: DataNode | str, data: Any, layout: str | None = None, **cuda: Any) -> None:
        """Queue one batch for an external source defined without ``source`` (DALI's ``feed_input``).

        Each computed batch uses one fed batch of every such source, in the order fed. What checkpoints
        restore of fed sources is described in :mod:`pipestate.define_graph`.

        Args:
            data_node: The source's DataNode, or its name.
            data: The batch: an array whose first axis is the batch, a list of arrays or a
                ``TensorListCPU``. It is copied (unless the source has ``no_copy=True``).
            layout: The samples' layout (e.g. ``"HWC"``).
            **cuda: DALI's ``cuda_stream`` and ``use_copy_kernel``, accepted (no GPU).

        Raises:
            KeyError: no external source without ``source`` has this name.
            TypeError, ValueError: the data does not fit the source (type, dimensions, layout, batch size).
        """
        unknown = sorted(set(cuda) - {"cuda_stream", "use_copy_kernel"})
        if unknown:
            raise TypeError(f"feed_input() got unexpected argument(s) {unknown}")
        if self._stage is _Stage.DEFINING:
            with self._lock:  # not taken otherwise: another thread's run() may be waiting for this data
                self._define()
        if self._stage is _Stage.DEFINING:
            raise PipestateError("feed_input() before set_outputs(): define the pipeline's outputs first")
        if self._stage is _Stage.CLOSED:
            raise PipestateError("the pipeline is closed; create a new one")
        feeding = self._feeding
        name = data_node.name if isinstance(data_node, DataNode) else data_node
        if feeding is None:
            raise KeyError(f"feed_input({name!r}): the pipeline has no external source without a source=")
        feeding.feed(name, data, layout)

    def _define(self) -> None:
        """Call :meth:`define_graph` of a class-style pipeline that is not defined yet."""
        if self._stage is _Stage.DEFINING and type(self).define_graph is not Pipeline.define_graph:
            classic.build_graph(self)

    def _finalize(self) -> None:
        restore = self._restore_from
        if self._user_seed is not None:
            seed = self._user_seed
        elif restore is not None and restore.seed in ckpt.restore.SEEDS:
            seed = restore.seed
        else:
            seed = int.from_bytes(os.urandom(8), "little") >> 1
        self._setup(seed)
        self._last = self._snapshot()
        if restore is not None:
            self._apply(ckpt.resolve(restore, self._target(), self._partial), stacklevel=5)
        fed = [op for op in self._graph.ops if getattr(op, "kind", None) == "feed"]
        if fed or type(self).iter_setup is not Pipeline.iter_setup:
            self._feeding = classic.Feeding(
                fed, self.prefetch_queue_depth, type(self).iter_setup is not Pipeline.iter_setup
            )
            self._feeding.restart(self._iteration_in_epoch)
        self._stage = _Stage.DEFINED

    def _setup(self, seed: int) -> None:
        """Set the seed, bind every operator to it, and compute the pipeline's identity."""
        self.seed = seed
        extra = self.options.extra
        self._runtime.bind(
            BuildEnv(
                seed,
                self.batch_size,
                self.num_threads,
                self.enable_checkpointing,
                self.prefetch_queue_depth,
                1 if extra.get("py_num_workers") is None else extra["py_num_workers"],
                extra.get("py_start_method") or "fork",
                extra.get("py_callback_pickler"),
                self._uncaptured,
            )
        )
        self._identity = self._identity_for(seed)
        self._fingerprint = self._identity.fingerprint
        position = {id(op): i for i, op in enumerate(self._runtime.stateful)}
        self._state_index = [position.get(id(op), -1) for op in self._graph.ops]
        self._encoder = ckpt.Encoder(self._identity)
        self._iteration = self._epoch = self._iteration_in_epoch = 0

    def _identity_for(self, seed: int) -> ckpt.CheckpointData:
        known = getattr(self, "_identity", None)  # computed once per seed: large arguments make it costly
        if known is not None and known.seed == seed:
            return known
        return ckpt.identity(self._graph.ops, self._graph.outputs, self.batch_size, seed, _version())

    def _target(self) -> ckpt.Target:
        seed = self._user_seed if self._user_seed is not None else None
        return ckpt.Target(self._graph.ops, self._graph.outputs, self.batch_size, seed, self._identity_for)

    def _diff_target(self) -> ckpt.Target:
        """What a checkpoint is compared with by :mod:`pipestate.diff` (defining a class-style pipeline)."""
        with self._lock:
            self._define()
        if self._stage is _Stage.DEFINING:
            raise PipestateError("a pipeline is compared once set_outputs() has been called")
        return self._target()

    def _apply(self, restored: ckpt.Restored, stacklevel: int) -> None:
        """Move the pipeline to a validated checkpoint: every operator to its state, the counters to its
        position, the seed to its seed. All or nothing: if an operator refuses its state, the pipeline is
        exactly where it was (seed included) and the error propagates. A partial restore warns (the warning
        points ``stacklevel`` frames up, counting this method)."""
        previous_seed, previous = self.seed, self._last
        if restored.seed != self.seed:
            self._setup(restored.seed)
            here = Position(0, 0, 0, from_checkpoint=False)
        else:
            here = Position(self._iteration, self._epoch, self._iteration_in_epoch, from_checkpoint=False)
        at = _position(restored)
        try:
            self._runtime.restore(restored.states, at, here)
        except BaseException:
            if self.seed != previous_seed:
                self._setup(previous_seed)
                self._runtime.restore(previous.states, Position(*previous[:3], from_checkpoint=False), here)
            self._iteration, self._epoch, self._iteration_in_epoch = previous[:3]
            self._last = previous
            raise
        self._iteration, self._epoch, self._iteration_in_epoch = at[:3]
        self._last = self._snapshot()
        self._restore_from = restored.data
        self._report = restored.report
        if restored.report.partial:
            warnings.warn(str(restored.report), PartialRestoreWarning, stacklevel=stacklevel)

    # ---- running ----------------------------------------------------------------------------------
    def build(self) -> None:
        """Prepare to run (start the worker pool); a class-style pipeline calls :meth:`define_graph` first.
        Optional: :meth:`run` builds. Idempotent."""
        with self._lock:
            self._define()
            if self._stage is _Stage.DEFINING:
                raise PipestateError("build() before set_outputs(): define the pipeline's outputs first")
            if self._stage is _Stage.CLOSED:
                raise PipestateError("the pipeline is closed; create a new one")
            if self._stage is _Stage.DEFINED:
                self._start_processes()  # before this pipeline starts threads (forking then is safest)
                self._pool = WorkerPool(self.num_threads)
                weakref.finalize(self, _shutdown, self._pool, self._graph.ops)
                self._stage = _Stage.BUILT

    def start_py_workers(self) -> None:
        """Start the worker processes of parallel external sources now (DALI's ``start_py_workers``).

        Optional: :meth:`build` starts them. Useful with ``py_start_method="fork"`` to fork before the
        process starts threads or acquires resources that must not be shared with the workers.
        """
        with self._lock:
            self._define()
            if self._stage is _Stage.DEFINING:
                raise PipestateError("start_py_workers() before set_outputs(): define the pipeline's outputs first")
            if self._stage is _Stage.CLOSED:
                raise PipestateError("the pipeline is closed; create a new one")
            if self._stage is _Stage.DEFINED:  # not built yet: build() registers _shutdown, which also closes them
                weakref.finalize(self, _close_ops, self._graph.ops)
            self._start_processes()

    def _start_processes(self) -> None:
        for op in self._graph.ops:
            op.start()

    def run(self, cuda_stream: Any = None, /, **pipeline_inputs: Any) -> tuple[Batch, ...]:
        """Return the next batch of every output, as a tuple with one :class:`Batch` per output.

        Args:
            cuda_stream: Accepted for DALI compatibility (no GPU).
            **pipeline_inputs: A batch for each named external source without ``source``, fed with
                :meth:`feed_input` first (DALI's ``run(name=batch)``).

        Raises:
            StopIteration: a source ended the epoch; call :meth:`reset` to start the next one.
            OperatorError: an operator failed (the message names it; ``__cause__`` is the original).
            PipestateError: the pipeline is closed (also when closed by another thread during the call).
        """
        with self._lock:  # held while waiting too: a batch and the state after it are handed out together
            self.build()
            for name, data in pipeline_inputs.items():
                self.feed_input(name, data)
            if self._failure is not None:
                raise self._failure
            if self._ended:
                raise StopIteration
            if self._feeding is not None and not self._feeding.before_run(
                self.iter_setup, self._last.iteration_in_epoch
            ):
                self._ended = True  # iter_setup() ended the epoch
                raise StopIteration
            if self._prefetcher is None:
                gate = self._feeding.gate if self._feeding is not None else None
                self._prefetcher = Prefetcher(self._produce, self.prefetch_queue_depth, gate)
            item = self._prefetcher.get()  # close() stops the prefetcher without the lock, waking this
            if self._stage is _Stage.CLOSED:
                raise PipestateError("the pipeline was closed while run() was waiting for a batch")
            if isinstance(item, Produced):
                self._last = item.snapshot
                return item.outputs
            self._stop_prefetch()
            if isinstance(item, Ended):
                self._ended = True
                raise StopIteration
            self._failure = item.error
            raise item.error

    def _produce(self) -> Produced:
        """Compute one batch (on the prefetch thread) and snapshot the state right after it."""
        if (self._iteration + 1) * self.batch_size > _MAX_POSITION:
            raise PipestateError(f"the pipeline ran {self._iteration} batches: the sample counter would overflow")
        ctx = RunContext(
            self.batch_size,
            self._iteration,
            self._epoch,
            self._iteration_in_epoch,
            self._pool.map,
            self._runtime.origin(self.batch_size),
        )
        outputs = self._runtime.run(ctx)
        if self._output_specs:
            self._output_specs.check(outputs)
        self._iteration += 1
        self._iteration_in_epoch += 1
        return Produced(outputs, self._snapshot())

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(self._iteration, self._epoch, self._iteration_in_epoch, self._runtime.states())

    def _rewind(self) -> None:
        """Move the operators back to the last batch returned (discarding work computed ahead)."""
        last = self._last
        now = Position(self._iteration, self._epoch, self._iteration_in_epoch, from_checkpoint=False)
        self._runtime.restore(last.states, Position(*last[:3], from_checkpoint=False), now)
        self._iteration, self._epoch, self._iteration_in_epoch = last[:3]

    def _stop_prefetch(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.stop()
            self._prefetcher = None

    def reset(self) -> None:
        """Start the next epoch (after ``run()`` raised ``StopIteration``, or to end this one early).

        Batches computed ahead are discarded and every operator is rewound to the last batch ``run()``
        returned before moving on, so the outputs do not depend on the prefetch depth.
        """
        with self._lock:
            self.build()
            self._stop_prefetch()
            self._rewind()
            for op in self._graph.ops:
                op.next_epoch()
            self._epoch += 1
            self._iteration_in_epoch = 0
            self._failure = None
            self._ended = False
            self._last = self._snapshot()
            if self._feeding is not None:
                self._feeding.restart(0)

    def close(self) -> None:
        """Stop the prefetch thread and the workers and release operator resources. Idempotent.

        A ``run()`` waiting in another thread raises :class:`PipestateError`.
        """
        prefetcher = self._prefetcher
        if prefetcher is not None:
            prefetcher.stop()  # wakes a run() waiting in another thread, which then sees CLOSED
        with self._lock:
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
                stored in the checkpoint and returned by :attr:`iterator_data` of a pipeline restored from it.

        Raises:
            PipestateError: if the pipeline was built without ``enable_checkpointing=True``, or an
                operator's state is not plain data.
            TypeError: ``iterator_data`` is not a string.
            ValueError: ``iterator_data`` cannot be encoded as UTF-8 (a lone surrogate).
            OSError: writing ``filename`` failed (original subclass and errno); any previous file
                there is intact.
        """
        ckpt.check_iterator_data(iterator_data)
        if not self.enable_checkpointing:
            raise PipestateError("checkpointing is disabled: construct the pipeline with enable_checkpointing=True")
        with self._lock:
            self._define()
        if self._stage is _Stage.DEFINING:
            raise PipestateError("checkpoint() before set_outputs(): define the pipeline's outputs first")
        last = self._last
        states = [(True, last.states[i]) if i >= 0 else (False, None) for i in self._state_index]
        try:
            data = self._encoder.encode(
                last.iteration, last.epoch, last.iteration_in_epoch, states, iterator_data or ""
            )
        except (TypeError, ValueError) as exc:
            raise PipestateError(f"an operator's state cannot be stored: {exc}") from exc
        if filename is not None:
            from pipestate.io.local import LocalCheckpointIO  # the storage layer, only when asked to write

            LocalCheckpointIO().save_checkpoint(data, filename)
        return data

    def restore(self, checkpoint: bytes, *, partial_restore: bool | None = None) -> ckpt.RestoreReport:
        """Move this pipeline to the state in ``checkpoint``, as if constructed with ``checkpoint=``.

        Works before the first :meth:`run` and at any later point (batches computed ahead are
        discarded); the next :meth:`run` returns the batch that followed the checkpoint. A pipeline
        constructed without a seed adopts the checkpoint's (its operators are set up again with it).

        Args:
            checkpoint: Bytes from :meth:`checkpoint` of a pipeline of the same definition (with
                ``partial_restore``: of another version of it).
            partial_restore: Restore operator by operator, as the constructor's option of that name
                describes (``None``: the pipeline's option).

        Returns:
            What was restored, started fresh and dropped (also kept in :attr:`restore_report`).

        Raises:
            PipestateError: if checkpointing is disabled, or the pipeline is not defined yet or closed.
            CorruptCheckpointError, UnsupportedCheckpointVersionError: if the bytes cannot be read.
            CheckpointMismatchError: if the checkpoint was taken from a different pipeline (with
                ``partial_restore``: a pipeline whose readers, sources, batch size or seed differ).
            CheckpointError: the pipeline is left exactly as it was whenever restore() raises.
        """
        partial = self._partial if partial_restore is None else _check_partial(partial_restore)
        if not self.enable_checkpointing:
            raise PipestateError("restore() needs checkpointing: construct the pipeline with enable_checkpointing=True")
        with self._lock:
            self._define()
            if self._stage is _Stage.DEFINING:
                raise PipestateError("restore() before set_outputs(): define the pipeline's outputs first")
            if self._stage is _Stage.CLOSED:
                raise PipestateError("the pipeline is closed; create a new one")
            restored = ckpt.resolve(checkpoint, self._target(), partial)
            # Every operator checks its state before anything moves, the batches computed ahead included (a
            # one-shot iterator cannot compute them again). _apply checks again once bound to the
            # checkpoint's seed.
            self._runtime.check(restored.states, _position(restored))
            self._stop_prefetch()
            self._rewind()  # a failed restore leaves the pipeline at the last batch returned
            self._apply(restored, stacklevel=3)
            self._failure = None
            self._ended = False
            if self._feeding is not None:
                self._feeding.restart(self._iteration_in_epoch)
            return restored.report

    @property
    def is_restored_from_checkpoint(self) -> bool:
        """True if the pipeline was constructed with ``checkpoint=`` or moved by :meth:`restore`."""
        return self._restore_from is not None

    @property
    def restore_report(self) -> ckpt.RestoreReport | None:
        """What the last restore did (``None``: not restored): the operators restored, started fresh
        (with their changed arguments) and dropped; ``restore_report.partial`` is True when any differed."""
        return self._report

    @property
    def iterator_data(self) -> str | None:
        """The ``iterator_data`` of the checkpoint this pipeline was restored from (``None``: not restored,
        or the checkpoint has none)."""
        restored = self._restore_from
        return (restored.iterator_data or None) if restored is not None else None

    @property
    def iteration(self) -> int:
        """Batches :meth:`run` has returned since the pipeline started (over all epochs; restored too)."""
        return self._last.iteration

    @property
    def fingerprint(self) -> bytes:
        """The 16-byte fingerprint of what determines this pipeline's outputs (graph, non-default
        arguments, batch size, seed), as stored in its checkpoints."""
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
        with self._lock:
            self._define()
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


def _check_partial(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"partial_restore={value!r} must be True or False")
    return value


def _position(restored: ckpt.Restored) -> Position:
    return Position(restored.iteration, restored.epoch, restored.iteration_in_epoch, from_checkpoint=True)


def _shutdown(pool: WorkerPool, ops: list) -> None:
    pool.shutdown()
    _close_ops(ops)


def _close_ops(ops: list) -> None:
    for op in ops:
        op.close()


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
    unknown = sorted(set(options) - opts.ALL)
    if unknown:
        raise TypeError(f"pipeline_def() got unknown pipeline option(s) {unknown}; valid: {list(PIPELINE_OPTIONS)}")

    def decorate(func: Callable[..., Any]) -> Callable[..., Pipeline]:
        signature = inspect.signature(func)
        clash = sorted(set(signature.parameters) & opts.ALL)
        if clash:
            raise TypeError(
                f"{func.__qualname__}() has parameter(s) {clash} that are also pipeline options; rename them "
                "so pipeline options and the function's arguments cannot be confused"
            )
        takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())

        @functools.wraps(func)
        def create(*args: Any, **kwargs: Any) -> Pipeline:
            pipe_options = {k: kwargs.pop(k) for k in list(kwargs) if k in opts.ALL}
            if not takes_any:
                unexpected = sorted(set(kwargs) - set(signature.parameters))
                if unexpected:
                    raise TypeError(
                        f"{func.__qualname__}() got {unexpected}: neither pipeline options ({list(PIPELINE_OPTIONS)}) "
                        "nor parameters of the function"
                    )
            pipe = Pipeline(**{**options, **pipe_options})
            body = func
            if pipe.options.extra.get("enable_conditionals"):
                from pipestate.conditionals import Scopes
                from pipestate.conditionals_ast import convert

                body = convert(func, strict=True)  # `if`/`and`/`or`/`not` on DataNodes (DALI's AutoGraph)
                pipe._graph.conditionals = Scopes()
            with pipe:
                outputs = body(*args, **kwargs)
            outputs = tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)
            pipe.set_outputs(*outputs)
            return pipe

        return create

    return decorate(fn) if fn is not None else decorate


def _experimental_pipeline_def(fn: Callable[..., Any] | None = None, *, debug: bool = False, **options: Any) -> Any:
    """DALI's ``pipeline.experimental.pipeline_def``: :func:`pipeline_def` with DALI's ``debug`` flag.

    Args:
        fn: The pipeline function (when used bare).
        debug: DALI's step-by-step debug mode, which pipestate does not have; only ``False`` is accepted.
        **options: Pipeline options, as for :func:`pipeline_def`.

    Raises:
        ValueError: ``debug=True``.
    """
    if debug:
        raise ValueError(
            "pipeline_def(debug=True): DALI's debug mode is not supported; run the pipeline and print its outputs"
        )
    return pipeline_def(fn, **options)


experimental = types.ModuleType(f"{__name__}.experimental", "DALI's ``pipeline.experimental``: ``pipeline_def``.")
experimental.pipeline_def = _experimental_pipeline_def
experimental.__all__ = ["pipeline_def"]
_experimental_pipeline_def.__module__ = experimental.__name__
_experimental_pipeline_def.__name__ = _experimental_pipeline_def.__qualname__ = "pipeline_def"
sys.modules[experimental.__name__] = experimental

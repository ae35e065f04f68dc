"""TensorFlow plugin: a ``tf.data.Dataset`` over a pipestate pipeline whose iterators checkpoint with
``tf.train.Checkpoint``.

Importing this module imports TensorFlow (the rest of pipestate never does).

How the pipeline's position reaches TensorFlow's checkpoint: a :class:`PipelineDataset` is a
``tf.data`` graph ``repeat -> scan -> [take_while -> map] -> unbatch`` whose ``scan`` state is the
pipeline's checkpoint bytes (plus two counters). A ``tf.numpy_function`` receives that state, moves the
shared pipeline to it when it is elsewhere (``Pipeline.restore``), runs up to ``batches_per_call``
batches and returns the new state with the batches stacked; ``unbatch`` hands them out one per element.
TensorFlow saves scan states, the rest of a call's batches held by ``unbatch``, and the buffers of
``prefetch``/``shuffle``/... placed after the dataset, in every iterator checkpoint, so any iterator
(yours, ``model.fit``'s, ``tf.distribute``'s) saves and restores the exact position with no wrapper.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.python.data.ops import dataset_ops, iterator_ops
from tensorflow.python.eager import context
from tensorflow.python.ops import gen_dataset_ops

from pipestate import distributed
from pipestate.batch import _stack as stack_samples
from pipestate.errors import PipestateError
from pipestate.pipeline import Pipeline

__all__ = [
    "DALIDataset",
    "DistributedIteratorState",
    "PipelineDataset",
    "PipelineState",
    "elastic_args",
    "fit_resumable",
    "input_options",
    "job_checkpoint",
    "shard_args",
]

_HISTORY = 4096  # states kept for PipelineDataset.checkpoint_after
# Automatic batches_per_call: as many batches as fit in _CALL_BYTES, at most _MAX_PER_CALL. Each call into
# Python costs ~250 µs of TensorFlow CPU time (measured on the reader benchmark, 2 cores): grouping spreads
# it over the batches; the batches of a call not yet consumed are stored in iterator checkpoints.
_CALL_BYTES = 512 * 1024
_MAX_PER_CALL = 16


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _normalize_shapes(output_shapes: Any, count: int, single: bool) -> tuple[tf.TensorShape, ...]:
    if output_shapes is None:
        return (tf.TensorShape(None),) * count
    if single:
        output_shapes = (output_shapes,)
    shapes = tuple(output_shapes)
    if len(shapes) != count:
        raise ValueError(
            f"output_shapes has {len(shapes)} entries but output_dtypes has {count}; give one shape per output"
        )
    return tuple(tf.TensorShape(s) for s in shapes)


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0][np.newaxis] if len(arrays) == 1 else stack_samples(arrays)


class PipelineDataset(dataset_ops.UnaryUnchangedStructureDataset):
    """A ``tf.data.Dataset`` whose elements are the batches of a pipestate pipeline.

    Every iterator of the dataset starts from the state the pipeline had when the dataset was created
    (its start, or the checkpoint it was constructed with) and yields the same sequence, as every
    iterator of a ``tf.data`` dataset does. Iterators save and restore their position with
    ``tf.train.Checkpoint(iterator=it)``, in place or into an iterator of a new dataset over a pipeline
    of the same definition; the batches after the restore are bit-identical to the uninterrupted ones.

    When the pipeline ends an epoch (``run()`` raises ``StopIteration``) the dataset calls ``reset()``
    and goes on with the next epoch; with ``epochs=n`` it ends after the ``n``-th epoch.

    Args:
        pipeline: A pipeline with ``enable_checkpointing=True``. The dataset drives it: don't call its
            ``run()`` elsewhere while iterating (it would be rewound to the dataset's position).
        output_dtypes: One ``tf.DType`` per pipeline output (a tuple gives tuple elements; a single
            dtype, for a one-output pipeline, gives tensor elements).
        output_shapes: The shape of every output batch, batch axis included, same structure as
            ``output_dtypes``; ``None`` entries or dimensions are not checked. Default: unknown.
        epochs: End the dataset after this many pipeline epochs; ``None`` (default): never end, like
            DALI's dataset (give ``model.fit`` a ``steps_per_epoch``).
        batches_per_call: Batches computed per call from TensorFlow into Python (a call costs ~250 µs
            of TensorFlow's CPU time; more batches per call spread it). The batches of a call that were
            not consumed yet are stored in iterator checkpoints. ``None`` (default): as many as fit in
            512 KiB by the first batch's size, at most 16 (so 1 for batches of 512 KiB or more).

    Raises:
        PipestateError: if the pipeline has checkpointing disabled.
        TypeError: if ``output_dtypes`` holds something that is not a ``tf.DType``, or an output's dtype
            differs from the declared one (message: output index, declared and actual dtype).
        ValueError: if ``epochs`` or ``batches_per_call`` is not a positive int (or ``None``), or the
            declared structure or a declared shape does not match the pipeline's outputs
            (message: output index, declared and actual shape). The first batch is computed at creation
            to check this, then the pipeline is restored to where it was, so the data do not change.
            Later batches are checked too; a mismatch then fails the iterator's ``next()`` with a
            ``tf.errors.InvalidArgumentError`` carrying the same message.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        output_dtypes: tf.DType | Sequence[tf.DType],
        output_shapes: Any = None,
        *,
        epochs: int | None = None,
        batches_per_call: int | None = None,
    ) -> None:
        if not isinstance(pipeline, Pipeline):
            raise TypeError(f"pipeline must be a pipestate Pipeline, not {type(pipeline).__name__}")
        if not pipeline.enable_checkpointing:
            raise PipestateError(
                "PipelineDataset saves the pipeline's position in TensorFlow checkpoints: construct the "
                "pipeline with enable_checkpointing=True"
            )
        if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1):
            raise ValueError(f"epochs={epochs!r} must be a positive int or None")
        if batches_per_call is not None and (
            not isinstance(batches_per_call, int) or isinstance(batches_per_call, bool) or batches_per_call < 1
        ):
            raise ValueError(f"batches_per_call={batches_per_call!r} must be a positive int or None")
        single = not isinstance(output_dtypes, (tuple, list))
        dtypes = _as_tuple(output_dtypes)
        for i, dtype in enumerate(dtypes):
            if not isinstance(dtype, tf.DType):
                raise TypeError(f"output_dtypes[{i}]={dtype!r} is not a tf.DType (e.g. tf.float32)")
        self._pipeline = pipeline
        self._single = single
        self._dtypes = dtypes
        self._shapes = _normalize_shapes(output_shapes, len(dtypes), single)
        self._epochs = epochs
        self._np_dtypes = tuple(np.dtype(d.as_numpy_dtype) for d in dtypes)
        self._dims = tuple(None if s.rank is None else tuple(s.as_list()) for s in self._shapes)
        self._lock = threading.Lock()
        self._start = pipeline.checkpoint()
        self._history: collections.OrderedDict[int, bytes] = collections.OrderedDict({0: self._start})
        first_bytes = self._check_first_batch()
        if batches_per_call is None:
            batches_per_call = max(1, min(_MAX_PER_CALL, _CALL_BYTES // max(first_bytes, 1))) if first_bytes else 1
        self._per_call = batches_per_call
        self._position: bytes | None = self._start  # the state the pipeline is at (the last element computed)
        impl = self._build()
        super().__init__(impl, impl._variant_tensor)

    def __iter__(self) -> iterator_ops.OwnedIterator:
        """Return a new iterator (a ``tf.data`` iterator with a leaner eager ``next()``)."""
        if not (context.executing_eagerly() or tf.inside_function()):
            return super().__iter__()  # raises TensorFlow's error for graph mode
        with tf.device(self._variant_tensor.device):
            return _Iterator(self, self._single)

    # ---- the tf.data graph ------------------------------------------------------------------------
    def _build(self) -> tf.data.Dataset:
        dtypes, shapes = self._dtypes, self._shapes

        @tf.autograph.experimental.do_not_convert
        def step(carry: tuple, _: tf.Tensor) -> tuple:
            state, count, epochs_done = carry
            results = tf.numpy_function(
                self._next,
                [state, count, epochs_done],
                [tf.string, tf.int64, tf.int64, tf.bool, *dtypes],
                stateful=True,
            )
            new_state, new_count, new_epochs, done = results[:4]
            for tensor in (new_state, new_count, new_epochs, done):
                tensor.set_shape(())
            groups = results[4:]  # the call's batches, stacked on a new leading axis
            for tensor, shape in zip(groups, shapes, strict=True):
                tensor.set_shape(tf.TensorShape([None]).concatenate(shape))
            element = groups[0] if single else tuple(groups)
            return (new_state, new_count, new_epochs), ((done, element) if ends else element)

        single, ends = self._single, self._epochs is not None
        initial = (tf.constant(self._start), tf.constant(0, tf.int64), tf.constant(0, tf.int64))
        ds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).repeat().scan(initial, step)
        if ends:
            ds = ds.take_while(tf.autograph.experimental.do_not_convert(lambda done, element: ~done))
            ds = ds.map(tf.autograph.experimental.do_not_convert(lambda done, element: element))
        ds = ds.unbatch()  # one element per batch; TensorFlow saves the rest of a call's batches
        options = tf.data.Options()
        # The py_function is the pipeline; its state is the scan state, which TensorFlow does save.
        options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
        # Nothing may call the py_function in the background: no injected prefetch, and no map turned
        # into a ParallelMap (its iterator runs the scan ahead on a TensorFlow thread; at interpreter exit
        # that thread waits for the GIL inside the py_function while the iterator's destructor waits for
        # it: the process never exits). The pipeline prefetches by itself (prefetch_queue_depth).
        options.experimental_optimization.inject_prefetch = False
        options.experimental_optimization.map_parallelization = False
        options.experimental_warm_start = False
        return ds.with_options(options)

    def _next(self, state: bytes, count: np.ndarray, epochs_done: np.ndarray) -> list[Any]:
        """Compute up to ``batches_per_call`` elements after ``state`` (runs in the numpy_function).

        Returns the state after the last of them, the counters, the end flag, and every output's batches
        stacked on a new leading axis. A call stops early at an epoch end and before a batch that fails
        its check (the next call starts there, so the error surfaces at that element).
        """
        state_bytes, n, done_epochs = bytes(state), int(count), int(epochs_done)
        groups: list[list[np.ndarray]] = [[] for _ in self._dtypes]
        new_state, k = state_bytes, 0
        with self._lock:
            pipe, history = self._pipeline, self._history
            # the pipeline is where the last element left it unless another iterator moved it
            if state_bytes != self._position:
                pipe.restore(state_bytes)
                self._position = state_bytes
            while k < self._per_call:
                try:
                    outputs = pipe.run()
                except StopIteration:
                    if k:
                        break  # the next call starts with the epoch end
                    done_epochs += 1
                    if self._epochs is not None and done_epochs >= self._epochs:
                        return [state_bytes, n, done_epochs, True, *self._placeholders()]
                    pipe.reset()
                    try:
                        outputs = pipe.run()
                    except StopIteration:
                        raise PipestateError(
                            f"the pipeline's epoch {done_epochs} ended before its first batch; an empty "
                            "epoch would make the dataset loop forever"
                        ) from None
                except Exception:
                    if k:
                        break  # the pipeline keeps its failure: the next call raises it
                    raise
                try:
                    arrays = self._check(outputs)
                except (TypeError, ValueError):
                    if k:
                        self._position = None  # past the bad batch: the next call restores and fails there
                        break
                    raise
                for group, array in zip(groups, arrays):
                    group.append(array)
                k += 1
                new_state = pipe.checkpoint()
                self._position = new_state
                history[n + k] = new_state
                history.move_to_end(n + k)
            while len(history) > _HISTORY:
                history.popitem(last=False)
        return [new_state, n + k, done_epochs, False, *(_stack(group) for group in groups)]

    def _placeholders(self) -> list[np.ndarray]:
        arrays = []
        for dtype, shape in zip(self._dtypes, self._shapes, strict=True):
            dims = [0] if shape.rank is None else [0] + [d or 0 for d in shape.as_list()]
            arrays.append(np.zeros(dims, dtype.as_numpy_dtype))
        return arrays

    def _check(self, outputs: tuple) -> list[np.ndarray]:
        """Return the outputs as dense arrays, checking them against the declared dtypes and shapes."""
        if len(outputs) != len(self._dtypes):
            raise ValueError(f"the pipeline has {len(outputs)} outputs but output_dtypes declares {len(self._dtypes)}")
        arrays = []
        for i, (batch, dtype, dims) in enumerate(zip(outputs, self._np_dtypes, self._dims, strict=True)):
            try:
                array = batch.as_array()
            except ValueError as exc:
                raise ValueError(f"output {i}: batches must be dense tensors: {exc}") from exc
            if array.dtype != dtype:
                raise TypeError(
                    f"output {i}: declared dtype {self._dtypes[i].name} (output_dtypes[{i}]) but the pipeline "
                    f"produced {array.dtype}"
                )
            if dims is not None and (
                len(dims) != array.ndim or any(d is not None and d != n for d, n in zip(dims, array.shape))
            ):
                raise ValueError(
                    f"output {i}: declared shape {self._shapes[i]} (output_shapes[{i}]) but the pipeline produced "
                    f"a batch of shape {tuple(array.shape)}"
                )
            arrays.append(array)
        return arrays

    def _check_first_batch(self) -> int:
        """Check the first batch against the declarations; return its size in bytes (0: none)."""
        pipe = self._pipeline
        try:
            outputs = pipe.run()
        except StopIteration:
            outputs = None
        try:
            return 0 if outputs is None else sum(array.nbytes for array in self._check(outputs))
        finally:
            pipe.restore(self._start)

    # ---- public helpers ---------------------------------------------------------------------------
    @property
    def pipeline(self) -> Pipeline:
        """The pipeline the dataset drives."""
        return self._pipeline

    @property
    def batches_per_call(self) -> int:
        """Batches computed per call into Python (given, or chosen from the first batch's size)."""
        return self._per_call

    def checkpoint_after(self, num_batches: int) -> bytes:
        """Return the pipeline checkpoint after the dataset's first ``num_batches`` elements.

        Every iterator yields the same sequence, so this is the state to construct a pipeline with
        (``checkpoint=``) to continue right after element ``num_batches``, e.g. in a Keras callback
        that counts the batches the model consumed (``tf.data`` may have computed more). States are
        kept for the last 4096 elements computed.

        Args:
            num_batches: Elements consumed since the dataset's start (``0``: its start).

        Raises:
            KeyError: if that element has not been computed yet, or is too old.
        """
        with self._lock:
            try:
                return self._history[num_batches]
            except KeyError:
                raise KeyError(
                    f"no state after element {num_batches}: computed so far {min(self._history)}..{max(self._history)}"
                ) from None


    def _at(self, state: bytes) -> PipelineDataset:
        """A new dataset over the same pipeline, starting at ``state`` (same dtypes, shapes and options)."""
        self._pipeline.restore(state)
        single = self._dtypes[0] if self._single else self._dtypes
        shapes = self._shapes[0] if self._single else self._shapes
        return PipelineDataset(self._pipeline, single, shapes, epochs=self._epochs, batches_per_call=self._per_call)


class DALIDataset(PipelineDataset):
    """:class:`PipelineDataset` with the arguments of DALI's ``nvidia.dali.plugin.tf.DALIDataset``.

    Args:
        pipeline: A pipeline with ``enable_checkpointing=True``.
        output_dtypes: As for :class:`PipelineDataset` (DALI's deprecated ``dtypes`` is accepted too).
        output_shapes: As for :class:`PipelineDataset` (or the deprecated ``shapes``).
        fail_on_device_mismatch, batch_size, num_threads, device_id, exec_separated, exec_dynamic,
            prefetch_queue_depth, cpu_prefetch_queue_depth, gpu_prefetch_queue_depth: Accepted for DALI
            compatibility and ignored: the pipeline's own options apply and pipestate runs on the CPU.
        input_datasets: Not supported (``tf.data`` inputs into the pipeline); must be ``None``.
        batches_per_call: As for :class:`PipelineDataset` (not one of DALI's arguments).

    Raises:
        NotImplementedError: ``input_datasets`` is given.
        ValueError: both ``output_dtypes`` and ``dtypes`` (or ``output_shapes`` and ``shapes``) are given.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        output_dtypes: Any = None,
        output_shapes: Any = None,
        fail_on_device_mismatch: bool = True,
        *,
        input_datasets: Any = None,
        batch_size: int = 1,
        num_threads: int = 4,
        device_id: int | None = 0,
        exec_separated: bool = False,
        exec_dynamic: bool = False,
        prefetch_queue_depth: int = 2,
        cpu_prefetch_queue_depth: int = 2,
        gpu_prefetch_queue_depth: int = 2,
        dtypes: Any = None,
        shapes: Any = None,
        batches_per_call: int | None = None,
    ) -> None:
        if input_datasets is not None:
            raise NotImplementedError(
                "input_datasets (tf.data datasets as pipeline inputs) is not supported: feed Python data with "
                "fn.external_source(source=...) instead"
            )
        output_dtypes = _deprecated(output_dtypes, dtypes, "output_dtypes", "dtypes")
        output_shapes = _deprecated(output_shapes, shapes, "output_shapes", "shapes")
        if output_dtypes is None:
            raise TypeError("DALIDataset needs output_dtypes (one tf.DType per pipeline output)")
        super().__init__(pipeline, output_dtypes, output_shapes, batches_per_call=batches_per_call)


def _deprecated(value: Any, old: Any, name: str, old_name: str) -> Any:
    if old is None:
        return value
    if value is not None:
        raise ValueError(f"give {name} or the deprecated {old_name}, not both")
    return old


class _Iterator(iterator_ops.OwnedIterator):
    """TensorFlow's iterator with a leaner eager ``next()``.

    ``OwnedIterator`` rebuilds the element through ``tf.data``'s structure helpers (shape and type
    checks in Python, ~200 µs per element here); the ``IteratorGetNext`` op already checks the element
    against the dataset's types and shapes, so eagerly this iterator packs the op's tensors directly.
    Everything else (checkpointing, ``tf.function``, ``get_next_as_optional``) is TensorFlow's.
    """

    def __init__(self, dataset: tf.data.Dataset, single: bool) -> None:
        self._single = single
        super().__init__(dataset)

    def _next_internal(self) -> Any:
        if not context.executing_eagerly() or context.context().execution_mode != context.SYNC:
            return super()._next_internal()
        flat = gen_dataset_ops.iterator_get_next(
            self._iterator_resource, output_types=self._flat_output_types, output_shapes=self._flat_output_shapes
        )
        return flat[0] if self._single else tuple(flat)


_NO_CHECKPOINT = (
    "Checkpointing is not supported for pipestate dataset with inputs (experimental.DALIDatasetWithInputs, "
    "as in DALI); use PipelineDataset, which checkpoints external sources by position"
)


class _NoCheckpointIterator(_Iterator):
    """An iterator that refuses to be saved, as DALI's iterators over a dataset with inputs."""

    def _serialize_to_tensors(self) -> dict:
        raise RuntimeError(_NO_CHECKPOINT)

    def _restore_from_tensors(self, restored_tensors: dict) -> Any:
        raise RuntimeError(_NO_CHECKPOINT)


class _Experimental:
    """``pipestate.plugin.tf.experimental``: DALI's experimental TensorFlow API."""

    class DALIDatasetWithInputs(DALIDataset):
        """DALI's ``experimental.DALIDatasetWithInputs``: a :class:`DALIDataset` for pipelines with external
        sources, whose iterators refuse checkpointing as DALI's do (``RuntimeError`` "Checkpointing is not
        supported for pipestate dataset with inputs ..." when ``tf.train.Checkpoint`` saves or restores one).
        ``input_datasets`` (``tf.data`` inputs) is not supported: the external sources read Python data.
        Use :class:`PipelineDataset` to checkpoint such pipelines (their sources are checkpointed by position).
        """

        def __iter__(self) -> iterator_ops.OwnedIterator:
            if not tf.executing_eagerly():
                raise RuntimeError("iterate DALIDatasetWithInputs eagerly (or use PipelineDataset in tf.function)")
            return _NoCheckpointIterator(self, self._single)


experimental = _Experimental()


class PipelineState(tf.train.experimental.PythonState):
    """Puts a pipeline used outside ``tf.data`` into a ``tf.train.Checkpoint``.

    ``tf.train.Checkpoint(model=model, input=PipelineState(pipe))``: saving stores ``pipe.checkpoint()``
    (the state after the last batch ``run()`` returned); restoring calls ``pipe.restore(...)``.

    Args:
        pipeline: A pipeline with ``enable_checkpointing=True``.

    Raises:
        PipestateError: if the pipeline has checkpointing disabled.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        if not pipeline.enable_checkpointing:
            raise PipestateError("PipelineState needs a pipeline with enable_checkpointing=True")
        self.pipeline = pipeline

    def serialize(self) -> bytes:
        """Return the pipeline's checkpoint bytes."""
        return self.pipeline.checkpoint()

    def deserialize(self, string_value: tf.Tensor | bytes) -> None:
        """Restore the pipeline from checkpoint bytes.

        Raises:
            CheckpointError: if the bytes are damaged or come from another pipeline.
        """
        value = string_value.numpy() if hasattr(string_value, "numpy") else string_value
        self.pipeline.restore(bytes(value))


def shard_args(input_context: tf.distribute.InputContext) -> dict[str, int]:
    """Return ``{"shard_id": ..., "num_shards": ...}`` for this input pipeline of a distributed dataset.

    Pass it to your pipeline factory (and on to readers): ``my_pipe(**shard_args(ctx))``. With
    :func:`input_options`, there is one input pipeline per replica, so each replica reads its own shard.
    """
    return {"shard_id": input_context.input_pipeline_id, "num_shards": input_context.num_input_pipelines}


def elastic_args(input_context: tf.distribute.InputContext, global_batch_size: int) -> dict[str, int]:
    """Return this input pipeline's place in an elastic job: ``{"shard_id", "num_shards",
    "global_batch_size", "batch_size"}``.

    Pass the first three to the elastic reader and ``batch_size`` (its part of every global batch,
    :func:`pipestate.distributed.local_batch_size`) to the pipeline: ``my_pipe(**elastic_args(ctx, 64))``
    for a pipeline function taking ``shard_id``, ``num_shards`` and ``global_batch_size``. With
    :func:`input_options` there is one input pipeline per replica, so a global step reads one global batch.

    Raises:
        ValueError: ``global_batch_size`` is smaller than the number of input pipelines.
    """
    shard_id, num_shards = input_context.input_pipeline_id, input_context.num_input_pipelines
    return {
        "shard_id": shard_id,
        "num_shards": num_shards,
        "global_batch_size": global_batch_size,
        "batch_size": distributed.local_batch_size(global_batch_size, num_shards, shard_id),
    }


def job_checkpoint(datasets: Sequence[PipelineDataset], num_batches: int) -> bytes:
    """Return the job checkpoint of an elastic job read through ``datasets`` (one per input pipeline,
    e.g. kept by your ``dataset_fn`` by ``input_pipeline_id``) after ``num_batches`` global steps.

    Resume on any number of replicas with ``checkpoint=pipestate.distributed.shard_checkpoint(job,
    shard_id, num_shards, global_batch_size)`` in the new ``dataset_fn``.

    Raises:
        KeyError: a dataset has not computed that element yet, or no longer keeps it
            (:meth:`PipelineDataset.checkpoint_after`).
        CheckpointError: as :func:`pipestate.distributed.combine`.
    """
    return distributed.combine([dataset.checkpoint_after(num_batches) for dataset in datasets])


def input_options() -> tf.distribute.InputOptions:
    """Return the ``tf.distribute.InputOptions`` that make a distributed iterator checkpointable.

    ``PER_REPLICA`` replication builds one dataset (so one pipeline) per replica, iterated by a plain
    ``tf.data`` iterator that ``tf.train.Checkpoint`` can save; ``PER_WORKER`` (TensorFlow's default)
    splits one dataset over the replicas with a multi-device iterator that TensorFlow cannot save.
    """
    return tf.distribute.InputOptions(
        experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA,
        experimental_fetch_to_device=False,
    )


class DistributedIteratorState(tf.Module):
    """Makes a distributed iterator checkpointable: ``Checkpoint(input=DistributedIteratorState(it))``.

    TensorFlow's ``DistributedIterator`` is not trackable. This object tracks the per-replica
    ``tf.data`` iterators inside one built with ``strategy.distribute_datasets_from_function(fn,
    options=input_options())``; saving stores every replica's position, restoring moves them back (in
    place, or into the iterator of a newly distributed dataset).

    Args:
        iterator: ``iter(distributed_dataset)``.

    Raises:
        ValueError: if the iterator was not built with :func:`input_options`.
    """

    def __init__(self, iterator: Any) -> None:
        super().__init__(name="pipestate_distributed_iterator")
        workers = getattr(iterator, "_iterators", None)
        replicas = [getattr(worker, "_iterator", None) for worker in workers or ()]
        if not replicas or not all(isinstance(it, tf.data.Iterator) for it in replicas):
            raise ValueError(
                "this distributed iterator cannot be checkpointed: build it with "
                "strategy.distribute_datasets_from_function(fn, options=pipestate.plugin.tf.input_options())"
            )
        self.replicas = replicas




# ---- Keras: save every N batches and resume mid-epoch ------------------------------------------------------
class _Position:
    """The dataset's position after the batches the model consumed: a Checkpointer part of kind ``pipeline``
    (it has ``checkpoint()``/``restore()``), read from :meth:`PipelineDataset.checkpoint_after`."""

    def __init__(self) -> None:
        self.dataset: PipelineDataset | None = None
        self.consumed = 0
        self.restored: bytes | None = None

    def checkpoint(self) -> bytes:
        if self.dataset is None:
            return self.restored or b""
        return self.dataset.checkpoint_after(self.consumed)

    def restore(self, blob: bytes) -> None:
        self.restored = bytes(blob) or None


def _saver_class() -> type:
    import keras

    class SaveEveryBatch(keras.callbacks.Callback):
        """Saves model, optimizer, data position and progress through a Checkpointer after every batch it
        decides to keep (``checkpointer.period``), and at the end of training."""

        def __init__(self, checkpointer: Any, state: dict[str, Any], position: _Position, done: int) -> None:
            super().__init__()
            self.checkpointer, self.state, self.position, self.done = checkpointer, state, position, done
            self.saved = self.epoch_base = done

        def _save(self, force: bool = False) -> None:
            self.state["progress"] = {**self.state["progress"], "batches": self.done}
            if self.checkpointer.save(self.state, self.done, force=force) is not None:
                self.saved = self.done

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch_base = self.done

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            # ``batch`` is the last batch of the epoch run so far (with steps_per_execution, one call per
            # execution): count from it rather than from the calls
            done = self.epoch_base + batch + 1
            period = self.checkpointer.period
            crossed = done // period > self.done // period
            self.position.consumed += done - self.done
            self.done = done
            if crossed:
                self._save(force=True)

        def on_train_end(self, logs: dict | None = None) -> None:
            if self.saved != self.done:
                self._save(force=True)

    return SaveEveryBatch


def fit_resumable(
    model: Any,
    dataset: PipelineDataset,
    checkpointer: Any,
    *,
    epochs: int,
    steps_per_epoch: int,
    callbacks: Sequence[Any] | None = None,
    **fit_kwargs: Any,
) -> Any:
    """``model.fit`` that saves every ``checkpointer.period`` batches and resumes exactly, mid-epoch included.

    Each save is one Checkpointer step of three parts: ``model`` (the variables of the model, its dropout seed
    generators included, and of its optimizer), ``data`` (the pipeline's state after the batches the model
    consumed: ``tf.data`` computes ahead, :meth:`PipelineDataset.checkpoint_after` does not) and ``progress``
    (batches done, ``steps_per_epoch``). The step number is the number of batches done. When the Checkpointer
    holds a step, training resumes there: model, optimizer and data position are restored, the rest of the
    interrupted epoch runs as its own ``model.fit`` call (``initial_epoch`` = that epoch, ``steps_per_epoch`` =
    the batches left in it), then the remaining epochs. The model then trains on exactly the batches of an
    uninterrupted run, in the same epochs; with ``tf.config.experimental.enable_op_determinism()`` the final
    weights are bit-identical.

    Args:
        model: A compiled Keras model with its weights created (built, e.g. by ``keras.Input``).
        dataset: The training data (a :class:`PipelineDataset` that does not end: ``epochs=None``).
        checkpointer: A :class:`pipestate.Checkpointer`; its ``period`` is the number of batches between
            saves. A step is also saved when training ends.
        epochs: The total number of epochs, counting those done before an interruption.
        steps_per_epoch: Batches per epoch (the dataset does not end, so Keras needs it).
        callbacks: Your Keras callbacks, given to every ``model.fit`` call. Resuming mid-epoch, the first
            call trains the rest of that epoch: its batch indices then start at 0.
        **fit_kwargs: Passed to ``model.fit`` (e.g. ``verbose``, ``validation_data``); not
            ``initial_epoch`` (taken from the checkpoint).

    Returns:
        The ``History`` of the last ``model.fit`` call, its ``history`` covering every epoch of this call
        of ``fit_resumable`` (an epoch resumed mid-way counts once); ``None`` when the checkpoint was
        already at the end (nothing left to train).

    Raises:
        TypeError: ``dataset`` is not a :class:`PipelineDataset`, or ``initial_epoch`` was given.
        ValueError: ``epochs``/``steps_per_epoch`` are not positive, or the checkpoint was saved with
            another ``steps_per_epoch``.
        CheckpointMismatchError: the checkpoint comes from another model or pipeline.
    """
    if not isinstance(dataset, PipelineDataset):
        raise TypeError(f"dataset must be a pipestate PipelineDataset, not {type(dataset).__name__}")
    if "initial_epoch" in fit_kwargs:
        raise TypeError("fit_resumable takes no initial_epoch: it resumes where the checkpointer's latest step is")
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive int")
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # its variables must exist to be saved and restored
    position = _Position()
    per_execution = int(getattr(model, "steps_per_execution", 1) or 1)
    progress = {"batches": 0, "steps_per_epoch": steps_per_epoch, "steps_per_execution": per_execution}
    state: dict[str, Any] = {"model": model, "data": position, "progress": dict(progress)}
    done = 0
    if checkpointer.load_latest(state) is not None:
        for key in ("steps_per_epoch", "steps_per_execution"):
            saved = state["progress"].get(key, 1 if key == "steps_per_execution" else None)
            if saved != progress[key]:
                raise ValueError(
                    f"the checkpoint was saved with {key}={saved}; resume with the same {key} (the epochs "
                    "would otherwise split differently)"
                )
        done = int(state["progress"]["batches"])
        dataset = dataset._at(position.restored)
    saver = _saver_class()(checkpointer, state, position, done)
    # Keras runs whole executions: an epoch takes steps_per_epoch rounded up to a multiple of them
    per_epoch = -(-steps_per_epoch // per_execution) * per_execution
    epoch, in_epoch = divmod(done, per_epoch)
    history = None
    merged: dict[str, list] = {}
    epochs_run: list[int] = []
    for i, (first, last, steps) in enumerate(_fit_calls(epoch, in_epoch, epochs, per_epoch)):
        if i:  # each fit call iterates its dataset from the start: a new one where the last call stopped
            dataset = dataset._at(dataset.checkpoint_after(position.consumed))
        position.dataset, position.consumed = dataset, 0
        history = model.fit(dataset, initial_epoch=first, epochs=last, steps_per_epoch=steps,
                            callbacks=[saver, *(callbacks or [])], **fit_kwargs)
        for key, values in history.history.items():
            merged.setdefault(key, []).extend(values)
        epochs_run.extend(history.epoch)
        if model.stop_training:
            break
    if history is not None:
        history.history, history.epoch = merged, epochs_run
    return history


def _fit_calls(epoch: int, in_epoch: int, epochs: int, steps_per_epoch: int) -> list[tuple[int, int, int]]:
    """The ``model.fit`` calls that finish the training: ``(initial_epoch, epochs, steps_per_epoch)``."""
    calls = []
    if in_epoch and epoch < epochs:
        calls.append((epoch, epoch + 1, steps_per_epoch - in_epoch))
        epoch += 1
    if epoch < epochs:
        calls.append((epoch, epochs, steps_per_epoch))
    return calls

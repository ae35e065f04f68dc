"""The operator contract: a schema of arguments, a ``run`` on a batch, optional plain-data state.

An operator class sets ``type`` (its ``fn`` path, e.g. ``"random.uniform"``) and ``ARGS`` (its
:class:`~pipestate.operators.schema.Arg` list; the arguments every operator takes, ``seed``, ``device`` and
``preserve``, are added), checks cross-argument rules in :meth:`Operator.validate`, and implements
:meth:`Operator.run`. It is stateful exactly when it defines ``state()`` (and then must define
``check_state()`` and ``restore()``): the state is plain data (``None``, bools, ints, floats, strings,
bytes, lists, and dicts with string keys) that the checkpoint codec stores generically. Randomness comes
from the run context: ``ctx.stream(self.rng_key)`` gives counter-based words indexed by the sample
identities the context holds (``ctx.sample_ids``), so a random operator has no state at all. An operator
that places itself in a job of shards (an elastic reader: :meth:`Operator.layout_args`) decides those
identities through :meth:`Operator.sample_origin`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np

from pipestate.batch import Batch
from pipestate.graph import DataNode
from pipestate.operators import schema as sch
from pipestate.operators.example import Example
from pipestate.rng import Stream, derive_key

REGISTRY: dict[str, type[Operator]] = {}
_LISTENERS: list[tuple[Callable[[type[Operator]], None], Callable[[type[Operator]], None] | None]] = []


@dataclasses.dataclass(frozen=True)
class BuildEnv:
    """What an operator learns when its pipeline is finalized."""

    seed: int
    batch_size: int
    num_threads: int
    enable_checkpointing: bool
    prefetch_queue_depth: int = 2
    py_num_workers: int = 1  # worker processes of a parallel external source (0: run it in-process)
    py_start_method: str = "fork"
    py_callback_pickler: Any = None
    uncaptured_sources: str = "continue"  # restoring a source pipestate cannot capture: "continue" or "refuse"


class Position(NamedTuple):
    """Where a pipeline is: batches returned over all epochs, the epoch, and the batch within it.

    ``from_checkpoint`` is True when a restore comes from checkpoint bytes, False when the pipeline
    rewinds its own prefetched work (``reset()``).
    """

    iteration: int
    epoch: int
    iteration_in_epoch: int
    from_checkpoint: bool = True


class SampleOrigin(NamedTuple):
    """Where the samples of a batch come from in the dataset: what an elastic reader publishes.

    Attributes:
        epochs: The reader epoch of each sample (int64).
        indices: The index of each sample in the dataset (int64).
        size: Samples in the dataset.
    """

    epochs: np.ndarray
    indices: np.ndarray
    size: int


class RunContext:
    """What an operator receives with each batch.

    Attributes:
        batch_size: Number of samples in the batch (in a conditional branch, the samples taking it).
        iteration: Batches computed before this one, over all epochs.
        epoch: The pipeline epoch (incremented by ``Pipeline.reset()``).
        iteration_in_epoch: Index of this batch within the pipeline epoch.
        map: ``map(func, *iterables) -> list``, run on the pipeline's worker pool. Results are in input
            order, so per-sample work gives the same batch for any number of threads.

    A sample's identity (what its random draws are keyed by) is :attr:`sample_ids`, and only that: an
    operator never computes it from the iteration. It is the pipeline's global sample counter
    (``iteration * batch_size + i``), or, when the pipeline reads with an elastic reader (``origin``), the
    dataset-wide identity ``epoch * dataset size + index in the dataset``, the same on whichever shard,
    and under whichever shard layout, the sample is read; in a conditional branch, the identities of the
    branch's samples.
    """

    __slots__ = ("batch_size", "iteration", "epoch", "iteration_in_epoch", "map", "_first", "_ids")

    def __init__(
        self,
        batch_size: int,
        iteration: int,
        epoch: int,
        iteration_in_epoch: int,
        map: Callable[..., list],
        origin: SampleOrigin | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.iteration = iteration
        self.epoch = epoch
        self.iteration_in_epoch = iteration_in_epoch
        self.map = map
        # The one place the identity's basis is decided: the sample counter, or the dataset-wide identity.
        if origin is None:
            self._first: int | None = iteration * batch_size
            self._ids: np.ndarray | None = None
        else:
            ids = np.asarray(origin.epochs, dtype=np.int64) * origin.size + np.asarray(origin.indices, dtype=np.int64)
            ids.flags.writeable = False
            self._first, self._ids = None, ids

    @property
    def sample_ids(self) -> np.ndarray:
        """The identity of each sample of the batch (int64, read-only): the key of its random draws."""
        if self._ids is None:
            ids = np.arange(self._first, self._first + self.batch_size, dtype=np.int64)
            ids.flags.writeable = False
            self._ids = ids
        return self._ids

    def stream(self, key: int) -> Stream:
        """Random words for this batch's samples from the stream ``key`` (e.g. ``op.rng_key``): row ``i``
        depends only on (key, ``sample_ids[i]``)."""
        if self._first is not None:
            return Stream(key, self._first, self.batch_size)
        return Stream.at(key, self._ids)

    def subset(self, mask: np.ndarray) -> RunContext:
        """The context of the samples selected by the boolean ``mask`` (one entry per sample), in order."""
        sub = RunContext.__new__(RunContext)
        sub.iteration, sub.epoch, sub.iteration_in_epoch = self.iteration, self.epoch, self.iteration_in_epoch
        sub.map = self.map
        sub._first = None
        sub._ids = self.sample_ids[mask]
        sub._ids.flags.writeable = False
        sub.batch_size = len(sub._ids)
        return sub


class Operator:
    """Base class of every operator (see the module documentation for the contract).

    Attributes:
        name: The stable operator name (set when added to a graph).
        inputs: The input DataNodes.
        args: The validated arguments (read-only :class:`~pipestate.operators.schema.Config`).
        raw_args: The arguments as the user gave them (never mutated; used by checkpoint migration).
        num_outputs: Number of outputs.
        rng_key: The operator's random stream key (set at build).
    """

    type: ClassVar[str]
    ARGS: ClassVar[tuple[sch.Arg, ...]] = ()
    SCHEMA: ClassVar[tuple[sch.Arg, ...]] = sch.COMMON
    stateful: ClassVar[bool] = False
    internal: ClassVar[bool] = False  # created by DataNode operators (``x + y``, ``x[i]``); not in ``fn``/``ops``
    EXAMPLE: ClassVar[Example | None] = None  # the conformance suite's case (every registered operator has one)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = {a.name for a in cls.ARGS}
        cls.SCHEMA = tuple(cls.ARGS) + tuple(a for a in sch.COMMON if a.name not in own)
        has_state = callable(getattr(cls, "state", None))
        missing = [f"{m}(state, at)" for m in ("check_state", "restore") if not callable(getattr(cls, m, None))]
        if has_state and missing:
            raise TypeError(
                f"{cls.__name__} defines state() but not {' and '.join(missing)}; a stateful operator defines "
                "state(), check_state(state, at) (refuses a state without changing anything) and restore(state, at)"
            )
        cls.stateful = has_state

    def __init__(self, inputs: list[DataNode], args: sch.Config, raw_args: dict[str, Any]) -> None:
        self.name = ""
        self.inputs = inputs
        self.args = args
        self.raw_args = dict(raw_args)
        self.num_outputs = 1
        self.rng_key = 0
        self.graph = None
        self.validate()

    def validate(self) -> None:
        """Check rules between arguments and inputs at definition; raise naming the argument.

        Set derived attributes here (e.g. ``self.num_outputs``); ``self.args`` is read-only.
        """

    def bind(self, env: BuildEnv) -> None:
        """Set the random key from the seeds, then :meth:`setup` (the runtime calls this at build)."""
        self.rng_key = self.stream_key(env.seed)
        self.setup(env)

    def stream_key(self, pipeline_seed: int) -> int:
        """The operator's random stream key in a pipeline seeded ``pipeline_seed`` (its own ``seed=`` wins)."""
        seed = self.args["seed"]  # None (seed=None, as DALI accepts) means not set
        return (
            derive_key("op-seed", seed)
            if seed is not None and seed >= 0
            else derive_key("pipeline", pipeline_seed, self.name)
        )

    def setup(self, env: BuildEnv) -> None:
        """Prepare to run, once the pipeline's seed and batch size are final (e.g. list a dataset)."""

    def start(self) -> None:
        """Start worker processes, if the operator has any: called by ``Pipeline.build()`` before the
        pipeline starts its threads (and again after :meth:`close`, or the operator starts them itself)."""

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        """Compute one batch of every output."""
        raise NotImplementedError(f"{type(self).__name__} must implement run()")

    def layout_args(self) -> frozenset[str]:
        """The arguments that place this operator in a job of several shards rather than decide what the job
        computes (an elastic reader's shard, number of shards and global batch size).

        They are left out of the operator's identity, and a pipeline holding such an operator leaves its
        batch size out of its own, so its checkpoints restore on another shard layout (through
        :mod:`pipestate.distributed`). An operator with layout arguments decides the pipeline's sample
        identities: it implements :meth:`sample_origin`. Default: none.
        """
        return frozenset()

    def sample_origin(self, count: int) -> SampleOrigin | None:
        """Where the next batch's ``count`` samples come from in the dataset, for an operator with
        :meth:`layout_args` (the runtime asks before each batch and gives it to the run context, which
        derives the sample identities from it). It must not move the operator. Default: ``None``."""
        return None

    # Stateful operators define (a restore is all or nothing: every operator checks its state first, and
    # the runtime moves any operator only once all of them accepted theirs):
    #   state(self) -> plain data: the state after the last batch (cheap: taken after every batch);
    #   check_state(self, state, at: Position) -> None: raise CheckpointError unless the operator can continue
    #       from ``state`` at ``at``. It changes nothing and reads only what setup() decided, never the
    #       position (it may run while the pipeline computes batches ahead);
    #   restore(self, state, at: Position) -> None: continue from a state check_state() accepted. Only work
    #       that cannot be checked beforehand may still fail (user code, a source ending early); then the
    #       operator must be unchanged: compute into locals, assign the attributes last.

    def next_epoch(self) -> None:
        """Called by ``Pipeline.reset()``: the pipeline moves to its next epoch."""

    def close(self) -> None:
        """Release resources (files, iterators). The operator may be set up again after it."""

    def user_outputs(self, outputs: list[DataNode]) -> Any:
        """What the ``fn.*`` call returns: the single output, or the list of them (override for a dict)."""
        return outputs[0] if len(outputs) == 1 else outputs

    @property
    def arg_inputs(self) -> dict[str, DataNode]:
        """The arguments given as DataNodes (per-sample values computed by other operators)."""
        return {k: v for k, v in self.args.items() if isinstance(v, DataNode)}


def register(cls: type[Operator]) -> type[Operator]:
    """Class decorator: add an operator to the registry; ``fn`` and ``ops`` gain it at once.

    Raises:
        ValueError: another operator class already has this ``type``.
    """
    if cls.type in REGISTRY and REGISTRY[cls.type] is not cls:
        raise ValueError(f"operator type {cls.type!r} is registered twice ({REGISTRY[cls.type].__qualname__} first)")
    REGISTRY[cls.type] = cls
    for added, _ in _LISTENERS:
        added(cls)
    return cls


def unregister(op_type: str) -> None:
    """Remove an operator type from the registry (and from ``fn``/``ops``), e.g. after a test.

    Raises:
        KeyError: no operator of this type is registered.
    """
    cls = REGISTRY.pop(op_type)
    for _, removed in _LISTENERS:
        if removed is not None:
            removed(cls)


def on_register(
    added: Callable[[type[Operator]], None], removed: Callable[[type[Operator]], None] | None = None
) -> None:
    """Call ``added`` with every registered operator class, now and on each later :func:`register`, and
    ``removed`` on each :func:`unregister`."""
    _LISTENERS.append((added, removed))
    for cls in list(REGISTRY.values()):
        added(cls)


def per_sample(batch: Batch | None, index: int, default: Any) -> Any:
    """Return sample ``index`` of a per-sample argument ``batch``, or ``default`` when it is constant."""
    return default if batch is None else batch[index]

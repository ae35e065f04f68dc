"""The operator contract: a schema of arguments, a ``run`` on a batch, optional plain-data state.

An operator class sets ``type`` (its ``fn`` path, e.g. ``"random.uniform"``) and ``ARGS`` (its
:class:`~pipestate.operators.schema.Arg` list; the arguments every operator takes, ``seed``, ``device`` and
``preserve``, are added), checks cross-argument rules in :meth:`Operator.validate`, and implements
:meth:`Operator.run`. It is stateful exactly when it defines ``state()`` (and then must define
``restore()``): the state is plain data (``None``, bools, ints, floats, strings, bytes, lists, and dicts
with string keys) that the checkpoint codec stores generically. Randomness comes from the run context:
``ctx.stream(self.rng_key)`` gives counter-based words indexed by the global sample index, so a random
operator has no state at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, NamedTuple

import numpy as np

from pipestate.batch import Batch
from pipestate.graph import DataNode, current_graph
from pipestate.operators import schema as sch
from pipestate.rng import Stream, derive_key

REGISTRY: dict[str, type[Operator]] = {}


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


class Position(NamedTuple):
    """Where a pipeline is: batches returned over all epochs, the epoch, and the batch within it.

    ``from_checkpoint`` is True when a restore comes from checkpoint bytes, False when the pipeline
    rewinds its own prefetched work (``reset()``).
    """

    iteration: int
    epoch: int
    iteration_in_epoch: int
    from_checkpoint: bool = True


class RunContext:
    """What an operator receives with each batch.

    Attributes:
        batch_size: Number of samples in the batch (in a conditional branch, the samples taking it).
        iteration: Batches computed before this one, over all epochs.
        epoch: The pipeline epoch (incremented by ``Pipeline.reset()``).
        iteration_in_epoch: Index of this batch within the pipeline epoch.
        first_sample: Global index of the pipeline batch's first sample (``iteration * batch_size``).
        sample_indices: ``None`` for the whole pipeline batch (sample ``i`` has global index
            ``first_sample + i``); in a conditional branch, the global indices of the batch's samples.
        map: ``map(func, *iterables) -> list``, run on the pipeline's worker pool. Results are in input
            order, so per-sample work gives the same batch for any number of threads.
    """

    __slots__ = ("batch_size", "iteration", "epoch", "iteration_in_epoch", "first_sample", "map", "sample_indices")

    def __init__(
        self, batch_size: int, iteration: int, epoch: int, iteration_in_epoch: int, map: Callable[..., list]
    ) -> None:
        self.batch_size = batch_size
        self.iteration = iteration
        self.epoch = epoch
        self.iteration_in_epoch = iteration_in_epoch
        self.first_sample = iteration * batch_size
        self.map = map
        self.sample_indices: np.ndarray | None = None

    def stream(self, key: int) -> Stream:
        """Random words for this batch's samples from the stream ``key`` (e.g. ``op.rng_key``), indexed
        by their global sample indices (also inside a conditional branch)."""
        if self.sample_indices is None:
            return Stream(key, self.first_sample, self.batch_size)
        return Stream.at(key, self.sample_indices)

    def global_index(self, i: int) -> int:
        """The global sample index of sample ``i`` of this batch."""
        return self.first_sample + i if self.sample_indices is None else int(self.sample_indices[i])

    def subset(self, mask: np.ndarray) -> RunContext:
        """The context of the samples selected by the boolean ``mask`` (one entry per sample), in order."""
        indices = self.sample_indices
        if indices is None:
            indices = np.arange(self.first_sample, self.first_sample + self.batch_size, dtype=np.int64)
        sub = RunContext.__new__(RunContext)
        sub.iteration, sub.epoch, sub.iteration_in_epoch = self.iteration, self.epoch, self.iteration_in_epoch
        sub.first_sample, sub.map = self.first_sample, self.map
        sub.sample_indices = indices[mask]
        sub.batch_size = len(sub.sample_indices)
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = {a.name for a in cls.ARGS}
        cls.SCHEMA = tuple(cls.ARGS) + tuple(a for a in sch.COMMON if a.name not in own)
        has_state = callable(getattr(cls, "state", None))
        if has_state and not callable(getattr(cls, "restore", None)):
            raise TypeError(f"{cls.__name__} defines state() but not restore(state, at); define both")
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
        seed = self.args["seed"]
        self.rng_key = derive_key("op-seed", seed) if seed >= 0 else derive_key("pipeline", env.seed, self.name)
        self.setup(env)

    def setup(self, env: BuildEnv) -> None:
        """Prepare to run, once the pipeline's seed and batch size are final (e.g. list a dataset)."""

    def start(self) -> None:
        """Start worker processes, if the operator has any: called by ``Pipeline.build()`` before the
        pipeline starts its threads (and again after :meth:`close`, or the operator starts them itself)."""

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        """Compute one batch of every output."""
        raise NotImplementedError(f"{type(self).__name__} must implement run()")

    # Stateful operators define:
    #   state(self) -> plain data: the state after the last batch (cheap: taken after every batch);
    #   restore(self, state, at: Position) -> None: continue from a state state() returned, at ``at``.

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
    """Class decorator: add an operator to the registry that builds the ``fn`` namespace."""
    if cls.type in REGISTRY:
        raise ValueError(f"operator type {cls.type!r} is registered twice")
    REGISTRY[cls.type] = cls
    return cls


def add_operator(cls: type[Operator], inputs: Iterable[Any], kwargs: dict[str, Any]) -> DataNode | list[DataNode]:
    """Create an operator of ``cls`` in the graph being defined and return its output node(s).

    Positional DataNodes are inputs; other positional values fill the schema's positional arguments in
    order, and any left become constant inputs (``fn.constant``), as DALI does with numpy arrays and numbers.

    Raises:
        TypeError / ValueError: from the schema, naming the argument.
    """
    where = f"fn.{cls.type}"
    graph = current_graph()
    kwargs = dict(kwargs)
    name = kwargs.pop("name", None)
    positional = [a for a in cls.SCHEMA if a.positional]
    nodes: list[Any] = []
    for value in inputs:
        if isinstance(value, DataNode) or not positional or _constant_input(positional[0], value, where):
            nodes.append(value)
            continue
        arg = positional.pop(0).name
        if arg in kwargs:
            raise TypeError(f"{where}() got {arg!r} both positionally and as a keyword")
        kwargs[arg] = value
    config = sch.validate(cls.type, cls.SCHEMA, kwargs)
    nodes = [node if isinstance(node, DataNode) else as_constant(node, where, i) for i, node in enumerate(nodes)]
    scopes = graph.conditionals if graph is not None else None  # with enable_conditionals: inputs are split
    if scopes is not None:
        nodes, config, kwargs = scopes.scope_inputs(nodes, config, kwargs)
    op = cls(nodes, config, kwargs)
    outputs = [DataNode(op, i) for i in range(op.num_outputs)]
    if graph is None:  # defined outside a pipeline: adopted, with this name, by the pipeline that uses it
        op.detached_name = name
        op.name = name or f"{cls.type} (detached)"
        return op.user_outputs(outputs)
    graph.add(op, name)
    if scopes is not None:
        scopes.register(outputs, has_inputs=bool(nodes) or bool(op.arg_inputs))
    return op.user_outputs(outputs)


def _constant_input(arg: sch.Arg, value: Any, where: str) -> bool:
    """True when a positional number or numpy array is a constant input rather than ``arg``'s value.

    DALI takes every positional argument as an input (``fn.cast(np.array([1, 2]), dtype=...)``); pipestate
    also lets a few arguments be positional (``fn.cast(x, types.INT32)``). A number or array that
    ``arg`` does not accept is an input, as in DALI.
    """
    if not isinstance(value, (np.ndarray, np.generic, int, float)) or isinstance(value, bool):
        return False
    try:
        arg.kind.check(value, f"{where}(): {arg.name}")
    except (TypeError, ValueError):
        return True
    return False


def as_constant(value: Any, where: str, index: int) -> DataNode:
    """A constant input (a number or numeric array) as the output of an ``fn.constant`` operator."""
    from pipestate.conditionals import Undefined
    from pipestate.operators.constant import constant_node

    if isinstance(value, Undefined):  # a variable without a value after an `if` on a DataNode
        value.fail()
    try:
        return constant_node(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{where}(): input {index} is {type(value).__name__}; inputs are DataNodes returned by fn.* calls, "
            f"numbers or numeric arrays ({exc})"
        ) from None


def make_function(cls: type[Operator]) -> Callable[..., Any]:
    """Return the ``fn.*`` function that adds an operator of ``cls`` to the current pipeline."""

    def function(*inputs: Any, **kwargs: Any) -> Any:
        return add_operator(cls, inputs, kwargs)

    function.__name__ = cls.type.rsplit(".", 1)[-1]
    function.__qualname__ = f"fn.{cls.type}"
    function.__doc__ = sch.docstring(sch.first_paragraph(cls.__doc__), cls.SCHEMA)
    return function


def per_sample(batch: Batch | None, index: int, default: Any) -> Any:
    """Return sample ``index`` of a per-sample argument ``batch``, or ``default`` when it is constant."""
    return default if batch is None else batch[index]

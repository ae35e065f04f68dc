"""The operator base class, the run-time context operators receive, and the registry behind ``fn``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from pipestate.batch import Batch
from pipestate.checkpoint import OperatorStateValue
from pipestate.graph import DataNode, current_graph

REGISTRY: dict[str, type[Operator]] = {}


@dataclasses.dataclass(frozen=True)
class BuildEnv:
    """What an operator learns when its pipeline is finalized."""

    seed: int
    batch_size: int
    num_threads: int
    enable_checkpointing: bool


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What an operator receives with each batch.

    Attributes:
        batch_size: Number of samples in the batch.
        epoch: The pipeline epoch (incremented by ``Pipeline.reset()``).
        iteration_in_epoch: Index of this batch within the pipeline epoch.
        map: ``map(func, *iterables) -> list``, run on the pipeline's worker pool. Results are in input
            order, so per-sample work gives the same batch for any number of threads.
    """

    batch_size: int
    epoch: int
    iteration_in_epoch: int
    map: Callable[..., list]


class Operator:
    """Base class of every operator.

    Subclasses set ``type`` (the ``fn`` path, e.g. ``"random.uniform"``), ``ARGS`` (every argument with
    its default: the canonical arguments that enter the fingerprint), ``TENSOR_ARGS`` (arguments that
    may be DataNodes, giving per-sample values), and implement :meth:`run`. Stateful operators also
    implement :meth:`state` and :meth:`restore`; the state is a small immutable value from
    ``pipestate.checkpoint`` (taken after every batch, so it must be cheap).
    """

    type: ClassVar[str]
    ARGS: ClassVar[dict[str, Any]] = {}
    TENSOR_ARGS: ClassVar[frozenset[str]] = frozenset()
    POSITIONAL_ARGS: ClassVar[tuple[str, ...]] = ()
    stateful: ClassVar[bool] = False

    def __init__(self, inputs: list[DataNode], args: dict[str, Any]) -> None:
        self.name = ""
        self.inputs = inputs
        self.args = args
        self.num_outputs = 1
        self.validate()

    def validate(self) -> None:
        """Check the arguments at definition time; raise ``ValueError``/``TypeError`` naming the argument."""

    def setup(self, env: BuildEnv) -> None:
        """Prepare to run: called once the pipeline's seed and batch size are final."""

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        """Compute one batch of every output."""
        raise NotImplementedError(f"{type(self).__name__} must implement run()")

    def state(self) -> OperatorStateValue:
        """Return the operator's state after the last batch (``None`` for stateless operators)."""
        return None

    def restore(self, state: OperatorStateValue) -> None:
        """Continue from ``state`` (a value :meth:`state` returned, possibly from a checkpoint)."""
        if state is not None:
            raise TypeError(f"operator {self.name!r} ({self.type}) is stateless but got state {state!r}")

    def next_epoch(self) -> None:
        """Called by ``Pipeline.reset()``: the pipeline moves to its next epoch."""

    def close(self) -> None:
        """Release resources (files, iterators)."""

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

    Raises:
        TypeError: for unknown arguments, DataNodes where constants are required, or non-DataNode inputs.
    """
    where = f"fn.{cls.type}"
    graph = current_graph(where)
    name = kwargs.pop("name", None)
    inputs = list(inputs)
    for arg in cls.POSITIONAL_ARGS:
        if inputs and not isinstance(inputs[0], DataNode):
            if arg in kwargs:
                raise TypeError(f"{where}() got {arg!r} both positionally and as a keyword")
            kwargs[arg] = inputs.pop(0)
    unknown = sorted(set(kwargs) - set(cls.ARGS))
    if unknown:
        raise TypeError(
            f"{where}() got unexpected argument(s) {', '.join(unknown)}; "
            f"valid arguments: {', '.join(sorted(cls.ARGS))}, name"
        )
    for key, value in kwargs.items():
        if isinstance(value, DataNode) and key not in cls.TENSOR_ARGS:
            raise TypeError(f"{where}(): argument {key!r} must be a constant, not a DataNode")
    for i, node in enumerate(inputs):
        if not isinstance(node, DataNode):
            raise TypeError(
                f"{where}(): input {i} is {type(node).__name__}; inputs are DataNodes returned by fn.* calls"
            )
    op = cls(inputs, {**cls.ARGS, **kwargs})
    graph.add(op, name)
    outputs = [DataNode(op, i) for i in range(op.num_outputs)]
    return outputs[0] if len(outputs) == 1 else outputs


def make_function(cls: type[Operator]) -> Callable[..., Any]:
    """Return the ``fn.*`` function that adds an operator of ``cls`` to the current pipeline."""

    def function(*inputs: Any, **kwargs: Any) -> Any:
        return add_operator(cls, inputs, kwargs)

    function.__name__ = cls.type.rsplit(".", 1)[-1]
    function.__qualname__ = f"fn.{cls.type}"
    function.__doc__ = cls.__doc__
    return function


def per_sample(batch: Batch | None, index: int, default: Any) -> Any:
    """Return sample ``index`` of a per-sample argument ``batch``, or ``default`` when it is constant."""
    return default if batch is None else batch[index]

"""Tracing: building a pipeline's graph while its definition runs.

``fn.*`` calls (and DataNode arithmetic, indexing, conditionals) end in :func:`add_operator`, which
validates the arguments against the operator's schema, turns numbers and numpy arrays given as inputs
into constants, splits inputs into the current conditional branch, creates the operator and adds it to
the graph being defined on this thread (:func:`current_graph`). An operator created outside any pipeline
definition is detached: the pipeline that uses its output adopts it, as DALI allows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from pipestate.graph import DataNode, Graph, Undefined
from pipestate.operators import schema as sch
from pipestate.operators.base import Operator
from pipestate.operators.constant import Constant as ConstantOp

_local = threading.local()


def current_graph() -> Graph | None:
    """Return the graph being defined on this thread, or ``None`` outside a pipeline definition (an
    operator defined there is detached: the pipeline that uses its output adopts it, as in DALI)."""
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else None


def push_graph(graph: Graph) -> None:
    """Make ``graph`` the one that ``fn.*`` calls add to on this thread."""
    if not hasattr(_local, "stack"):
        _local.stack = []
    _local.stack.append(graph)


def pop_graph() -> None:
    """Undo the last :func:`push_graph`."""
    _local.stack.pop()


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


def constant_node(value: Any, dtype: Any = None, shape: Any = None, layout: str | None = None) -> DataNode:
    """A constant DataNode for a number or numeric array (Python ints are int32, floats float32, as in DALI).

    Raises:
        TypeError: ``value`` is not numeric.
    """
    if isinstance(value, DataNode):
        return value
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"a constant must be a number or a numeric array, not {type(value).__name__}")
    if dtype is None:
        if isinstance(value, (np.ndarray, np.generic)):
            dtype = array.dtype
        else:
            dtype = {"b": np.bool_, "i": np.int32, "u": np.int32, "f": np.float32}[array.dtype.kind]
    key = "fdata" if array.dtype.kind == "f" else "idata"
    data = array.reshape(-1).astype(np.float64 if key == "fdata" else np.int64).tolist()
    return add_operator(
        ConstantOp,
        [],
        {key: data, "shape": list(array.shape) if shape is None else shape, "dtype": dtype, "layout": layout},
    )

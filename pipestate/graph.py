"""The pipeline graph: DataNode, tracing ``fn.*`` calls into operators, stable names, fingerprints.

Operators are created in the order the pipeline function calls them, which is a topological order:
an operator's inputs always exist before it. Auto-generated names are ``"{type}_{n}"`` with ``n``
counting operators of that type in that order, so the same definition gives the same names every time.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipestate.ops.base import Operator

_local = threading.local()


class DataNode:
    """A symbolic output of an operator, used while defining a pipeline.

    Supports arithmetic (``+ - * /``, unary ``-``) and comparisons, each adding an operator to the graph.
    """

    __slots__ = ("op", "index")

    def __init__(self, op: Operator, index: int) -> None:
        self.op = op
        self.index = index

    @property
    def name(self) -> str:
        """``"{operator name}"`` for a single-output operator, else ``"{operator name}[{index}]"``."""
        return self.op.name if self.op.num_outputs == 1 else f"{self.op.name}[{self.index}]"

    def __repr__(self) -> str:
        return f"DataNode({self.name})"

    def __bool__(self) -> bool:
        raise TypeError(
            "a DataNode has no truth value while the pipeline is being defined; use comparison operators "
            "to compute a per-sample boolean instead of `if`/`and`/`or`"
        )

    def __hash__(self) -> int:
        return id(self)

    # Arithmetic: each builds an arithmetic operator (pipestate.ops.math).
    def _binary(self, symbol: str, other: Any, reflected: bool = False) -> DataNode:
        from pipestate.ops.math import arithmetic

        return arithmetic(symbol, other, self) if reflected else arithmetic(symbol, self, other)

    def __add__(self, other):  # noqa: D105
        return self._binary("add", other)

    def __radd__(self, other):  # noqa: D105
        return self._binary("add", other, True)

    def __sub__(self, other):  # noqa: D105
        return self._binary("sub", other)

    def __rsub__(self, other):  # noqa: D105
        return self._binary("sub", other, True)

    def __mul__(self, other):  # noqa: D105
        return self._binary("mul", other)

    def __rmul__(self, other):  # noqa: D105
        return self._binary("mul", other, True)

    def __truediv__(self, other):  # noqa: D105
        return self._binary("div", other)

    def __rtruediv__(self, other):  # noqa: D105
        return self._binary("div", other, True)

    def __neg__(self):  # noqa: D105
        from pipestate.ops.math import arithmetic

        return arithmetic("neg", self)

    def __eq__(self, other):  # noqa: D105
        return self._binary("eq", other)

    def __ne__(self, other):  # noqa: D105
        return self._binary("ne", other)

    def __lt__(self, other):  # noqa: D105
        return self._binary("lt", other)

    def __le__(self, other):  # noqa: D105
        return self._binary("le", other)

    def __gt__(self, other):  # noqa: D105
        return self._binary("gt", other)

    def __ge__(self, other):  # noqa: D105
        return self._binary("ge", other)


class Graph:
    """The operators of one pipeline, in creation (topological) order, and its outputs."""

    def __init__(self) -> None:
        self.ops: list[Operator] = []
        self.outputs: list[DataNode] = []
        self._type_counts: dict[str, int] = {}

    def add(self, op: Operator, name: str | None) -> None:
        """Add ``op`` with the user's ``name`` or an auto-generated one.

        Raises:
            ValueError: if ``name`` is already used in this pipeline.
        """
        if name is None:
            n = self._type_counts.get(op.type, 0)
            self._type_counts[op.type] = n + 1
            name = f"{op.type}_{n}"
        if not isinstance(name, str) or not name:
            raise TypeError(f"name={name!r}: an operator name is a non-empty string")
        if any(existing.name == name for existing in self.ops):
            raise ValueError(f"name={name!r} is used by two operators; give each operator a unique name=")
        op.name = name
        self.ops.append(op)

    def op(self, name: str) -> Operator:
        """Return the operator called ``name``.

        Raises:
            KeyError: naming the operators that exist.
        """
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(f"no operator named {name!r}; the pipeline has: {', '.join(o.name for o in self.ops)}")


def current_graph(caller: str) -> Graph:
    """Return the graph being defined on this thread.

    Raises:
        RuntimeError: if no pipeline is being defined (``caller`` is named in the message).
    """
    stack = getattr(_local, "stack", None)
    if not stack:
        raise RuntimeError(
            f"{caller} was called outside a pipeline definition; call it inside a @pipeline_def function "
            "or inside a `with pipeline:` block"
        )
    return stack[-1]


def push_graph(graph: Graph) -> None:
    """Make ``graph`` the one that ``fn.*`` calls add to on this thread."""
    if not hasattr(_local, "stack"):
        _local.stack = []
    _local.stack.append(graph)


def pop_graph() -> None:
    """Undo the last :func:`push_graph`."""
    _local.stack.pop()


def canonical(value: Any) -> Any:
    """Return a JSON-able canonical form of an argument value (tuples become lists, numpy scalars
    Python numbers, enums their names, DataNodes a reference to their producer)."""
    import enum

    import numpy as np

    if isinstance(value, DataNode):
        return {"node": value.op.name, "output": value.index}
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, np.generic):
        return canonical(value.item())
    if isinstance(value, np.dtype):
        return str(value)
    if isinstance(value, np.ndarray):
        return {"array": canonical(value.tolist()), "dtype": str(value.dtype)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if callable(value):
        return f"callable:{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__name__)}"
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def op_identity(op: Operator) -> tuple[int, tuple[str, ...], tuple[int, ...]]:
    """Return (digest, argument names, per-argument digests) of an operator's canonical description."""
    args = {k: canonical(v) for k, v in sorted(op.args.items())}
    inputs = [canonical(node) for node in op.inputs]
    description = {"type": op.type, "args": args, "inputs": inputs}
    digest = int.from_bytes(hashlib.sha256(_json(description)).digest()[:8], "little")
    names = tuple(args)
    return digest, names, tuple(zlib.crc32(_json(args[k])) for k in names)


def fingerprint(batch_size: int, seed: int, op_digests: list[tuple[str, int]], outputs: list[DataNode]) -> bytes:
    """Return the 16-byte fingerprint of everything that determines a pipeline's outputs."""
    description = {
        "batch_size": batch_size,
        "seed": seed,
        "ops": op_digests,
        "outputs": [canonical(node) for node in outputs],
    }
    return hashlib.sha256(_json(description)).digest()[:16]

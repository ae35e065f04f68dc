"""The pipeline graph: DataNode, tracing ``fn.*`` calls into operators, stable names, fingerprints.

Operators are created in the order the pipeline function calls them, which is a topological order:
an operator's inputs always exist before it. Auto-generated names are ``"{type}_{n}"`` with ``n``
counting operators of that type in that order, so the same definition gives the same names every time.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipestate.operators.base import Operator

_ops: dict[str, Any] = {}


def register_node_operations(**functions: Any) -> None:
    """Install the functions DataNode operators call (``arithmetic``, ``subscript``); ``pipestate.operators``
    does this on import, so the graph module never imports the operators."""
    _ops.update(functions)


class DataNode:
    """A symbolic output of an operator, used while defining a pipeline.

    Supports arithmetic (``+ - * / // % **``, unary ``-``/``+``), bitwise ``& | ^`` and comparisons, each
    adding an operator to the graph, and indexing (``x[1:3, ::2]``, ``x[..., 0]``, DataNode indices).
    Operands may be other DataNodes, Python numbers or numpy arrays.
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
            "a DataNode has no truth value while the pipeline is being defined: use comparison operators "
            "for a per-sample boolean, and enable_conditionals=True to use it in `if`"
        )

    def __hash__(self) -> int:
        return id(self)

    __array_ufunc__ = None  # numpy operands defer to DataNode's reflected operators

    def __getitem__(self, index: Any) -> DataNode:
        return _ops["subscript"](self, index)

    def _binary(self, symbol: str, other: Any, reflected: bool = False) -> DataNode:
        arithmetic = _ops["arithmetic"]
        return arithmetic(symbol, other, self) if reflected else arithmetic(symbol, self, other)

    def __neg__(self):  # noqa: D105
        return _ops["arithmetic"]("neg", self)

    def __pos__(self):  # noqa: D105
        return self


# (method, operator, operands swapped): each builds an arithmetic operator (pipestate.operators.arithmetic).
_METHODS = [
    (f"__{prefix}{name}__", symbol, prefix == "r")
    for name, symbol in [
        ("add", "add"),
        ("sub", "sub"),
        ("mul", "mul"),
        ("truediv", "div"),
        ("floordiv", "fdiv"),
        ("mod", "mod"),
        ("pow", "pow"),
        ("and", "bitand"),
        ("or", "bitor"),
        ("xor", "bitxor"),
    ]
    for prefix in ("", "r")
] + [
    ("__eq__", "eq", False),
    ("__ne__", "ne", False),
    ("__lt__", "lt", False),
    ("__le__", "le", False),
    ("__gt__", "gt", False),
    ("__ge__", "ge", False),
]


def _make_method(symbol: str, reflected: bool) -> Any:
    def method(self: DataNode, other: Any) -> DataNode:
        return self._binary(symbol, other, reflected)

    return method


for _name, _symbol, _reflected in _METHODS:
    setattr(DataNode, _name, _make_method(_symbol, _reflected))


class Graph:
    """The operators of one pipeline, in creation (topological) order, and its outputs."""

    def __init__(self) -> None:
        self.ops: list[Operator] = []
        self.outputs: list[DataNode] = []
        self._type_counts: dict[str, int] = {}
        # With enable_conditionals, the branch tracker (pipestate.conditionals.Scopes) that splits the
        # inputs of operators created inside `if` branches; None otherwise.
        self.conditionals: Any = None

    def add(self, op: Operator, name: str | None) -> None:
        """Add ``op`` with the user's ``name`` or an auto-generated one, after adopting any detached
        operators (defined outside a pipeline) that produce its inputs.

        Raises:
            ValueError: if ``name`` is already used in this pipeline, or ``op`` belongs to another pipeline.
        """
        for node in [*op.inputs, *op.arg_inputs.values()]:
            self.adopt(node)
        if getattr(op, "graph", None) is not None and op.graph is not self:
            raise ValueError(f"operator {op.name!r} ({op.type}) already belongs to another pipeline")
        if name is None:
            n = self._type_counts.get(op.type, 0)
            self._type_counts[op.type] = n + 1
            name = f"{op.type}_{n}"
        if not isinstance(name, str) or not name:
            raise TypeError(f"name={name!r}: an operator name is a non-empty string")
        if any(existing.name == name for existing in self.ops):
            raise ValueError(f"name={name!r} is used by two operators; give each operator a unique name=")
        op.name = name
        op.graph = self
        self.ops.append(op)

    def adopt(self, node: DataNode) -> None:
        """Add the operator behind ``node`` if it was defined outside any pipeline (as DALI allows), with
        its own detached producers first; an operator of another pipeline is a ``ValueError``."""
        op = node.op
        if getattr(op, "graph", None) is self:
            return
        if getattr(op, "graph", None) is not None:
            raise ValueError(
                f"{node!r} belongs to another pipeline; define the operator inside this pipeline, or outside any"
            )
        self.add(op, getattr(op, "detached_name", None))

    def op(self, name: str) -> Operator:
        """Return the operator called ``name``.

        Raises:
            KeyError: naming the operators that exist.
        """
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(f"no operator named {name!r}; the pipeline has: {', '.join(o.name for o in self.ops)}")


class Undefined:
    """The value of a variable that has none after an ``if`` on a DataNode; any use raises ``error``.

    Args:
        error: The exception type raised on use.
        message: Its message (DALI's, where DALI has one).
    """

    __slots__ = ("error", "message")

    def __init__(self, error: type[Exception], message: str) -> None:
        self.error = error
        self.message = message

    def fail(self, *args: Any, **kwargs: Any) -> Any:
        """Raise the error (every use of the value ends here)."""
        raise self.error(self.message)

    def __repr__(self) -> str:
        return f"<undefined: {self.message}>"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self.fail()


for _dunder in (
    "bool call iter len getitem setitem contains array index int float hash eq ne lt le gt ge neg pos abs invert "
    "add radd sub rsub mul rmul truediv rtruediv floordiv rfloordiv mod rmod pow rpow and rand or ror xor rxor"
).split():
    setattr(Undefined, f"__{_dunder}__", Undefined.fail)


def canonical(value: Any, modules: bool = False) -> Any:
    """Return a JSON-able canonical form of an argument value.

    Tuples become lists, numpy scalars Python numbers, floats their ``repr``, enums their names,
    DataNodes a reference to their producer, dataclasses their fields, callables and other objects
    their qualified name. ``modules=True`` prefixes names with their module, as format version 1 did;
    version 2 leaves modules out, so a source class defined in a script fingerprints alike in the main
    process (``__main__``) and in a spawned worker (``__mp_main__``).
    """
    import dataclasses
    import enum

    import numpy as np

    def name_of(obj: Any) -> str:
        qualname = getattr(obj, "__qualname__", type(obj).__name__)
        return f"{getattr(obj, '__module__', '')}.{qualname}" if modules else qualname

    if isinstance(value, DataNode):
        return {"node": value.op.name, "output": value.index}
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, np.generic):
        return canonical(value.item(), modules)
    if isinstance(value, np.dtype):
        return str(value)
    if isinstance(value, np.ndarray):
        return {"array": canonical(value.tolist(), modules), "dtype": str(value.dtype)}
    if isinstance(value, (list, tuple)):
        return [canonical(v, modules) for v in value]
    if isinstance(value, dict):
        return {str(k): canonical(v, modules) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, type):
        return name_of(value)
    if not modules and dataclasses.is_dataclass(value):
        fields = {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"dataclass": type(value).__qualname__, "fields": fields}
    if callable(value):
        return f"callable:{name_of(value)}"
    return name_of(type(value))


def canonical_json(value: Any) -> bytes:
    """Compact, key-sorted JSON: the bytes that digests and fingerprints hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def op_identity(op: Operator) -> tuple[int, dict[str, int]]:
    """Return (digest, {argument name: CRC-32}) of an operator's canonical description.

    Only arguments that differ from their defaults enter, keyed by name: a release that adds an optional
    argument leaves every existing operator's digest, and so every saved checkpoint, valid. The operator's
    layout arguments (``op.layout_args()``: an elastic reader's shard layout) never enter.
    """
    defaults = {a.name: canonical(a.default) for a in op.SCHEMA}
    layout = op.layout_args()  # an elastic reader's place in a job: not what it computes
    args = {}
    for key, value in op.args.items():
        if key in layout:
            continue
        form = canonical(value)
        if key not in defaults or form != defaults[key]:
            args[key] = form
    description = {"type": op.type, "args": args, "inputs": [canonical(node) for node in op.inputs]}
    digest = int.from_bytes(hashlib.sha256(canonical_json(description)).digest()[:8], "little")
    return digest, {k: zlib.crc32(canonical_json(v)) for k, v in sorted(args.items())}


def is_elastic(ops: list[Operator]) -> bool:
    """True when an operator of ``ops`` places itself in a job of shards (an elastic reader): the
    pipeline's batch size is then part of the job's layout, not of its identity."""
    return any(op.layout_args() for op in ops)


def fingerprint(batch_size: int | None, seed: int, op_digests: list[tuple[str, int]], outputs: list[DataNode]) -> bytes:
    """Return the 16-byte fingerprint of everything that determines a pipeline's outputs (``batch_size``
    ``None``: an elastic pipeline, whose batch size is its share of the job's global batch)."""
    description = {
        "batch_size": batch_size,
        "seed": seed,
        "ops": op_digests,
        "outputs": [canonical(node) for node in outputs],
    }
    return hashlib.sha256(canonical_json(description)).digest()[:16]

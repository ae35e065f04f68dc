"""Arithmetic on DataNodes (``+ - * / // % **``, unary ``-``, ``& | ^``, comparisons), ``fn.cast`` and
``fn.cast_like``.

Type rules follow DALI's: Python ``float`` constants are float32 and ``int`` constants int32; an integer
mixed with a floating-point type gives the floating-point type; ``/`` of integers gives float32; ``//``
of integers truncates toward zero (C division) and of floats is a true division; ``%`` takes the sign of
the dividend (C ``fmod``); integer ``**`` with a negative exponent gives 0;
comparisons give bool; arithmetic (except ``*``) on boolean operands only is an error; the output keeps
the operands' common layout. Casts to integer types round half away from zero and saturate, as DALI's
``fn.cast``. Type promotion: :mod:`pipestate.operators._promotion`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.dtypes import ScalarConstant
from pipestate.graph import DataNode
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator, saturate_cast
from pipestate.operators._promotion import batch_operands, binary_promotion, common_layout
from pipestate.operators.base import Operator, RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg
from pipestate.tracing import add_operator, constant_node

_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.true_divide,
    "fdiv": lambda a, b: _int_divide(a, b) if a.dtype.kind in "iu" else np.true_divide(a, b),
    "mod": np.fmod,
    "pow": lambda a, b: _int_power(a, b) if a.dtype.kind in "iu" else np.power(a, b),
    "bitand": np.bitwise_and,
    "bitor": np.bitwise_or,
    "bitxor": np.bitwise_xor,
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}
_BITWISE = {"bitand", "bitor", "bitxor"}
_ARITHMETIC = {"neg", "add", "sub", "div", "fdiv", "mod", "pow"}  # DALI refuses these on booleans only


def _int_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer ``//`` as DALI (C): the quotient truncated toward zero (``-7 // 2 == -3``); 0 for ``/ 0``."""
    safe = np.where(b == 0, 1, b)
    q = np.floor_divide(a, safe)
    if a.dtype.kind == "i":
        q = q + ((np.fmod(a, safe) != 0) & ((a < 0) != (safe < 0))).astype(q.dtype)
    return np.where(b == 0, 0, q).astype(a.dtype, copy=False)


def _int_power(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer ``**`` as DALI: exact (wrapping) for non-negative exponents, 0 for a negative one (whatever
    the base, as DALI's ``ipow``)."""
    negative = b < 0
    if not negative.any():
        return np.power(a, b)
    result = np.power(a, np.where(negative, 0, b))
    return np.where(negative, np.zeros((), result.dtype), result)


def constant_array(value: Any) -> np.ndarray:
    """Return a constant operand as an array with DALI's types for Python numbers."""
    if isinstance(value, bool):
        return np.asarray(value, dtype=np.bool_)
    if isinstance(value, int):
        return np.asarray(value, dtype=np.int32)
    if isinstance(value, float):
        return np.asarray(value, dtype=np.float32)
    array = np.asarray(value)
    if array.dtype == np.float64 and not isinstance(value, (np.ndarray, np.generic)):
        return array.astype(np.float32)
    if array.dtype == np.int64 and not isinstance(value, (np.ndarray, np.generic)):
        return array.astype(np.int32)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"arithmetic on a DataNode needs a number or numeric array, not {type(value).__name__}")
    return array


def result_dtype(op: str, left: np.dtype, right: np.dtype) -> np.dtype:
    """The element type DALI gives ``left <op> right`` (the computation type, for comparisons)."""
    common = binary_promotion(left, right)
    if op == "div" and common.kind in "biu":
        return np.dtype(np.float32)
    return common


@register
class Arithmetic(Operator):
    """An element-wise arithmetic or comparison operator (created by DataNode operators)."""

    type = "arithmetic"
    internal = True
    EXAMPLE = Example(
        inputs=(Tensor("float32", (4,), ragged=(0,), low=-5, high=5), Tensor("int16", (1,), low=-3, high=3)),
        build=lambda a, b: (a * b + 1, a // b, -a),
        dali="exact",
    )
    ARGS = (
        Arg("op", sch.Str(("neg", *_BINARY)), sch.REQUIRED, "The operator"),
        Arg("left", sch.Anything("a number or numeric array"), None, "A constant left operand"),
        Arg("right", sch.Anything("a number or numeric array"), None, "A constant right operand"),
    )

    def validate(self) -> None:
        self.constants = {
            side: constant_array(self.args[side]) for side in ("left", "right") if self.args[side] is not None
        }
        operands = 1 if self.args["op"] == "neg" else 2
        if len(self.inputs) + len(self.constants) != operands or not self.inputs:
            raise TypeError(
                f"arithmetic {self.args['op']} takes {operands} operand(s), at least one a DataNode; got "
                f"{len(self.inputs)} DataNode(s) and {len(self.constants)} constant(s)"
            )
        if self.args["op"] in _BITWISE and any(a.dtype.kind == "f" for a in self.constants.values()):
            raise TypeError(f"bitwise {self.args['op']} needs integer or boolean operands, not floating-point")

    def _operands(self, inputs: list[Batch], index: int | None) -> tuple[np.ndarray, ...]:
        """The operands for sample ``index``, or for the whole batch (``index=None``, batch axis first)."""
        nodes = iter(inputs)
        sides = ("left",) if self.args["op"] == "neg" else ("left", "right")
        operands = [
            self.constants[side]
            if side in self.constants
            else (next(nodes).as_array() if index is None else next(nodes)[index])
            for side in sides
        ]
        if index is None:
            operands = batch_operands(operands, [side not in self.constants for side in sides])
        return tuple(operands)

    def _apply(self, operands: tuple[np.ndarray, ...]) -> np.ndarray:
        op = self.args["op"]
        if op in _ARITHMETIC and all(a.dtype.kind == "b" for a in operands):
            raise TypeError(
                f"arithmetic {op} on boolean operands only is not supported (as in DALI); use & | ^ on booleans, "
                "or cast one operand to a number"
            )
        if op == "neg":
            return np.negative(operands[0])
        left, right = operands
        dtype = result_dtype(op, left.dtype, right.dtype)
        if op in _BITWISE and dtype.kind == "f":
            raise TypeError(f"bitwise {op} needs integer or boolean operands, not {left.dtype} and {right.dtype}")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return _BINARY[op](left.astype(dtype, copy=False), right.astype(dtype, copy=False))

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        layout = common_layout([b.layout() for b in inputs], f"arithmetic {self.args['op']}")
        if all(b.is_dense_tensor() for b in inputs):
            out = Batch(self._apply(self._operands(inputs, None)))
        else:
            out = Batch.from_samples([self._apply(self._operands(inputs, i)) for i in range(ctx.batch_size)])
        ndims = out.dtypes_and_ndims()[1]
        return (out.with_meta(layout if ndims == {len(layout)} else "", None),)


def arithmetic(op: str, left: Any, right: Any = None) -> DataNode:
    """Add an arithmetic operator for ``left <op> right`` (or ``-left``) to the pipeline being defined."""
    # types.Constant(5).uint8(): a constant tensor of its type (the graph types.Constant always made)
    left, right = (constant_node(x) if isinstance(x, ScalarConstant) else x for x in (left, right))
    inputs = [x for x in (left, right) if isinstance(x, DataNode)]
    for operand in (left,) if op == "neg" else (left, right):
        if operand is None:  # None is "no constant" below: refuse it here, as DALI does
            raise TypeError("arithmetic on a DataNode needs a number or numeric array, not None")
    args = {
        "op": op,
        "left": None if isinstance(left, DataNode) else left,
        "right": None if isinstance(right, DataNode) or op == "neg" else right,
    }
    return add_operator(Arithmetic, inputs, args)


@register
class Cast(SampleOperator):
    """Convert the input to ``dtype`` (integers: rounded half away from zero, saturated)."""

    type = "cast"
    INPUTS = (sch.Input("data", "The values to convert", dtypes=sch.NUMBERS),)
    ARGS = (Arg("dtype", sch.DType(), sch.REQUIRED, "Target type, e.g. types.INT32 or numpy.float32", positional=True),)
    EXAMPLE = Example(
        inputs=(Tensor("float32", (3, 4), ragged=(1,), low=-40000, high=40000),), args={"dtype": np.dtype(np.int16)}
    )

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return saturate_cast(inputs[0], args["dtype"])

    def dense(self, ctx: RunContext, inputs: list, args: dict, layouts: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        return (saturate_cast(inputs[0], args["dtype"]),)


@register
class CastLike(SampleOperator):
    """Convert the first input to the element type of the second (DALI's ``fn.cast_like``)."""

    type = "cast_like"
    INPUTS = (
        sch.Input("data", "The values to convert", dtypes=sch.NUMBERS),
        sch.Input("like", "A batch whose element type the output takes", dtypes=sch.NUMBERS),
    )
    EXAMPLE = Example(inputs=(Tensor("float32", (5,), ragged=(0,), low=-300, high=300), Tensor("uint8", ())))

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return saturate_cast(inputs[0], inputs[1].dtype)

    def dense(self, ctx: RunContext, inputs: list, args: dict, layouts: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        return (saturate_cast(inputs[0], inputs[1].dtype),)

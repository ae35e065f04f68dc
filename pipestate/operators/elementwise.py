"""The element-wise functions of ``pipestate.math`` (DALI's ``nvidia.dali.math``): one internal operator.

``math.sqrt(x)``, ``math.clamp(x, lo, hi)``... add a ``math`` operator holding the function's name and
its constant operands; DataNode operands are its inputs. DALI's rules (``arithmetic_meta.h``):

- types: ``abs``, ``min``, ``max``, ``pow`` and ``clamp`` keep DALI's promotion of their operands
  (:mod:`pipestate.operators._promotion`); every other function gives float32 for integer operands and
  keeps a floating-point type (``fpow``/``atan2``: float32 when both operands are integers, else the
  promotion);
- Python ``int`` constants are int32, ``float`` float32, numpy scalars and arrays keep their type;
- operands broadcast per sample (numpy's rules on each sample's shapes);
- the output keeps the operands' common layout; a function of boolean operands only is an error;
- ``min``/``max`` return the right operand when the comparison is false (``min(x, nan)`` is ``nan``,
  ``min(nan, x)`` is ``x``), ``clamp`` keeps the value unless it is below ``lo`` or then above ``hi``, and
  integer ``pow`` is
  exact (a negative exponent gives 0, as DALI's).

Transcendental functions use numpy's float32 (or float64) implementations; they agree with DALI's
(C library) results within a few units in the last place, not bit for bit (``docs/tensors.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.graph import DataNode
from pipestate.operators import schema as sch
from pipestate.operators._promotion import batch_operands, common_layout, promote
from pipestate.operators.arithmetic import _int_power, constant_array
from pipestate.operators.base import Operator, RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg
from pipestate.tracing import add_operator


def _rsqrt(x: np.ndarray) -> np.ndarray:
    """DALI's: for float32 an estimate refined by one Newton step, ``y * (1.5 - x * 0.5 * y * y)`` (so 0 and
    inf give NaN), here with the exact reciprocal square root as the estimate; ``1 / sqrt(x)`` otherwise."""
    y = np.reciprocal(np.sqrt(x))
    if x.dtype != np.float32:
        return y
    half = np.float32(0.5)
    return y * (np.float32(1.5) - x * half * y * y)


def _pow(base: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    return _int_power(base, exponent) if base.dtype.kind in "iub" else np.power(base, exponent)


def _min(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """DALI's ``left < right ? left : right``: numpy's minimum but for a NaN on the left (DALI: the right)."""
    out = np.minimum(left, right)
    if left.dtype.kind == "f":
        nan = np.isnan(left)
        if nan.any():
            out = np.where(nan, right, out)
    return out


def _max(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """DALI's ``left > right ? left : right``."""
    out = np.maximum(left, right)
    if left.dtype.kind == "f":
        nan = np.isnan(left)
        if nan.any():
            out = np.where(nan, right, out)
    return out


def _clamp(value: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """DALI's ``x = value < lo ? lo : value; x > hi ? hi : x`` (ties keep the value: ``clamp(-0.0, 0, 0)`` is -0.0)."""
    if value.dtype.kind != "f":
        return np.minimum(np.maximum(value, lo), hi)
    x = np.where(value < lo, lo, value)
    return np.where(x > hi, hi, x)


def _abs(x: np.ndarray) -> np.ndarray:
    """DALI's ``x < 0 ? -x : x`` (so ``abs(-0.0)`` is ``-0.0``; integers wrap)."""
    if x.dtype.kind in "ub":
        return x
    return np.abs(x) if x.dtype.kind == "i" else np.where(x < 0, -x, x)


# name: (implementation, arity, integer operands give float32)
FUNCTIONS: dict[str, tuple[Callable[..., np.ndarray], int, bool]] = {
    "abs": (_abs, 1, False),
    "fabs": (np.abs, 1, True),
    "floor": (np.floor, 1, True),
    "ceil": (np.ceil, 1, True),
    "sqrt": (np.sqrt, 1, True),
    "rsqrt": (_rsqrt, 1, True),
    "cbrt": (np.cbrt, 1, True),
    "exp": (np.exp, 1, True),
    "log": (np.log, 1, True),
    "log2": (np.log2, 1, True),
    "log10": (np.log10, 1, True),
    "sin": (np.sin, 1, True),
    "cos": (np.cos, 1, True),
    "tan": (np.tan, 1, True),
    "asin": (np.arcsin, 1, True),
    "acos": (np.arccos, 1, True),
    "atan": (np.arctan, 1, True),
    "sinh": (np.sinh, 1, True),
    "cosh": (np.cosh, 1, True),
    "tanh": (np.tanh, 1, True),
    "asinh": (np.arcsinh, 1, True),
    "acosh": (np.arccosh, 1, True),
    "atanh": (np.arctanh, 1, True),
    "min": (_min, 2, False),
    "max": (_max, 2, False),
    "pow": (_pow, 2, False),
    "fpow": (np.power, 2, True),
    "atan2": (np.arctan2, 2, True),
    "clamp": (_clamp, 3, False),
}


def result_dtype(function: str, dtypes: list[np.dtype]) -> np.dtype:
    """The element type DALI gives ``function`` of operands of ``dtypes``."""
    _, _, to_float = FUNCTIONS[function]
    if to_float and all(d.kind != "f" for d in dtypes):
        return np.dtype(np.float32)
    return promote(dtypes)


def _math_module(node: Any) -> Any:
    """``pipestate.math``, or ``nvidia.dali.math`` for DALI's DataNodes (the example runs on both)."""
    if type(node).__module__.startswith("nvidia.dali"):
        import nvidia.dali.math as dali_math

        return dali_math
    from pipestate import math

    return math


def _example(x: Any, y: Any) -> tuple:
    m = _math_module(x)
    return (
        m.abs(y),
        m.floor(x),
        m.ceil(x),
        m.fabs(y),
        m.sqrt(m.abs(x)),
        m.min(x, y),
        m.max(y, 2),
        m.clamp(y, -2, 3.5),
        m.pow(y, 2),
        m.clamp(x, y, 2.0),
    )


@register
class MathFunction(Operator):
    """An element-wise function of ``pipestate.math`` (created by ``math.sqrt(x)`` etc.)."""

    type = "math"
    internal = True
    EXAMPLE = Example(
        inputs=(Tensor("float32", (4, 3), ragged=(0,), low=-6, high=6), Tensor("int16", (3,), low=-9, high=9)),
        build=_example,
        dali="exact",
    )
    ARGS = (
        Arg("function", sch.Str(tuple(FUNCTIONS)), sch.REQUIRED, "The function"),
        Arg(
            "constants",
            sch.Anything("one entry per operand: None for a DataNode input, else the constant"),
            (),
            "The constant operands",
        ),
    )

    def validate(self) -> None:
        function = self.args["function"]
        _, arity, _ = FUNCTIONS[function]
        constants = self.args["constants"]
        if not isinstance(constants, (list, tuple)) or len(constants) != arity:
            raise TypeError(f"math.{function}() takes {arity} operand(s)")
        self.operands = [None if c is None else constant_array(c) for c in constants]
        if sum(c is None for c in self.operands) != len(self.inputs) or not self.inputs:
            raise TypeError(f"math.{function}() needs at least one DataNode operand (one per None constant)")

    def _compute(self, arrays: list[np.ndarray]) -> np.ndarray:
        function = self.args["function"]
        impl, _, _ = FUNCTIONS[function]
        if all(a.dtype.kind == "b" for a in arrays):
            raise TypeError(f"math.{function}() of boolean operands only is not supported (as in DALI); cast first")
        dtype = result_dtype(function, [a.dtype for a in arrays])
        with np.errstate(all="ignore"):
            out = impl(*(a.astype(dtype, copy=False) for a in arrays))
        return out.astype(dtype, copy=False)

    def _arrays(self, inputs: list[Batch], index: int | None) -> list[np.ndarray]:
        nodes = iter(inputs)
        arrays, is_batch = [], []
        for constant in self.operands:
            if constant is not None:
                arrays.append(constant)
            else:
                batch = next(nodes)
                arrays.append(batch.as_array() if index is None else batch[index])
            is_batch.append(constant is None)
        return batch_operands(arrays, is_batch) if index is None else arrays

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        layout = common_layout([b.layout() for b in inputs], f"math.{self.args['function']}()")
        if all(b.is_dense_tensor() for b in inputs):
            out = Batch(self._compute(self._arrays(inputs, None)))
        else:
            out = Batch.from_samples([self._compute(self._arrays(inputs, i)) for i in range(ctx.batch_size)])
        ndims = out.dtypes_and_ndims()[1]
        return (out.with_meta(layout if ndims == {len(layout)} else "", None),)


def math_function(function: str, *operands: Any) -> DataNode:
    """Add a ``math`` operator computing ``function(*operands)`` to the pipeline being defined.

    Raises:
        TypeError: no operand is a DataNode, or an operand is neither a DataNode nor a number or numeric
            array.
    """
    for i, operand in enumerate(operands):
        if not isinstance(operand, DataNode):
            try:
                constant_array(operand)
            except (TypeError, ValueError):
                raise TypeError(
                    f"math.{function}(): operand {i} is {type(operand).__name__}; operands are DataNodes, numbers "
                    "or numeric arrays"
                ) from None
    inputs = [x for x in operands if isinstance(x, DataNode)]
    constants = tuple(None if isinstance(x, DataNode) else x for x in operands)
    return add_operator(MathFunction, inputs, {"function": function, "constants": constants})

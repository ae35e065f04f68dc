"""DALI's ``nvidia.dali.math`` module: element-wise mathematical functions of DataNodes.

Each function adds an element-wise operator to the pipeline being defined. Operands are DataNodes,
Python numbers (``int`` is int32, ``float`` float32, as in DALI) or numpy scalars and arrays (their own
type); at least one is a DataNode. Operands broadcast per sample, the result keeps the operands' common
layout, and types follow DALI's promotion rules (see ``docs/tensors.md``)::

    from pipestate import fn, math, pipeline_def

    @pipeline_def(batch_size=4)
    def pipe():
        x = fn.random.uniform(range=[-5.0, 5.0], shape=[3])
        return math.floor(x), math.clamp(x, -1, 1.5), math.pow(2, fn.random.uniform(range=[0.0, 3.0]))
"""

from __future__ import annotations

from typing import Any

from pipestate.graph import DataNode
from pipestate.operators.elementwise import math_function

__all__ = [
    "abs",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "cbrt",
    "ceil",
    "clamp",
    "cos",
    "cosh",
    "exp",
    "fabs",
    "floor",
    "fpow",
    "log",
    "log10",
    "log2",
    "max",
    "min",
    "pow",
    "rsqrt",
    "sin",
    "sinh",
    "sqrt",
    "tan",
    "tanh",
]


def sqrt(input: Any) -> DataNode:
    """Square root of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("sqrt", input)


def rsqrt(input: Any) -> DataNode:
    """Reciprocal of the square root of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("rsqrt", input)


def cbrt(input: Any) -> DataNode:
    """Cube root of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("cbrt", input)


def exp(input: Any) -> DataNode:
    """Exponential of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("exp", input)


def log(input: Any) -> DataNode:
    """Natural logarithm of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("log", input)


def log2(input: Any) -> DataNode:
    """Base-2 logarithm of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("log2", input)


def log10(input: Any) -> DataNode:
    """Base-10 logarithm of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("log10", input)


def abs(input: Any) -> DataNode:
    """Absolute value of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of the input's type (integers wrap: ``abs(-128)`` is -128 in int8).
    """
    return math_function("abs", input)


def fabs(input: Any) -> DataNode:
    """Floating-point absolute value of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("fabs", input)


def floor(input: Any) -> DataNode:
    """Floor of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("floor", input)


def ceil(input: Any) -> DataNode:
    """Ceiling of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("ceil", input)


def sin(input: Any) -> DataNode:
    """Sine of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("sin", input)


def cos(input: Any) -> DataNode:
    """Cosine of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("cos", input)


def tan(input: Any) -> DataNode:
    """Tangent of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("tan", input)


def asin(input: Any) -> DataNode:
    """Arc sine of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("asin", input)


def acos(input: Any) -> DataNode:
    """Arc cosine of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("acos", input)


def atan(input: Any) -> DataNode:
    """Arc tangent of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("atan", input)


def sinh(input: Any) -> DataNode:
    """Hyperbolic sine of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("sinh", input)


def cosh(input: Any) -> DataNode:
    """Hyperbolic cosine of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("cosh", input)


def tanh(input: Any) -> DataNode:
    """Hyperbolic tangent of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("tanh", input)


def asinh(input: Any) -> DataNode:
    """Inverse hyperbolic sine of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("asinh", input)


def acosh(input: Any) -> DataNode:
    """Inverse hyperbolic cosine of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("acosh", input)


def atanh(input: Any) -> DataNode:
    """Inverse hyperbolic tangent of ``input``, element-wise.

    Args:
        input: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 for integer input, else the input's type.
    """
    return math_function("atanh", input)


def min(left: Any, right: Any) -> DataNode:
    """Element-wise minimum of ``left`` and ``right`` (``left < right ? left : right``).

    Args:
        left: A DataNode, number or numeric array.
        right: A DataNode, number or numeric array.

    Returns:
        A DataNode of the promoted type of the operands.
    """
    return math_function("min", left, right)


def max(left: Any, right: Any) -> DataNode:
    """Element-wise maximum of ``left`` and ``right`` (``left > right ? left : right``).

    Args:
        left: A DataNode, number or numeric array.
        right: A DataNode, number or numeric array.

    Returns:
        A DataNode of the promoted type of the operands.
    """
    return math_function("max", left, right)


def pow(base: Any, exponent: Any) -> DataNode:
    """``base`` to the power ``exponent``, element-wise (exact for integers).

    Args:
        base: A DataNode, number or numeric array.
        exponent: A DataNode, number or numeric array.

    Returns:
        A DataNode of the promoted type of the operands.
    """
    return math_function("pow", base, exponent)


def fpow(base: Any, exponent: Any) -> DataNode:
    """``base`` to the power ``exponent`` computed in floating point, element-wise.

    Args:
        base: A DataNode, number or numeric array.
        exponent: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 when both operands are integers, else the promoted type.
    """
    return math_function("fpow", base, exponent)


def atan2(x: Any, y: Any) -> DataNode:
    """Arc tangent of ``x / y``, element-wise, using the signs of both for the quadrant.

    Args:
        x: A DataNode, number or numeric array.
        y: A DataNode, number or numeric array.

    Returns:
        A DataNode of float32 when both operands are integers, else the promoted type.
    """
    return math_function("atan2", x, y)


def clamp(value: Any, lo: Any, hi: Any) -> DataNode:
    """``value`` clamped to ``[lo, hi]``, element-wise (``min(max(value, lo), hi)``).

    Args:
        value: A DataNode, number or numeric array.
        lo: A DataNode, number or numeric array.
        hi: A DataNode, number or numeric array.

    Returns:
        A DataNode of the promoted type of the three operands.
    """
    return math_function("clamp", value, lo, hi)

"""Integer codes to values: ``fn.lookup_table`` and ``fn.one_hot``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator, saturate_cast
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

_MAX_KEY = 65535
_MAX_CLASSES = 2**24  # a bound, so that a mistyped count fails at once instead of allocating for minutes


@register
class LookupTable(SampleOperator):
    """Map each integer through the table ``keys -> values``; other integers give ``default_value``.

    The table holds the values converted to ``dtype`` (rounded half away from zero and saturated for
    integer types); the last of repeated keys wins.
    """

    type = "lookup_table"
    INPUTS = (sch.Input("data", "Integer keys", sch.INTEGERS),)
    ARGS = (
        Arg("keys", sch.Seq(sch.Int(0, _MAX_KEY), broadcast=True), (), "The keys (0..65535)"),
        Arg("values", sch.Seq(sch.Float(), broadcast=True), (), "The value of each key"),
        Arg("default_value", sch.Float(), 0.0, "The value of integers that are not keys"),
        Arg("dtype", sch.DType(), np.dtype(np.float32), "Output type"),
        Arg("output_dtype", sch.DType(), None, "Deprecated alias of dtype (as in DALI)"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("int32", (4, 3), layout="HW", ragged=(0,), low=-2, high=7),),
        args={"keys": [0, 2, 3, 4, 5, 3], "values": [0.2, 0.4, 0.5, 0.6, 0.7, 0.1], "default_value": 0.99},
    )

    def validate(self) -> None:
        super().validate()
        keys, values = self.args["keys"], self.args["values"]
        if len(keys) != len(values):
            raise ValueError(f"fn.lookup_table(): keys= has {len(keys)} values but values= has {len(values)}")
        dtype = self.args["output_dtype"] if self.args["output_dtype"] is not None else self.args["dtype"]
        self.default = saturate_cast(np.asarray(np.float32(self.args["default_value"])), dtype)
        table = np.full(max(keys, default=-1) + 1, self.default, dtype=dtype)
        table[list(keys)] = saturate_cast(np.asarray(values, np.float32), dtype)
        self.table = table
        self._full: dict[np.dtype, np.ndarray] = {}  # per 8/16-bit input type: the value of every input

    def _lookup(self, x: np.ndarray) -> np.ndarray:
        if x.dtype.itemsize <= 2:  # one table entry per possible value: a single gather
            unsigned = np.dtype(f"uint{8 * x.dtype.itemsize}")
            full = self._full.get(x.dtype)
            if full is None:
                values = np.arange(2 ** (8 * x.dtype.itemsize), dtype=np.int64).astype(unsigned).view(x.dtype)
                full = self._slow(values)
                self._full[x.dtype] = full
            return full[x.view(unsigned)]
        return self._slow(x)

    def _slow(self, x: np.ndarray) -> np.ndarray:
        n = len(self.table)
        inside = (x >= 0) & (x < n) if x.dtype.kind == "i" else x < n
        index = np.where(inside, x, 0).astype(np.intp, copy=False)
        return np.where(inside, self.table[index] if n else self.default, self.default).astype(self.table.dtype)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return self._lookup(inputs[0])

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        return (self._lookup(inputs[0]),)


def _static_cast(value: float, dtype: np.dtype) -> np.ndarray:
    """C's conversion of a float to ``dtype`` (integers: truncated, then wrapped), as DALI's ``one_hot``."""
    if dtype.kind == "b":
        return np.asarray(value != 0)
    if dtype.kind in "iu":  # wrapped modulo 2**64 (C leaves out-of-range conversions undefined)
        return np.asarray(int(np.trunc(value)) % 2**64, np.uint64).astype(dtype)
    return np.asarray(np.float32(value)).astype(dtype)


@register
class OneHot(SampleOperator):
    """One-hot encoding: a new axis of ``num_classes`` holding ``on_value`` at each element's class.

    Every sample of one element (with ``axis`` not given) counts as a scalar, as DALI's legacy rule.
    """

    type = "one_hot"
    INPUTS = (sch.Input("data", "Class indices (floats are truncated)", (*sch.INTEGERS, *sch.FLOATS)),)
    ARGS = (
        Arg("num_classes", sch.Int(0, _MAX_CLASSES), 0, "Number of classes"),
        Arg("axis", sch.Int(-1), -1, "Position of the new axis (-1: last)"),
        Arg("axis_name", sch.Str(), None, "Layout letter of the new axis (default: the layout is cleared)"),
        Arg("dtype", sch.DType(), np.dtype(np.float32), "Output type"),
        Arg("on_value", sch.Float(), 1.0, "Value at the class"),
        Arg("off_value", sch.Float(), 0.0, "Value elsewhere"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("int32", (5,), layout="X", ragged=(0,), low=-1, high=4),),
        args={"num_classes": 4, "axis_name": "C", "dtype": np.dtype(np.int16), "on_value": 7, "off_value": -2},
    )

    def validate(self) -> None:
        super().validate()
        name = self.args["axis_name"]
        if name is not None and len(name) != 1:
            raise ValueError(f"fn.one_hot(): axis_name={name!r} must be one letter")
        dtype = self.args["dtype"]
        self.on, self.off = _static_cast(self.args["on_value"], dtype), _static_cast(self.args["off_value"], dtype)

    def prepare(
        self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch], layouts: tuple[str, ...]
    ) -> dict[str, Sequence] | None:
        scalar = "axis" not in self.raw_args and len(inputs[0]) > 0 and all(s.size == 1 for s in inputs[0])
        if scalar and not inputs[0].is_dense_tensor():
            return {"_scalar": [True] * len(inputs[0])}
        return None

    def _encode(self, x: np.ndarray, layout: str, first: int, scalar: bool) -> np.ndarray:
        if scalar:
            x = x.reshape(x.shape[:first])
        ndim = x.ndim - first
        axis = self.args["axis"]
        if axis > ndim:
            raise ValueError(f"axis={axis} is out of range for {ndim}-dimensional input (valid: -1..{ndim})")
        if self.args["axis_name"] is not None and ndim and not scalar and not layout:
            raise ValueError("axis_name= needs an input layout to insert the new axis into")
        position = (ndim if axis < 0 else axis) + first
        with np.errstate(invalid="ignore"):
            classes = np.trunc(x).astype(np.int64) if x.dtype.kind == "f" else x.astype(np.int64)
        hot = np.expand_dims(classes, position) == np.arange(self.args["num_classes"]).reshape(
            (-1,) + (1,) * (x.ndim - position)
        )
        return np.where(hot, self.on, self.off)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return self._encode(inputs[0], s.layouts[0], 0, bool(args.get("_scalar", False)))

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        x = inputs[0]
        scalar = "axis" not in self.raw_args and x.size == len(x)
        return (self._encode(x, layouts[0], 1, scalar),)

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        name = self.args["axis_name"]
        if name is None:
            return ""
        layout = layouts[0] if len(layouts[0]) == ndim - 1 else ""
        axis = self.args["axis"]
        position = len(layout) if axis < 0 else axis
        return layout[:position] + name + layout[position:]

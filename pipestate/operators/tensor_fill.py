"""New tensors filled with one value: ``fn.full``, ``fn.full_like``, ``fn.zeros``, ``fn.zeros_like``,
``fn.ones``, ``fn.ones_like``.

As DALI's: ``shape`` (per sample if a DataNode; default a scalar) and ``layout`` (as many letters as the
shape has axes) give the output; ``*_like`` take the shape, type and layout of ``data_like``. A non-scalar
fill value broadcasts as numpy's (innermost axes first). Values convert to integer types by rounding half
away from zero and saturating. The outputs are read-only broadcast views (as ``fn.constant``'s): no memory
is filled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator, saturate_cast
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

_SHAPE = Arg(
    "shape", sch.Seq(sch.Int(0), broadcast=True), None, "Shape of each output sample (default: scalar)", tensor=True
)
_LAYOUT = Arg("layout", sch.Str(), None, "Layout of the output (as many letters as the shape has axes)")
_DATA_LIKE = sch.Input("data_like", "The tensors whose shape, type and layout are copied")


def _filled(value: np.ndarray, shape: tuple[int, ...], where: str, first: int = 0) -> np.ndarray:
    """``value`` broadcast to ``shape`` (a read-only view; ``first``: 1 when both lead with the batch axis)."""
    try:
        return np.broadcast_to(value, shape)
    except ValueError:
        raise ValueError(
            f"{where} of shape {value.shape[first:]} does not broadcast to shape {tuple(shape[first:])}"
        ) from None


class _Shaped(SampleOperator):
    """``full``, ``zeros`` and ``ones``: the shape from ``shape=``, the layout from ``layout=``."""

    def _shape(self, args: Mapping[str, Any]) -> tuple[int, ...]:
        shape = tuple(args["shape"]) if args["shape"] is not None else ()
        layout = self.args["layout"]
        if layout and len(layout) != len(shape):
            raise ValueError(f"layout={layout!r} has {len(layout)} letters for {len(shape)}-dimensional output")
        return shape

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return self.args["layout"] or ""


@register
class Full(_Shaped):
    """Tensors of ``shape`` filled with ``fill_value`` (of its type; a non-scalar value broadcasts)."""

    type = "full"
    INPUTS = (sch.Input("fill_value", "The fill value (a number or a tensor that broadcasts to the shape)"),)
    ARGS = (_SHAPE, _LAYOUT)
    EXAMPLE = Example(inputs=(Tensor("float32", (3,), low=-5, high=5),), args={"shape": [2, 3], "layout": "HW"})

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return _filled(inputs[0], self._shape(args), "fill_value")

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        if "shape" in self.arg_inputs:
            return None
        value = inputs[0]
        shape = self._shape(args)
        head = value.reshape(value.shape[:1] + (1,) * max(len(shape) - (value.ndim - 1), 0) + value.shape[1:])
        return (_filled(head, (len(value), *shape), "fill_value", 1),)


class _Constant(_Shaped):
    """``zeros`` and ``ones``."""

    VALUE: ClassVar[int]
    INPUTS = ()

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return np.broadcast_to(np.array(self.VALUE, dtype=self.args["dtype"]), self._shape(args))

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        if "shape" in self.arg_inputs:
            return None
        value = np.array(self.VALUE, dtype=self.args["dtype"])
        return (np.broadcast_to(value, (ctx.batch_size, *self._shape(args))),)  # read-only, as fn.constant's


_DTYPE = Arg("dtype", sch.DType(), np.dtype(np.int32), "Output type")


@register
class Zeros(_Constant):
    """Tensors of ``shape`` filled with 0."""

    type = "zeros"
    VALUE = 0
    ARGS = (_SHAPE, _DTYPE, _LAYOUT)
    EXAMPLE = Example(arg_inputs={"shape": Tensor("int32", (2,), low=1, high=4)}, args={"dtype": np.dtype(np.uint8)})


@register
class Ones(_Constant):
    """Tensors of ``shape`` filled with 1."""

    type = "ones"
    VALUE = 1
    ARGS = (_SHAPE, _DTYPE, _LAYOUT)
    EXAMPLE = Example(args={"shape": [2, 3], "dtype": np.dtype(np.float32), "layout": "HW"})


class _Like(SampleOperator):
    """``*_like``: the shape and layout of ``data_like``."""

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return layouts[0] if len(layouts[0]) == ndim else ""


@register
class FullLike(_Like):
    """Tensors of ``data_like``'s shape, type and layout filled with ``fill_value`` (converted, broadcast)."""

    type = "full_like"
    INPUTS = (_DATA_LIKE, sch.Input("fill_value", "The fill value (a number or a tensor that broadcasts)"))
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (4, 3), layout="HW", ragged=(0,)), Tensor("float32", (3,), low=-100, high=400))
    )

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        like, value = inputs
        return _filled(saturate_cast(value, like.dtype), like.shape, "fill_value")

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        like, value = inputs
        value = saturate_cast(value, like.dtype)
        head = value.reshape(value.shape[:1] + (1,) * max(like.ndim - value.ndim, 0) + value.shape[1:])
        return (_filled(head, like.shape, "fill_value", 1),)


class _ConstantLike(_Like):
    """``zeros_like`` and ``ones_like``."""

    VALUE: ClassVar[int]
    INPUTS = (_DATA_LIKE,)
    ARGS = (Arg("dtype", sch.DType(), None, "Output type (default: data_like's)"),)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        like = inputs[0]
        return np.broadcast_to(np.array(self.VALUE, dtype=self.args["dtype"] or like.dtype), like.shape)

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        like = inputs[0]
        return (np.broadcast_to(np.array(self.VALUE, dtype=self.args["dtype"] or like.dtype), like.shape),)


@register
class ZerosLike(_ConstantLike):
    """Tensors of ``data_like``'s shape and layout (and type, unless ``dtype``) filled with 0."""

    type = "zeros_like"
    VALUE = 0
    EXAMPLE = Example(inputs=(Tensor("int16", (4, 3), layout="HW", ragged=(0, 1)),))


@register
class OnesLike(_ConstantLike):
    """Tensors of ``data_like``'s shape and layout (and type, unless ``dtype``) filled with 1."""

    type = "ones_like"
    VALUE = 1
    EXAMPLE = Example(inputs=(Tensor("float32", (2, 5), ragged=(1,)),), args={"dtype": np.dtype(np.bool_)})

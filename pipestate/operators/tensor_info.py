"""What a batch says about itself, and plain copies: ``fn.shapes``, ``fn.get_property``, ``fn.copy``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import Operator, RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

_SHAPE_TYPES = tuple(np.dtype(t) for t in ("int32", "uint32", "int64", "uint64", "float32", "float64"))


@register
class Shapes(SampleOperator):
    """The shape of each sample, as a 1-D tensor (int64 by default)."""

    type = "shapes"
    INPUTS = (sch.Input("data", "The tensors whose shapes are returned"),)
    ARGS = (
        Arg(
            "dtype",
            sch.DType(),
            np.dtype(np.int64),
            "Type of the output: int32, uint32, int64, uint64, float or double",
        ),
        Arg("type", sch.DType(), None, "Deprecated alias of dtype (as in DALI)"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (5, 4, 3), layout="HWC", ragged=(0, 1)),), args={"dtype": np.dtype(np.int32)}
    )

    def validate(self) -> None:
        super().validate()
        self.dtype = self.args["type"] if self.args["type"] is not None else self.args["dtype"]
        if self.dtype not in _SHAPE_TYPES:
            names = ", ".join(str(t) for t in _SHAPE_TYPES)
            raise TypeError(f"fn.shapes(): dtype={self.dtype} is not supported; use one of {names}")

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return np.array(inputs[0].shape, dtype=self.dtype).reshape(-1)

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        x = inputs[0]
        shape = np.array(x.shape[1:], dtype=self.dtype).reshape(1, -1)
        return (np.repeat(shape, len(x), axis=0),)

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""


@register
class Copy(SampleOperator):
    """A copy of the input (same type, shape and layout)."""

    type = "copy"
    INPUTS = (sch.Input("data", "The data to copy"),)
    EXAMPLE = Example(inputs=(Tensor("int32", (4, 3), layout="HW", ragged=(0,), low=-50, high=50),))

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return inputs[0].copy()

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        return (inputs[0].copy(),)


@register
class GetProperty(Operator):
    """A property of each sample as a 1-D uint8 tensor of its bytes: ``"layout"`` or ``"source_info"`` (where
    the sample came from, e.g. its file name; empty when unknown)."""

    type = "get_property"
    ARGS = (Arg("key", sch.Str(("layout", "source_info")), sch.REQUIRED, "The property: 'layout' or 'source_info'"),)
    EXAMPLE = Example(inputs=(Tensor("uint8", (3, 2), layout="HW", ragged=(0,)),), args={"key": "layout"})

    def validate(self) -> None:
        if len(self.inputs) != 1:
            raise TypeError(f"fn.get_property() takes one input; got {len(self.inputs)}")

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        batch = inputs[0]
        if self.args["key"] == "layout":
            texts = [batch.layout()] * len(batch)
        else:
            texts = [batch.source_info(i) for i in range(len(batch))]
        return (Batch([np.frombuffer(t.encode(), np.uint8).copy() for t in texts]),)

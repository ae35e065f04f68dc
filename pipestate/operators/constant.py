"""``fn.constant`` and ``types.Constant``: the same value in every sample (also made from numbers and
numpy arrays given where DataNodes are expected)."""

from __future__ import annotations

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators.base import Operator, RunContext, register
from pipestate.operators.example import Example
from pipestate.operators.schema import Arg


@register
class Constant(Operator):
    """A constant tensor: ``idata`` (integers) or ``fdata`` (floats) reshaped to ``shape`` (DALI's ``fn.constant``)."""

    type = "constant"
    EXAMPLE = Example(args={"fdata": [1.5, -2.0, 3.25, 0.0], "shape": [2, 2], "layout": "HW"})
    ARGS = (
        Arg("idata", sch.Seq(sch.Int(), broadcast=True), None, "Integer contents (int32 by default)"),
        Arg("fdata", sch.Seq(sch.Float(), broadcast=True), None, "Floating-point contents (float32 by default)"),
        Arg(
            "shape",
            sch.Seq(sch.Int(0), broadcast=True),
            None,
            "Shape of the output (default: 1-D, or a scalar for one value)",
        ),
        Arg("dtype", sch.DType(), None, "Output type"),
        Arg("layout", sch.Str(), None, "Layout of the output, e.g. 'HWC'"),
    )

    def validate(self) -> None:
        if self.inputs:
            raise TypeError("fn.constant() takes no inputs")
        idata, fdata = self.args["idata"], self.args["fdata"]
        if (idata is None) == (fdata is None):
            raise TypeError("fn.constant() needs exactly one of idata= (integers) or fdata= (floats)")
        default = np.int32 if idata is not None else np.float32
        dtype = self.args["dtype"] if self.args["dtype"] is not None else np.dtype(default)
        values = np.asarray(idata if idata is not None else fdata)
        with np.errstate(over="ignore", invalid="ignore"):
            converted = values.astype(dtype)
        if dtype.kind in "iub" and idata is not None and (converted.astype(np.int64) != values).any():
            raise ValueError(f"fn.constant(): idata does not fit dtype {dtype}")
        shape = self.args["shape"]
        if shape is None:
            shape = values.shape
        if values.size == 1 and int(np.prod(shape)) != 1:  # one value fills the shape, as in DALI
            converted = np.full(tuple(shape), converted.reshape(-1)[0], dtype=converted.dtype)
            values = converted
        if int(np.prod(shape)) != values.size:
            raise ValueError(
                f"fn.constant(): shape={list(shape)} holds {int(np.prod(shape))} values, the data has {values.size}"
            )
        self.value = converted.reshape(shape)
        self.value.flags.writeable = False

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        data = np.broadcast_to(self.value, (ctx.batch_size, *self.value.shape))
        return (Batch(data, layout=self.args["layout"]),)

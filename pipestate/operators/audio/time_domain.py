"""Time-domain audio operators: ``fn.preemphasis_filter`` and ``fn.nonsilent_region`` (DALI's CPU arithmetic)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator, saturate_cast
from pipestate.operators.audio import _kernels
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")


@register
class PreemphasisFilter(SampleOperator):
    """``y[t] = x[t] - coeff * x[t-1]`` over the flattened sample (DALI's ``fn.preemphasis_filter``); the first
    value uses ``x[-1] = 0`` (``border="zero"``), ``x[0]`` (``"clamp"``) or ``x[1]`` (``"reflect"``). Computed in
    float32 (float64 for float64 input), converted to ``dtype`` with rounding and saturation.

    Raises:
        ValueError: an unsupported ``dtype``.
    """

    type = "preemphasis_filter"
    INPUTS = (sch.Input("input", "Signal (any shape; filtered as one flat sequence)", _TYPES),)
    ARGS = (
        Arg("preemph_coeff", sch.Float(), 0.97, "The coefficient", tensor=True),
        Arg("border", sch.Str(("zero", "clamp", "reflect")), "clamp", "The value before the first sample"),
        Arg("dtype", sch.DType(), np.dtype(np.float32), "Output type"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("int16", (40,), ragged=(0,), low=-3000, high=3000),),
        args={"border": "reflect", "dtype": np.dtype(np.int16)},
        arg_inputs={"preemph_coeff": Tensor("float32", (), low=0.5, high=1.0)},
    )

    def validate(self) -> None:
        super().validate()
        if self.args["dtype"] not in tuple(np.dtype(t) for t in _TYPES):
            raise ValueError(f"fn.preemphasis_filter(): dtype={self.args['dtype']} must be one of {', '.join(_TYPES)}")

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        flat = x.reshape(-1)
        coeff = np.float32(args["preemph_coeff"])
        out = self._filter(flat[None], np.asarray([coeff]))[0]
        return out.reshape(x.shape)

    def dense(self, ctx: RunContext, inputs: list[np.ndarray], args: dict, layouts: tuple[str, ...]) -> tuple:
        x = inputs[0]
        coeff = np.broadcast_to(np.asarray(args["preemph_coeff"], dtype=np.float32), (len(x),))
        return (self._filter(x.reshape(len(x), -1), coeff).reshape(x.shape),)

    def _filter(self, x: np.ndarray, coeff: np.ndarray) -> np.ndarray:
        """Rows of ``x`` filtered with their coefficient (float32 arithmetic, float64 for float64 input)."""
        work = np.float64 if x.dtype == np.float64 else np.float32
        v = x.astype(work)
        c = coeff.astype(np.float32).astype(work)[:, None]
        out = np.empty_like(v)
        if v.shape[1]:
            border = self.args["border"]
            if border == "zero":
                out[:, 0] = v[:, 0]
            else:
                prev = v[:, 1] if border == "reflect" and v.shape[1] > 1 else v[:, 0]
                out[:, 0] = v[:, 0] - c[:, 0] * prev
            out[:, 1:] = v[:, 1:] - c * v[:, :-1]
        out = np.where(c == 0, v, out)  # DALI copies (converts) the input when the coefficient is 0
        return saturate_cast(out, self.args["dtype"])


@register
class NonsilentRegion(SampleOperator):
    """The non-silent part of a 1-D signal (DALI's ``fn.nonsilent_region``): the first and last windows whose
    mean power, in dB relative to ``reference_power`` (default: the maximum), reaches ``cutoff_db``.

    Returns:
        begin and length (int32 scalars); ``(0, 0)`` for a silent signal.

    Raises:
        ValueError: ``reset_interval`` not a multiple of ``window_length`` (float input).
    """

    type = "nonsilent_region"
    INPUTS = (sch.Input("input", "1-D signal", _TYPES, (1,)),)
    ARGS = (
        Arg("cutoff_db", sch.Float(), -60.0, "Threshold in dB below which the signal is silent"),
        Arg("window_length", sch.Int(1), 2048, "Window of the short-term power, in samples"),
        Arg("reference_power", sch.Float(), 0.0, "Reference power for dB (0: the maximum)"),
        Arg("reset_interval", sch.Int(-1), 8192, "Samples after which the running mean is recomputed (-1: never)"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (300,), ragged=(0,), low=-1, high=1),),
        args={"window_length": 16, "reset_interval": 64, "cutoff_db": -3.0},
    )

    def validate(self) -> None:
        super().validate()
        a = self.args
        self.num_outputs = 2
        if a["reference_power"] < 0:
            raise ValueError(f"fn.nonsilent_region(): reference_power={a['reference_power']} must be positive")
        if a["reset_interval"] == 0:
            raise ValueError("fn.nonsilent_region(): reset_interval must be positive or -1")

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> tuple:
        (x,) = inputs
        a = self.args
        reset = a["reset_interval"] if x.dtype.kind == "f" else -1
        if reset != -1 and reset % a["window_length"]:
            raise ValueError(
                f"reset_interval={reset} must be a multiple of window_length={a['window_length']} (or -1)"
            )
        n = len(x)
        if n == 0:
            return np.int32(0), np.int32(0)
        window = min(a["window_length"], n)
        mms = _kernels.moving_mean_square(x, window, reset)
        reference = np.float32(mms.max()) if a["reference_power"] == 0 else np.float32(a["reference_power"])
        exponent = np.float32(a["cutoff_db"]) * np.float32(np.float32(1.0) / np.float32(10.0))
        with np.errstate(over="ignore", under="ignore"):  # as C's pow: inf or 0 out of range
            cutoff = reference * np.float32(np.power(10.0, float(exponent)))
        above = np.flatnonzero(mms >= cutoff)
        if not len(above):
            return np.int32(0), np.int32(0)
        begin, last = int(above[0]), int(above[-1])
        return np.int32(begin), np.int32(last - begin + 1 + window - 1)

"""``fn.audio_resample``: DALI's windowed-sinc resampling of 1-D signals or ``(time, channels)`` samples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.audio import _kernels, _resampling
from pipestate.operators.base import register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

_TYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float32")


def _example_rates(index: int) -> float:
    return [16000.0, 22050.0, 8000.0][index % 3]


@register
class AudioResample(SampleOperator):
    """Resample audio with DALI's Hann-windowed sinc filter (``fn.audio_resample``), bit-exact.

    Give the ratio as ``in_rate`` and ``out_rate``, as ``scale`` (``out_rate / in_rate``) or as ``out_length``.
    The output has ``ceil(length * out_rate / in_rate)`` samples (``out_length`` exactly). Integer input is
    normalized to [-1, 1] before filtering and the result converted back to ``dtype`` (the input's type by
    default), as DALI: float to integer assumes the [-1, 1] range, signed to unsigned maps 0 to half-range.

    Raises:
        TypeError / ValueError: none or several of the ratio arguments, ``quality`` outside [0, 100], an
            unsupported ``dtype``, a non-positive ``in_rate`` or a negative ``out_rate``/``scale`` (naming the
            sample), or a non-empty ``out_length`` from an empty input.
    """

    type = "audio_resample"
    INPUTS = (sch.Input("input", "Audio: (time,) or (time, channels)", _TYPES, (1, 2)),)
    ARGS = (
        Arg("in_rate", sch.Float(), None, "Input sampling rate (with out_rate)", tensor=True),
        Arg("out_rate", sch.Float(), None, "Output sampling rate (with in_rate)", tensor=True),
        Arg("scale", sch.Float(), None, "The ratio out_rate / in_rate", tensor=True),
        Arg("out_length", sch.Int(), None, "The output length in samples", tensor=True),
        Arg("quality", sch.Float(0, 100), 50.0, "0: 3 sinc lobes, 50: 16, 100: 64"),
        Arg("dtype", sch.DType(), None, "Output type (default: the input's); values normalized to its range"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (300,), ragged=(0,), low=-1, high=1),),
        args={"out_rate": 16000.0, "quality": 40.0},
        arg_inputs={"in_rate": Tensor("float32", (), values=_example_rates)},
    )

    def validate(self) -> None:
        super().validate()
        a = self.args
        given = [name for name in ("in_rate", "scale", "out_length") if a[name] is not None]
        if (a["in_rate"] is None) != (a["out_rate"] is None):
            raise TypeError("fn.audio_resample(): give in_rate and out_rate together")
        if len(given) != 1:
            raise TypeError(
                "fn.audio_resample(): give exactly one of in_rate/out_rate, scale or out_length"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if a["dtype"] is not None and a["dtype"] not in tuple(np.dtype(t) for t in _TYPES):
            raise ValueError(f"fn.audio_resample(): dtype={a['dtype']} must be one of {', '.join(_TYPES)}")
        self.lobes = _resampling.lobes_for_quality(a["quality"])

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return layouts[0] if layouts and len(layouts[0]) == ndim else ""

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        n = x.shape[0]
        if args["in_rate"] is not None:
            in_rate, out_rate = float(np.float32(args["in_rate"])), float(np.float32(args["out_rate"]))
            if not in_rate > 0:
                raise ValueError(f"in_rate must be positive; got {in_rate}")
            if not out_rate >= 0:
                raise ValueError(f"out_rate must be non-negative; got {out_rate}")
            n_out = _resampling.resampled_length(n, in_rate, out_rate)
        elif args["scale"] is not None:
            in_rate, out_rate = 1.0, float(np.float32(args["scale"]))
            if not out_rate >= 0:
                raise ValueError(f"scale must be non-negative; got {out_rate}")
            n_out = _resampling.resampled_length(n, in_rate, out_rate)
        else:
            n_out = int(args["out_length"])
            if n_out < 0:
                raise ValueError(f"out_length must be non-negative; got {n_out}")
            if n == 0 and n_out:
                raise ValueError("cannot produce a non-empty signal from an empty input (out_length > 0)")
            in_rate, out_rate = float(n or 1), float(n_out or 1)
        dtype = self.args["dtype"] if self.args["dtype"] is not None else x.dtype
        signal = _normalized(x, dtype)
        out = _resampling.resample(signal, in_rate, out_rate, self.lobes, n_out) if out_rate > 0 else None
        if out is None:
            out = np.zeros((n_out, *x.shape[1:]), dtype=np.float32)
        return _kernels.from_float(out, dtype)


def _normalized(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """DALI's ``ConvertInput``: float32 in [-1, 1] (signed or float output) or [0, 1] (unsigned output)."""
    dtype = np.dtype(dtype)
    f = _kernels.to_float(x)
    if dtype.kind == "u" and x.dtype.kind in "if":
        return (f + np.float32(1.0)) * np.float32(0.5)
    if dtype.kind in "if" and x.dtype.kind == "u":
        return f * np.float32(2.0) - np.float32(1.0)
    return f

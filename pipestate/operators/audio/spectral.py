"""Spectral audio operators: ``fn.spectrogram``, ``fn.power_spectrum``, ``fn.mel_filter_bank``, ``fn.mfcc``,
``fn.to_decibels`` (DALI's CPU arithmetic; see ``_kernels``)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.audio import _kernels
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

_F32 = np.float32


@register
class Spectrogram(SampleOperator):
    """Short-time Fourier transform power (or magnitude) of a 1-D float32 signal (DALI's ``fn.spectrogram``).

    Windows of ``window_length`` samples every ``window_step`` samples (with ``center_windows``, padded by
    half a window at both ends, mirrored or with zeros), multiplied by ``window_fn`` (a Hann window by
    default), zero-padded to ``nfft``; output ``(nfft // 2 + 1, windows)`` for layout ``"ft"`` or its
    transpose for ``"tf"``. The FFT is numpy's in double precision: DALI's float32 FFT differs in the last bits.

    Raises:
        TypeError / ValueError: a signal that is not one channel, ``window_length > nfft``, a ``window_fn`` of
            another length, ``power`` other than 1 or 2.
    """

    type = "spectrogram"
    INPUTS = (sch.Input("input", "Signal: (time,), (time, 1) or (1, time)", ("float32",), (1, 2)),)
    ARGS = (
        Arg("nfft", sch.Int(1, 1 << 22), None, "FFT size (default: window_length); nfft // 2 + 1 bins"),
        Arg("window_length", sch.Int(1, 1 << 22), 512, "Window size in samples"),
        Arg("window_step", sch.Int(1), 256, "Step between windows in samples"),
        Arg("window_fn", sch.Seq(sch.Float(), min_length=1), None, "Window samples (default: Hann)"),
        Arg("power", sch.Int(1, 2), 2, "1: magnitude, 2: power"),
        Arg("center_windows", sch.Bool(), True, "Pad so that windows are centred at multiples of window_step"),
        Arg("reflect_padding", sch.Bool(), True, "Mirror the signal at the ends (else zeros)"),
        Arg("layout", sch.Str(("ft", "tf")), "ft", "Output layout: frequency-major or time-major"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (200,), ragged=(0,), low=-1, high=1),),
        args={"window_length": 32, "window_step": 16, "nfft": 40},
        dali="close:2e-5",
    )

    def validate(self) -> None:
        super().validate()
        a = self.args
        self.nfft = a["nfft"] if a["nfft"] is not None else a["window_length"]
        if a["window_length"] > self.nfft:
            raise ValueError(f"fn.spectrogram(): window_length={a['window_length']} exceeds nfft={self.nfft}")
        if a["window_fn"] is not None and len(a["window_fn"]) != a["window_length"]:
            raise ValueError(
                f"fn.spectrogram(): window_fn has {len(a['window_fn'])} values; it needs window_length="
                f"{a['window_length']}"
            )
        fn_ = a["window_fn"]
        self.window = np.asarray(fn_, dtype=_F32) if fn_ is not None else _kernels.hann(a["window_length"])

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return self.args["layout"]

    def _frames(self, x: np.ndarray) -> np.ndarray:
        if x.ndim == 2:
            if 1 not in x.shape:
                raise ValueError(f"the signal must have one channel: (time,), (time, 1) or (1, time); got {x.shape}")
            x = x.reshape(-1)
        a = self.args
        return _kernels.frames(x, self.window, a["window_step"], self.nfft, a["center_windows"], a["reflect_padding"])

    def _finish(self, spec: np.ndarray) -> np.ndarray:
        return spec if self.args["layout"] == "tf" else np.ascontiguousarray(np.swapaxes(spec, -1, -2))

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return self._finish(_kernels.spectrum(self._frames(inputs[0]), self.nfft, self.args["power"]))

    def dense(self, ctx: RunContext, inputs: list[np.ndarray], args: dict, layouts: tuple[str, ...]) -> tuple | None:
        frames = np.stack([self._frames(x) for x in inputs[0]])
        return (self._finish(_kernels.spectrum(frames, self.nfft, self.args["power"])),)


@register
class PowerSpectrum(SampleOperator):
    """Power (or magnitude) spectrum over one axis (DALI's ``fn.power_spectrum``): ``nfft // 2 + 1`` bins of
    the FFT of the first ``nfft`` values (zero-padded when shorter; ``nfft`` defaults to the axis length).

    Raises:
        ValueError: ``axis`` outside the sample's dimensions, ``power`` other than 1 or 2.
    """

    type = "power_spectrum"
    INPUTS = (sch.Input("input", "Real signal(s)", ("float32",)),)
    ARGS = (
        Arg("nfft", sch.Int(1, 1 << 22), None, "FFT size (default: the length of the transformed axis)"),
        Arg("axis", sch.Int(), -1, "The axis transformed (default: the last)"),
        Arg("power", sch.Int(1, 2), 2, "2: re*re + im*im, 1: its square root"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (3, 24), ragged=(0,), low=-1, high=1),), args={"nfft": 32}, dali="close:2e-5"
    )

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def _axis(self, ndim: int) -> int:
        axis = self.args["axis"]
        if not -ndim <= axis < ndim:
            raise ValueError(f"axis={axis} is out of range for {ndim}-dimensional samples")
        return axis % ndim

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        axis = self._axis(x.ndim)
        nfft = self.args["nfft"] or x.shape[axis]
        return _kernels.spectrum(x, nfft, self.args["power"], axis)

    def dense(self, ctx: RunContext, inputs: list[np.ndarray], args: dict, layouts: tuple[str, ...]) -> tuple | None:
        x = inputs[0]
        axis = self._axis(x.ndim - 1) + 1
        nfft = self.args["nfft"] or x.shape[axis]
        return (_kernels.spectrum(x, nfft, self.args["power"], axis),)


def _freq_axis(layout: str, ndim: int) -> int:
    if layout and "f" in layout:
        return layout.index("f")
    return 0 if ndim == 1 else ndim - 2


@register
class MelFilterBank(SampleOperator):
    """Triangular mel filters applied to a spectrogram (DALI's ``fn.mel_filter_bank``), over the axis named
    ``f`` in the layout (``"f"``, ``"ft"`` or ``"*ft"`` without one). Slaney or HTK mel scale; normalized filters
    have unit area.

    Raises:
        ValueError: ``freq_low``/``freq_high`` outside ``[0, sample_rate / 2]`` or not increasing.
    """

    type = "mel_filter_bank"
    INPUTS = (sch.Input("input", "Spectrogram (power or magnitude)", ("float32",)),)
    ARGS = (
        Arg("nfilter", sch.Int(1, 1 << 16), 128, "Number of mel filters"),
        Arg("sample_rate", sch.Float(low=0.0), 44100.0, "Sampling rate of the signal"),
        Arg("freq_low", sch.Float(low=0.0), 0.0, "Lowest frequency"),
        Arg("freq_high", sch.Float(low=0.0), 0.0, "Highest frequency (0: sample_rate / 2)"),
        Arg("normalize", sch.Bool(), True, "Divide each filter by its band width (unit area); else peak 1"),
        Arg("mel_formula", sch.Str(("slaney", "htk")), "slaney", "The mel scale"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (33, 7), layout="ft", ragged=(1,), low=0, high=10),),
        args={"nfilter": 12, "sample_rate": 16000.0, "freq_low": 20.0},
        dali="close:1e-5",
    )

    def validate(self) -> None:
        super().validate()
        a = self.args
        if a["sample_rate"] <= 0:
            raise ValueError(f"fn.mel_filter_bank(): sample_rate={a['sample_rate']} must be positive")
        self.freq_high = a["freq_high"] or a["sample_rate"] / 2
        if self.freq_high > a["sample_rate"] / 2 or a["freq_low"] >= self.freq_high:
            raise ValueError(
                f"fn.mel_filter_bank(): need 0 <= freq_low < freq_high <= sample_rate / 2; got freq_low="
                f"{a['freq_low']}, freq_high={self.freq_high}, sample_rate={a['sample_rate']}"
            )

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        a = self.args
        axis = _freq_axis(s.layouts[0], x.ndim)
        bins = x.shape[axis]
        if bins < 2:
            raise ValueError(f"the frequency axis has {bins} bin(s); a spectrogram needs at least 2")
        tables = _kernels.mel_filters(
            a["nfilter"], 2 * (bins - 1), a["sample_rate"], a["freq_low"], self.freq_high, a["normalize"],
            a["mel_formula"] == "htk",
        )
        if axis == x.ndim - 1 or x.shape[-1] == 1:
            moved = np.moveaxis(x, axis, -1)
            return np.moveaxis(_kernels.mel_freq_last(moved, tables, a["nfilter"], a["normalize"]), -1, axis)
        lead = x.shape[:axis]
        flat = x.reshape(-1, *x.shape[axis:])
        out = [_kernels.mel_freq_major(part, tables, a["nfilter"], a["normalize"]) for part in flat]
        return np.stack(out).reshape(*lead, a["nfilter"], *x.shape[axis + 1 :])


@register
class MFCC(SampleOperator):
    """Mel-frequency cepstral coefficients: a DCT of a (log) mel spectrogram over ``axis`` (DALI's ``fn.mfcc``),
    the first ``n_mfcc`` coefficients, optionally liftered (``1 + lifter / 2 * sin(pi * (i + 1) / lifter)``).

    Raises:
        ValueError: ``axis`` outside the sample, DCT type 1 on an axis of length 1.
    """

    type = "mfcc"
    INPUTS = (sch.Input("input", "Mel spectrogram", ("float32",), (2, 3, 4)),)
    ARGS = (
        Arg("n_mfcc", sch.Int(), 20, "Number of coefficients (<= 0 or more than the axis: all)"),
        Arg("dct_type", sch.Int(1, 4), 2, "DCT type 1, 2, 3 or 4"),
        Arg("normalize", sch.Bool(), False, "Ortho-normal DCT basis (not for dct_type=1)"),
        Arg("axis", sch.Int(0), 0, "The axis transformed"),
        Arg("lifter", sch.Float(), 0.0, "Cepstral lifter coefficient (0: none)"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (12, 5), layout="ft", ragged=(1,), low=-20, high=5),),
        args={"n_mfcc": 8, "lifter": 22.0, "normalize": True},
    )

    def validate(self) -> None:
        super().validate()
        if self.args["dct_type"] == 1 and self.args["normalize"]:
            warnings.warn("fn.mfcc(): DCT type 1 has no ortho-normal form; normalize=True is ignored", stacklevel=3)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        a = self.args
        axis = a["axis"]
        if axis >= x.ndim:
            raise ValueError(f"axis={axis} is out of range for {x.ndim}-dimensional samples")
        n = x.shape[axis]
        if a["dct_type"] == 1 and n < 2:
            raise ValueError("DCT type 1 needs an axis of length > 1")
        ndct = n if a["n_mfcc"] <= 0 or a["n_mfcc"] > n else a["n_mfcc"]
        out = _kernels.dct(x, axis, ndct, a["dct_type"], a["normalize"] and a["dct_type"] != 1)
        if a["lifter"]:
            shape = [1] * x.ndim
            shape[axis] = ndct
            out = _kernels.lifter_coeffs(ndct, a["lifter"]).reshape(shape) * out
        return out


@register
class ToDecibels(SampleOperator):
    """Magnitudes to decibels (DALI's ``fn.to_decibels``): ``multiplier * log10(max(10 ** (cutoff_db /
    multiplier), x / reference))``, ``reference`` being each sample's maximum when not given.

    Values may differ from DALI's in the last bit (about 0.1 % of them): DALI takes C's ``log2f``, this
    operator numpy's correctly rounded ``log2``.
    """

    type = "to_decibels"
    INPUTS = (sch.Input("input", "Magnitudes or powers", ("float32", "float64")),)
    ARGS = (
        Arg("multiplier", sch.Float(), 10.0, "10 for powers, 20 for magnitudes"),
        Arg("reference", sch.Float(), 0.0, "Reference magnitude (0: each sample's maximum)"),
        Arg("cutoff_db", sch.Float(), -200.0, "Lowest ratio in dB"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (6, 9), layout="ft", ragged=(1,), low=0, high=100),),
        args={"cutoff_db": -30.0},
        dali="close:2e-5",
    )

    def validate(self) -> None:
        super().validate()
        if self.args["multiplier"] == 0:
            raise ValueError("fn.to_decibels(): multiplier must not be 0")

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        a = self.args
        reference = a["reference"] if a["reference"] > 0 else None
        return _kernels.to_decibels(inputs[0], a["multiplier"], reference, a["cutoff_db"])

"""The numerics of DALI's audio operators on numpy arrays (float32 where DALI computes in float32).

Each function follows DALI's CPU kernel (``dali/kernels/signal/*``, ``dali/kernels/audio/*``): the same
tables (mel filter weights, DCT cosines, lifter), the same order of float32 accumulation where the order
decides the last bit (mel filters, DCT, moving mean square), and C-library functions where DALI's values
depend on them. Spectra are computed with numpy's FFT (pocketfft) in float64 and rounded to float32; DALI's
CPU FFT (FFTS, float32) differs in the last bits, which the tests bound.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from pipestate.operators.audio import _resampling

_F32 = np.float32


# ---- conversions (DALI's ConvertNorm / ConvertSatNorm) ----------------------------------------------------
def to_float(x: np.ndarray) -> np.ndarray:
    """``ConvertNorm<float>``: integers scaled by ``1 / max`` of their type (float32), floats as float32."""
    if x.dtype.kind in "iu":
        return x.astype(_F32) * _F32(1.0 / np.iinfo(x.dtype).max)
    return x.astype(_F32, copy=False)


def from_float(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``ConvertSatNorm<dtype>`` of float32 samples: to integers ``round(x * max)`` (half away from zero),
    saturated; to float32 unchanged."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return x.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    scaled = x * _F32(info.max)
    with np.errstate(invalid="ignore"):
        rounded = np.trunc(scaled.astype(np.float64) + np.copysign(0.5, scaled))
    return np.clip(np.nan_to_num(rounded, nan=0.0), info.min, info.max).astype(dtype)


def downmix(x: np.ndarray) -> np.ndarray:
    """DALI's ``Downmix`` of ``(frames, channels)`` float32 samples: ``sum(x[c] * (1/C))`` channel by channel."""
    channels = x.shape[1]
    weight = _F32(1.0 / channels)
    mono = x[:, 0] * weight
    for c in range(1, channels):
        mono += x[:, c] * weight
    return mono


# ---- windows and spectra -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def hann(length: int) -> np.ndarray:
    """DALI's default spectrogram window: ``0.5 * (1 - cos(2 pi (t + 0.5) / N))`` in double, stored as float32."""
    t = np.arange(length, dtype=np.float64)
    window = (0.5 * (1.0 - np.cos(2.0 * math.pi / length * (t + 0.5)))).astype(_F32)
    window.setflags(write=False)
    return window


def frames(
    signal: np.ndarray, window: np.ndarray, step: int, nfft: int, center: bool, reflect: bool
) -> np.ndarray:
    """The windowed frames of a 1-D float32 signal, ``(n_windows, nfft)`` (DALI's ``ExtractWindows``): with
    ``center``, the signal is padded by ``len(window) // 2`` at both ends (mirrored or zeros); each window is
    multiplied by ``window`` and placed at the start of an ``nfft``-long zero buffer."""
    length = len(window)
    n = len(signal)
    if center:
        pad = length // 2
        count = n // step + 1
        if reflect and n > 1:
            padded = np.pad(signal, (pad, pad + length), mode="reflect") if n > pad else _reflect(signal, pad, length)
        else:
            padded = np.pad(signal, (pad, pad + length))
    else:
        count = max((n - length) // step + 1, 0)
        padded = signal
    out = np.zeros((count, nfft), dtype=_F32)
    if count:
        starts = np.arange(count) * step
        views = np.lib.stride_tricks.sliding_window_view(padded, length)[starts]
        out[:, :length] = views * window
    return out


def _reflect(signal: np.ndarray, pad: int, length: int) -> np.ndarray:
    """Mirror padding for signals shorter than the padding (the mirror bounces between the ends)."""
    n = len(signal)
    period = 2 * (n - 1)
    index = np.arange(-pad, n + pad + length)
    folded = np.abs(index) % period
    folded = np.where(folded >= n, period - folded, folded)
    return signal[folded]


def spectrum(frames_: np.ndarray, nfft: int, power: int, axis: int = -1) -> np.ndarray:
    """``|FFT|**power`` (power 2: ``re*re + im*im``; power 1: its square root) over ``axis``, float32, the
    ``nfft // 2 + 1`` non-negative frequencies."""
    spec = np.fft.rfft(frames_.astype(np.float64), n=nfft, axis=axis)
    re = spec.real.astype(_F32)
    im = spec.imag.astype(_F32)
    out = re * re + im * im
    return np.sqrt(out) if power == 1 else out


# ---- mel filter bank --------------------------------------------------------------------------------------
class _Slaney:
    """DALI's ``SlaneyMelScale<float>``: constants and arithmetic in float32, ``logf``/``expf``."""

    fsp = _F32(200.0 / 3.0)
    min_log_hz = _F32(1000.0)
    min_log_mel = _F32(min_log_hz / fsp)
    step_log = _F32(0.068751777)

    @classmethod
    def hz_to_mel(cls, hz: float) -> float:
        hz = _F32(hz)
        if hz >= cls.min_log_hz:
            return float(cls.min_log_mel + _logf(hz / cls.min_log_hz) / cls.step_log)
        return float(hz / cls.fsp)

    @classmethod
    def mel_to_hz(cls, mel: float) -> float:
        mel = _F32(mel)
        if mel >= cls.min_log_mel:
            return float(cls.min_log_hz * _expf(cls.step_log * (mel - cls.min_log_mel)))
        return float(mel * cls.fsp)


class _Htk:
    """DALI's ``HtkMelScale<float>``."""

    @staticmethod
    def hz_to_mel(hz: float) -> float:
        return float(_F32(1127.0) * _logf(_F32(1.0) + _F32(hz) / _F32(700.0)))

    @staticmethod
    def mel_to_hz(mel: float) -> float:
        return float(_F32(700.0) * (_expf(_F32(mel) / _F32(1127.0)) - _F32(1.0)))


def _logf(x: np.float32) -> np.float32:
    libm = _resampling.libm()
    return _F32(libm.logf(float(x))) if libm else _F32(math.log(float(x)))


def _expf(x: np.float32) -> np.float32:
    libm = _resampling.libm()
    return _F32(libm.expf(float(x))) if libm else _F32(math.exp(float(x)))


@functools.lru_cache(maxsize=32)
def mel_filters(
    nfilter: int, nfft: int, sample_rate: float, freq_low: float, freq_high: float, normalize: bool, htk: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """DALI's mel filter tables (``MelFilterImplBase``): (weights_down per FFT bin, normalization per filter,
    interval of each bin (-1: none), interval ends, first bin, last bin)."""
    scale = _Htk if htk else _Slaney
    mel_low, mel_high = scale.hz_to_mel(freq_low), scale.hz_to_mel(freq_high)
    hz_step = float(_F32(sample_rate)) / nfft
    mel_delta = (mel_high - mel_low) / (nfilter + 1)
    size = nfft // 2 + 1
    inv_step = 1.0 / hz_step
    start = math.ceil(float(_F32(freq_low)) * inv_step)
    end = min(math.floor(float(_F32(freq_high)) * inv_step), size - 1)
    weights = np.zeros(size, dtype=_F32)
    norm = np.ones(nfilter, dtype=_F32)
    mel0, mel1 = mel_low, mel_low + mel_delta
    b = start
    f = b * hz_step
    for interval in range(nfilter + 1):
        if interval == nfilter:
            mel1 = mel_high
        f0, f1 = scale.mel_to_hz(mel0), scale.mel_to_hz(mel1)
        if normalize and interval < nfilter:
            norm[interval] = 2.0 / (scale.mel_to_hz(mel1 + mel_delta) - f0)
        slope = 1.0 / (f1 - f0)
        while b <= end and f < f1:
            weights[b] = (f1 - f) * slope
            b += 1
            f = b * hz_step
        mel0, mel1 = mel1, mel1 + mel_delta
    intervals = np.full(size, -1, dtype=np.int64)
    b = start
    f = b * hz_step
    mel = mel_low + mel_delta
    for interval in range(nfilter + 1):
        freq = scale.mel_to_hz(mel_high if interval == nfilter else mel)
        while b <= end and f < freq:
            intervals[b] = interval
            b += 1
            f = b * hz_step
        mel += mel_delta
    ends = np.empty(nfilter + 2, dtype=np.int64)
    ends[0], ends[nfilter + 1] = start, end + 1
    mel = mel_low + mel_delta
    for interval in range(1, nfilter + 1):
        ends[interval] = math.ceil(scale.mel_to_hz(mel) / hz_step)
        mel += mel_delta
    return weights, norm, intervals, ends, start, end


def mel_freq_major(spec: np.ndarray, tables: tuple, nfilter: int, normalize: bool) -> np.ndarray:
    """Mel filters over axis 0 of ``(freq, ...)`` float32 (DALI's frequency-major loop: each filter sums its
    bins in ascending order, the normalization folded into each weight). Vectorized over the filters: step
    ``k`` adds every filter's ``k``-th bin, so each filter still sums its bins one after the other."""
    rest = spec.shape[1:]
    flat = spec.reshape(spec.shape[0], -1)
    out = np.zeros((nfilter, flat.shape[1]), dtype=_F32)
    for filters, bins, weights in _freq_major_plan(tables, nfilter, normalize):
        out[filters] += weights[:, None] * flat[bins]
    return out.reshape((nfilter, *rest))


_PLANS: dict[tuple[int, int, bool], tuple[tuple, list]] = {}


def _freq_major_plan(tables: tuple, nfilter: int, normalize: bool) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per step ``k``: the filters with a ``k``-th bin, those bins, and their float32 weights (as DALI's loop
    computes them: ``weights[b] * norm[m]`` or ``(1 - weights[b]) * norm[m]``). Cached per filter table."""
    key = (id(tables), nfilter, normalize)
    cached = _PLANS.get(key)
    if cached is not None and cached[0] is tables:
        return cached[1]
    weights, norm, intervals, _, start, end = tables
    per_filter: list[list[tuple[int, np.float32]]] = [[] for _ in range(nfilter)]
    for b in range(start, end + 1):
        up = int(intervals[b])
        if up - 1 >= 0:
            per_filter[up - 1].append((b, weights[b] * norm[up - 1] if normalize else weights[b]))
        if 0 <= up < nfilter:
            w = _F32(1.0) - weights[b]
            per_filter[up].append((b, w * norm[up] if normalize else w))
    plan = []
    for k in range(max((len(f) for f in per_filter), default=0)):
        active = [m for m in range(nfilter) if len(per_filter[m]) > k]
        plan.append(
            (
                np.asarray(active, dtype=np.intp),
                np.asarray([per_filter[m][k][0] for m in active], dtype=np.intp),
                np.asarray([per_filter[m][k][1] for m in active], dtype=_F32),
            )
        )
    if len(_PLANS) > 64:
        _PLANS.clear()
    _PLANS[key] = (tables, plan)
    return plan


def mel_freq_last(spec: np.ndarray, tables: tuple, nfilter: int, normalize: bool) -> np.ndarray:
    """Mel filters over the last axis (DALI's time-major loop: the normalization applied after the sum)."""
    weights, norm, _, ends, _, _ = tables
    flat = spec.reshape(-1, spec.shape[-1])
    out = np.empty((flat.shape[0], nfilter), dtype=_F32)
    for m in range(nfilter):
        val = np.zeros(flat.shape[0], dtype=_F32)
        f0, f1, f2 = int(ends[m]), int(ends[m + 1]), int(ends[m + 2])
        for b in range(f0, f1):
            val += flat[:, b] * (_F32(1.0) - weights[b])
        for b in range(f1, f2):
            val += flat[:, b] * weights[b]
        out[:, m] = val * norm[m] if normalize else val
    return out.reshape((*spec.shape[:-1], nfilter))


# ---- DCT (MFCC) -------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def dct_table(n: int, ndct: int, dct_type: int, normalize: bool, dtype: str) -> np.ndarray:
    """DALI's cosine table ``(ndct, n)`` for DCT types 1-4 (computed in double, stored as ``dtype``)."""
    k = np.arange(ndct, dtype=np.float64)[:, None]
    i = np.arange(n, dtype=np.float64)[None, :]
    if dct_type == 1:
        table = np.cos(math.pi / (n - 1) * k * i)
        table[:, 0] = 0.5
        table[:, n - 1] = np.where(np.arange(ndct) % 2 == 0, 0.5, -0.5)
    elif dct_type == 2:
        table = np.cos(math.pi / n * (i + 0.5) * k)
        if normalize:
            table *= np.where(k == 0, 1.0 / math.sqrt(n), math.sqrt(2.0 / n))
    elif dct_type == 3:
        table = np.cos(math.pi / n * i * (k + 0.5))
        table[:, 0] = 1.0 / math.sqrt(n) if normalize else 0.5
        if normalize:
            table[:, 1:] *= math.sqrt(2.0 / n)
    else:
        table = np.cos(math.pi / n * (i + 0.5) * (k + 0.5)) * (math.sqrt(2.0 / n) if normalize else 1.0)
    out = table.astype(dtype)
    out.setflags(write=False)
    return out


def dct(x: np.ndarray, axis: int, ndct: int, dct_type: int, normalize: bool) -> np.ndarray:
    """DCT over ``axis`` with the terms summed in order (DALI's ``Dct1DCpu``)."""
    moved = np.moveaxis(x, axis, 0)
    n = moved.shape[0]
    table = dct_table(n, ndct, dct_type, normalize, moved.dtype.str)
    out = np.zeros((ndct, *moved.shape[1:]), dtype=moved.dtype)
    for i in range(n):
        out += moved[i][None] * table[:, i].reshape((ndct,) + (1,) * (moved.ndim - 1))
    return np.moveaxis(out, 0, axis)


@functools.lru_cache(maxsize=32)
def lifter_coeffs(length: int, lifter: float) -> np.ndarray:
    """DALI's cepstral lifter: ``1 + lifter / 2 * sin(pi * (i + 1) / lifter)`` in float32."""
    ampl = _F32(_F32(lifter) / _F32(2.0))
    phase = _F32(_F32(math.pi) / _F32(lifter))
    args = phase * np.arange(1, length + 1, dtype=_F32)
    out = (_F32(1.0) + ampl * np.sin(args.astype(np.float64)).astype(_F32)).astype(_F32)
    out.setflags(write=False)
    return out


# ---- decibels and silence ---------------------------------------------------------------------------------
_LOG2_10_INV = 0.3010299956639812  # log10(2)


def to_decibels(x: np.ndarray, multiplier: float, reference: float | None, cutoff_db: float) -> np.ndarray:
    """DALI's ``ToDecibels``: ``multiplier * log10(max(min_ratio, x / reference))`` with ``reference`` the
    sample's maximum when ``None`` (1 when that is 0); computed as DALI does, in ``x``'s type, via log2."""
    t = x.dtype.type
    if reference is None:
        positive = x[x > 0]
        reference = float(positive.max()) if positive.size else 0.0
        if reference == 0.0:
            reference = 1.0
    ref = t(reference)
    inv_ref = t(1) if ref == t(1) else t(1) / ref
    with np.errstate(over="ignore", under="ignore"):  # as C's pow: inf or 0 out of range, never an exception
        min_ratio = t(np.power(10.0, float(t(cutoff_db)) / float(t(multiplier))))
    mul_log2 = t(multiplier) * t(_LOG2_10_INV)
    ratio = np.maximum(min_ratio, x * inv_ref)
    return (mul_log2 * np.log2(ratio.astype(np.float64)).astype(x.dtype)).astype(x.dtype)


def moving_mean_square(x: np.ndarray, window: int, reset_interval: int) -> np.ndarray:
    """DALI's ``MovingMeanSquareCpu``: the mean of squares over each window of ``window`` samples, a running
    float32 sum (recomputed every ``reset_interval`` samples) or an exact int64 one for 8/16-bit integers."""
    n = len(x)
    count = n - window + 1
    mean_factor = _F32(_F32(1.0) / _F32(window))
    if x.dtype.kind in "iu" and x.dtype.itemsize <= 2:
        sq = x.astype(np.int64) ** 2
        sums = np.concatenate(([0], np.cumsum(sq)))
        return (sums[window:] - sums[:count]).astype(_F32) * mean_factor
    xf = x.astype(_F32) if x.dtype != np.float64 else x.astype(_F32)
    sq = xf * xf if x.dtype.kind == "f" and x.dtype != np.float64 else _square_float(x)
    reset = n if reset_interval == -1 else reset_interval
    out = np.empty(count, dtype=_F32)
    begin = 0
    while begin <= n - window:
        first = np.add.accumulate(sq[begin : begin + window], dtype=_F32)[-1]
        end = min(begin + reset, n) - window + 1
        deltas = sq[begin + window : end + window - 1] - sq[begin : end - 1]
        run = np.add.accumulate(np.concatenate(([first], deltas)).astype(_F32), dtype=_F32)
        out[begin:end] = run * mean_factor
        begin = end
    return out


def _square_float(x: np.ndarray) -> np.ndarray:
    """``Square`` with a float accumulator: the value converted to float32, then squared."""
    v = x.astype(_F32)
    return v * v

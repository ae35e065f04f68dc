"""DALI's windowed-sinc resampler (``dali/kernels/signal/resampling*``), reproduced bit for bit with numpy.

DALI's CPU kernel evaluates, for output sample ``j``, a Hann-windowed sinc at the input positions around
``j * in_rate / out_rate``, reading the window from a lookup table with linear interpolation, and sums the
taps in float32. Every rounding step is reproduced here, vectorized over the output samples:

- the lookup table of ``lobes * 64 + 1`` coefficients (``lobes`` from ``quality``), whose sines and cosines
  come from the C library (``sinf``/``cos``, as DALI's build calls them; a correctly rounded numpy fallback
  differs from DALI's table in the last bit of a few entries where no C library is found);
- the input position, computed in double precision at the start of each block of 256 output samples and
  then advanced by the float32 step within the block;
- single-channel signals: DALI's SSE path, four lanes of taps accumulated separately (the lane positions
  advanced by 4.0 in float32), summed as ``(l0 + l2) + (l1 + l3)``, then the remaining taps one by one;
- multi-channel signals: the scalar path, taps accumulated one by one for every channel.

Output is float32; the caller converts it (DALI's ``ConvertSatNorm``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import threading
from collections import OrderedDict

import numpy as np

_F32 = np.float32
BLOCK = 256  # output samples per block: the input position restarts from double precision at each block


def lobes_for_quality(quality: float) -> int:
    """The number of sinc lobes DALI uses for ``quality`` (0 → 3, 50 → 16, 100 → 64)."""
    q = float(np.float32(quality))
    return int(round_half_away(0.007 * q * q - 0.09 * q + 3))


def round_half_away(value: float) -> float:
    """C's ``std::round``: halves away from zero."""
    return math.copysign(math.floor(abs(value) + 0.5), value)


def resampled_length(n_in: int, in_rate: float, out_rate: float) -> int:
    """DALI's ``resampled_length``: ``ceil(n_in * out_rate / in_rate)`` in double precision."""
    return int(math.ceil(n_in * out_rate / in_rate))


@functools.cache
def libm() -> ctypes.CDLL | None:
    """The C math library (DALI's values depend on its ``sinf``, ``cos``, ``logf``, ``expf``), or ``None``."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    except OSError:
        return None
    for name in ("sinf", "logf", "expf"):
        getattr(lib, name).restype, getattr(lib, name).argtypes = ctypes.c_float, [ctypes.c_float]
    lib.cos.restype, lib.cos.argtypes = ctypes.c_double, [ctypes.c_double]
    return lib


@functools.lru_cache(maxsize=16)
def window(lobes: int) -> tuple[np.ndarray, np.float32, np.float32]:
    """DALI's ``windowed_sinc`` table for ``lobes``: (lookup with a leading zero and padding, scale, center)."""
    coeffs = lobes * 64 + 1
    scale = _F32(_F32(2.0 * lobes) / _F32(coeffs - 1))
    scale_envelope = _F32(_F32(2.0) / _F32(coeffs))
    center = int(_F32(coeffs - 1) * _F32(0.5))
    offsets = np.arange(coeffs) - center
    xs = offsets.astype(_F32) * scale
    ys = offsets.astype(_F32) * scale_envelope
    xpi = (xs.astype(np.float64) * math.pi).astype(_F32)  # `x *= M_PI` on a float
    lib = libm()
    if lib is not None:
        sines = np.array([lib.sinf(v) for v in xpi.tolist()], dtype=_F32)
        envelope = np.array([0.5 * (1.0 + lib.cos(v * math.pi)) for v in ys.astype(np.float64).tolist()])
    else:
        sines = np.sin(xpi.astype(np.float64)).astype(_F32)
        envelope = 0.5 * (1.0 + np.cos(ys.astype(np.float64) * math.pi))
    with np.errstate(divide="ignore", invalid="ignore"):
        sinc = np.where(xpi == 0, _F32(1.0), sines / np.where(xpi == 0, _F32(1.0), xpi)).astype(_F32)
    lookup = np.zeros(coeffs + 5, dtype=_F32)
    lookup[1 : coeffs + 1] = (sinc.astype(np.float64) * envelope).astype(_F32)
    lookup.setflags(write=False)
    return lookup, _F32(_F32(1.0) / scale), _F32(center + 1)


def _weights(table: tuple, x: np.ndarray) -> np.ndarray:
    """The window at float32 positions ``x`` (DALI's lookup with linear interpolation, no fused multiply-add)."""
    lookup, scale, center = table
    fi = x * scale + center
    i = np.clip(fi, 0, len(lookup) - 2).astype(np.int32)  # truncation == floor where fi >= 0 (live taps)
    di = fi - i.astype(_F32)
    current = lookup[i]
    return current + di * (lookup[i + 1] - current)


def _positions(n_out: int, in_rate: float, out_rate: float, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample ``start .. start + n_out - 1`` (``start`` a multiple of :data:`BLOCK`): the block's
    first input index (int64) and the float32 position relative to it."""
    scale = in_rate / out_rate
    n_blocks = -(-n_out // BLOCK)
    starts = (np.arange(n_blocks, dtype=np.float64) + start // BLOCK) * BLOCK * scale
    base = np.floor(starts)
    steps = np.full((n_blocks, BLOCK), _F32(scale), dtype=_F32)
    steps[:, 0] = (starts - base).astype(_F32)
    pos = np.add.accumulate(steps, axis=1, dtype=_F32).reshape(-1)[:n_out]
    return np.repeat(base.astype(np.int64), BLOCK)[:n_out], pos


def resample(signal: np.ndarray, in_rate: float, out_rate: float, lobes: int, n_out: int | None = None) -> np.ndarray:
    """Resample a float32 signal (``(n,)`` or ``(n, channels)``, time first) from ``in_rate`` to ``out_rate``.

    Output samples whose taps all lie inside the signal (all but a few at each end) use cached window
    weights (:func:`_tap_weights`) and one gather; the ends run the general path with DALI's clamping.

    Args:
        signal: float32 samples.
        in_rate, out_rate: The rates (only their ratio matters); both positive.
        lobes: The window's lobes (:func:`lobes_for_quality`).
        n_out: Output length (default :func:`resampled_length`).

    Returns:
        float32 samples, ``(n_out,)`` or ``(n_out, channels)``: DALI's values exactly.
    """
    x = np.ascontiguousarray(signal, dtype=_F32)
    n_in = x.shape[0]
    if n_out is None:
        n_out = resampled_length(n_in, in_rate, out_rate)
    channels = x.shape[1] if x.ndim == 2 else 1
    shape = (n_out,) if x.ndim == 1 else (n_out, channels)
    if n_out == 0 or n_in == 0 or channels == 0:
        return np.zeros(shape, dtype=_F32)
    x = x.reshape(n_in, channels)
    base, pos = _positions(n_out, in_rate, out_rate)
    first = base + np.ceil(pos).astype(np.int64) - lobes  # absolute index of the first tap, unclamped
    inside = (first >= 0) & (first + 2 * lobes <= n_in)
    out = np.empty((n_out, channels), dtype=_F32)
    lo, hi = (int(np.argmax(inside)), n_out - int(np.argmax(inside[::-1]))) if inside.any() else (0, 0)
    if hi > lo and hi * 2 * lobes * 4 <= _CACHE_BYTES:
        weights = _tap_weights(in_rate, out_rate, lobes, channels > 1, hi)[:, lo:hi]
        out[lo:hi] = _interior(x, weights, first[lo:hi], lobes)
    elif hi > lo:  # a long output: weights chunk by chunk (memory bounded by the chunk, not the output)
        for a in range(lo - lo % BLOCK, hi, _CHUNK):
            s, e = max(a, lo), min(a + _CHUNK, hi)
            weights = _compute_weights(in_rate, out_rate, lobes, channels > 1, a, e - a)[:, s - a :]
            out[s:e] = _interior(x, weights, first[s:e], lobes)
    for edge in (slice(0, lo), slice(max(hi, lo), n_out)) if hi > lo else (slice(0, n_out),):
        if edge.stop > edge.start:
            out[edge] = _general(x, window(lobes), base[edge], pos[edge], lobes)
    return out.reshape(shape)


_CACHE: OrderedDict = OrderedDict()
_CACHE_BYTES = 64 << 20
_CACHE_LOCK = threading.Lock()
_CHUNK = BLOCK * 1024  # output samples per chunk of weights when the output is too long to cache them


def _tap_weights(in_rate: float, out_rate: float, lobes: int, multi: bool, n_out: int) -> np.ndarray:
    """The window weight of each of the ``2 * lobes`` taps (rows) of the first ``n_out`` output samples, as DALI
    evaluates them for an output whose taps are all inside the signal (the positions depend only on the rates,
    so a longer table serves every shorter signal). Kept in a small cache (64 MB)."""
    key = (in_rate, out_rate, lobes, multi)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached.shape[1] >= n_out:
            _CACHE.move_to_end(key)
            return cached
    weights = _compute_weights(in_rate, out_rate, lobes, multi, 0, n_out)
    with _CACHE_LOCK:
        _CACHE[key] = weights
        _CACHE.move_to_end(key)
        while sum(w.nbytes for w in _CACHE.values()) > _CACHE_BYTES and len(_CACHE) > 1:
            _CACHE.popitem(last=False)
    return weights


def _compute_weights(in_rate: float, out_rate: float, lobes: int, multi: bool, start: int, n_out: int) -> np.ndarray:
    """The weights of :func:`_tap_weights` for output samples ``start .. start + n_out - 1`` (``start`` a
    multiple of :data:`BLOCK`)."""
    base, pos = _positions(n_out, in_rate, out_rate, start)
    i0 = np.ceil(pos).astype(np.int64) - lobes
    table = window(lobes)
    taps = 2 * lobes
    weights = np.empty((taps, n_out), dtype=_F32)
    if multi:
        tap_x = i0.astype(_F32) - pos
        for t in range(taps):
            weights[t] = _weights(table, tap_x)
            tap_x = tap_x + _F32(1.0)
    else:
        lane_x = (i0[:, None] + np.arange(4)).astype(_F32) - pos[:, None]
        n_vec = taps // 4
        for k in range(n_vec):
            weights[4 * k : 4 * k + 4] = _weights(table, lane_x).T
            lane_x = lane_x + _F32(4.0)
        tap_x = (i0 + 4 * n_vec).astype(_F32) - pos
        for t in range(4 * n_vec, taps):
            weights[t] = _weights(table, tap_x)
            tap_x = tap_x + _F32(1.0)
    return weights


def _interior(x: np.ndarray, weights: np.ndarray, first: np.ndarray, lobes: int) -> np.ndarray:
    """Output samples whose ``2 * lobes`` taps are inside the signal, summed in DALI's order (``weights``:
    one row per tap)."""
    n = len(first)
    index = first.astype(np.intp)
    tap = np.empty(n, dtype=_F32)
    if x.shape[1] > 1:
        acc = np.zeros((n, x.shape[1]), dtype=_F32)
        for t in range(2 * lobes):
            acc += x[index + t] * weights[t][:, None]
        return acc
    signal = x[:, 0]
    n_vec = lobes // 2
    lanes = np.zeros((4, n), dtype=_F32)
    for t in range(4 * n_vec):
        np.take(signal, index + t, out=tap)
        np.multiply(tap, weights[t], out=tap)
        np.add(lanes[t % 4], tap, out=lanes[t % 4])
    total = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3])
    for t in range(4 * n_vec, 2 * lobes):
        np.take(signal, index + t, out=tap)
        total += tap * weights[t]
    return total[:, None]


def _general(x: np.ndarray, table: tuple, base: np.ndarray, pos: np.ndarray, lobes: int) -> np.ndarray:
    """Any output samples, with DALI's clamping of the taps to the signal (used at the ends)."""
    n_in = x.shape[0]
    ceil = np.ceil(pos).astype(np.int64)
    i0 = np.maximum(ceil - lobes, -base)
    i1 = np.minimum(ceil + lobes, n_in - base)
    count = np.maximum(i1 - i0, 0)
    start = base + i0
    if x.shape[1] == 1:
        return _single_channel(x[:, 0], table, pos, i0, start, count)[:, None]
    return _multi_channel(x, table, pos, i0, start, count)


def _single_channel(x, table, pos, i0, start, count) -> np.ndarray:
    """DALI's SSE path: four lanes of taps, then ``(l0 + l2) + (l1 + l3)``, then the remaining taps."""
    n_in = x.shape[0]
    n_vec = count // 4
    lanes = np.arange(4)
    lane_x = (i0[:, None] + lanes).astype(_F32) - pos[:, None]
    acc = np.zeros((len(pos), 4), dtype=_F32)
    four = _F32(4.0)
    for k in range(int(n_vec.max(initial=0))):
        w = _weights(table, lane_x)
        taps = x[np.minimum(start[:, None] + (4 * k + lanes), n_in - 1)]
        live = (k < n_vec)[:, None]
        acc = np.where(live, acc + taps * w, acc)
        lane_x = lane_x + four
    total = (acc[:, 0] + acc[:, 2]) + (acc[:, 1] + acc[:, 3])
    done = 4 * n_vec
    rest = count - done
    tap_x = (i0 + done).astype(_F32) - pos
    one = _F32(1.0)
    for t in range(int(rest.max(initial=0))):
        w = _weights(table, tap_x)
        taps = x[np.minimum(start + done + t, n_in - 1)]
        total = np.where(t < rest, total + taps * w, total)
        tap_x = tap_x + one
    return total


def _multi_channel(x, table, pos, i0, start, count) -> np.ndarray:
    """DALI's scalar multi-channel path: taps one by one, every channel accumulated in float32."""
    n_in = x.shape[0]
    acc = np.zeros((len(pos), x.shape[1]), dtype=_F32)
    tap_x = i0.astype(_F32) - pos
    one = _F32(1.0)
    for t in range(int(count.max(initial=0))):
        w = _weights(table, tap_x)
        taps = x[np.minimum(start + t, n_in - 1)]
        acc = np.where((t < count)[:, None], acc + taps * w[:, None], acc)
        tap_x = tap_x + one
    return acc

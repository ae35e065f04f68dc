"""Counter-based random streams: Philox4x32-10, vectorized over a batch with numpy.

Every random draw in pipestate is a pure function of (key, sample index, block index): the key comes
from the pipeline seed and the operator's stable name, the sample index is the global index of the
sample in the pipeline's output. So outputs do not depend on thread count, scheduling or prefetch depth,
and the state to checkpoint is just a counter.
"""

from __future__ import annotations

import hashlib

import numpy as np

_M = np.array([[0xD2511F53], [0xCD9E8D57]], dtype=np.uint64)  # multipliers for lanes (x0, x2)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85  # Weyl key increments
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_ROUNDS = 10


def derive_key(*parts: object) -> int:
    """Return a 64-bit Philox key derived (by SHA-256) from the given parts, e.g. (seed, op name)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _round_keys(key: int) -> np.ndarray:
    k0, k1 = key & 0xFFFFFFFF, key >> 32
    keys = np.empty((_ROUNDS, 2, 1), dtype=np.uint64)
    for r in range(_ROUNDS):
        keys[r, 0, 0] = (k0 + r * _W0) & 0xFFFFFFFF
        keys[r, 1, 0] = (k1 + r * _W1) & 0xFFFFFFFF
    return keys


def philox4x32(key: int, counters: np.ndarray) -> np.ndarray:
    """Apply Philox4x32-10 to each 128-bit counter.

    Args:
        key: 64-bit key (low 32 bits are k0, high 32 bits k1).
        counters: uint32-valued array of shape (N, 4): words (c0, c1, c2, c3).

    Returns:
        uint32 array of shape (N, 4), the random words for each counter.
    """
    c = np.asarray(counters, dtype=np.uint64).T  # (4, N)
    x02 = c[0::2].copy()  # lanes x0, x2
    x13 = c[1::2].copy()  # lanes x1, x3
    for rk in _round_keys(key):
        prod = _M * x02
        hi = prod >> _SHIFT32
        lo = prod & _MASK32
        # x0' = hi(M1*x2) ^ x1 ^ k0; x2' = hi(M0*x0) ^ x3 ^ k1; x1' = lo(M1*x2); x3' = lo(M0*x0)
        x02 = hi[::-1] ^ x13 ^ rk
        x13 = lo[::-1]
    out = np.empty((c.shape[1], 4), dtype=np.uint32)
    out[:, 0::2] = x02.T
    out[:, 1::2] = x13.T
    return out


class Stream:
    """Random words for a range of samples of one operator.

    ``Stream(key, first_sample, n_samples).words(k)`` returns a (n_samples, k) uint32 array whose row i
    depends only on (key, first_sample + i, k's blocks): draw j of sample s is the same whatever batch,
    thread or prefetch depth computed it. ``purpose`` separates independent draws of one operator.
    """

    def __init__(self, key: int, first_sample: int, n_samples: int) -> None:
        self.key = key
        self.first_sample = first_sample
        self.n_samples = n_samples

    def words(self, n_words: int, purpose: int = 0) -> np.ndarray:
        """Return a (n_samples, n_words) uint32 array of random words."""
        blocks = max(1, -(-n_words // 4))
        samples = np.arange(self.first_sample, self.first_sample + self.n_samples, dtype=np.uint64)
        counters = np.empty((self.n_samples, blocks, 4), dtype=np.uint64)
        counters[:, :, 0] = (samples & _MASK32)[:, None]
        counters[:, :, 1] = (samples >> _SHIFT32)[:, None]
        counters[:, :, 2] = np.arange(blocks, dtype=np.uint64)[None, :]
        counters[:, :, 3] = purpose
        out = philox4x32(self.key, counters.reshape(-1, 4))
        return out.reshape(self.n_samples, blocks * 4)[:, :n_words]

    def uniform(self, n: int, dtype: np.dtype | type = np.float32, purpose: int = 0) -> np.ndarray:
        """Return (n_samples, n) floats uniform in [0, 1), with full mantissa precision for ``dtype``."""
        dtype = np.dtype(dtype)
        if dtype == np.float64:
            w = self.words(2 * n, purpose).astype(np.uint64)
            bits = ((w[:, 0::2] << _SHIFT32) | w[:, 1::2]) >> np.uint64(11)
            return bits.astype(np.float64) * (1.0 / (1 << 53))
        w = self.words(n, purpose)
        return ((w >> 8).astype(np.float32) * np.float32(1.0 / (1 << 24))).astype(dtype)

    def normal(self, n: int, purpose: int = 0) -> np.ndarray:
        """Return (n_samples, n) float64 standard normal values (Box-Muller on 53-bit uniforms)."""
        pairs = -(-n // 2)
        u = self.uniform(2 * pairs, np.dtype(np.float64), purpose)
        u1 = 1.0 - u[:, 0::2]  # (0, 1]: log is finite
        u2 = u[:, 1::2]
        r = np.sqrt(-2.0 * np.log(u1))
        theta = 2.0 * np.pi * u2
        z = np.empty((self.n_samples, 2 * pairs), dtype=np.float64)
        z[:, 0::2] = r * np.cos(theta)
        z[:, 1::2] = r * np.sin(theta)
        return z[:, :n]

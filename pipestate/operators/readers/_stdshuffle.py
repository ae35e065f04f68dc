"""DALI's fixed pre-shuffle: ``std::shuffle`` with ``std::mt19937(524287)``, as libstdc++ computes it.

With ``random_shuffle=True`` several DALI loaders (sequence, nemo_asr, ...) first permute their whole
listing once with a Mersenne Twister seeded with the constant ``kDaliDataloaderSeed`` (524287) — the same
permutation on every shard, in every run — and only then shard it and pass it through the shuffle buffer.
Reproducing that permutation bit for bit gives the same shard contents as DALI under ``random_shuffle``
(and DALI's exact order with ``initial_fill=1``). ``numpy.random.RandomState(seed)`` seeds MT19937 with
``init_genrand``, exactly as ``std::mt19937(seed)``; the shuffle itself follows libstdc++ (GCC >= 11):
two swap positions from one draw while ``range**2`` fits in 32 bits, and Lemire's nearly divisionless
``uniform_int_distribution``.
"""

from __future__ import annotations

import functools

import numpy as np

DALI_DATALOADER_SEED = 524287
_U32 = 1 << 32


class _MT19937:
    """The 32-bit outputs of ``std::mt19937(seed)``, drawn in blocks."""

    def __init__(self, seed: int) -> None:
        self._state = np.random.RandomState(seed)
        self._block: list[int] = []

    def __call__(self) -> int:
        if not self._block:
            self._block = self._state.randint(0, _U32, size=4096, dtype=np.uint64).tolist()[::-1]
        return self._block.pop()


def _uniform(g: _MT19937, n: int) -> int:
    """``std::uniform_int_distribution<unsigned long>(0, n - 1)(g)`` for ``1 <= n <= 2**32`` (libstdc++)."""
    if n == _U32:
        return g()
    product = g() * n
    low = product & 0xFFFFFFFF
    if low < n:
        threshold = (_U32 - n) % n
        while low < threshold:
            product = g() * n
            low = product & 0xFFFFFFFF
    return product >> 32


def std_shuffle(size: int, seed: int = DALI_DATALOADER_SEED) -> np.ndarray:
    """Return ``range(size)`` permuted as ``std::shuffle(v.begin(), v.end(), std::mt19937(seed))`` does.

    Args:
        size: Number of elements (less than 2**32).
        seed: The Mersenne Twister seed.

    Returns:
        The permuted indices (int64).
    """
    out = list(range(size))
    if size < 2:
        return np.asarray(out, dtype=np.int64)
    g = _MT19937(seed)
    if (_U32 - 1) // size >= size:  # two positions per draw
        i = 1
        if size % 2 == 0:
            j = _uniform(g, 2)
            out[1], out[j] = out[j], out[1]
            i = 2
        while i < size:
            r = i + 1
            x = _uniform(g, r * (r + 1))
            j, k = x // (r + 1), x % (r + 1)
            out[i], out[j] = out[j], out[i]
            out[i + 1], out[k] = out[k], out[i + 1]
            i += 2
    else:
        for i in range(1, size):
            j = _uniform(g, i + 1)
            out[i], out[j] = out[j], out[i]
    return np.asarray(out, dtype=np.int64)


@functools.lru_cache(maxsize=4)
def dali_fixed_permutation(size: int) -> np.ndarray:
    """DALI's fixed ``random_shuffle`` pre-permutation of a listing of ``size`` entries (read-only, cached)."""
    perm = std_shuffle(size)
    perm.flags.writeable = False
    return perm

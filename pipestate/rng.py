"""Counter-based random streams: Philox4x64-10, one C call per batch through numpy.

Every random draw in pipestate is a pure function of (key, sample index, draw layout): the key comes
from the pipeline seed and the operator's stable name, the sample index is the global index of the
sample in the pipeline's output. So outputs do not depend on thread count, scheduling or prefetch depth,
and the state to checkpoint is just a counter.

The generator is numpy's ``Philox`` bit generator (Philox4x64-10 of Random123, implemented in C; numpy
keeps bit-generator streams stable across releases, NEP 19). We re-point its 256-bit counter for each
draw, so a batch costs one or a few C calls instead of a Python loop. A 64-bit pipestate key becomes
the 128-bit Philox key ``(key, 0)``. Counter layouts, for sample ``s``, block ``b`` (4 × 64 bits = 8
uint32 words) and purpose ``p`` (independent draws of one operator):

- up to ``SMALL_BLOCKS`` blocks per sample: counter ``(s, b, p, 0)``; consecutive samples are
  consecutive counters, so one call draws block ``b`` for a whole batch;
- more blocks per sample: counter ``(b, s, p, 1)``; one call draws all blocks of one sample;
- a numpy ``Generator`` for sample ``s`` (distributions numpy implements, e.g. beta): its Philox starts
  at counter ``(0, s, p, 2)``.

numpy increments the counter before each block; that is part of the fixed mapping.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

SMALL_BLOCKS = 8
_WORDS_PER_BLOCK = 8  # uint32 words per Philox4x64 block
_MASK64 = (1 << 64) - 1
_local = threading.local()


def derive_key(*parts: object) -> int:
    """Return a 64-bit key derived (by SHA-256) from the given parts, e.g. (seed, operator name)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


class _Generator:
    """One thread's numpy Philox, with a reusable state dict to re-point its key and counter."""

    def __init__(self) -> None:
        self.bits = np.random.Philox(0)
        self.state = self.bits.state
        self.counter = self.state["state"]["counter"]
        self.key = self.state["state"]["key"]

    def raw(self, key: int, counter: tuple[int, int, int, int], n_blocks: int) -> np.ndarray:
        self.key[0], self.key[1] = key, 0
        for i, word in enumerate(counter):
            self.counter[i] = word & _MASK64
        self.state["buffer_pos"] = 4
        self.state["has_uint32"] = 0
        self.bits.state = self.state
        return self.bits.random_raw(4 * n_blocks).view(np.uint32)


def _generator() -> _Generator:
    gen = getattr(_local, "generator", None)
    if gen is None:
        gen = _local.generator = _Generator()
    return gen


class Stream:
    """Random words for a set of samples of one operator.

    ``Stream(key, first_sample, n_samples).words(k)`` returns a (n_samples, k) uint32 array whose row i
    depends only on (key, first_sample + i, k, purpose): the draws of sample s are the same whatever
    batch, thread or prefetch depth computed them. ``purpose`` separates independent draws of one
    operator. ``Stream.at(key, indices)`` is the same for an arbitrary list of global sample indices
    (the samples of a conditional branch): row i is what the dense stream gives sample ``indices[i]``.
    """

    def __init__(self, key: int, first_sample: int, n_samples: int) -> None:
        self.key = key
        self.first_sample = first_sample
        self.n_samples = n_samples
        self.indices: np.ndarray | None = None

    @classmethod
    def at(cls, key: int, indices: np.ndarray) -> Stream:
        """A stream for the samples with the given global indices (a 1-D integer array, any order)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        stream = cls(key, int(indices[0]) if len(indices) else 0, len(indices))
        stream.indices = indices
        return stream

    def index(self, i: int) -> int:
        """The global sample index of row ``i``."""
        return self.first_sample + i if self.indices is None else int(self.indices[i])

    def sample(self, i: int) -> Stream:
        """The stream of row ``i`` alone (its draws are row ``i`` of this stream's)."""
        return Stream(self.key, self.index(i), 1)

    def _runs(self) -> list[tuple[int, int]]:
        """(first global index, length) of each run of consecutive indices, in row order."""
        if self.indices is None:
            return [(self.first_sample, self.n_samples)]
        idx = self.indices
        starts = np.flatnonzero(np.diff(idx) != 1) + 1
        bounds = [0, *starts.tolist(), len(idx)]
        return [(int(idx[a]), b - a) for a, b in zip(bounds[:-1], bounds[1:])]

    def words(self, n_words: int, purpose: int = 0) -> np.ndarray:
        """Return a (n_samples, n_words) uint32 array of random words."""
        if self.n_samples == 0:
            return np.empty((0, n_words), dtype=np.uint32)
        gen = _generator()
        blocks = max(1, -(-n_words // _WORDS_PER_BLOCK))
        if blocks <= SMALL_BLOCKS:
            runs = self._runs()
            columns = []
            for b in range(blocks):
                parts = [gen.raw(self.key, (first, b, purpose, 0), n).reshape(n, -1) for first, n in runs]
                columns.append(parts[0] if len(parts) == 1 else np.concatenate(parts))
            out = columns[0] if blocks == 1 else np.concatenate(columns, axis=1)
        else:
            out = np.stack([gen.raw(self.key, (0, self.index(i), purpose, 1), blocks) for i in range(self.n_samples)])
        return out[:, :n_words]

    def generator(self, index: int, purpose: int = 0) -> np.random.Generator:
        """A new numpy ``Generator`` for row ``index`` alone, for distributions numpy implements.

        Its draws depend only on (key, the row's global sample index, purpose), and it is a separate object
        on every call: generators of different samples (or threads) never share state. Creating one costs
        ~10 µs; draw a batch's uniform or normal values with :meth:`uniform`/:meth:`normal` instead where
        that suffices.
        """
        counter = np.array([0, self.index(index) & _MASK64, purpose & _MASK64, 2], dtype=np.uint64)
        return np.random.Generator(np.random.Philox(key=np.array([self.key, 0], dtype=np.uint64), counter=counter))

    def uniform(self, n: int, dtype: np.dtype | type = np.float32, purpose: int = 0) -> np.ndarray:
        """Return (n_samples, n) floats uniform in [0, 1), with full mantissa precision for ``dtype``."""
        if np.dtype(dtype) == np.float64:
            w = self.words(2 * n, purpose)
            bits = np.ascontiguousarray(w).view(np.uint64) >> np.uint64(11)
            return bits.astype(np.float64) * (1.0 / (1 << 53))
        w = self.words(n, purpose)
        return ((w >> 8).astype(np.float32) * np.float32(1.0 / (1 << 24))).astype(dtype, copy=False)

    def normal(self, n: int, purpose: int = 0) -> np.ndarray:
        """Return (n_samples, n) float64 standard normal values (Box-Muller on 53-bit uniforms)."""
        pairs = -(-n // 2)
        u = self.uniform(2 * pairs, np.float64, purpose)
        u1 = 1.0 - u[:, 0::2]  # (0, 1]: log is finite
        u2 = u[:, 1::2]
        r = np.sqrt(-2.0 * np.log(u1))
        theta = 2.0 * np.pi * u2
        z = np.empty((self.n_samples, 2 * pairs), dtype=np.float64)
        z[:, 0::2] = r * np.cos(theta)
        z[:, 1::2] = r * np.sin(theta)
        return z[:, :n]

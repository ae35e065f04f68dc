"""The resampler's memory stays bounded on long outputs, with the same bits as the cached path."""

from __future__ import annotations

import numpy as np
import pytest

from pipestate.operators.audio import _resampling


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize(("in_rate", "out_rate"), [(16000, 44100), (44100, 16000), (8000, 8000 * 7)])
def test_long_outputs_are_computed_in_chunks_with_the_same_bits(monkeypatch, channels, in_rate, out_rate):
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((3000, channels) if channels > 1 else 3000).astype(np.float32)
    lobes = 16
    cached = _resampling.resample(signal, in_rate, out_rate, lobes)
    monkeypatch.setattr(_resampling, "_CACHE_BYTES", 0)  # every output is "too long to cache"
    monkeypatch.setattr(_resampling, "_CHUNK", _resampling.BLOCK * 3)  # several chunks, one cut mid-block
    _resampling._CACHE.clear()
    chunked = _resampling.resample(signal, in_rate, out_rate, lobes)
    assert chunked.dtype == np.float32 and chunked.tobytes() == cached.tobytes()
    assert not _resampling._CACHE  # nothing cached on that path

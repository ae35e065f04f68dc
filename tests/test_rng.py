import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipestate.rng import Stream, derive_key, philox4x32

# Known-answer vectors of Philox4x32-10 from Random123 (kat_vectors).
KAT = [
    (0, [0, 0, 0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    (0xFFFFFFFFFFFFFFFF, [0xFFFFFFFF] * 4, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    (
        0x299F31D0A4093822,
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ),
]


@pytest.mark.parametrize("key,counter,expected", KAT)
def test_philox_known_answers(key, counter, expected):
    out = philox4x32(key, np.array([counter], dtype=np.uint64))
    assert out.dtype == np.uint32
    assert out[0].tolist() == expected


def test_philox_vectorized_equals_one_at_a_time():
    counters = np.random.default_rng(0).integers(0, 2**32, (50, 4), dtype=np.uint64)
    together = philox4x32(1234, counters)
    alone = np.concatenate([philox4x32(1234, c[None]) for c in counters])
    assert np.array_equal(together, alone)


@settings(max_examples=50, deadline=None)
@given(
    key=st.integers(0, 2**64 - 1),
    start=st.integers(0, 2**40),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=5),
    n=st.integers(1, 13),
)
def test_stream_depends_only_on_sample_index(key, start, sizes, n):
    """Splitting a range of samples into batches of any sizes gives the same draws."""
    whole = Stream(key, start, sum(sizes)).uniform(n)
    parts, first = [], start
    for size in sizes:
        parts.append(Stream(key, first, size).uniform(n))
        first += size
    assert np.array_equal(whole, np.concatenate(parts))


def test_keys_separate_streams():
    a = Stream(derive_key("pipeline", 1, "op_a"), 0, 4).words(8)
    b = Stream(derive_key("pipeline", 1, "op_b"), 0, 4).words(8)
    assert not np.array_equal(a, b)


def test_distributions_are_sane():
    s = Stream(derive_key("x"), 0, 20000)
    u = s.uniform(1, np.dtype(np.float64)).ravel()
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01
    z = s.normal(2).ravel()
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    u32 = s.uniform(3).ravel()
    assert u32.dtype == np.float32 and u32.max() < 1

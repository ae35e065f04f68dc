import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipestate.rng import SMALL_BLOCKS, Stream, _generator, derive_key

M = 2**64 - 1


def test_generator_is_philox4x64_10_with_random123_known_answers():
    """numpy's Philox is Random123's Philox4x64-10 (kat_vectors); counters are incremented before use."""
    out = _generator().raw(0, (M, M, M, M), 1).view(np.uint64)
    assert [hex(x) for x in out] == [
        "0x16554d9eca36314c",
        "0xdb20fe9d672d0fdc",
        "0xd7e772cee186176b",
        "0x7e68b68aec7ba23b",
    ]
    bits = np.random.Philox(key=np.array([M, M], np.uint64))
    state = bits.state
    state["state"]["counter"] = np.array([M - 1, M, M, M], np.uint64)
    bits.state = state
    assert [hex(x) for x in bits.random_raw(4)] == [
        "0x87b092c3013fe90b",
        "0x438c3c67be8d0224",
        "0x9cc7d7c69cd777b6",
        "0xa09caebf594f0ba0",
    ]


@settings(max_examples=60, deadline=None)
@given(
    key=st.integers(0, 2**64 - 1),
    start=st.integers(0, 2**40),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=5),
    n=st.one_of(st.integers(1, 13), st.integers(8 * SMALL_BLOCKS - 3, 8 * SMALL_BLOCKS + 40)),
    purpose=st.integers(0, 3),
)
def test_stream_depends_only_on_sample_index(key, start, sizes, n, purpose):
    """Splitting a range of samples into batches of any sizes gives the same draws (both layouts)."""
    whole = Stream(key, start, sum(sizes)).words(n, purpose)
    parts, first = [], start
    for size in sizes:
        parts.append(Stream(key, first, size).words(n, purpose))
        first += size
    assert np.array_equal(whole, np.concatenate(parts))


def test_keys_purposes_and_samples_separate_streams():
    base = Stream(derive_key("pipeline", 1, "op_a"), 0, 4).words(8)
    assert not np.array_equal(base, Stream(derive_key("pipeline", 1, "op_b"), 0, 4).words(8))
    assert not np.array_equal(base, Stream(derive_key("pipeline", 1, "op_a"), 0, 4).words(8, purpose=1))
    assert len({row.tobytes() for row in Stream(1, 0, 100).words(8)}) == 100
    big = Stream(5, 0, 3).words(8 * SMALL_BLOCKS + 8)
    assert len({row.tobytes() for row in big}) == 3


def test_threads_do_not_disturb_each_other():
    expected = Stream(7, 0, 50).words(20)
    results = []

    def worker():
        for _ in range(200):
            results.append(np.array_equal(Stream(7, 0, 50).words(20), expected))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results) and len(results) == 800


def test_distributions_are_sane():
    s = Stream(derive_key("x"), 0, 20000)
    u = s.uniform(1, np.float64).ravel()
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01
    z = s.normal(2).ravel()
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    u32 = s.uniform(3).ravel()
    assert u32.dtype == np.float32 and u32.max() < 1
    # Uniform words: each of the 32 bits is set about half the time.
    bits = np.unpackbits(s.words(4).view(np.uint8)).reshape(-1, 8).mean()
    assert abs(bits - 0.5) < 0.01


@pytest.mark.parametrize("n", [1, 8 * SMALL_BLOCKS + 1])
def test_uniform_float64_uses_53_bits(n):
    u = Stream(3, 0, 1000).uniform(n, np.float64)
    assert len(np.unique(u)) == u.size  # no collisions from coarse quantization


def test_generators_of_different_samples_are_independent_objects():
    """Each call gives a new generator: interleaving draws of two samples (or another stream's calls on
    the same thread) never changes what either draws."""
    from pipestate.rng import Stream

    stream = Stream(123, 40, 4)
    g0, g1 = stream.generator(0), stream.generator(1)
    assert g0 is not g1
    expected0 = Stream(123, 40, 4).generator(0).beta(2.0, 3.0, size=5)
    expected1 = Stream(123, 40, 4).generator(1).beta(2.0, 3.0, size=5)
    got0, got1 = [], []
    for _ in range(5):
        got0.append(g0.beta(2.0, 3.0))
        Stream(999, 0, 2).words(3)  # another stream's call on this thread in between
        got1.append(g1.beta(2.0, 3.0))
    assert got0 == expected0.tolist() and got1 == expected1.tolist()


def test_per_sample_generators_of_the_kit_are_keyed_by_the_sample_identity():
    from pipestate import fn, pipeline_def
    from pipestate.testing import record

    @pipeline_def(batch_size=4, seed=3, num_threads=3, enable_checkpointing=True)
    def pipe():
        return fn.random.beta(alpha=2.0, shape=[3])  # one numpy generator per sample

    events, _ = record(pipe(), 2)
    flat = [s.tobytes() for batch in events for s in batch[0]]
    assert len(set(flat)) == len(flat)  # no two samples share draws

"""Properties of the pure sampler: permutations, disjoint covering shards, padding, determinism."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipestate.operators.readers import _sampler as s

configs = st.integers(1, 6).flatmap(
    lambda ns: st.tuples(
        st.integers(ns, 80),  # size >= num_shards
        st.just(ns),
        st.integers(1, 9),  # batch size
        st.booleans(),  # pad_last_batch
        st.sampled_from(["none", "buffer", "after_epoch"]),
        st.integers(1, 40),  # initial_fill
        st.integers(0, 5),  # epoch
    )
)


def shuffle_config(mode: str, fill: int) -> s.ShuffleConfig:
    return s.ShuffleConfig(mode == "buffer", fill, mode == "after_epoch", key=1234)


@settings(max_examples=200, deadline=None)
@given(configs)
def test_shards_are_disjoint_and_cover_the_dataset_each_epoch(case) -> None:
    size, ns, bs, pad, mode, fill, epoch = case
    shuffle = shuffle_config(mode, fill)
    seen = []
    for sid in range(ns):
        cfg = s.ShardConfig(size, sid, ns, bs, False, pad)
        order = s.epoch_order(cfg, shuffle, epoch)
        assert len(order) == s.epoch_length(cfg, epoch)
        begin, end = s.shard_bounds(size, s.epoch_shard(cfg, epoch), ns)
        real = order[: end - begin]
        if pad:
            assert len(order) % bs == 0
            assert (order[end - begin :] == real[-1]).all()
        seen.append(real)
    everything = np.concatenate(seen)
    assert sorted(everything.tolist()) == list(range(size))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 300), st.integers(1, 64), st.integers(0, 2**64 - 1))
def test_buffer_shuffle_is_a_permutation_and_deterministic(n: int, fill: int, key: int) -> None:
    indices = np.arange(n) * 3
    out = s.buffer_shuffle(indices, fill, key)
    assert sorted(out.tolist()) == indices.tolist()
    assert (s.buffer_shuffle(indices, fill, key) == out).all()


def _sequential_buffer_shuffle(indices: np.ndarray, fill: int, key: int) -> list[int]:
    """The shuffle buffer step by step, as specified (the reference of the vectorized replay)."""
    from pipestate.rng import Stream

    total = len(indices)
    fill = min(fill, total)
    words = Stream(key, 0, total).words(1)[:, 0].astype(np.uint64).tolist() if total else []
    src, buf, out = list(indices), list(indices[:fill]), []
    for i in range(fill, total):
        j = (words[i - fill] * fill) >> 32
        out.append(buf[j])
        buf[j] = src[i]
    for i, word in enumerate(words[total - fill :]):
        j = (word * (fill - i)) >> 32
        out.append(buf[j])
        buf[j] = buf[-1]
        buf.pop()
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), max_size=200),
    st.integers(1, 70),
    st.integers(0, 2**64 - 1),
    st.sampled_from([1, 3, 16, 1 << 16]),
)
def test_the_vectorized_replay_equals_the_step_by_step_buffer(indices, fill, key, block) -> None:
    import unittest.mock

    with unittest.mock.patch.object(s, "_SHUFFLE_BLOCK", block):
        out = s.buffer_shuffle(np.asarray(indices, dtype=np.int64), fill, key)
    assert out.dtype == np.int64 and out.tolist() == _sequential_buffer_shuffle(indices, fill, key)


def test_buffer_of_one_keeps_the_order_and_a_buffer_only_looks_ahead_initial_fill() -> None:
    indices = np.arange(500)
    assert (s.buffer_shuffle(indices, 1, 5) == indices).all()
    out = s.buffer_shuffle(indices, 10, 5)
    # The k-th emitted sample was among the first k + 10 read.
    assert all(v < k + 10 for k, v in enumerate(out.tolist()))
    assert (out != indices).any()


def test_shard_bounds_match_dali() -> None:
    assert [s.shard_bounds(10, k, 3) for k in range(3)] == [(0, 3), (3, 6), (6, 10)]
    assert [s.shard_bounds(10, k, 4) for k in range(4)] == [(0, 2), (2, 5), (5, 7), (7, 10)]


def test_padding_and_rotation() -> None:
    cfg = s.ShardConfig(10, 1, 3, 3, False, True)
    none = s.ShuffleConfig()
    assert [s.epoch_order(cfg, none, e).tolist() for e in range(3)] == [
        [3, 4, 5, 5, 5, 5],
        [6, 7, 8, 9, 9, 9],
        [0, 1, 2, 2, 2, 2],
    ]
    assert s.epoch_size_padded(cfg) == 12
    sticky = s.ShardConfig(10, 1, 3, 3, True, False)
    assert s.epoch_order(sticky, none, 5).tolist() == [3, 4, 5]


def test_orders_depend_on_the_key_and_the_epoch() -> None:
    cfg = s.ShardConfig(100, 0, 1, 4, False, False)
    a = s.epoch_order(cfg, s.ShuffleConfig(True, 16, False, 1), 0)
    assert (a != s.epoch_order(cfg, s.ShuffleConfig(True, 16, False, 2), 0)).any()
    assert (a != s.epoch_order(cfg, s.ShuffleConfig(True, 16, False, 1), 1)).any()
    b = s.epoch_order(cfg, s.ShuffleConfig(False, 16, True, 1), 0)
    assert (b != s.epoch_order(cfg, s.ShuffleConfig(False, 16, True, 1), 1)).any()

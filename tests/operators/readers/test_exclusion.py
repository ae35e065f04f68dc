"""The reader's exclusion and skip arithmetic against brute force: walking the kept samples, jumping ahead
without reading, merging ranges, and the inverse of ``samples_before``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipestate.errors import CheckpointMismatchError
from pipestate.operators.readers import _elastic, _exclusion, _sampler

pairs = st.lists(st.tuples(st.integers(0, 60), st.integers(1, 8)), max_size=5).map(
    lambda items: [(b, b + n) for b, n in items]
)


def _orders(size: int, lengths: list[int], seed: int):
    """Epoch orders of periodic lengths: each epoch a permutation of a slice of range(size)."""

    def order(epoch: int) -> np.ndarray:
        n = lengths[epoch % len(lengths)]
        start = (epoch % len(lengths)) * 7 % size
        base = (np.arange(n) + start) % size
        return np.random.default_rng([seed, epoch % len(lengths)]).permutation(base)

    return order


def _stream(order, epoch: int, consumed: int, epochs: int) -> list[tuple[int, int, int]]:
    """(epoch, position, index) of every entry from the position on, for ``epochs`` epochs."""
    out = []
    for e in range(epoch, epoch + epochs):
        for p, index in enumerate(order(e).tolist()):
            if e > epoch or p >= consumed:
                out.append((e, p, index))
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.integers(5, 40),
    st.lists(st.integers(1, 12), min_size=1, max_size=3),
    pairs,
    st.integers(0, 3),
    st.integers(0, 11),
    st.integers(0, 60),
    st.integers(0, 2**32),
)
def test_walk_and_advance_take_the_kept_samples_in_order(size, lengths, excluded, epoch, consumed, count, seed):
    lengths = [min(n, size) for n in lengths]
    consumed = consumed % lengths[epoch % len(lengths)]
    order = _orders(size, lengths, seed)
    ranges = _exclusion.Ranges(_exclusion.merge(excluded)) if excluded else _exclusion.Ranges([size + 1, size + 2])
    bad = {i for b, e in zip(ranges.flat[::2], ranges.flat[1::2]) for i in range(b, e)}
    stream = _stream(order, epoch, consumed, 200)
    kept = [(e, p, i) for e, p, i in stream if i not in bad]
    if not kept:
        return
    exclusion = _exclusion.Exclusion(ranges, order, replace=False, period=len(lengths))
    indices, epochs, e2, c2, passed = exclusion.walk(epoch, consumed, count)
    assert indices.tolist() == [i for _, _, i in kept[:count]]  # nothing excluded, nothing else lost
    assert epochs.tolist() == [e for e, _, _ in kept[:count]]
    # the position is just before the next kept sample (or past every epoch without one)
    nxt = kept[count]
    assert (e2, c2) <= nxt[:2] and not [x for x in kept if (e2, c2) <= x[:2] < nxt[:2]]
    walked = sum(1 for e, p, _ in stream if (e, p) < (e2, c2))
    assert walked - passed == count
    assert exclusion.advance(epoch, consumed, count) == (e2, c2, passed)  # jumping whole periods agrees
    assert _exclusion.Exclusion(ranges, order, False, None).advance(epoch, consumed, count) == (e2, c2, passed)


@settings(max_examples=100, deadline=None)
@given(pairs)
def test_merge_and_mask(excluded):
    flat = _exclusion.merge(excluded)
    assert all(a < b for a, b in zip(flat, flat[1:]))
    bad = {i for b, e in excluded for i in range(b, e)}
    ranges = _exclusion.Ranges(flat) if flat else None
    indices = np.arange(80)
    if ranges is not None:
        assert ranges.mask(indices).tolist() == [i in bad for i in range(80)]
        assert ranges.count(10, 50) == len(bad & set(range(10, 50)))
    else:
        assert not bad


def test_replacement_takes_the_last_kept_sample_of_the_epoch():
    order = lambda epoch: np.array([3, 1, 4, 1, 5, 9, 9, 9])  # noqa: E731 - padded with its last sample
    exclusion = _exclusion.Exclusion(_exclusion.Ranges([4, 6, 9, 10]), order, replace=True, period=1)
    indices = np.array([3, 4, 5, 9, 1])
    assert exclusion.replaced(indices, np.zeros(5, np.int64)).tolist() == [3, 1, 1, 1, 1]
    everything = _exclusion.Exclusion(_exclusion.Ranges([0, 10]), order, replace=True, period=1)
    with pytest.raises(ValueError, match="every sample of reader epoch 0"):
        everything.replaced(indices, np.zeros(5, np.int64))


@pytest.mark.parametrize(
    "state",
    [
        {"epoch": 0, "consumed": 0, "dataset_digest": 1, "excluded": [3]},
        {"epoch": 0, "consumed": 0, "dataset_digest": 1, "excluded": [4, 3], "passed": 0},
        {"epoch": 0, "consumed": 0, "dataset_digest": 1, "excluded": [1, 2, 2, 3], "passed": 0},
        {"epoch": 0, "consumed": 0, "dataset_digest": 1, "excluded": [], "passed": 0},
        {"epoch": 0, "consumed": 0, "dataset_digest": 1, "excluded": [-1, 3], "passed": 0},
        {"epoch": 0, "consumed": 0, "dataset_digest": 1, "excluded": [True, 3], "passed": 0},
        {"epoch": 0, "consumed": 0, "dataset_digest": 1, "excluded": [1, 3]},
        {"epoch": 0, "consumed": 0, "dataset_digest": 1, "passed": 0},
        {"epoch": 0, "consumed": 0, "dataset_digest": 1, "skip": 0},
        {"epoch": 0, "consumed": 0, "dataset_digest": 1, "skip": -4},
        {"epoch": 0, "consumed": 0, "dataset_digest": 1, "skip": "4"},
        {"epoch": 0, "consumed": 0, "dataset_digest": 1, "excluded": [1, 3], "passed": 2**63},
    ],
)
def test_malformed_optional_parts_are_refused(state):
    with pytest.raises(CheckpointMismatchError, match="operator 'r'"):
        _exclusion.split_state(state, _elastic.POSITION_KEYS, False, "operator 'r'")


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6).flatmap(lambda m: st.tuples(st.integers(m, 60), st.just(m), st.integers(0, 5))), st.data())
def test_position_after_inverts_samples_before(case, data):
    size, shards, shard = case
    cfg = _sampler.ShardConfig(
        size, shard % shards, shards, data.draw(st.integers(1, 9)), data.draw(st.booleans()), data.draw(st.booleans())
    )
    epoch = data.draw(st.integers(0, 20))
    consumed = data.draw(st.integers(0, _sampler.epoch_length(cfg, epoch) - 1))
    assert _sampler.position_after(cfg, _sampler.samples_before(cfg, epoch) + consumed) == (epoch, consumed)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 50), st.integers(1, 20), st.booleans(), st.integers(0, 4), st.integers(0, 49), st.integers(0, 30))
def test_elastic_advance_is_steps_of_the_global_batch(size, g, pad, epoch, consumed, steps):
    layout = _sampler.Layout(g, 1, 0)
    consumed = (consumed % -(-size // g)) * g if pad else consumed % size
    order = lambda e: np.arange(size)  # noqa: E731
    e, c = epoch, consumed
    for _ in range(steps):
        *_, e, c = _sampler.elastic_step(size, layout, pad, e, c, order)
    assert _elastic.advance(size, layout, pad, epoch, consumed, steps * g) == (e, c)
    if pad and g > 1:
        with pytest.raises(ValueError, match="whole number of global batches"):
            _elastic.advance(size, layout, pad, epoch, consumed, steps * g + 1)

"""fn.random.*: shapes and types as DALI, argument handling, statistics, checkpoint conformance."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipestate import fn, pipeline_def, types
from pipestate.testing import assert_equal_output_after_checkpoint, assert_same_output


def run_once(build, batch_size=4, seed=5):
    @pipeline_def(batch_size=batch_size, seed=seed)
    def p():
        return build()

    pipe = p()
    out = pipe.run()[0]
    pipe.close()
    return out


@pytest.mark.parametrize(
    "build,dtype,shape",
    [
        (lambda: fn.random.uniform(), np.float32, ()),
        (lambda: fn.random.uniform(shape=[3]), np.float32, (3,)),
        (lambda: fn.random.uniform(shape=5, dtype=types.FLOAT64), np.float64, (5,)),
        (lambda: fn.random.normal(shape=[2, 2]), np.float32, (2, 2)),
        (lambda: fn.random.coin_flip(), np.int32, ()),
        (lambda: fn.random.coin_flip(dtype=types.UINT8, shape=[4]), np.uint8, (4,)),
        (lambda: fn.random.choice(5), np.int32, ()),
        (lambda: fn.random.choice([1.5, 2.5]), np.float32, ()),
    ],
)
def test_dtypes_and_shapes_follow_dali(build, dtype, shape):
    out = run_once(build)
    assert out.dtype == dtype and out.shape() == [shape] * 4


def test_uniform_range_and_values():
    u = run_once(lambda: fn.random.uniform(range=[2.0, 3.0], shape=[1000])).as_array()
    assert u.min() >= 2.0 and u.max() < 3.0 and abs(u.mean() - 2.5) < 0.02
    v = run_once(lambda: fn.random.uniform(values=[1.0, 7.0], shape=[1000])).as_array()
    assert set(np.unique(v)) == {1.0, 7.0}
    i = run_once(lambda: fn.random.uniform(range=[0, 3], dtype=types.INT32, shape=[1000])).as_array()
    assert set(np.unique(i)) == {0, 1, 2}


def test_uniform_stays_below_high_in_float32():
    u = run_once(lambda: fn.random.uniform(range=[0.0, 1e-7], shape=[4096])).as_array()
    assert (u < np.float32(1e-7)).all()


def test_normal_moments():
    z = run_once(lambda: fn.random.normal(mean=3.0, stddev=2.0, shape=[5000])).as_array()
    assert abs(z.mean() - 3.0) < 0.05 and abs(z.std() - 2.0) < 0.05


def test_coin_flip_probability():
    c = run_once(lambda: fn.random.coin_flip(probability=0.2, shape=[5000])).as_array()
    assert abs(c.mean() - 0.2) < 0.02


def test_choice_weights():
    c = run_once(lambda: fn.random.choice([10, 20, 30], p=[0.1, 0.0, 0.9], shape=[5000])).as_array()
    assert c.dtype == np.int32 and set(np.unique(c)) == {10, 30}
    assert abs((c == 30).mean() - 0.9) < 0.02


def test_per_sample_arguments():
    def build():
        p = fn.external_source(source=lambda: [np.float32(x) for x in (0.0, 1.0, 0.0, 1.0)])
        return fn.random.coin_flip(probability=p, shape=[50])

    c = run_once(build).as_array()
    assert (c[0] == 0).all() and (c[1] == 1).all()

    def build_normal():
        mean = fn.external_source(source=lambda: np.array([0, 100, 200, 300], np.float32))
        return fn.random.normal(mean=mean, stddev=0.0)

    assert run_once(build_normal).as_array().tolist() == [0, 100, 200, 300]

    def build_range():
        r = fn.external_source(source=lambda: np.array([[0, 1], [10, 11], [20, 21], [30, 31]], np.float32))
        return fn.random.uniform(range=r)

    u = run_once(build_range).as_array()
    assert (np.floor(u) == [0, 10, 20, 30]).all()


def test_shape_like_input_gives_ragged_shapes():
    def build():
        x = fn.external_source(source=lambda: [np.zeros(n) for n in (1, 2, 3, 4)])
        return fn.random.normal(x)

    assert run_once(build).shape() == [(1,), (2,), (3,), (4,)]


def test_ragged_draws_equal_the_dense_draws_of_the_same_samples():
    def ragged():
        x = fn.external_source(source=lambda: [np.zeros(n) for n in (3, 3, 3, 2)])
        return fn.random.uniform(x, name="u")

    r = run_once(ragged)
    d = run_once(lambda: fn.random.uniform(shape=[3], name="u")).as_array()
    assert np.array_equal(r[0], d[0]) and np.array_equal(r[3], d[3][:2])


def test_operator_seed_overrides_pipeline_seed():
    a = run_once(lambda: fn.random.uniform(shape=[4], seed=9), seed=1).as_array()
    b = run_once(lambda: fn.random.uniform(shape=[4], seed=9), seed=2).as_array()
    c = run_once(lambda: fn.random.uniform(shape=[4]), seed=2).as_array()
    assert np.array_equal(a, b) and not np.array_equal(b, c)


@pytest.mark.parametrize(
    "build,error,match",
    [
        (lambda: fn.random.uniform(range=[1, 0]), ValueError, "range"),
        (lambda: fn.random.uniform(values=[]), ValueError, "values"),
        (lambda: fn.random.normal(stddev=-1), ValueError, "stddev"),
        (lambda: fn.random.normal(dtype=types.INT32), TypeError, "dtype"),
        (lambda: fn.random.coin_flip(probability=1.5), ValueError, "probability"),
        (lambda: fn.random.choice(0), ValueError, "a=0"),
        (lambda: fn.random.choice(3, p=[0.5, 0.5]), ValueError, "p has 2"),
        (lambda: fn.random.choice(2, p=[0.9, 0.9]), ValueError, "sum to 1"),
        (lambda: fn.random.uniform(shape=[-1]), ValueError, "shape"),
        (lambda: fn.random.uniform(seed=1.5), TypeError, "seed"),
    ],
)
def test_bad_arguments_raise_at_definition(build, error, match):
    with pytest.raises(error, match=match):
        run_once(build)


@pipeline_def(batch_size=3, seed=11, enable_checkpointing=True)
def all_random():
    return (
        fn.random.uniform(range=[-5.0, 5.0], shape=[2]),
        fn.random.normal(shape=[3]),
        fn.random.coin_flip(probability=0.7),
        fn.random.choice([4, 5, 6], p=[0.2, 0.3, 0.5]),
    )


def test_checkpoint_conformance():
    assert_equal_output_after_checkpoint(all_random, steps=8)


def test_output_does_not_depend_on_threads_or_prefetch():
    assert_same_output(
        all_random,
        [
            {"num_threads": 1, "prefetch_queue_depth": 1},
            {"num_threads": 4, "prefetch_queue_depth": 3},
            {"num_threads": 2, "prefetch_queue_depth": 8},
        ],
    )


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**62),
    batch_size=st.integers(1, 9),
    threads=st.integers(1, 4),
    depth=st.integers(1, 4),
    cut=st.integers(0, 5),
)
def test_property_restore_anywhere_any_options(seed, batch_size, threads, depth, cut):
    """For any seed, batch size, threads and prefetch depth: restoring at `cut` continues exactly, and
    the output equals the single-threaded, depth-1 run."""
    factory = functools.partial(all_random, seed=seed, batch_size=batch_size)
    assert_equal_output_after_checkpoint(
        functools.partial(factory, num_threads=threads, prefetch_queue_depth=depth), steps=6, restore_at=[cut]
    )
    assert_same_output(factory, [{}, {"num_threads": threads, "prefetch_queue_depth": depth}], steps=3)


DALI_CASES = [
    ("random.uniform", {"range": [-2.0, 3.0], "shape": [4000]}),
    ("random.uniform", {"values": [1.0, 5.0, 9.0], "shape": [4000]}),
    ("random.normal", {"mean": 1.5, "stddev": 0.5, "shape": [4000]}),
    ("random.coin_flip", {"probability": 0.3, "shape": [4000]}),
    ("random.choice", {"a": [3, 5, 7], "p": [0.2, 0.3, 0.5], "shape": [4000]}),
    ("random.beta", {"alpha": 2.0, "beta": 5.0, "shape": [4000]}),
]


@pytest.mark.dali_differential("random.uniform", "random.normal", "random.coin_flip", "random.choice", "random.beta")
@pytest.mark.parametrize(("op_type", "args"), DALI_CASES, ids=lambda c: str(c))
def test_same_types_shapes_support_and_moments_as_dali(op_type, args):
    """pipestate's streams are its own (counter-based), so values differ from DALI's; the distribution,
    element type, shape and support must not."""
    dali = pytest.importorskip("nvidia.dali", reason="DALI (nvidia-dali-cuda120) is not installed")

    def call(namespace):
        func = namespace
        for part in op_type.split("."):
            func = getattr(func, part)
        kwargs = dict(args)
        return func(kwargs.pop("a"), **kwargs) if "a" in kwargs else func(**kwargs)  # DALI: `a` is positional

    ours = run_once(lambda: call(fn), batch_size=2)
    pipe = dali.pipeline_def(batch_size=2, num_threads=1, device_id=None, seed=5)(lambda: call(dali.fn))()
    pipe.build()
    theirs = pipe.run()[0]
    for i in range(2):
        a, d = np.asarray(ours[i]), np.array(theirs.at(i))
        assert a.dtype == d.dtype and a.shape == d.shape, (a.dtype, a.shape, d.dtype, d.shape)
        if op_type in ("random.choice", "random.coin_flip") or "values" in args:
            assert set(np.unique(a)) == set(np.unique(d))
        assert abs(a.mean() - d.mean()) < 4 * d.std() / np.sqrt(a.size) + 1e-3, (a.mean(), d.mean())
        assert abs(a.std() - d.std()) < 0.08 * d.std(), (a.std(), d.std())
        assert a.min() >= d.min() - 4 * d.std() and a.max() <= d.max() + 4 * d.std()


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: fn.random.coin_flip(probability=fn.random.uniform(range=[2.0, 3.0])), r"probability.*sample \d"),
        (lambda: fn.random.normal(stddev=fn.random.uniform(range=[-2.0, -1.0])), r"stddev.*sample \d.*>= 0"),
        (lambda: fn.random.uniform(range=fn.random.uniform(range=[0.0, 1.0], shape=[3])), r"range.*sample \d.*shape"),
    ],
    ids=["probability-out-of-range", "negative-stddev", "range-of-3-values"],
)
def test_bad_per_sample_arguments_name_the_argument_and_the_sample(build, pattern):
    from pipestate import OperatorError

    with pytest.raises(OperatorError, match=pattern):
        run_once(build)

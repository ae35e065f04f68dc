"""fn.noise.*: DALI's arithmetic given the same draws, the distributions against DALI's, and the arguments.

The draws of a sample come from its own generator, ``Stream(key, sample_id, 1).generator(0)`` with the key of the
operator's ``seed=``: the tests rebuild them, feed them to DALI through ``external_source`` and compute DALI's
formula with DALI's operators (``cast`` saturates and rounds as the noise operators do). The distributions are
compared with DALI's own noise operators (two-sample Kolmogorov-Smirnov tests, fixed seeds: deterministic).
"""

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def
from pipestate.rng import Stream, derive_key

SEED = 77
BATCH = 3


def images(dtype=np.uint8, shape=(40, 50, 3), low=0, high=256):
    rng = np.random.default_rng(5)
    return [rng.integers(low, high, shape).astype(dtype) for _ in range(BATCH)]


def ours(build, samples, layout="HWC"):
    @pipeline_def(batch_size=len(samples), num_threads=2, seed=3)
    def pipe():
        return build(fn.external_source(source=lambda: samples, layout=layout))

    p = pipe()
    (out,) = p.run()
    p.close()
    return [np.array(s) for s in out]


def generators():
    """The generator of each sample of the first batch of an operator built with ``seed=SEED``."""
    key = derive_key("op-seed", SEED)
    return [Stream(key, i, 1).generator(0) for i in range(BATCH)]


def dalis(build, *feeds, layout="HWC"):
    """Run ``build(dali_fn, dali_types, *nodes)`` on DALI's CPU with one external source per feed."""
    pytest.importorskip("nvidia.dali", reason="DALI is the reference oracle; pip install '.[dali]'")
    from nvidia.dali import fn as dfn
    from nvidia.dali import pipeline_def as dali_pipeline_def
    from nvidia.dali import types as dtypes

    @dali_pipeline_def(batch_size=BATCH, num_threads=1, device_id=None, seed=11)
    def pipe():
        nodes = [
            dfn.external_source(source=(lambda f: lambda: list(f))(feed), layout=layout if k == 0 else None)
            for k, feed in enumerate(feeds)
        ]
        return build(dfn, dtypes, *nodes)

    p = pipe()
    p.build()
    (out,) = p.run()
    return [np.array(out[i]) for i in range(BATCH)]


def ks(a, b):
    from scipy.stats import ks_2samp

    return ks_2samp(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)).pvalue


# ---- gaussian ----------------------------------------------------------------------------------------------
@pytest.mark.dali_differential("noise.gaussian")
@pytest.mark.parametrize(
    "dtype, dali_float", [(np.uint8, "FLOAT"), (np.int16, "FLOAT"), (np.int32, "FLOAT64"), (np.float32, "FLOAT")]
)
def test_gaussian_is_dalis_arithmetic_on_the_same_draws(dtype, dali_float):
    samples = images(dtype, low=-50 if dtype != np.uint8 else 0, high=250)
    got = ours(lambda x: fn.noise.gaussian(x, mean=2.0, stddev=30.0, seed=SEED), samples)
    ftype = np.float64 if dali_float == "FLOAT64" else np.float32
    noise = [ftype(2.0) + ftype(30.0) * g.standard_normal(s.shape, dtype=ftype) for g, s in zip(generators(), samples)]

    def build(dfn, dtypes, x, n):
        return dfn.cast(dfn.cast(x, dtype=getattr(dtypes, dali_float)) + n, dtype=dtypes.to_dali_type(dtype))

    expected = dalis(build, samples, noise)
    for a, e in zip(got, expected):
        assert a.dtype == e.dtype == dtype and a.tobytes() == e.tobytes()


@pytest.mark.dali_differential("noise.gaussian")
def test_gaussian_distribution_matches_dalis():
    flat = [np.full((60, 60, 3), 128.0, np.float32) for _ in range(BATCH)]
    got = ours(lambda x: fn.noise.gaussian(x, mean=1.5, stddev=4.0), flat)
    theirs = dalis(lambda dfn, dtypes, x: dfn.noise.gaussian(x, mean=1.5, stddev=4.0), flat)
    residual = np.concatenate([g - 128.0 for g in got])
    assert abs(residual.mean() - 1.5) < 0.05 and abs(residual.std() - 4.0) < 0.05
    assert ks(residual, np.concatenate([t - 128.0 for t in theirs])) > 1e-3


# ---- salt and pepper ---------------------------------------------------------------------------------------
@pytest.mark.dali_differential("noise.salt_and_pepper")
@pytest.mark.parametrize("per_channel", [False, True])
def test_salt_and_pepper_is_dalis_arithmetic_on_the_same_draws(per_channel):
    samples = images()
    got = ours(
        lambda x: fn.noise.salt_and_pepper(x, prob=0.3, salt_vs_pepper=0.25, per_channel=per_channel, seed=SEED),
        samples,
    )
    shape = (40, 50, 3) if per_channel else (40, 50, 1)
    draws = [np.broadcast_to(g.random(shape, dtype=np.float32), (40, 50, 3)).copy() for g in generators()]

    def build(dfn, dtypes, x, u):
        noisy = u < np.float32(0.3)
        salt = u < np.float32(0.3) * np.float32(0.25)
        kept = dfn.cast(x, dtype=dtypes.INT32) * (noisy ^ True)
        replaced = noisy * (salt * 255)  # salt: the type's maximum; pepper: its minimum, 0
        return dfn.cast(kept + replaced, dtype=dtypes.UINT8)

    expected = dalis(build, samples, draws)
    for a, e in zip(got, expected):
        assert a.tobytes() == e.tobytes()


@pytest.mark.dali_differential("noise.salt_and_pepper")
def test_salt_and_pepper_frequencies_match_dalis():
    grey = [np.full((80, 80, 3), 100, np.uint8) for _ in range(BATCH)]
    got = np.concatenate(ours(lambda x: fn.noise.salt_and_pepper(x, prob=0.2, salt_vs_pepper=0.7), grey))
    theirs = np.concatenate(
        dalis(lambda dfn, dtypes, x: dfn.noise.salt_and_pepper(x, prob=0.2, salt_vs_pepper=0.7), grey)
    )
    for out in (got, theirs):
        assert abs((out != 100).mean() - 0.2) < 0.01 and abs((out == 255).mean() / (out != 100).mean() - 0.7) < 0.03
        assert (out[..., 0] == out[..., 2]).all()  # one draw per pixel: the channels agree


def test_salt_and_pepper_values_and_layouts():
    floats = [np.zeros((5, 6, 3), np.float32)] * BATCH
    out = ours(lambda x: fn.noise.salt_and_pepper(x, prob=1.0, salt_vs_pepper=1.0), floats)
    assert all((o == 1.0).all() for o in out)  # float salt: 1.0
    out = ours(lambda x: fn.noise.salt_and_pepper(x, prob=1.0, salt_vs_pepper=0.0, pepper_val=-5.5), images())
    assert all((o == 251).all() for o in out)  # -5.5 truncated to -5, wrapped to uint8 as DALI
    chw = [np.full((3, 8, 8), 9, np.uint8)] * BATCH
    out = ours(lambda x: fn.noise.salt_and_pepper(x, prob=0.5), chw, layout="CHW")
    assert all((o == o[:1]).all() for o in out)  # channels first: one draw per pixel across C
    with pytest.raises(OperatorError, match="per_channel=False needs the channels"):
        ours(lambda x: fn.noise.salt_and_pepper(x), [np.zeros((4, 4), np.uint8)] * BATCH, layout="HW")


# ---- shot ----------------------------------------------------------------------------------------------------
@pytest.mark.dali_differential("noise.shot")
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_shot_is_dalis_arithmetic_on_the_same_draws(dtype):
    samples = images(dtype, high=200)
    got = ours(lambda x: fn.noise.shot(x, factor=7.5, seed=SEED), samples)
    inv = np.float32(1) / np.float32(7.5)
    counts = [
        g.poisson(np.maximum(np.float32(0), s.astype(np.float32) * inv).astype(np.float64)).astype(np.float32)
        for g, s in zip(generators(), samples)
    ]

    def build(dfn, dtypes, x, n):
        return dfn.cast(n * np.float32(7.5), dtype=dtypes.to_dali_type(dtype))

    expected = dalis(build, samples, counts)
    for a, e in zip(got, expected):
        assert a.dtype == e.dtype and a.tobytes() == e.tobytes()


@pytest.mark.dali_differential("noise.shot")
def test_shot_distribution_matches_dalis():
    level = [np.full((60, 60, 3), 90, np.uint8) for _ in range(BATCH)]
    got = np.concatenate(ours(lambda x: fn.noise.shot(x, factor=3.0), level)).astype(np.float64)
    theirs = np.concatenate(dalis(lambda dfn, dtypes, x: dfn.noise.shot(x, factor=3.0), level)).astype(np.float64)
    assert abs(got.mean() - 90) < 0.3 and abs(got.var() - 270) < 15  # Poisson(30) * 3
    assert ks(got, theirs) > 1e-3


def test_shot_factor_zero_is_the_identity():
    samples = images()
    out = ours(lambda x: fn.noise.shot(x, factor=0.0), samples)
    assert all((o == s).all() for o, s in zip(out, samples))


def test_noise_keeps_type_shape_and_layout():
    samples = images(np.int16, shape=(2, 7, 9, 3), low=-100, high=100)

    @pipeline_def(batch_size=BATCH, num_threads=1, seed=1)
    def pipe():
        x = fn.external_source(source=lambda: samples, layout="FHWC")
        return fn.noise.gaussian(x), fn.noise.salt_and_pepper(x), fn.noise.shot(x)

    p = pipe()
    for out in p.run():
        assert out.layout() == "FHWC" and out.dtype == np.int16 and out[0].shape == (2, 7, 9, 3)
    p.close()


def test_bad_noise_arguments():
    with pytest.raises(ValueError, match="prob"):
        ours(lambda x: fn.noise.salt_and_pepper(x, prob=1.5), images())
    with pytest.raises(ValueError, match="stddev"):
        ours(lambda x: fn.noise.gaussian(x, stddev=-1.0), images())
    with pytest.raises(OperatorError, match="float64"):
        ours(lambda x: fn.noise.gaussian(x), [np.zeros((2, 2, 3))] * BATCH)
    with pytest.raises(OperatorError, match="Poisson rates"):
        ours(lambda x: fn.noise.shot(x, factor=1e-30), images())

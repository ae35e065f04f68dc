"""fn.normalize against DALI's CPU operator.

Tolerance: with the mean and standard deviation given (scalars or per-sample tensors) the outputs are identical;
computed statistics agree to 4e-7 absolute on outputs of about unit scale (DALI sums in float32 and uses the
processor's approximate rsqrt refined by one Newton step; pipestate sums in float64 and divides exactly), and
integer outputs to 1 level.
"""

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def, types

BATCH = 4


def images(seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (int(rng.integers(10, 40)), int(rng.integers(10, 40)), 3)).astype(dtype)
        for _ in range(BATCH)
    ]


def _run(lib_fn, make, options, lib_types, samples, kwargs, tensors, layout):
    def feed(values):
        return lambda: list(values)

    @make(batch_size=len(samples), num_threads=1, seed=2, **options)
    def pipe():
        x = lib_fn.external_source(source=feed(samples), layout=layout)
        extra = {k: lib_fn.external_source(source=feed(v)) for k, v in tensors.items()}
        args = dict(kwargs)
        if "dtype" in args:
            args["dtype"] = getattr(lib_types, args["dtype"])
        return lib_fn.normalize(x, **args, **extra)

    p = pipe()
    if hasattr(p, "build"):
        p.build()
    (out,) = p.run()
    return [np.array(out[i]) for i in range(len(samples))]


def run_both(samples, kwargs, tensors=None, layout="HWC"):
    """(pipestate's, DALI's) outputs of fn.normalize(x, **kwargs, **tensor arguments fed per sample)."""
    pytest.importorskip("nvidia.dali", reason="DALI is the reference oracle; pip install '.[dali]'")
    from nvidia.dali import fn as dfn
    from nvidia.dali import pipeline_def as dali_pipeline_def
    from nvidia.dali import types as dtypes

    tensors = tensors or {}
    ours = _run(fn, pipeline_def, {}, types, samples, kwargs, tensors, layout)
    dalis = _run(dfn, dali_pipeline_def, {"device_id": None}, dtypes, samples, kwargs, tensors, layout)
    return ours, dalis


@pytest.mark.dali_differential("normalize")
@pytest.mark.parametrize(
    "kwargs",
    [
        {"mean": 100.0, "stddev": 30.0},
        {"mean": 100.0, "stddev": 30.0, "scale": 2.0, "shift": -1.0},
        {"mean": 5.0, "stddev": 2.0, "epsilon": 3.0},
        {"mean": 128.0, "stddev": 40.0, "scale": 64.0, "shift": 128.0, "dtype": "UINT8"},
        {"mean": 128.0, "stddev": 4.0, "dtype": "INT16"},
        {"stddev": 30.0},
    ],
)
def test_given_statistics_are_identical(kwargs):
    ours, dalis = run_both(images(), kwargs)
    for a, d in zip(ours, dalis):
        assert a.dtype == d.dtype and a.shape == d.shape and a.tobytes() == d.tobytes()


@pytest.mark.dali_differential("normalize")
def test_per_sample_tensor_statistics_are_identical():
    rng = np.random.default_rng(3)
    means = [rng.uniform(0, 255, (1, 1, 3)).astype(np.float32) for _ in range(BATCH)]
    stddevs = [rng.uniform(1, 50, (1, 1, 3)).astype(np.float32) for _ in range(BATCH)]
    ours, dalis = run_both(images(), {}, {"mean": means, "stddev": stddevs})
    assert all(a.tobytes() == d.tobytes() for a, d in zip(ours, dalis))


@pytest.mark.dali_differential("normalize")
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"axis_names": "HW"},
        {"axes": [0, 1], "epsilon": 1.0},
        {"ddof": 1},
        {"mean": 100.0},
        {"axis_names": "C"},
        {"batch": True},
        {"batch": True, "axis_names": "HW", "scale": 0.5},
    ],
)
def test_computed_statistics_are_close(kwargs):
    ours, dalis = run_both(images(1), kwargs)
    for a, d in zip(ours, dalis):
        assert a.dtype == d.dtype and a.shape == d.shape
        np.testing.assert_allclose(a, d, rtol=0, atol=4e-7)


@pytest.mark.dali_differential("normalize")
def test_integer_outputs_of_computed_statistics_within_one_level():
    ours, dalis = run_both(images(2), {"axis_names": "HW", "scale": 50.0, "shift": 128.0, "dtype": "UINT8"})
    for a, d in zip(ours, dalis):
        assert np.abs(a.astype(int) - d.astype(int)).max() <= 1


def test_constant_input_and_other_types():
    flat = [np.full((5, 6, 3), 7, np.uint8)] * BATCH
    ours, dalis = run_both(flat, {})
    for a, d in zip(ours, dalis):  # DALI's float32 mean is off by an ulp: the output is -1, not 0
        np.testing.assert_allclose(a, d, atol=1e-6)
    ours, dalis = run_both(images(4, np.int16), {"axis_names": "HW"})
    for a, d in zip(ours, dalis):
        np.testing.assert_allclose(a, d, atol=4e-7)


def run_ours(samples, layout="HWC", **kwargs):
    @pipeline_def(batch_size=len(samples), num_threads=1)
    def pipe():
        return fn.normalize(fn.external_source(source=lambda: samples, layout=layout), **kwargs)

    p = pipe()
    out = p.run()[0]
    p.close()
    return out


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="axes= or axis_names="):
        run_ours(images(), axes=[0], axis_names="H")
    with pytest.raises(TypeError, match="dtype=float64"):
        run_ours(images(), dtype=types.FLOAT64)
    with pytest.raises(OperatorError, match="axis_names='Z'"):
        run_ours(images(), axis_names="Z")
    with pytest.raises(OperatorError, match="axis 5 is out of range"):
        run_ours(images(), axes=[5])
    with pytest.raises(OperatorError, match="non-reduced extents"):
        run_ours(images(), batch=True, axis_names="C")


def test_batch_forbids_tensor_statistics_and_bad_shapes_are_named():
    samples = images()

    @pipeline_def(batch_size=BATCH, num_threads=1)
    def batch_tensor():
        x = fn.external_source(source=lambda: samples, layout="HWC")
        return fn.normalize(x, batch=True, mean=fn.random.uniform())

    with pytest.raises(TypeError, match="batch=True"):
        batch_tensor()

    @pipeline_def(batch_size=BATCH, num_threads=1)
    def bad_shape():
        x = fn.external_source(source=lambda: samples, layout="HWC")
        m = fn.external_source(source=lambda: [np.zeros((2, 2), np.float32)] * BATCH)
        return fn.normalize(x, mean=m)

    p = bad_shape()
    with pytest.raises(OperatorError, match=r"argument 'mean' \(sample 0\) has shape \(2, 2\)"):
        p.run()
    p.close()

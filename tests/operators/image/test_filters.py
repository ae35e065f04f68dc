"""gaussian_blur, laplacian and filter against DALI's CPU operators: bit-identical outputs for every layout,
input type, window, border and mode tried (the generic conformance suite checks the operators' examples too)."""

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def, types
from pipestate.operators.image._kernels import convolution as conv
from tests.operators.image._both import assert_identical, both

LAYOUTS = {
    "HWC": (20, 24, 3),
    "CHW": (3, 20, 24),
    "HW": (20, 24),
    "FHWC": (2, 12, 14, 3),
    "DHWC": (6, 9, 10, 2),
    "": (9, 10, 7),
    "FCHW": (2, 3, 10, 11),
}


def sample(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(-1, 2, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000) + 1, shape).astype(dtype)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_gaussian_blur_is_exact(layout, dtype):
    samples = [sample(LAYOUTS[layout], dtype, k) for k in range(2)]
    for kwargs in ({"sigma": 1.3}, {"window_size": 5}, {"sigma": 0.8, "window_size": 7}, {"sigma": 4.0}):
        ours, theirs = both(samples, layout, lambda f, t, x, kw=kwargs: f.gaussian_blur(x, **kw))
        assert_identical(ours, theirs)
    ours, theirs = both(samples, layout, lambda f, t, x: f.gaussian_blur(x, sigma=2.0, dtype=t.FLOAT))
    assert_identical(ours, theirs)


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int32, np.int64])
def test_gaussian_blur_other_input_types(dtype):
    samples = [sample((15, 17, 3), dtype, 3)]
    ours, theirs = both(samples, "HWC", lambda f, t, x: f.gaussian_blur(x, sigma=[1.0, 2.5]))
    assert_identical(ours, theirs)


@pytest.mark.parametrize("dtype, atol", [(np.float16, 2e-3), (np.float64, 5e-7)])
def test_gaussian_blur_float16_and_float64_within_stated_tolerance(dtype, atol):
    """DALI blurs float16 samples with float16 windows, and float64 ones in another order than float32 ones;
    pipestate computes both in float32 (documented in docs/images.md)."""
    samples = [sample((15, 17, 3), dtype, 3)]
    ours, theirs = both(samples, "HWC", lambda f, t, x: f.gaussian_blur(x, sigma=[1.0, 2.5]))
    assert ours[0].dtype == theirs[0].dtype
    np.testing.assert_allclose(ours[0].astype(np.float64), theirs[0].astype(np.float64), atol=atol)


@pytest.mark.parametrize("layout", ["HWC", "CHW", "HW", "DHWC", ""])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_laplacian_is_exact(layout, dtype):
    samples = [sample(LAYOUTS[layout], dtype, 5)]
    for kwargs in (
        {},
        {"window_size": 5, "dtype": "FLOAT"},
        {"window_size": 7, "smoothing_size": 3, "dtype": "FLOAT"},
        {"window_size": 5, "normalized_kernel": True, "dtype": "FLOAT"},
        {"window_size": 3, "scale": 0.25, "dtype": "FLOAT"},
        {"window_size": 31, "smoothing_size": 1, "dtype": "FLOAT"},
    ):

        def build(f, t, x, kw=kwargs):
            kw = dict(kw)
            if "dtype" in kw:
                kw["dtype"] = t.FLOAT
            return f.laplacian(x, **kw)

        ours, theirs = both(samples, layout, build)
        assert_identical(ours, theirs)


@pytest.mark.parametrize("border", conv.BORDERS)
@pytest.mark.parametrize("layout", ["HWC", "HW", "CHW", "FHWC"])
def test_filter_is_exact(border, layout):
    kernels = [np.random.default_rng(k).uniform(-1, 1, (3, 5)).astype(np.float32) for k in range(2)]
    for dtype in (np.uint8, np.int16, np.float32):
        samples = [sample(LAYOUTS[layout], dtype, k) for k in range(2)]

        def build(f, t, x, dt=dtype):
            kernel = f.external_source(source=lambda: kernels)
            fill = f.external_source(source=lambda: [np.array(7, dt)] * 2)
            return f.experimental.filter(x, kernel, fill, border=border, anchor=[2, 1])

        ours, theirs = both(samples, layout, build)
        if border in ("wrap", "constant"):
            # DALI filters a view into its padded copy; OpenCV then splits the row between its vector and scalar
            # loops elsewhere than on pipestate's padded array: float outputs may differ by an ulp of the sums.
            for a, d in zip(ours, theirs):
                assert a.dtype == d.dtype and a.shape == d.shape
                np.testing.assert_allclose(
                    a.astype(np.float64), d.astype(np.float64), rtol=2e-7, atol=4e-6 if dtype == np.float32 else 1.0
                )
        else:
            assert_identical(ours, theirs)


@pytest.mark.parametrize("layout", ["HWC", "FCHW"])
def test_filter_valid_mode_and_float_output(layout):
    kernels = [np.full((4, 3), 1 / 12, np.float32)] * 2
    samples = [sample(LAYOUTS[layout], np.uint16, k) for k in range(2)]

    def build(f, t, x):
        return f.filter(x, f.external_source(source=lambda: kernels), mode="valid", dtype=t.FLOAT)

    ours, theirs = both(samples, layout, build)
    assert_identical(ours, theirs)


def test_windows():
    assert conv.gaussian_window_size(1.0) == 7 and conv.gaussian_window_size(0.34) == 5
    assert abs(conv.gaussian_sigma(5) - 1.1) < 1e-6
    assert abs(conv.gaussian_window(2.0, 13).sum() - 1) < 1e-6
    assert conv.smoothing_window(5).tolist() == [1, 4, 6, 4, 1]
    assert conv.derivative_window(5).tolist() == [1, 0, -2, 0, 1]


def run_ours(samples, build, layout="HWC"):
    @pipeline_def(batch_size=len(samples), num_threads=1)
    def pipe():
        return build(fn.external_source(source=lambda: list(samples), layout=layout))

    p = pipe()
    (out,) = p.run()
    p.close()
    return [np.array(s) for s in out]


def test_errors_name_the_argument_and_the_sample():
    image = [sample((8, 9, 3), np.uint8)]
    with pytest.raises(OperatorError, match=r"sigma and window_size \(sample 0\) are both 0"):
        run_ours(image, lambda x: fn.gaussian_blur(x))
    with pytest.raises(OperatorError, match=r"window_size \(sample 0\) = 4 .* must be odd"):
        run_ours(image, lambda x: fn.gaussian_blur(x, window_size=4))
    with pytest.raises(OperatorError, match=r"sigma \(sample 0\) = \[1.0, 2.0, 3.0\] must have one value or one per"):
        run_ours(image, lambda x: fn.gaussian_blur(x, sigma=[1.0, 2.0, 3.0]))
    with pytest.raises(OperatorError, match=r"window_size \(sample 0\) = 4 must be odd and between 3 and 31"):
        run_ours(image, lambda x: fn.laplacian(x, window_size=4))
    with pytest.raises(TypeError, match="scale= cannot be given with normalized_kernel=True"):
        run_ours(image, lambda x: fn.laplacian(x, normalized_kernel=True, scale=2.0))
    with pytest.raises(OperatorError, match="dtype=int32 must be float32 or the input's type"):
        run_ours(image, lambda x: fn.gaussian_blur(x, sigma=1.0, dtype=types.INT32))
    with pytest.raises(OperatorError, match="2 data axes"):
        run_ours([sample((4, 5, 6), np.uint8)], lambda x: fn.filter(x, np.ones((3, 3), np.float32)), layout="")
    with pytest.raises(OperatorError, match=r"anchor \(sample 0\) = \[3, 0\] must lie within the filter"):
        run_ours(image, lambda x: fn.filter(x, np.ones((3, 3), np.float32), anchor=[3, 0]))
    with pytest.raises(OperatorError, match="channels .C. must be the first or last"):
        run_ours([sample((4, 3, 5), np.uint8)], lambda x: fn.gaussian_blur(x, sigma=1.0), layout="HCW")

"""resample: DALI's separable resampling, pixel for pixel against DALI's CPU fn.resize.

Tolerance: max 1 level, on at most 0.5 % of the pixels (rounding ties; DALI's vectorized body rounds halves to
even, its scalar tail rounds them up). Nearest neighbour is exact.
"""

import numpy as np
import pytest

from pipestate.operators.image._kernels.resample import FILTERS, resample
from pipestate.operators.image._kernels.resize_params import ResizeParams, resize_params
from tests.operators.image._dali import dali, run_dali, test_image

pytest.importorskip("scipy")
IMAGE = test_image(1)
SIZES = [
    dict(resize_x=50, resize_y=40),
    dict(resize_x=301, resize_y=170),
    dict(resize_shorter=61),
    dict(resize_x=90, resize_y=70, roi_start=[10.3, 20.7], roi_end=[80.2, 5.9]),
    dict(resize_x=-64, resize_y=33),
]
DALI_INTERP = {
    "nn": "INTERP_NN",
    "linear": "INTERP_LINEAR",
    "cubic": "INTERP_CUBIC",
    "lanczos3": "INTERP_LANCZOS3",
    "triangular": "INTERP_TRIANGULAR",
    "gaussian": "INTERP_GAUSSIAN",
}


def compare(filter_name, antialias, sizes, image=IMAGE):
    for kw in sizes:
        expected = run_dali(
            [image],
            lambda fn, types, x, kw=kw: fn.resize(
                x, interp_type=getattr(types, DALI_INTERP[filter_name]), antialias=antialias, **kw
            ),
        )[0]
        got = resample(
            image,
            resize_params(image.shape[:2], **kw),
            min_filter=filter_name,
            mag_filter=filter_name,
            antialias=antialias,
        )
        assert got.shape == expected.shape and got.dtype == expected.dtype, kw
        diff = np.abs(got.astype(int) - expected.astype(int))
        if filter_name == "nn":
            assert diff.max() == 0, kw
        else:
            assert diff.max() <= 1 and (diff > 0).mean() <= 0.005, (kw, diff.max(), (diff > 0).mean())


@pytest.mark.parametrize("filter_name", ["linear", "nn", "cubic"])
def test_matches_dali(filter_name):
    dali()
    compare(filter_name, True, SIZES[:3])


@pytest.mark.slow
@pytest.mark.parametrize("filter_name", FILTERS)
@pytest.mark.parametrize("antialias", [True, False])
def test_matches_dali_grid(filter_name, antialias):
    dali()
    compare(filter_name, antialias, SIZES)


def test_roi_flip_and_mixed_filters_match_dali():
    dali()
    compare("linear", True, SIZES[3:])
    kw = dict(resize_x=300, resize_y=20)  # width grows (lanczos3), height shrinks (nn)
    expected = run_dali(
        [IMAGE], lambda fn, types, x: fn.resize(x, min_filter=types.INTERP_NN, mag_filter=types.INTERP_LANCZOS3, **kw)
    )[0]
    got = resample(IMAGE, resize_params(IMAGE.shape[:2], **kw), min_filter="nn", mag_filter="lanczos3")
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_float_output_and_other_dtypes():
    dali()
    kw = dict(resize_x=70, resize_y=50)
    expected = run_dali([IMAGE], lambda fn, types, x: fn.resize(x, dtype=types.FLOAT, **kw))[0]
    got = resample(IMAGE, resize_params(IMAGE.shape[:2], **kw), dtype=np.float32)
    assert got.dtype == np.float32 and np.allclose(got, expected, atol=1e-3)
    wide = IMAGE.astype(np.int16) * 100 - 9000
    expected = run_dali([wide], lambda fn, types, x: fn.resize(x, **kw))[0]
    got = resample(wide, resize_params(wide.shape[:2], **kw))
    assert got.dtype == np.int16 and np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_grey_and_many_channels():
    grey = IMAGE[:, :, 0]
    params = resize_params(grey.shape, size=[20, 30])
    assert resample(grey, params).shape == (20, 30)
    five = np.dstack([IMAGE, IMAGE[:, :, :2]])
    out = resample(five, params)
    assert out.shape == (20, 30, 5)
    assert np.array_equal(out[:, :, 3:], resample(IMAGE[:, :, :2], params))  # channels are independent


def test_identity_is_exact():
    params = ResizeParams((IMAGE.shape[0], IMAGE.shape[1]), (0.0, 0.0), (float(IMAGE.shape[0]), IMAGE.shape[1]))
    for name in set(FILTERS) - {"gaussian"}:  # a Gaussian blurs even at scale 1, as DALI's does
        assert np.array_equal(resample(IMAGE, params, min_filter=name, mag_filter=name), IMAGE), name


def test_bad_arguments():
    params = resize_params(IMAGE.shape[:2], size=10)
    with pytest.raises(ValueError, match="min_filter"):
        resample(IMAGE, params, min_filter="bicubic")
    with pytest.raises(ValueError, match="dtype"):
        resample(IMAGE, params, dtype=np.int32)
    with pytest.raises(ValueError, match="HWC"):
        resample(IMAGE[None], params)


@pytest.mark.parametrize("out_size", [1, 2, 3, 224])
@pytest.mark.parametrize("kind", ["linear", "cubic", "lanczos3", "gaussian"])
def test_filter_weights_are_normalized_by_a_tap_after_tap_sum(out_size, kind):
    """The normalizing total adds the taps in order, as DALI's loop (numpy's sums may pair them up, which
    changes the last bit for wide filters: a downscale of ~500x to one pixel is where it showed)."""
    from pipestate.operators.image._kernels import resample as r

    extent = 557.3 * out_size
    flt = r._filter_for(kind, True, extent, out_size)
    origin, scale = np.float32(3.25), np.float32(extent / out_size)
    first, coeffs = r._weights(out_size, origin, scale, flt)
    f32 = np.float32
    start = f32(origin + f32(f32(f32(f32(0.5) * scale) - f32(0.5)) - flt.anchor))
    for i in range(out_size):
        pos = np.float32(np.float32(i) * scale) + start
        taps = (np.float32(np.ceil(pos) - pos) + np.arange(flt.support(), dtype=np.float32)) * flt.scale
        raw = r._lookup(flt, taps.astype(np.float32)[:, None])[:, 0]
        total = np.float32(0)
        for value in raw:  # one tap after the other
            total = np.float32(total + value)
        expected = raw / total if total != 0 else raw
        assert first[i] == np.ceil(pos) and coeffs[i].tobytes() == expected.astype(np.float32).tobytes()

"""Crop windows and crop_mirror_normalize against DALI's fn.crop and fn.crop_mirror_normalize (CPU).

Tolerances: windows exact; float output exact with scale=1, shift=0 and within 2e-6 otherwise; uint8 output
within 1 level.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipestate.operators.image._kernels.crop import crop_image, crop_mirror_normalize, crop_window
from tests.operators.image._dali import dali, run_dali, test_image

IMAGE = test_image(5, 75, 100)
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


@pytest.mark.parametrize(
    "crop, pos",
    [
        ((40, 40), (0.5, 0.5)),
        ((40, 41), (0.5, 0.5)),
        ((20, 21), (0.25, 0.75)),
        ((21.7, 20.2), (0.3, 0.7)),
        ((75, 100), (1.0, 0.0)),
    ],
)
def test_crop_window_matches_dali(crop, pos):
    dali()
    expected = run_dali(
        [IMAGE], lambda fn, types, x: fn.crop(x, crop=list(crop), crop_pos_y=pos[0], crop_pos_x=pos[1])
    )[0]
    anchor, shape = crop_window(IMAGE.shape[:2], crop, pos)
    assert np.array_equal(crop_image(IMAGE, anchor, shape), expected)


@pytest.mark.parametrize("mirror", [0, 1])
def test_crop_mirror_normalize_matches_dali(mirror):
    fn_types = dali()[1]
    anchor, shape = crop_window(IMAGE.shape[:2], (40, 50))
    expected = run_dali(
        [IMAGE],
        lambda fn, types, x: fn.crop_mirror_normalize(
            x, crop=(40, 50), mean=MEAN, std=STD, mirror=mirror, dtype=types.FLOAT
        ),
    )[0]
    got = crop_mirror_normalize(IMAGE, anchor, shape, mirror=bool(mirror), mean=MEAN, std=STD)
    assert got.shape == expected.shape == (3, 40, 50) and np.array_equal(got, expected)
    expected = run_dali(
        [IMAGE],
        lambda fn, types, x: fn.crop_mirror_normalize(
            x,
            crop=(40, 50),
            mean=MEAN,
            std=STD,
            scale=2.5,
            shift=10.0,
            mirror=mirror,
            dtype=types.FLOAT,
            output_layout="HWC",
            pad_output=True,
        ),
    )[0]
    got = crop_mirror_normalize(
        IMAGE,
        anchor,
        shape,
        mirror=bool(mirror),
        mean=MEAN,
        std=STD,
        scale=2.5,
        shift=10.0,
        output_layout="HWC",
        pad_output=True,
    )
    assert got.shape == expected.shape == (40, 50, 4) and np.abs(got - expected).max() <= 2e-6
    expected = run_dali(
        [IMAGE],
        lambda fn, types, x: fn.crop_mirror_normalize(
            x, crop=(40, 50), mean=[128.0], std=[1.0], scale=0.7, shift=128.3, dtype=fn_types.UINT8, mirror=mirror
        ),
    )[0]
    got = crop_mirror_normalize(
        IMAGE, anchor, shape, mirror=bool(mirror), mean=[128.0], std=[1.0], scale=0.7, shift=128.3, dtype=np.uint8
    )
    assert got.dtype == np.uint8 and np.abs(got.astype(int) - expected.astype(int)).max() <= 1


@given(st.integers(1, 500), st.integers(0, 600), st.floats(0, 1))
def test_window_properties(n, crop, pos):
    (anchor,), (size,) = crop_window([n], [crop], [pos])
    assert size == crop
    if crop <= n:
        assert 0 <= anchor <= n - crop
    else:
        assert n - crop <= anchor <= 0


def test_out_of_bounds_policies():
    anchor, shape = crop_window(IMAGE.shape[:2], (80, 110))
    with pytest.raises(ValueError, match="out_of_bounds_policy"):
        crop_image(IMAGE, anchor, shape)
    padded = crop_image(IMAGE, anchor, shape, out_of_bounds_policy="pad", fill_values=7)
    assert padded.shape == (80, 110, 3) and padded[0, 0, 0] == 7
    assert crop_image(IMAGE, anchor, shape, out_of_bounds_policy="trim_to_shape").shape == IMAGE.shape


def test_bad_arguments():
    with pytest.raises(ValueError, match="mean has 2 values"):
        crop_mirror_normalize(IMAGE, (0, 0), (4, 4), mean=[1, 2], std=[1, 2, 3])
    with pytest.raises(ValueError, match="crop_pos"):
        crop_window((10, 10), (4, 4), (1.5, 0.5))
    with pytest.raises(ValueError, match="output_layout"):
        crop_mirror_normalize(IMAGE, (0, 0), (4, 4), output_layout="NHWC")

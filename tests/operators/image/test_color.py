"""Colour arithmetic against DALI's fn.color_space_conversion, fn.hsv and fn.color_twist (CPU).

Tolerances: RGB->GRAY and RGB->YCbCr within 1 level (under 3 % of pixels); YCbCr->RGB within 4 levels; hsv and
color_twist within 1 level (under 15 % of pixels: DALI composes the matrices in a different float order).
"""

import numpy as np
import pytest

from pipestate.operators.image._kernels import color
from tests.operators.image._dali import dali, run_dali, test_image

IMAGE = test_image(4)


def within(got, expected, level, fraction):
    assert got.shape == expected.shape and got.dtype == expected.dtype
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= level and (diff > 0).mean() <= fraction, (diff.max(), (diff > 0).mean())


def test_color_space_conversion_matches_dali():
    dali()
    for out_type, level, frac in [("YCbCr", 1, 0.03), ("GRAY", 1, 0.03), ("BGR", 0, 0)]:
        expected = run_dali([IMAGE], lambda fn, types, x, o=out_type: fn.color_space_conversion(
            x, image_type=types.RGB, output_type=getattr(types, o)))[0]
        within(color.convert_color_space(IMAGE, "RGB", out_type), expected, level, frac)
    ycc = color.convert_color_space(IMAGE, "RGB", "YCbCr")
    expected = run_dali([ycc], lambda fn, types, x: fn.color_space_conversion(
        x, image_type=types.YCbCr, output_type=types.RGB))[0]
    within(color.convert_color_space(ycc, "YCbCr", "RGB"), expected, 4, 0.1)


@pytest.mark.parametrize("hue, saturation, value", [(0.0, 1.0, 1.0), (37.0, 0.6, 1.2), (-120.0, 1.5, 0.8)])
def test_hsv_matches_dali(hue, saturation, value):
    dali()
    expected = run_dali([IMAGE], lambda fn, types, x: fn.hsv(x, hue=hue, saturation=saturation, value=value))[0]
    within(color.apply_linear(IMAGE, color.hsv_matrix(hue, saturation, value)), expected, 1, 0.15)


def test_color_twist_matches_dali():
    dali()
    expected = run_dali([IMAGE], lambda fn, types, x: fn.color_twist(x, brightness=1.1, contrast=0.8, hue=-20.0,
                                                                     saturation=1.3))[0]
    within(color.apply_linear(IMAGE, *color.color_twist_matrix(1.1, 0.8, -20.0, 1.3)), expected, 1, 0.15)


def test_identity_and_grey_pixels():
    assert np.abs(color.hsv_matrix() - np.eye(3)).max() < 2e-3
    grey = np.full((4, 4, 3), 77, np.uint8)
    assert (color.convert_color_space(grey, "RGB", "YCbCr")[..., 1:] == 128).all()


def test_bad_color_spaces():
    with pytest.raises(ValueError, match="image_type"):
        color.convert_color_space(IMAGE, "HSV", "RGB")
    with pytest.raises(ValueError, match="channel"):
        color.convert_color_space(IMAGE[..., :1], "RGB", "GRAY")

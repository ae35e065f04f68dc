"""resize_params: DALI's output-size rules, checked against DALI's fn.resize output shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipestate.operators.image._kernels.resize_params import resize_params
from tests.operators.image._dali import dali, run_dali

H, W = 37, 53  # odd sizes make fractional scales and rounding ties likely


def dali_shapes(cases):
    """Output (H, W) of DALI's resize for each kwargs dict (one pipeline per case)."""
    img = np.zeros((H, W, 1), np.uint8)
    return [tuple(run_dali([img], lambda fn, types, x, kw=kw: fn.resize(x, **kw))[0].shape[:2]) for kw in cases]


CASES = [
    dict(resize_x=20),
    dict(resize_y=100),
    dict(resize_x=20, resize_y=7),
    dict(size=[0, 26.5]),
    dict(size=40),
    dict(resize_shorter=18),
    dict(resize_longer=18),
    dict(resize_shorter=50, max_size=60),
    dict(size=[10, 10], mode="not_larger"),
    dict(size=[10, 10], mode="not_smaller"),
    dict(size=[100, 0], mode="stretch"),
    dict(resize_x=-20, resize_y=9),
    dict(resize_x=13.5, resize_y=8.5),
    dict(size=[20, 30], roi_start=[3.2, 4.7], roi_end=[30.1, 2.0]),
    dict(size=[20, 0], roi_start=[0.1, 0.2], roi_end=[0.9, 0.6], roi_relative=True),
    dict(resize_x=21.5, subpixel_scale=False),
    dict(resize_y=200, max_size=[150, 120]),
]


def ours(kw):
    return resize_params((H, W), **kw).out_size


def test_output_sizes_equal_dalis():
    dali()
    assert [ours(kw) for kw in CASES] == dali_shapes(CASES)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["resize_x", "resize_y", "resize_shorter", "resize_longer"]),
    st.floats(1, 120).map(lambda v: round(v * 2) / 2),
)
def test_single_size_argument_matches_dali(name, value):
    dali()
    assert ours({name: value}) == dali_shapes([{name: value}])[0]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 4000),
    st.integers(1, 4000),
    st.floats(1, 2000),
    st.sampled_from(["default", "stretch", "not_larger", "not_smaller"]),
)
def test_size_properties(h, w, target, mode):
    p = resize_params((h, w), size=[target, target], mode=mode)
    oh, ow = p.out_size
    assert oh >= 1 and ow >= 1
    if mode in ("default", "stretch"):
        assert (oh, ow) == (max(1, round(target)), max(1, round(target))) or abs(oh - target) <= 0.5001
    if mode == "not_larger":
        assert oh <= round(target) + 1 and ow <= round(target) + 1
    if mode == "not_smaller":
        assert oh >= round(target) - 1 and ow >= round(target) - 1
    # subpixel_scale moves the source window's edges symmetrically: its centre stays the input's centre
    for d, n in enumerate((h, w)):
        assert abs((p.roi_hi[d] + p.roi_lo[d]) / 2 - n / 2) <= 1e-3 * n


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(), "exactly one way"),
        (dict(resize_x=3, size=[3, 3]), "exactly one way"),
        (dict(resize_shorter=3, mode="stretch"), "mutually exclusive"),
        (dict(size=3, mode="bigger"), "unknown"),
        (dict(size=3, roi_start=[0, 0]), "together"),
        (dict(size=[1, 2, 3]), "one per spatial axis"),
    ],
)
def test_bad_arguments_name_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resize_params((10, 10), **kwargs)

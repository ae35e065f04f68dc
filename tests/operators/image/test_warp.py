"""warp_affine / rotate against DALI's CPU fn.warp_affine and fn.rotate.

Tolerances: output sizes exact; nearest neighbour exact with a given destination->source matrix; linear within
1 level on under 2 % of the pixels; rotate/inverse_map=False with nearest neighbour may pick the neighbouring
source pixel where a coordinate falls within float rounding of a pixel edge (under 2 % of the pixels).
"""

import numpy as np
import pytest

from pipestate.operators.image._kernels.warp import invert_affine, rotate, rotated_size, warp_affine
from tests.operators.image._dali import dali, run_dali, test_image

IMAGE = test_image(3, 70, 90)
MATRIX = [0.9, 0.2, -10.5, -0.15, 1.1, 20.3]


def dali_op(op, **kw):
    return run_dali([IMAGE], lambda fn, types, x: getattr(fn, op)(x, **kw))[0]


def close(got, expected, fraction=0.02):
    assert got.shape == expected.shape and got.dtype == expected.dtype
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() <= fraction, (diff.max(), (diff > 0).mean())


@pytest.mark.parametrize("fill", [None, 0.0, 77.0])
def test_warp_affine_matches_dali(fill):
    fn_types = dali()[1]
    kw = {} if fill is None else {"fill_value": fill}
    expected = dali_op("warp_affine", matrix=MATRIX, interp_type=fn_types.INTERP_NN, **kw)
    assert np.array_equal(warp_affine(IMAGE, MATRIX, interp="nn", fill_value=fill), expected)
    close(warp_affine(IMAGE, MATRIX, fill_value=fill), dali_op("warp_affine", matrix=MATRIX, **kw))
    close(
        warp_affine(IMAGE, MATRIX, (40, 120), fill_value=fill),
        dali_op("warp_affine", matrix=MATRIX, size=[40, 120], **kw),
    )
    close(
        warp_affine(IMAGE, MATRIX, fill_value=fill, inverse_map=False),
        dali_op("warp_affine", matrix=MATRIX, inverse_map=False, **kw),
    )


@pytest.mark.parametrize("angle", [30.0, -17.5, 90.0, 135.0, 200.0])
def test_rotate_matches_dali(angle):
    dali()
    close(rotate(IMAGE, angle), dali_op("rotate", angle=angle))
    close(rotate(IMAGE, angle, fill_value=5.0), dali_op("rotate", angle=angle, fill_value=5.0))
    close(rotate(IMAGE, angle, keep_size=True), dali_op("rotate", angle=angle, keep_size=True))


def test_rotated_canvas_keeps_parity():
    assert rotated_size((70, 90), 0.0) == (70, 90)
    assert rotated_size((70, 90), 90.0) == (90, 70)
    for angle in np.linspace(-180, 180, 37):
        h, w = rotated_size((71, 90), float(angle))
        assert h >= 1 and w >= 1


def test_right_angle_rotation_is_exact():
    assert np.array_equal(rotate(IMAGE, 90.0), np.rot90(IMAGE))
    assert np.array_equal(rotate(IMAGE, 180.0, keep_size=True), IMAGE[::-1, ::-1])


def test_inverse_roundtrip_and_errors():
    inv = invert_affine(MATRIX)
    assert np.allclose(invert_affine(inv), np.reshape(MATRIX, (2, 3)), atol=1e-5)
    with pytest.raises(ValueError, match="singular"):
        invert_affine([1, 2, 0, 2, 4, 0])
    with pytest.raises(ValueError, match="interp"):
        warp_affine(IMAGE, MATRIX, interp="cubic")
    with pytest.raises(ValueError, match="fill_value"):
        warp_affine(IMAGE, MATRIX, fill_value=[1, 2])
    with pytest.raises(ValueError, match="mutually exclusive"):
        rotate(IMAGE, 10.0, keep_size=True, out_size=(3, 3))

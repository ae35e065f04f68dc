"""fn.transforms.*, fn.coord_transform, fn.coord_flip: bit-identical to DALI on a grid of 2-D and 3-D cases
(constant and per-sample arguments, input transforms, reverse_order, sequences); errors name the argument."""

from __future__ import annotations

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def
from tests.operators._both import assert_same, source

RNG = np.random.default_rng(7)


_CACHE: dict = {}


def rand(shape, low=-3.0, high=3.0, tag=0):
    """A batch of 3 random float32 arrays, the same for every call with these arguments (both libraries)."""
    key = (shape, low, high, tag)
    if key not in _CACHE:
        _CACHE[key] = [RNG.uniform(low, high, shape).astype(np.float32) for _ in range(3)]
    return _CACHE[key]


M2, M3 = rand((2, 3)), rand((3, 4))
ANGLES, AXES, OFFSETS3 = rand((), -180, 180), rand((3,)), rand((3,))
SEQ = rand((4, 2, 3))

TRANSFORM_CASES = {
    "translation 3-D on input": lambda fn, t: fn.transforms.translation(source(fn, M3), offset=source(fn, OFFSETS3)),
    "translation reverse": lambda fn, t: fn.transforms.translation(
        source(fn, M3), offset=[1.0, -2.0, 0.5], reverse_order=True
    ),
    "translation 1-D scalar": lambda fn, t: fn.transforms.translation(offset=2.5),
    "scale center": lambda fn, t: fn.transforms.scale(scale=[2.0, 3.0], center=[1.0, 2.0]),
    "scale scalar ndim": lambda fn, t: fn.transforms.scale(scale=2.5, ndim=3, center=0.3),
    "scale scalar on input": lambda fn, t: fn.transforms.scale(source(fn, M3), scale=1.7),
    "scale per sample": lambda fn, t: fn.transforms.scale(
        scale=source(fn, rand((3,), 0.1, 2)), center=source(fn, rand((3,)))
    ),
    "rotation 2-D": lambda fn, t: fn.transforms.rotation(angle=source(fn, ANGLES), center=[1.3, 2.7]),
    "rotation 3-D": lambda fn, t: fn.transforms.rotation(
        angle=source(fn, ANGLES), axis=source(fn, AXES), center=[1.3, 2.7, -0.2]
    ),
    "rotation 3-D reverse": lambda fn, t: fn.transforms.rotation(
        source(fn, M3), angle=37.0, axis=[0.3, 0.2, 1.0], reverse_order=True
    ),
    "shear factors": lambda fn, t: fn.transforms.shear(shear=source(fn, rand((2,))), center=[1.3, 2.7]),
    "shear 3-D matrix": lambda fn, t: fn.transforms.shear(shear=source(fn, rand((3, 2))), center=[1.3, 2.7, 1.1]),
    "shear 3-D angles": lambda fn, t: fn.transforms.shear(angles=source(fn, rand((3, 2), -89, 89))),
    "shear angles on input": lambda fn, t: fn.transforms.shear(source(fn, M2), angles=[33.0, -12.0]),
    "crop": lambda fn, t: fn.transforms.crop(
        from_start=source(fn, rand((3,))), from_end=source(fn, rand((3,), 3, 6)), to_start=0.5, to_end=[2.0, 1.0, 7.3]
    ),
    "crop absolute": lambda fn, t: fn.transforms.crop(
        source(fn, M2),
        from_start=source(fn, rand((2,))),
        from_end=source(fn, rand((2,), tag=1)),
        to_end=[2.0, 1.0],
        absolute=True,
    ),
    "crop default": lambda fn, t: fn.transforms.crop(),
    "combine": lambda fn, t: fn.transforms.combine(
        source(fn, M2), source(fn, rand((2, 3), tag=1)), fn.transforms.rotation(angle=31.0)
    ),
    "combine reverse": lambda fn, t: fn.transforms.combine(
        source(fn, M3), source(fn, rand((3, 4), tag=1)), source(fn, rand((3, 4), tag=2)), reverse_order=True
    ),
    "sequence": lambda fn, t: fn.transforms.rotation(source(fn, SEQ, "F**"), angle=23.0),
    "combine sequences": lambda fn, t: fn.transforms.combine(
        source(fn, SEQ, "F**"), source(fn, rand((4, 2, 3), tag=1), "F**")
    ),
}


@pytest.mark.parametrize("case", list(TRANSFORM_CASES))
def test_transforms_equal_dalis(case):
    assert_same(TRANSFORM_CASES[case])


U8 = [RNG.integers(0, 255, (n, 3)).astype(np.uint8) for n in (4, 2, 6)]
I16 = [RNG.integers(-300, 300, (n, 2)).astype(np.int16) for n in (4, 2, 6)]
IMAGE = [RNG.integers(0, 255, (4, 5, 3)).astype(np.uint8)] * 3
POINTS2 = [RNG.uniform(-10, 10, (n, 2)).astype(np.float32) for n in (5, 3, 7)]
POINTS3 = [RNG.uniform(-10, 10, (n, 3)).astype(np.float32) for n in (5, 3, 7)]
M6 = RNG.uniform(-2, 2, 6).astype(np.float32).tolist()

COORD_CASES = {
    "M and T": lambda fn, t: fn.coord_transform(source(fn, POINTS2), M=M6[:4], T=[0.5, 1.0]),
    "M 3x2": lambda fn, t: fn.coord_transform(source(fn, POINTS2, "NX"), M=M6, T=[0.5, 1.0, 2.0]),
    "MT": lambda fn, t: fn.coord_transform(source(fn, POINTS2), MT=M6),
    "scalars": lambda fn, t: fn.coord_transform(source(fn, POINTS3), M=2.5, T=1.25),
    "identity": lambda fn, t: fn.coord_transform(source(fn, POINTS3)),
    "uint8 to uint8": lambda fn, t: fn.coord_transform(source(fn, U8), M=[30.0, -20.0, 7.0], T=[7.5], dtype=t.UINT8),
    "int16 to int16": lambda fn, t: fn.coord_transform(source(fn, I16), M=M6[:4], T=[0.5, -0.5], dtype=t.INT16),
    "image to gray": lambda fn, t: fn.coord_transform(source(fn, IMAGE, "HWC"), M=[0.299, 0.587, 0.114], dtype=t.UINT8),
    "per-sample M, T": lambda fn, t: fn.coord_transform(
        source(fn, POINTS2), M=source(fn, rand((3, 2))), T=source(fn, rand((3,), tag=1))
    ),
    "per-sample MT": lambda fn, t: fn.coord_transform(source(fn, POINTS2), MT=source(fn, rand((2, 3)))),
    "per-sample scalars": lambda fn, t: fn.coord_transform(
        source(fn, POINTS2), M=source(fn, rand(())), T=source(fn, rand((), tag=1))
    ),
    "empty batch": lambda fn, t: fn.coord_transform(source(fn, [np.zeros((0, 2), np.float32)] * 3), M=M6),
    "one empty sample": lambda fn, t: fn.coord_transform(
        source(fn, [np.zeros((0, 2), np.float32), *POINTS2[:2]]), M=M6
    ),
    "flip": lambda fn, t: fn.coord_flip(source(fn, POINTS2)),
    "flip xy": lambda fn, t: fn.coord_flip(source(fn, POINTS2), flip_y=1, center_x=0.3, center_y=2.0),
    "flip layout yx": lambda fn, t: fn.coord_flip(source(fn, POINTS2), layout="yx", flip_x=1, flip_y=0, center_x=3.3),
    "flip 3-D": lambda fn, t: fn.coord_flip(source(fn, POINTS3), flip_z=1, flip_x=0, center_z=source(fn, rand(()))),
    "flip zxy": lambda fn, t: fn.coord_flip(source(fn, POINTS3), layout="zxy", flip_z=1, flip_x=1),
    "flip 1-D": lambda fn, t: fn.coord_flip(source(fn, [p[:, :1] for p in POINTS2]), flip_y=1),
}


@pytest.mark.parametrize("case", list(COORD_CASES))
def test_coordinates_equal_dalis(case):
    assert_same(COORD_CASES[case])


def run_error(build):
    @pipeline_def(batch_size=2, num_threads=1)
    def pipe():
        return build()

    p = pipe()
    try:
        p.run()
    finally:
        p.close()


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: fn.transforms.shear(shear=[1.0, 2.0], angles=[3.0, 4.0]), TypeError, "exactly one of shear"),
        (lambda: fn.transforms.shear(angles=[100.0, 2.0]), ValueError, r"angles\[0\]"),
        (lambda: fn.transforms.shear(shear=[1.0] * 5), OperatorError, "shear has 5 values"),
        (lambda: fn.transforms.scale(scale=[1.0] * 7), OperatorError, "7 dimensions"),
        (lambda: fn.transforms.scale(scale=[1.0, 2.0], ndim=3), ValueError, "ndim=3"),
        (lambda: fn.transforms.rotation(angle=10.0, center=[1.0, 2.0, 3.0]), OperatorError, "center has 3 values"),
        (lambda: fn.transforms.rotation(), TypeError, "angle"),
        (lambda: fn.transforms.crop(from_start=[1.0, 2.0], to_end=[1.0, 1.0, 1.0]), OperatorError, "from_start"),
        (
            lambda: fn.transforms.translation(fn.transforms.scale(scale=[2.0, 3.0, 1.0]), offset=[1.0, 2.0]),
            OperatorError,
            "offset give",
        ),
        (
            lambda: fn.transforms.combine(
                fn.transforms.scale(scale=[2.0, 3.0, 1.0]), fn.transforms.scale(scale=[1.0, 2.0])
            ),
            OperatorError,
            "same shape",
        ),
        (
            lambda: fn.coord_transform(np.zeros((3, 2), np.float32), M=[1.0, 2.0, 3.0, 4.0], MT=[1.0] * 6),
            TypeError,
            "MT=",
        ),
        (lambda: fn.coord_transform(np.zeros((3, 2), np.float32), M=[1.0] * 5), OperatorError, "5 values of M"),
        (lambda: fn.coord_transform(np.zeros(3, np.float32), M=[1.0]), OperatorError, "points"),
        (lambda: fn.coord_transform(np.zeros((3, 2), np.float32), dtype=np.uint8), OperatorError, "dtype"),
        (lambda: fn.coord_flip(np.zeros((3, 4), np.float32)), OperatorError, "at most 3"),
        (lambda: fn.coord_flip(np.zeros((3, 2), np.float32), layout="xz"), OperatorError, "'y' is not in layout"),
        (lambda: fn.coord_flip(np.zeros((3, 2), np.int32)), OperatorError, "points"),
    ],
)
def test_errors_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        run_error(build)


def test_sequence_input_needs_a_frame_layout():
    with pytest.raises(OperatorError, match="layout starting with 'F'"):
        run_error(
            lambda: fn.transforms.rotation(
                fn.external_source(source=lambda: [np.ones((2, 2, 3), np.float32)] * 2), angle=3.0
            )
        )

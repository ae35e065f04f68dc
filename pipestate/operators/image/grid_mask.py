"""``fn.grid_mask``: zeroes pixels in a rotated, shifted grid of squares (GridMask, arXiv:2001.04086), with
DALI's CPU arithmetic (bit-exact)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import Example, Sample, SampleOperator, Tensor, register
from pipestate.operators import schema as sch
from pipestate.operators.image._kernels.color import cos_sin
from pipestate.operators.schema import Arg

_F = np.float32


def grid_keep(
    height: int, width: int, tile: int, ratio: float, angle: float, shift_x: float, shift_y: float
) -> np.ndarray:
    """The ``(height, width)`` boolean mask of kept pixels, computed in float32 as DALI's ``GridMaskCpu``."""
    cos, sin = cos_sin(_F(angle))
    t = _F(tile)
    ca, sa = cos / t, sin / t
    sx, sy = _F(shift_x) / t, _F(shift_y) / t
    y = np.arange(height, dtype=_F)[:, None]
    x = np.arange(width, dtype=_F)[None, :]
    fx = (-sx + y * -sa) + x * ca
    fy = (-sy + y * ca) + x * sa
    r = _F(ratio)
    return (fx - np.floor(fx) >= r) | (fy - np.floor(fy) >= r)


@register
class GridMask(SampleOperator):
    """Zeroes out pixels of ``HWC`` images in a grid of squares ``ratio * tile`` wide repeating every ``tile``
    pixels, rotated by ``angle`` radians around the origin and then shifted by (``shift_x``, ``shift_y``)."""

    type = "grid_mask"
    INPUTS = (sch.Input("images", "HWC images", dtypes=("uint8", "int16", "int32", "float32"), layouts=("HWC",)),)
    ARGS = (
        Arg("tile", sch.Int(1), 100, "Tile length: square width plus the spacing", tensor=True),
        Arg("ratio", sch.Float(), 0.5, "Black square width / tile width", tensor=True),
        Arg("angle", sch.Float(), 0.0, "Rotation of the grid, in radians", tensor=True),
        Arg("shift_x", sch.Float(), 0.0, "x of the translation, applied after the rotation", tensor=True),
        Arg("shift_y", sch.Float(), 0.0, "y of the translation, applied after the rotation", tensor=True),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (12, 10, 3), layout="HWC", ragged=(0, 1)),),
        args={"tile": 5, "shift_y": 1.5},
        arg_inputs={"angle": Tensor("float32", (), low=-3.2, high=3.2), "ratio": Tensor("float32", (), low=0, high=1)},
    )

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (image,) = inputs
        keep = grid_keep(
            image.shape[0], image.shape[1], args["tile"], args["ratio"], args["angle"], args["shift_x"], args["shift_y"]
        )
        return image * keep[..., None].astype(image.dtype)

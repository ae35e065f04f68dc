"""Warps: ``fn.rotate``, ``fn.warp_affine`` and ``fn.experimental.warp_perspective``.

Affine warps use DALI's matrix convention (destination -> source, pixel centres at ``i + 0.5``) and are
computed by OpenCV's ``warpAffine`` with the half-pixel shift (within 1 level of DALI's CPU output; see
``docs/images.md``); ``warp_perspective`` is OpenCV's ``warpPerspective``, which DALI's CPU operator also is.
Frames of a sequence share the transform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.image import _args
from pipestate.operators.image._kernels.warp import (
    BORDERS,
    rotated_size,
    rotation_matrix,
    warp_affine_cv,
    warp_perspective_cv,
)
from pipestate.operators.schema import Arg
from pipestate.types import DALIInterpType

WARPED = ("uint8", "int8", "uint16", "int16", "int32", "float32")
IMAGES = sch.Input("images", "Images (HWC) or sequences (FHWC)", WARPED, layouts=("HWC", "FHWC"))
_NN_LINEAR = "Interpolation: types.INTERP_NN or INTERP_LINEAR"
COMMON = (
    Arg(
        "size",
        sch.Seq(sch.Float(0.0), min_length=1, broadcast=True),
        None,
        "Output size (H, W), rounded to nearest",
        tensor=True,
    ),
    Arg("fill_value", sch.Float(), None, "Value outside the source image (default: repeat the border pixel)"),
    Arg("interp_type", _args.WARP_INTERP, DALIInterpType.INTERP_LINEAR, _NN_LINEAR),
    Arg("dtype", sch.DType(), None, "Output type (default: the input's)"),
    Arg("output_dtype", sch.DType(), None, "Deprecated in DALI: use dtype"),
)


def _out_size(size: Any, default: tuple[int, int]) -> tuple[int, int]:
    """A ``size`` argument as integers (halves away from zero), or ``default``.

    Raises:
        ValueError: a size of other than 2 values.
    """
    if size is None or len(size) == 0:
        return default
    if len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2:
        raise ValueError(f"size={list(size)!r} must be (H, W)")
    return tuple(int(np.floor(float(v) + 0.5)) for v in size)  # type: ignore[return-value]


def _dtype(op: SampleOperator) -> np.dtype | None:
    a = op.args
    if a["dtype"] is not None and a["output_dtype"] is not None:
        raise ValueError(f"fn.{op.type}(): give dtype only (output_dtype is its deprecated name)")
    return a["dtype"] if a["dtype"] is not None else a["output_dtype"]


def _warp_frames(x: np.ndarray, layout: str, size: tuple[int, int], warp) -> np.ndarray:
    frames = _args.to_frames(x, layout)
    _args.check_output_size(size, frames.shape[0] * frames.shape[3])
    return _args.from_frames([warp(f) for f in frames], layout)


@register
class Rotate(SampleOperator):
    """Rotate images by ``angle`` degrees counter-clockwise (DALI's ``fn.rotate``; per sample, e.g.
    ``angle=fn.random.uniform(range=[-10, 10])``). The canvas fits the rotated image unless ``keep_size`` or
    ``size`` is given; outside the source, ``fill_value`` or the repeated border pixel."""

    type = "rotate"
    INPUTS = (IMAGES,)
    ARGS = (
        Arg("angle", sch.Float(), sch.REQUIRED, "Degrees, counter-clockwise", tensor=True),
        Arg(
            "axis", sch.Seq(sch.Float()), None, "Rotation axis of volumes (pipestate supports no volumes)", tensor=True
        ),
        Arg("keep_size", sch.Bool(), False, "Keep the input's size instead of fitting the rotated image"),
        *COMMON,
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (12, 14, 3), layout="HWC", ragged=(0, 1)),),
        args={"fill_value": 40.0},
        arg_inputs={"angle": Tensor("float32", (), low=-45, high=45)},
        dali="close:1",
    )

    def validate(self) -> None:
        super().validate()
        if self.args["axis"] is not None:
            raise ValueError(f"fn.{self.type}(): axis rotates volumes, which pipestate does not support")
        if self.args["keep_size"] and self.args["size"] is not None:
            raise ValueError(f"fn.{self.type}(): keep_size=True and size are mutually exclusive; give one")
        self.dtype = _dtype(self)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        layout = s.layouts[0]
        in_size = _args.spatial_size(x, layout)
        angle = args["angle"]
        size = in_size if args["keep_size"] else _out_size(args["size"], None) or rotated_size(in_size, angle)
        matrix = rotation_matrix(in_size, size, angle)
        interp = _args.FILTER_OF[args["interp_type"]]
        return _warp_frames(
            x,
            layout,
            size,
            lambda f: warp_affine_cv(f, matrix, size, interp=interp, fill_value=args["fill_value"], dtype=self.dtype),
        )


@register
class WarpAffine(SampleOperator):
    """Apply an affine transform (DALI's ``fn.warp_affine``): ``matrix`` (2x3, destination -> source unless
    ``inverse_map=False``; per sample, e.g. from ``fn.transforms.*``, or as a second input)."""

    type = "warp_affine"
    INPUTS = (
        IMAGES,
        sch.Input("mtx", "Per-sample 2x3 matrices (instead of matrix=)", sch.NUMBERS, (1, 2), optional=True),
    )
    ARGS = (
        Arg("matrix", _args.Matrix(2, 3), None, "The 2x3 transform (6 values, row-major)", tensor=True),
        Arg("inverse_map", sch.Bool(), True, "matrix maps destination to source (False: source to destination)"),
        *COMMON,
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (12, 14, 3), layout="HWC", ragged=(0, 1)),),
        args={"size": (10.0, 11.0), "interp_type": 0},
        arg_inputs={"matrix": Tensor("float32", (2, 3), values=lambda i: [[1, 0.1 * (i % 3), -2], [0.05, 0.9, 1.5]])},
        dali="close:1",
    )

    def validate(self) -> None:
        super().validate()
        given = self.args["matrix"] is not None
        if given == (len(self.inputs) == 2):
            raise TypeError(f"fn.{self.type}(): give the transform as matrix= or as the second input (exactly one)")
        self.dtype = _dtype(self)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        x = inputs[0]
        layout = s.layouts[0]
        matrix = args["matrix"] if len(inputs) == 1 else _args.Matrix(2, 3).check(inputs[1], "input mtx")
        size = _out_size(args["size"], _args.spatial_size(x, layout))
        interp = _args.FILTER_OF[args["interp_type"]]
        return _warp_frames(
            x,
            layout,
            size,
            lambda f: warp_affine_cv(
                f,
                matrix,
                size,
                interp=interp,
                fill_value=args["fill_value"],
                inverse_map=args["inverse_map"],
                dtype=self.dtype,
            ),
        )


@register
class WarpPerspective(SampleOperator):
    """Apply a perspective transform (DALI's ``fn.experimental.warp_perspective``, which is OpenCV's
    ``warpPerspective``): ``matrix`` (3x3, destination -> source unless ``inverse_map=False``; or a second
    input), ``border_mode``, ``fill_value``, ``pixel_origin``."""

    type = "experimental.warp_perspective"
    INPUTS = (
        sch.Input(
            "images",
            "Images (HW, HWC, CHW) or sequences (FHWC, FCHW), at most 4 channels",
            ("uint8", "uint16", "int16", "float32"),
            layouts=("HWC", "HW", "CHW", "FHWC", "FCHW"),
        ),
        sch.Input("matrix", "Per-sample 3x3 matrices (instead of matrix=)", ("float32",), (1, 2), optional=True),
    )
    ARGS = (
        Arg("matrix", _args.Matrix(3, 3), None, "The 3x3 transform (9 values, row-major)", tensor=True),
        Arg(
            "size",
            sch.Seq(sch.Float(0.0), min_length=1, broadcast=True),
            None,
            "Output size (H, W), rounded to nearest",
            tensor=True,
        ),
        Arg("border_mode", sch.Str(BORDERS), "constant", "How pixels outside the source are read"),
        Arg("fill_value", sch.Seq(sch.Float()), (), "For border_mode='constant': one value or one per channel"),
        Arg(
            "interp_type",
            _args.Enum(
                DALIInterpType, (DALIInterpType.INTERP_NN, DALIInterpType.INTERP_LINEAR, DALIInterpType.INTERP_CUBIC)
            ),
            DALIInterpType.INTERP_LINEAR,
            "Interpolation: types.INTERP_NN, INTERP_LINEAR or INTERP_CUBIC",
        ),
        Arg("inverse_map", sch.Bool(), True, "matrix maps destination to source (False: source to destination)"),
        Arg(
            "pixel_origin",
            sch.Str(("corner", "center")),
            "corner",
            "Where (0, 0) is: the top-left pixel's corner (DALI) or centre (OpenCV)",
        ),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (12, 14, 3), layout="HWC", ragged=(0, 1)),),
        args={"border_mode": "reflect", "interp_type": 2},
        arg_inputs={
            "matrix": Tensor(
                "float32",
                (3, 3),
                values=lambda i: [[1, 0.1 * (i % 3), -2], [0.05, 0.9, 1.5], [0.001 * (i % 2), 0.002, 1]],
            )
        },
    )

    def validate(self) -> None:
        super().validate()
        given = self.args["matrix"] is not None
        if given == (len(self.inputs) == 2):
            raise TypeError(f"fn.{self.type}(): give the transform as matrix= or as the second input (exactly one)")

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        x = inputs[0]
        layout = s.layouts[0]
        if "C" in layout and x.shape[layout.index("C")] > 4:
            raise ValueError(f"images with more than 4 channels are not supported (got {x.shape[layout.index('C')]})")
        matrix = args["matrix"] if len(inputs) == 1 else _args.Matrix(3, 3).check(inputs[1], "input matrix")
        size = _out_size(args["size"], _args.spatial_size(x, layout))
        size = (max(1, size[0]), max(1, size[1])) if args["size"] is not None else size
        interp = _args.FILTER_OF[args["interp_type"]]
        return _warp_frames(
            x,
            layout,
            size,
            lambda f: warp_perspective_cv(
                f,
                matrix,
                size,
                interp=interp,
                border_mode=args["border_mode"],
                fill_value=args["fill_value"],
                inverse_map=args["inverse_map"],
                pixel_origin=args["pixel_origin"],
            ),
        )

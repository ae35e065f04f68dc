"""Resizing: ``fn.resize``, ``fn.random_resized_crop``, ``fn.resize_crop_mirror``.

All three resample with DALI's separable filters (:mod:`pipestate.operators.image._kernels.resample`) onto the
output size and source window DALI computes (:mod:`~pipestate.operators.image._kernels.resize_params`): HWC,
CHW and sequences (FHWC, FCHW, CFHW; every frame resized alike).
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
from pipestate.operators.image._kernels.resample import resample
from pipestate.operators.image._kernels.resize_params import ResizeParams
from pipestate.operators.image._kernels.random_crop import random_crop_window
from pipestate.operators.image.decoders import RANDOM_CROP_ARGS, check_random_crop_args
from pipestate.operators.schema import Arg
from pipestate.types import DALIImageType

RESAMPLED = ("uint8", "int8", "uint16", "int16", "int32", "float32")
IMAGES = sch.Input("images", "Images or sequences of images", RESAMPLED, layouts=_args.IMAGE_LAYOUTS)
DEPRECATED_IMAGE_TYPE = Arg("image_type", _args.Enum(DALIImageType), None, "Deprecated in DALI: accepted, no effect")


def resample_frames(sample: np.ndarray, layout: str, params: ResizeParams, args: Mapping[str, Any],
                    dtype: np.dtype) -> np.ndarray:
    """Resample every frame of a sample of ``layout`` onto ``params``."""
    low, high = _args.filters_of(args)
    frames = _args.to_frames(sample, layout)
    _args.check_output_size(params.out_size, frames.shape[0] * frames.shape[3])
    out = [resample(f, params, min_filter=low, mag_filter=high, antialias=args["antialias"], dtype=dtype)
           for f in frames]
    return _args.from_frames(out, layout)


@register
class Resize(SampleOperator):
    """Resize images (DALI's ``fn.resize``): give the size as ``resize_x``/``resize_y``, ``size``,
    ``resize_shorter`` or ``resize_longer`` (per sample too), with DALI's ``mode``, ``max_size``, region of
    interest and filters (``interp_type``, ``min_filter``/``mag_filter``, ``antialias``).

    Returns:
        The resized images (the input's type, or float32 with ``dtype=types.FLOAT``), and with
        ``save_attrs=True`` also each input's (H, W) as int32.
    """

    type = "resize"
    INPUTS = (IMAGES,)
    ARGS = (
        *_args.RESIZE_ARGS,
        Arg("save_attrs", sch.Bool(), False, "Also output each input's spatial size (H, W), int32"),
        DEPRECATED_IMAGE_TYPE,
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (12, 14, 3), layout="HWC", ragged=(0, 1)),),
        args={"resize_y": 9.0, "interp_type": 1},
        arg_inputs={"resize_x": Tensor("float32", (), low=5, high=30)},
        dali="close:1",
    )

    def validate(self) -> None:
        super().validate()
        _args.check_size_args(self.type, self.args)
        self.num_outputs = 2 if self.args["save_attrs"] else 1

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return layouts[0] if index == 0 else ""

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> Any:
        (x,) = inputs
        layout = s.layouts[0]
        in_hw = _args.spatial_size(x, layout)
        params = _args.resize_params_of(in_hw, args)
        out = resample_frames(x, layout, params, args, _args.output_dtype(self.type, args, x.dtype))
        return (out, np.array(in_hw, np.int32)) if self.num_outputs == 2 else out


@register
class RandomResizedCrop(SampleOperator):
    """Cut a random window and resize it to ``size`` (DALI's ``fn.random_resized_crop``): the window's area
    fraction is uniform in ``random_area``, its aspect ratio log-uniform in ``random_aspect_ratio``, drawn
    from the sample's own random stream (frames of a sequence share the window)."""

    type = "random_resized_crop"
    INPUTS = (IMAGES,)
    ARGS = (
        Arg("size", sch.Seq(sch.Int(1), min_length=1, broadcast=True), sch.REQUIRED, "Output size (H, W)"),
        *RANDOM_CROP_ARGS,
        *_args.FILTER_ARGS,
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (12, 14, 3), layout="HWC", ragged=(0, 1)),),
        args={"size": (9, 7)},
        dali="test:tests/operators/image/test_random_crops.py",
    )

    def validate(self) -> None:
        super().validate()
        size = self.args["size"]
        if len(size) not in (1, 2):
            raise ValueError(f"fn.{self.type}(): size={list(size)!r} must be (H, W) or one value for both")
        self.size = (size[0], size[-1])
        self.area, self.aspect = check_random_crop_args(self.type, self.args)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        layout = s.layouts[0]
        h, w = _args.spatial_size(x, layout)
        (y0, x0), (ch, cw) = random_crop_window(s.rng, h, w, self.area, self.aspect, args["num_attempts"])
        params = ResizeParams(self.size, (float(y0), float(x0)), (float(y0 + ch), float(x0 + cw)))
        return resample_frames(x, layout, params, args, _args.output_dtype(self.type, args, x.dtype))


@register
class ResizeCropMirror(SampleOperator):
    """Resize, cut a window and flip (DALI's ``fn.resize_crop_mirror``): the size arguments of ``fn.resize``,
    the crop arguments of ``fn.crop`` (applied to the resized image) and ``mirror`` (1: horizontal, 2:
    vertical, 3: both). Only the window is resampled."""

    type = "resize_crop_mirror"
    INPUTS = (IMAGES,)
    ARGS = (
        *_args.RESIZE_ARGS,
        *_args.CROP_ARGS,
        Arg("mirror", sch.Int(0, 7), 0, "Flips: 1 horizontal, 2 vertical (4, depthwise, has no effect on images)",
            tensor=True),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (12, 14, 3), layout="HWC", ragged=(0, 1)),),
        args={"size": (15, 17), "crop": (8, 9)},
        arg_inputs={"mirror": Tensor("int32", (), low=0, high=3.99)},
        dali="close:1",
    )

    def validate(self) -> None:
        super().validate()
        _args.check_size_args(self.type, self.args)
        _args.check_crop_args(self.type, self.args)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        layout = s.layouts[0]
        full = _args.resize_params_of(_args.spatial_size(x, layout), args)
        anchor, shape = _args.crop_window_of(full.out_size, args)
        lo, hi = [], []
        for d in range(2):
            n, a, b = full.out_size[d], full.roi_lo[d], full.roi_hi[d]
            if not 0 <= anchor[d] <= anchor[d] + shape[d] <= n:
                raise ValueError(f"the crop window {list(anchor)}..{[a + c for a, c in zip(anchor, shape)]} "
                                 f"exceeds the resized size {list(full.out_size)}")
            step = (b - a) / n
            lo.append(a + step * anchor[d])
            hi.append(a + step * (anchor[d] + shape[d]))
        params = ResizeParams(tuple(shape), tuple(lo), tuple(hi))
        out = resample_frames(x, layout, params, args, _args.output_dtype(self.type, args, x.dtype))
        mirror = args["mirror"]
        if mirror & 3:
            frames = _args.to_frames(out, layout)
            frames = frames[:, :, ::-1] if mirror & 1 else frames
            frames = frames[:, ::-1] if mirror & 2 else frames
            out = _args.from_frames(frames, layout)
        return out


"""Resizing: ``fn.resize``, ``fn.random_resized_crop``, ``fn.resize_crop_mirror``, ``fn.tensor_resize`` (and
``fn.experimental.tensor_resize``).

They all resample with DALI's separable filters (:mod:`pipestate.operators.image._kernels.resample`) onto the
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
from pipestate.operators.image._kernels.random_crop import random_crop_window
from pipestate.operators.image._kernels.resample import resample
from pipestate.operators.image._kernels.resize_params import ResizeParams, resize_params
from pipestate.operators.image.decoders import RANDOM_CROP_ARGS, check_random_crop_args
from pipestate.operators.schema import Arg
from pipestate.types import DALIImageType

RESAMPLED = ("uint8", "int8", "uint16", "int16", "int32", "float32")
IMAGES = sch.Input("images", "Images or sequences of images", RESAMPLED, layouts=_args.IMAGE_LAYOUTS)
DEPRECATED_IMAGE_TYPE = Arg("image_type", _args.Enum(DALIImageType), None, "Deprecated in DALI: accepted, no effect")


def resample_frames(
    sample: np.ndarray, layout: str, params: ResizeParams, args: Mapping[str, Any], dtype: np.dtype
) -> np.ndarray:
    """Resample every frame of a sample of ``layout`` onto ``params``."""
    low, high = _args.filters_of(args)
    frames = _args.to_frames(sample, layout)
    _args.check_output_size(params.out_size, frames.shape[0] * frames.shape[3])
    out = [
        resample(f, params, min_filter=low, mag_filter=high, antialias=args["antialias"], dtype=dtype) for f in frames
    ]
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
        Arg(
            "mirror",
            _args.Flag(0, 7),
            0,
            "Flips: 1 horizontal, 2 vertical (4, depthwise, has no effect on images)",
            tensor=True,
        ),
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
        anchor, shape = _args.crop_window_of(full.out_size, args, double=True)
        lo, hi = [], []
        for d in range(2):
            n, a, b = full.out_size[d], full.roi_lo[d], full.roi_hi[d]
            if not 0 <= anchor[d] <= anchor[d] + shape[d] <= n:
                raise ValueError(
                    f"the crop window {list(anchor)}..{[a + c for a, c in zip(anchor, shape)]} "
                    f"exceeds the resized size {list(full.out_size)}"
                )
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


@register
class TensorResize(SampleOperator):
    """Resize any tensor along chosen axes (DALI's ``fn.tensor_resize``): ``sizes`` or ``scales`` (rounded by
    ``size_rounding``, the source window placed by ``alignment``) per axis of ``axes``/``axis_names`` (default
    all); at most two axes may change size (pipestate resamples images, not volumes)."""

    type = "tensor_resize"
    INPUTS = (sch.Input("data", "Any tensor", RESAMPLED),)
    ARGS = (
        Arg("axes", sch.Seq(sch.Int(), broadcast=True), None, "Axes (indices) that sizes/scales refer to"),
        Arg("axis_names", sch.Str(), None, "Axes (layout letters) that sizes/scales refer to"),
        Arg("sizes", sch.Seq(sch.Float(0.0), min_length=1), None, "Output extent per axis (0: derived)", tensor=True),
        Arg("scales", sch.Seq(sch.Float(0.0), min_length=1), None, "Scale factor per axis", tensor=True),
        Arg("size_rounding", sch.Str(("round", "truncate", "ceil")), "round", "How scaled sizes become integers"),
        Arg(
            "alignment",
            sch.Seq(sch.Float(), min_length=1, broadcast=True),
            (0.5,),
            "Where the window sits when a scaled size is rounded (0: start, 0.5: centre, 1: end)",
            tensor=True,
        ),
        *[
            a
            for a in _args.SIZE_ARGS
            if a.name in ("mode", "max_size", "roi_start", "roi_end", "roi_relative", "subpixel_scale")
        ],
        *_args.FILTER_ARGS,
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (12, 14, 3), layout="HWC", ragged=(0, 1)),),
        args={"axes": (0, 1), "size_rounding": "ceil"},
        arg_inputs={"scales": Tensor("float32", (2,), low=0.5, high=1.5)},
        dali="close:1",
    )

    def validate(self) -> None:
        super().validate()
        a = self.args
        if a["axes"] is not None and a["axis_names"] is not None:
            raise ValueError(f"fn.{self.type}(): axes and axis_names are mutually exclusive; give one")
        if (a["sizes"] is None) == (a["scales"] is None):
            raise ValueError(f"fn.{self.type}(): give exactly one of sizes and scales")

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        where = f" (sample {s.index})"
        layout = s.layouts[0]
        if args["axis_names"] is not None:
            missing = [c for c in args["axis_names"] if c not in layout]
            if missing:
                raise ValueError(f"axis_names: the layout {layout!r} has no axis {missing[0]!r}{where}")
            axes = [layout.index(c) for c in args["axis_names"]]
        else:
            axes = list(args["axes"]) if args["axes"] is not None else list(range(x.ndim))
            if any(not -x.ndim <= a < x.ndim for a in axes):
                raise ValueError(f"axes={axes!r} is out of range for {x.ndim}-dimensional data{where}")
            axes = [a % x.ndim for a in axes]
        given = args["sizes"] if args["sizes"] is not None else args["scales"]
        if len(given) != len(axes):
            raise ValueError(
                f"{'sizes' if args['sizes'] is not None else 'scales'} has {len(given)} values for "
                f"{len(axes)} axes{where}"
            )
        if args["sizes"] is not None:
            requested = {a: float(v) for a, v in zip(axes, given)}
        else:
            round_ = {"round": lambda v: np.floor(v + 0.5), "truncate": np.trunc, "ceil": np.ceil}[
                args["size_rounding"]
            ]
            requested = {a: float(round_(np.float32(v) * np.float32(x.shape[a]))) for a, v in zip(axes, given)}
        if any(not 0 <= v <= 2**28 for v in requested.values()):
            raise ValueError(f"the requested sizes {list(requested.values())} are out of range{where}")
        roi = self._per_axis(args, ("roi_start", "roi_end"), axes, where)
        moving = [
            a
            for a in axes
            if requested[a] != x.shape[a] or (roi and (roi["roi_start"][a], roi["roi_end"][a]) != (0, x.shape[a]))
        ]
        if len(moving) > 2:
            raise ValueError(f"axes {moving} change size; pipestate resizes at most two axes{where}")
        if x.ndim < 2:
            raise ValueError(f"tensor_resize needs data with at least 2 dimensions{where}")
        others = [a for a in axes if a not in moving] + [a for a in range(x.ndim) if a not in axes]
        spatial = sorted((moving + others)[:2])
        in_hw = (x.shape[spatial[0]], x.shape[spatial[1]])
        size = [requested.get(a, float(x.shape[a])) for a in spatial]
        limits = self._per_axis(args, ("max_size",), axes, where)
        params = resize_params(
            in_hw,
            size=size,
            mode=args["mode"],
            max_size=[limits["max_size"].get(a, 0.0) for a in spatial] if limits else None,
            roi_start=[roi["roi_start"].get(a, 0.0) for a in spatial] if roi else None,
            roi_end=[roi["roi_end"].get(a, float(x.shape[a])) for a in spatial] if roi else None,
            roi_relative=args["roi_relative"],
            subpixel_scale=args["subpixel_scale"],
        )
        if args["scales"] is not None and args["subpixel_scale"] and not roi:
            scales, align = dict(zip(axes, given)), self._per_axis(args, ("alignment",), axes, where)["alignment"]
            lo, hi = [], []
            for d, a in enumerate(spatial):
                extent = params.out_size[d] / float(np.float32(scales.get(a, 1.0))) if scales.get(a) else in_hw[d]
                start = (in_hw[d] - extent) * float(align.get(a, 0.5))
                lo.append(start)
                hi.append(start + extent)
            params = ResizeParams(params.out_size, tuple(lo), tuple(hi))
        rest = [a for a in range(x.ndim) if a not in spatial]
        moved = np.moveaxis(x, spatial, [0, 1]).reshape(in_hw[0], in_hw[1], -1)
        dtype = _args.output_dtype(self.type, args, x.dtype)
        _args.check_output_size(params.out_size, moved.shape[2])
        low, high = _args.filters_of(args)
        out = resample(moved, params, min_filter=low, mag_filter=high, antialias=args["antialias"], dtype=dtype)
        out = out.reshape(params.out_size[0], params.out_size[1], *[x.shape[a] for a in rest])
        return np.ascontiguousarray(np.moveaxis(out, [0, 1], spatial))

    @staticmethod
    def _per_axis(args: Mapping[str, Any], names: tuple[str, ...], axes: list[int], where: str) -> dict:
        """``{name: {axis: value}}`` for arguments given per axis of ``axes`` (one value: all); ``{}`` if unset."""
        if args[names[0]] is None:
            return {}
        out = {}
        for name in names:
            values = list(args[name])
            values = values * len(axes) if len(values) == 1 else values
            if len(values) != len(axes):
                raise ValueError(f"{name} has {len(values)} values for {len(axes)} axes{where}")
            out[name] = dict(zip(axes, (float(v) for v in values)))
        return out


@register
class TensorResizeExperimental(TensorResize):
    """DALI's ``fn.experimental.tensor_resize``: the same operator as ``fn.tensor_resize``."""

    type = "experimental.tensor_resize"

"""Geometry without resampling: ``fn.flip``, ``fn.pad`` and ``fn.erase`` (DALI's names, arguments, layouts)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.image import _args
from pipestate.operators.schema import Arg

_F = np.float32
_CV_FLIP = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64))


@register
class Flip(SampleOperator):
    """Flip images horizontally and/or vertically (DALI's ``fn.flip``; per-sample flags, e.g.
    ``horizontal=fn.random.coin_flip()``). HWC, CHW and sequences; ``depthwise`` applies to volumes only."""

    type = "flip"
    INPUTS = (
        sch.Input("images", "Images or sequences of images", sch.NUMBERS, layouts=("HWC", "CHW", "FHWC", "FCHW")),
    )
    ARGS = (
        Arg("horizontal", _args.Flag(), 1, "Flip the W axis when not 0", tensor=True),
        Arg("vertical", _args.Flag(), 0, "Flip the H axis when not 0", tensor=True),
        Arg("depthwise", _args.Flag(), 0, "Flip the D axis of volumes (no effect on images)", tensor=True),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (5, 6, 3), layout="HWC", ragged=(0, 1)),),
        arg_inputs={
            "horizontal": Tensor("int32", (), low=0, high=1.99),
            "vertical": Tensor("int32", (), low=0, high=1.99),
        },
    )

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        layout = s.layouts[0]
        axes = [layout.index(a) for a, flag in (("W", args["horizontal"]), ("H", args["vertical"])) if flag]
        if not axes:
            return x
        if layout == "HWC" and x.shape[2] <= 4 and x.dtype in _CV_FLIP and x.size:
            import cv2  # OpenCV's flip is ~3x faster than numpy's strided copy

            out = cv2.flip(x, {(1,): 1, (0,): 0}.get(tuple(axes), -1))
            return out.reshape(x.shape)
        return np.ascontiguousarray(np.flip(x, axes))

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        if self.arg_inputs:
            return None
        axes = [1 + layouts[0].index(a) for a, flag in (("W", args["horizontal"]), ("H", args["vertical"])) if flag]
        return (np.ascontiguousarray(np.flip(inputs[0], axes)) if axes else inputs[0],)


def _axes_of(args: Mapping[str, Any], layout: str, ndim: int, default: Sequence[int] | None) -> list[int]:
    """The axis indices named by ``axis_names`` (letters of ``layout``) or ``axes``; ``default`` otherwise.

    Raises:
        ValueError: a letter missing from the layout or an index out of range.
    """
    if args["axis_names"] is not None:
        missing = [c for c in args["axis_names"] if c not in layout]
        if missing:
            raise ValueError(f"axis_names={args['axis_names']!r}: the layout {layout!r} has no axis {missing[0]!r}")
        return [layout.index(c) for c in args["axis_names"]]
    axes = args["axes"] if args["axes"] is not None else default
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axes={list(axes)!r}: axis {a} is out of range for {ndim}-dimensional data")
        out.append(a % ndim)
    return out


def _check_axes(op_type: str, args: Mapping[str, Any]) -> None:
    if args["axes"] is not None and args["axis_names"] is not None:
        raise ValueError(f"fn.{op_type}(): axes and axis_names are mutually exclusive; give one")


def _fill(value: float, dtype: np.dtype) -> Any:
    if dtype.kind == "f":
        return value
    if dtype.kind == "b":
        return bool(value)
    info = np.iinfo(dtype)
    return int(np.clip(np.rint(value), info.min, info.max))


@register
class Pad(SampleOperator):
    """Pad samples at the end of the chosen axes (DALI's ``fn.pad``): to the largest extent in the batch, or
    to ``shape`` (-1: the largest), rounded up to a multiple of ``align``, with ``fill_value``."""

    type = "pad"
    INPUTS = (sch.Input("data", "Any tensor", sch.NUMBERS),)
    ARGS = (
        Arg("axes", sch.Seq(sch.Int(), broadcast=True), None, "Axes (indices) to pad; default all"),
        Arg("axis_names", sch.Str(), None, "Axes (layout letters) to pad, instead of axes"),
        Arg(
            "shape",
            sch.Seq(sch.Int(-1), min_length=1, broadcast=True),
            None,
            "Output extent per padded axis (-1: the batch's largest)",
            tensor=True,
        ),
        Arg(
            "align",
            sch.Seq(sch.Int(1), min_length=1, broadcast=True),
            None,
            "Round the padded extents up to a multiple of these",
            tensor=True,
        ),
        Arg("fill_value", sch.Float(), 0.0, "The padding value", tensor=True),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (4, 5, 3), layout="HWC", ragged=(0, 1)),),
        args={"axis_names": "HW", "align": (2, 4)},
        arg_inputs={"fill_value": Tensor("float32", (), low=0, high=255)},
    )

    def validate(self) -> None:
        super().validate()
        _check_axes(self.type, self.args)

    def prepare(
        self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch], layouts: tuple[str, ...]
    ) -> dict[str, Sequence] | None:
        batch = inputs[0]
        shapes = batch.shape()
        if not shapes:
            return None
        ndim = len(shapes[0])
        axes = _axes_of(self.args, layouts[0], ndim, range(ndim))
        largest = [max(s[d] for s in shapes) for d in axes]
        return {"_largest": [largest] * len(shapes), "_axes": [axes] * len(shapes)}

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        axes, largest = args["_axes"], args["_largest"]
        n = len(axes)
        shape = _per_axis(args["shape"], n, "shape", s.index) if args["shape"] is not None else [-1] * n
        align = _per_axis(args["align"], n, "align", s.index) if args["align"] is not None else [1] * n
        out_shape = list(x.shape)
        for i, d in enumerate(axes):
            target = shape[i] if shape[i] >= 0 else largest[i]
            target = -(-target // align[i]) * align[i]
            out_shape[d] = max(x.shape[d], target)
        _args.check_output_size(out_shape)
        if out_shape == list(x.shape):
            return x
        value = args["fill_value"]  # converted as DALI does: a C cast (truncated, wrapped around)
        fill = value if x.dtype.kind == "f" else np.array(math.trunc(value)).astype(np.int64).astype(x.dtype)
        out = np.full(out_shape, fill, x.dtype)
        out[tuple(slice(0, e) for e in x.shape)] = x
        return out


def _per_axis(values: Sequence[int], count: int, name: str, index: int) -> list[int]:
    values = list(values)
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise ValueError(f"{name} has {len(values)} values for {count} axes (sample {index})")
    return values


@register
class Erase(SampleOperator):
    """Fill one or more boxes of each sample with ``fill_value`` (DALI's ``fn.erase``): ``anchor`` and
    ``shape`` list the boxes' starts and extents over ``axis_names`` (default ``"HW"``) or ``axes``, in
    pixels or, with ``normalized``, fractions of the extents; ``centered_anchor`` centres the boxes."""

    type = "erase"
    INPUTS = (sch.Input("data", "Any tensor with a layout", sch.NUMBERS),)
    ARGS = (
        Arg("anchor", sch.Seq(sch.Float()), (), "Box starts, len(axes) values per box", tensor=True),
        Arg("shape", sch.Seq(sch.Float()), (), "Box extents, len(axes) values per box", tensor=True),
        Arg("axes", sch.Seq(sch.Int(), broadcast=True), None, "Axes (indices) of anchor and shape"),
        Arg("axis_names", sch.Str(), None, "Axes (layout letters) of anchor and shape; default 'HW'"),
        Arg(
            "fill_value",
            sch.Seq(sch.Float(), min_length=1, broadcast=True),
            (0.0,),
            "The value, or one per channel",
            tensor=True,
        ),
        Arg("normalized", sch.Bool(), None, "anchor and shape are fractions of the extents"),
        Arg("normalized_anchor", sch.Bool(), None, "anchor is a fraction of the extents"),
        Arg("normalized_shape", sch.Bool(), None, "shape is a fraction of the extents"),
        Arg("centered_anchor", sch.Bool(), False, "anchor is the centre of the box"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (8, 9, 3), layout="HWC", ragged=(0, 1)),),
        args={"shape": (3.0, 4.0, 2.0, 2.0), "fill_value": (10.0, 20.0, 30.0)},
        arg_inputs={"anchor": Tensor("float32", (4,), low=-2, high=10)},
    )

    def validate(self) -> None:
        super().validate()
        _check_axes(self.type, self.args)
        a = self.args
        if a["normalized"] is not None and (a["normalized_anchor"] is not None or a["normalized_shape"] is not None):
            raise ValueError(
                f"fn.{self.type}(): normalized is not compatible with normalized_anchor and "
                "normalized_shape; give one or the others"
            )
        both = bool(a["normalized"])
        self.norm_anchor = both or bool(a["normalized_anchor"])
        self.norm_shape = both or bool(a["normalized_shape"])

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        layout = s.layouts[0]
        axes = _axes_of(args, layout, x.ndim, None) if args["axes"] is not None or args["axis_names"] else None
        if axes is None:
            if not {"H", "W"} <= set(layout):
                raise ValueError(f"the input's layout {layout!r} has no H and W axes; give axes or axis_names")
            axes = [layout.index("H"), layout.index("W")]
        anchor, shape = np.asarray(args["anchor"], _F), np.asarray(args["shape"], _F)
        n = len(axes)
        if not n:
            raise ValueError(
                f"axes/axis_names name no axis; name the axes anchor and shape refer to (sample {s.index})"
            )
        if anchor.size != shape.size or anchor.size % n:
            raise ValueError(
                f"anchor has {anchor.size} values and shape {shape.size}; give {n} values (one per "
                f"axis) per box, as many for both (sample {s.index})"
            )
        fill = np.asarray(args["fill_value"], np.float64)
        channel = layout.index("C") if "C" in layout else None
        if fill.size > 1 and (channel is None or x.shape[channel] != fill.size):
            raise ValueError(f"fill_value has {fill.size} values; give one or one per channel (sample {s.index})")
        out = x.copy()
        extents = np.array([x.shape[d] for d in axes], _F)
        for box in range(anchor.size // n):
            a = anchor[box * n : (box + 1) * n]
            b = shape[box * n : (box + 1) * n]
            if self.norm_anchor:
                a = (a * extents).astype(_F)
            if self.norm_shape:
                b = (b * extents).astype(_F)
            if args["centered_anchor"]:
                a = (a - b * _F(0.5)).astype(_F)
            start = np.floor(a).astype(np.int64)
            end = np.floor((a + b).astype(_F)).astype(np.int64)
            index = [slice(None)] * x.ndim
            for i, d in enumerate(axes):
                lo, hi = max(0, int(start[i])), min(x.shape[d], int(end[i]))
                index[d] = slice(lo, max(lo, hi))
            region = out[tuple(index)]
            if fill.size > 1:
                shape_c = [1] * x.ndim
                shape_c[channel] = fill.size
                region[...] = _fill_array(fill.reshape(shape_c), x.dtype)
            else:
                region[...] = _fill(float(fill[0]), x.dtype)
        return out


def _fill_array(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "f":
        return values.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.rint(values), info.min, info.max).astype(dtype)

"""Cropping: ``fn.crop``, ``fn.crop_mirror_normalize`` and ``fn.slice`` (DALI's names, arguments, layouts).

``crop`` and ``crop_mirror_normalize`` cut a window of the H and W axes (``crop``/``crop_h``/``crop_w`` at
``crop_pos_x``/``crop_pos_y``, per sample too) of images and sequences (HWC, CHW, FHWC, FCHW, CFHW);
``slice`` cuts a window of any axes of any tensor. A window outside the input is an error, or is padded
(``out_of_bounds_policy='pad'``, with ``fill_values``) or trimmed (``'trim_to_shape'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.graph import DataNode
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator, saturate_cast
from pipestate.operators.base import register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.image import _args, _slice
from pipestate.operators.image._kernels.crop import normalize_params, slice_nd
from pipestate.operators.schema import Arg
from pipestate.types import DALIImageType

_F = np.float32
IMAGES = sch.Input(
    "images",
    "Images or sequences of images",
    ("uint8", "int8", "uint16", "int16", "int32", "float16", "float32"),
    layouts=_args.IMAGE_LAYOUTS,
)
DEPRECATED = (
    Arg("image_type", _args.Enum(DALIImageType), None, "Deprecated in DALI: accepted, no effect"),
    Arg("output_dtype", sch.DType(), None, "Deprecated in DALI: use dtype"),
)
CROP_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float16, np.uint8))


def _dtype_arg(op_type: str, args: Mapping[str, Any]) -> np.dtype | None:
    """``dtype`` (or the deprecated ``output_dtype``), checked against DALI's supported outputs of slicing.

    Raises:
        ValueError: both given. TypeError: an unsupported type.
    """
    dtype, old = args["dtype"], args["output_dtype"]
    if dtype is not None and old is not None:
        raise ValueError(f"fn.{op_type}(): give dtype only (output_dtype is its deprecated name)")
    dtype = dtype if dtype is not None else old
    if dtype is not None and dtype not in CROP_DTYPES:
        raise TypeError(
            f"fn.{op_type}(): dtype={dtype} is not supported; use types.FLOAT, FLOAT16 or UINT8 (or "
            "leave it out to keep the input's type)"
        )
    return dtype


def _window(x: np.ndarray, layout: str, args: Mapping[str, Any]) -> tuple[list[int], list[int]]:
    """The crop window of a sample over all its axes (the H and W axes cut, the others whole)."""
    (y, x0), (h, w) = _args.crop_window_of(_args.spatial_size(x, layout), args)
    anchor, shape = [0] * x.ndim, list(x.shape)
    anchor[layout.index("H")], shape[layout.index("H")] = y, h
    anchor[layout.index("W")], shape[layout.index("W")] = x0, w
    return anchor, shape


def _channel_axis(layout: str) -> int | None:
    return layout.index("C") if "C" in layout else None


@register
class Crop(SampleOperator):
    """Cut a window of images (DALI's ``fn.crop``): ``crop`` (or ``crop_h``/``crop_w``) at ``crop_pos_x``/
    ``crop_pos_y``; a size of 0 keeps the input's extent. Frames of a sequence share the window."""

    type = "crop"
    INPUTS = (IMAGES,)
    ARGS = (
        *_args.CROP_ARGS,
        *_args.OUT_OF_BOUNDS_ARGS,
        Arg("dtype", sch.DType(), None, "Output type: types.FLOAT, FLOAT16 or UINT8 (default: the input's)"),
        *DEPRECATED,
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (12, 14, 3), layout="HWC", ragged=(0, 1)),),
        args={"crop": (6, 7), "out_of_bounds_policy": "pad", "fill_values": (1.0, 2.0, 3.0)},
        arg_inputs={"crop_pos_y": Tensor("float32", (), low=0, high=1)},
    )

    def validate(self) -> None:
        super().validate()
        _args.check_crop_args(self.type, self.args)
        self.dtype = _dtype_arg(self.type, self.args)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        layout = s.layouts[0]
        anchor, shape = _window(x, layout, args)
        out = slice_nd(
            x,
            anchor,
            shape,
            out_of_bounds_policy=args["out_of_bounds_policy"],
            fill_values=args["fill_values"],
            channel_axis=_channel_axis(layout),
        )
        return out if self.dtype is None else saturate_cast(out, self.dtype)


@register
class CropMirrorNormalize(SampleOperator):
    """Crop, mirror horizontally, normalize and transpose in one step (DALI's ``fn.crop_mirror_normalize``):
    ``out = (in - mean) / std * scale + shift`` per channel, in ``dtype`` (default float32), laid out as
    ``output_layout`` (default ``"CHW"``; a permutation of the input's layout), optionally padded to a power
    of two channels. Padding outside the input (``out_of_bounds_policy='pad'``) takes ``fill_values`` as
    output values."""

    type = "crop_mirror_normalize"
    INPUTS = (IMAGES,)
    ARGS = (
        *_args.CROP_ARGS,
        *_args.OUT_OF_BOUNDS_ARGS,
        Arg("mean", sch.Seq(sch.Float(), min_length=1, broadcast=True), (0.0,), "Subtracted, per channel", tensor=True),
        Arg(
            "std",
            sch.Seq(sch.Float(), min_length=1, broadcast=True),
            (1.0,),
            "Divides, per channel (not 0)",
            tensor=True,
        ),
        Arg("mirror", _args.Flag(), 0, "Flip horizontally when not 0", tensor=True),
        Arg("scale", sch.Float(), 1.0, "Multiplies the normalized value"),
        Arg("shift", sch.Float(), 0.0, "Added last"),
        Arg("dtype", sch.DType(), np.dtype(np.float32), "Output type: types.FLOAT, FLOAT16, INT8 or UINT8"),
        Arg("output_layout", sch.Str(), "CHW", "Output layout, a permutation of the input's (e.g. 'CHW', 'HWC')"),
        Arg("pad_output", sch.Bool(), False, "Pad the channels with zeros to a power of two"),
        *DEPRECATED,
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (12, 14, 3), layout="HWC", ragged=(0, 1)),),
        args={
            "crop": (6, 7),
            "mean": (100.0, 110.0, 120.0),
            "std": (50.0, 60.0, 70.0),
            "out_of_bounds_policy": "pad",
            "fill_values": (0.5,),
        },
        arg_inputs={"mirror": Tensor("int32", (), low=0, high=1.99)},
    )
    _DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float16, np.int8, np.uint8))

    def validate(self) -> None:
        super().validate()
        _args.check_crop_args(self.type, self.args)
        a = self.args
        if a["output_dtype"] is not None:
            raise TypeError(f"fn.{self.type}(): output_dtype is DALI's deprecated name of dtype; use dtype")
        if a["dtype"] not in self._DTYPES:
            raise TypeError(
                f"fn.{self.type}(): dtype={a['dtype']} is not supported; use types.FLOAT, FLOAT16, INT8 or UINT8"
            )
        self.params = None  # (mean, multiplier, shift), computed once when mean and std are constants
        if not isinstance(a["mean"], DataNode) and not isinstance(a["std"], DataNode):
            self.params = normalize_params(a["mean"], a["std"], a["scale"], a["shift"])  # checked at definition
        layout = a["output_layout"]
        if len(set(layout)) != len(layout) or not set(layout) <= set("FCHW"):
            raise ValueError(
                f"fn.{self.type}(): output_layout={layout!r} must be a permutation of the input's "
                "layout, e.g. 'CHW' or 'HWC'"
            )

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return self.args["output_layout"]

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        layout = s.layouts[0]
        target = args["output_layout"]
        if sorted(target) != sorted(layout):
            raise ValueError(f"output_layout={target!r} is not a permutation of the input's layout {layout!r}")
        channels = x.shape[layout.index("C")]
        mean, mul, shift = self.params or normalize_params(args["mean"], args["std"], args["scale"], args["shift"])
        for name, values in (("mean", mean), ("std", mul)):
            if values.size not in (1, channels):
                raise ValueError(
                    f"{name} has {values.size} values for {channels} channels; give one or one per "
                    f"channel (sample {s.index})"
                )
        anchor, shape = _window(x, layout, args)
        fast = layout == "HWC" and target == "CHW" and not args["pad_output"]
        if fast and all(0 <= a and a + n <= d for a, n, d in zip(anchor, shape, x.shape)):
            return self._hwc_to_chw(x, anchor, shape, args["mirror"], mean, mul, shift)
        frames = _args.to_frames(x, layout)  # (F, H, W, C)
        (y0, x0), (h, w) = _args.crop_window_of(frames.shape[1:3], args)
        f_anchor, f_shape = [0, y0, x0, 0], [frames.shape[0], h, w, channels]
        window = slice_nd(frames, f_anchor, f_shape, out_of_bounds_policy=args["out_of_bounds_policy"])
        if args["mirror"]:
            window = window[:, :, ::-1]
        values = ((window.astype(_F) - np.resize(mean, channels)) * np.resize(mul, channels) + shift).astype(_F)
        if args["out_of_bounds_policy"] == "pad":
            fill = np.asarray(args["fill_values"], _F)
            if fill.size not in (1, channels):
                raise ValueError(f"fill_values has {fill.size} values for {channels} channels (sample {s.index})")
            inside = np.zeros((h, w), bool)
            inside[
                max(0, -y0) : max(0, min(h, frames.shape[1] - y0)), max(0, -x0) : max(0, min(w, frames.shape[2] - x0))
            ] = True
            if args["mirror"]:
                inside = inside[:, ::-1]
            values = np.where(inside[None, :, :, None], values, np.resize(fill, channels))
        if args["pad_output"]:
            padded = 1 << max(0, (channels - 1).bit_length())
            values = np.concatenate([values, np.zeros((*values.shape[:3], padded - channels), _F)], axis=3)
        out = self._cast(values, args["dtype"])
        current = "FHWC" if len(layout) == 4 else "HWC"
        out = out if len(layout) == 4 else out[0]
        return np.ascontiguousarray(out.transpose([current.index(c) for c in target]))

    def _hwc_to_chw(
        self,
        x: np.ndarray,
        anchor: list[int],
        shape: list[int],
        mirror: int,
        mean: np.ndarray,
        mul: np.ndarray,
        shift: np.float32,
    ) -> np.ndarray:
        """The common case (an HWC image inside the input, CHW out), channel by channel into the output."""
        window = x[anchor[0] : anchor[0] + shape[0], anchor[1] : anchor[1] + shape[1]]
        if mirror:
            window = window[:, ::-1]
        channels = x.shape[2]
        dtype = self.args["dtype"]
        out = np.empty((channels, shape[0], shape[1]), _F)
        for c in range(channels):
            plane = out[c]
            np.subtract(window[:, :, c], mean[c % mean.size], out=plane, dtype=_F)
            plane *= mul[c % mul.size]
            if shift:
                plane += shift
        return out if dtype == np.float32 else self._cast(out, dtype)

    @staticmethod
    def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
        if dtype.kind == "f":
            return values.astype(dtype)
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)


@register
class Slice(SampleOperator):
    """Cut a window of any axes (DALI's ``fn.slice``): named arguments ``start``/``rel_start`` and
    ``end``/``rel_end``/``shape``/``rel_shape`` (per sample too), or the positional ``anchor`` and ``shape``
    inputs, over ``axis_names`` (default ``"WH"``) or ``axes``."""

    type = "slice"
    INPUTS = (
        sch.Input("data", "Any tensor", sch.NUMBERS),
        sch.Input(
            "anchor", "Window start per axis (floats: fractions of the extent)", sch.NUMBERS, (0, 1), optional=True
        ),
        sch.Input(
            "shape", "Window extent per axis (floats: fractions of the extent)", sch.NUMBERS, (0, 1), optional=True
        ),
    )
    ARGS = (
        *_slice.WINDOW_ARGS,
        *_args.OUT_OF_BOUNDS_ARGS,
        Arg("dtype", sch.DType(), None, "Output type: types.FLOAT, FLOAT16 or UINT8 (default: the input's)"),
        *DEPRECATED,
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (12, 14, 3), layout="HWC", ragged=(0, 1)),),
        args={"rel_start": (0.25, 0.1), "out_of_bounds_policy": "pad"},
        arg_inputs={"shape": Tensor("int32", (2,), low=1, high=16)},
    )

    def validate(self) -> None:
        super().validate()
        if len(self.inputs) == 2:
            raise TypeError(f"fn.{self.type}(): give both the anchor and the shape inputs, or neither")
        _slice.check_window_args(self.type, self.args, len(self.inputs) == 3)
        self.dtype = _dtype_arg(self.type, self.args)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        x = inputs[0]
        layout = s.layouts[0]
        anchor, extent = (inputs[1], inputs[2]) if len(inputs) == 3 else (None, None)
        lo, size = _slice.slice_window(x.shape, layout, args, anchor, extent, f" (sample {s.index})")
        out = slice_nd(
            x,
            lo,
            size,
            out_of_bounds_policy=args["out_of_bounds_policy"],
            fill_values=args["fill_values"],
            channel_axis=_channel_axis(layout),
        )
        return out if self.dtype is None else saturate_cast(out, self.dtype)

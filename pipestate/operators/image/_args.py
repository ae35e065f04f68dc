"""What the image operators share: DALI's enum arguments, layouts, the crop and resize argument groups.

- :class:`Enum`: an argument taking a member of ``types.DALIImageType`` / ``types.DALIInterpType`` (or its
  integer value, as DALI accepts), also per sample.
- :func:`to_frames` / :func:`from_frames`: any accepted image layout (``HWC``, ``HW``, ``CHW``, ``FHWC``,
  ``FCHW``, ``CFHW``) as a stack of HWC frames and back, so kernels work on HWC only.
- ``CROP_ARGS`` and :func:`crop_window_of`: DALI's ``crop``/``crop_h``/``crop_w``/``crop_pos_*`` rules.
- ``RESIZE_ARGS`` and :func:`resize_params_of`: DALI's ``fn.resize`` size arguments.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.graph import DataNode
from pipestate.operators import schema as sch
from pipestate.operators.image._kernels.resize_params import ResizeParams, resize_params
from pipestate.operators.schema import Arg
from pipestate.types import DALIImageType, DALIInterpType

# ---- enum arguments ------------------------------------------------------------------------------------


class Enum(sch.Kind):
    """A member of an ``IntEnum`` (``types.INTERP_LINEAR``) or its integer value; returned as the member.

    Args:
        enum_cls: The enum.
        allowed: The members accepted (default: all).
    """

    def __init__(self, enum_cls: type[enum.IntEnum], allowed: Sequence[enum.IntEnum] | None = None) -> None:
        self.enum_cls = enum_cls
        self.allowed = tuple(allowed) if allowed is not None else tuple(enum_cls)
        self.text = "one of " + ", ".join(f"types.{m.name}" for m in self.allowed)

    def check(self, value: Any, where: str) -> enum.IntEnum:
        v = value.item() if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0 else value
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{where}={value!r} must be {self.text}")
        if int(v) not in [int(m) for m in self.allowed]:
            raise ValueError(f"{where}={value!r} must be {self.text}")
        return self.enum_cls(int(v))

    def check_samples(self, samples: Any, where: str) -> None:
        for i, sample in enumerate(samples):
            sample = np.asarray(sample)
            if sample.dtype.kind not in "iu" or sample.shape not in ((), (1,)):
                raise TypeError(
                    f"{where} (sample {i}) has type {sample.dtype} and shape {sample.shape}; "
                    f"it must be a scalar integer, {self.text}"
                )
            self.check(int(sample.reshape(())), f"{where} (sample {i})")

    def sample_value(self, sample: np.ndarray) -> enum.IntEnum:
        return self.enum_cls(int(sample.reshape(())))


class Matrix(sch.Kind):
    """A ``rows`` x ``cols`` matrix: ``rows * cols`` values row-major, or nested lists / a 2-D array (e.g. the
    output of ``fn.transforms.*``); returned as a float32 array of that shape."""

    def __init__(self, rows: int, cols: int) -> None:
        self.rows, self.cols = rows, cols
        self.text = f"a {rows}x{cols} matrix ({rows * cols} numbers, row-major)"
        self.sample_shapes = ((rows * cols,), (rows, cols))

    def check(self, value: Any, where: str) -> np.ndarray:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{where}={value!r} must be {self.text}") from None
        if array.size != self.rows * self.cols or array.ndim not in (1, 2) or array.dtype.kind != "f":
            raise (ValueError if array.dtype.kind == "f" else TypeError)(f"{where}={value!r} must be {self.text}")
        if not np.isfinite(array).all():
            raise ValueError(f"{where}={value!r} must be finite")
        out = array.astype(np.float32).reshape(self.rows, self.cols)
        out.flags.writeable = False
        return out

    def check_samples(self, samples: Any, where: str) -> None:
        for i, sample in enumerate(samples):
            sample = np.asarray(sample)
            if sample.dtype.kind not in "iuf" or sample.shape not in self.sample_shapes:
                raise TypeError(
                    f"{where} (sample {i}) has type {sample.dtype} and shape {sample.shape}; it must be {self.text}"
                )
            if not np.isfinite(sample).all():
                raise ValueError(f"{where} (sample {i}) = {sample.tolist()!r}; it must be finite")

    def sample_value(self, sample: np.ndarray) -> np.ndarray:
        return np.asarray(sample, np.float32).reshape(self.rows, self.cols)


class Flag(sch.Int):
    """An integer flag (``mirror``, ``horizontal``, ``mask``...); ``True``/``False`` stand for 1/0, as DALI
    accepts them, also per sample (e.g. from ``fn.random.coin_flip``)."""

    def check(self, value: Any, where: str) -> int:
        v = value.item() if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0 else value
        return super().check(int(v) if isinstance(v, (bool, np.bool_)) else v, where)

    def check_samples(self, samples: Any, where: str) -> None:
        sch._scalar_check(self, samples, where, "biu", finite=False)


IMAGE_TYPE_NAMES = {t: t.name for t in DALIImageType}
FILTER_OF = {
    DALIInterpType.INTERP_NN: "nn",
    DALIInterpType.INTERP_LINEAR: "linear",
    DALIInterpType.INTERP_CUBIC: "cubic",
    DALIInterpType.INTERP_LANCZOS3: "lanczos3",
    DALIInterpType.INTERP_TRIANGULAR: "triangular",
    DALIInterpType.INTERP_GAUSSIAN: "gaussian",
}
WARP_INTERP = Enum(DALIInterpType, (DALIInterpType.INTERP_NN, DALIInterpType.INTERP_LINEAR))

# ---- layouts -------------------------------------------------------------------------------------------

# The image layouts the geometry operators accept (DALI's, without the volumetric D layouts), and for each
# the permutation that makes it (frames, H, W, C).
_TO_FHWC = {
    "HWC": None,
    "HW": None,
    "CHW": (1, 2, 0),
    "FHWC": (0, 1, 2, 3),
    "FCHW": (0, 2, 3, 1),
    "CFHW": (1, 2, 3, 0),
}
IMAGE_LAYOUTS = ("HWC", "CHW", "FHWC", "FCHW", "CFHW")


def to_frames(sample: np.ndarray, layout: str) -> np.ndarray:
    """View one sample of ``layout`` as ``(frames, H, W, C)`` (no copy)."""
    if layout == "HWC":
        return sample[None]
    if layout == "HW":
        return sample[None, :, :, None]
    if layout == "CHW":
        return sample.transpose(1, 2, 0)[None]
    return sample.transpose(_TO_FHWC[layout])


def from_frames(frames: np.ndarray | Sequence[np.ndarray], layout: str) -> np.ndarray:
    """Stack HWC frames (``(frames, H, W, C)`` or a list of ``(H, W, C)``) back into ``layout`` (C-contiguous)."""
    if not isinstance(frames, np.ndarray):
        frames = np.stack(frames) if len(frames) != 1 else frames[0][None]
    if layout == "HWC":
        return np.ascontiguousarray(frames[0])
    if layout == "HW":
        return np.ascontiguousarray(frames[0, :, :, 0])
    if layout == "CHW":
        return np.ascontiguousarray(frames[0].transpose(2, 0, 1))
    inverse = np.argsort(_TO_FHWC[layout])
    return np.ascontiguousarray(frames.transpose(inverse))


MAX_OUTPUT_ELEMENTS = 2**28  # values per output sample (256 MiB of uint8): a larger image is a mistake


def check_output_size(size: Sequence[int], per_pixel: int = 1) -> None:
    """Refuse an output of more than ``MAX_OUTPUT_ELEMENTS`` values (``size`` spatial, ``per_pixel`` each).

    Raises:
        ValueError: naming the size.
    """
    if math.prod(int(v) for v in size) * max(1, per_pixel) > MAX_OUTPUT_ELEMENTS:
        raise ValueError(
            f"the output size {list(size)} is too large (over 2**28 values per sample); check the size arguments"
        )


def spatial_size(sample: np.ndarray, layout: str) -> tuple[int, int]:
    """``(H, W)`` of a sample of ``layout``."""
    return sample.shape[layout.index("H")], sample.shape[layout.index("W")]


# ---- crop arguments --------------------------------------------------------------------------------------

CROP_ARGS = (
    Arg(
        "crop",
        sch.Seq(sch.Float(0.0), min_length=2),
        None,
        "Crop window (crop_H, crop_W); fractions are truncated; 0 keeps that extent",
        tensor=True,
    ),
    Arg("crop_h", sch.Float(0.0), None, "Crop window height (with crop_w; instead of crop)", tensor=True),
    Arg("crop_w", sch.Float(0.0), None, "Crop window width (with crop_h; instead of crop)", tensor=True),
    Arg(
        "crop_d", sch.Float(0.0), None, "Crop depth of volumes (pipestate supports no volumes: must be 0)", tensor=True
    ),
    Arg(
        "crop_pos_x", sch.Float(0.0, 1.0), 0.5, "Horizontal window position: x = crop_pos_x * (W - crop_W)", tensor=True
    ),
    Arg("crop_pos_y", sch.Float(0.0, 1.0), 0.5, "Vertical window position: y = crop_pos_y * (H - crop_H)", tensor=True),
    Arg("crop_pos_z", sch.Float(0.0, 1.0), 0.5, "Depth position of volumes (no effect on images)", tensor=True),
    Arg("rounding", sch.Str(("round", "truncate")), "round", "How the window's start is made integral"),
)
OUT_OF_BOUNDS_ARGS = (
    Arg(
        "out_of_bounds_policy",
        sch.Str(("error", "pad", "trim_to_shape")),
        "error",
        "A window outside the input: an error, padded with fill_values, or trimmed to the input",
    ),
    Arg(
        "fill_values",
        sch.Seq(sch.Float(), min_length=1, broadcast=True),
        (0.0,),
        "Padding value, or one per channel (out_of_bounds_policy='pad')",
    ),
)


def check_crop_args(op_type: str, args: Mapping[str, Any]) -> None:
    """DALI's rules between the crop arguments (definition time).

    Raises:
        ValueError: ``crop`` with ``crop_h``/``crop_w``, only one of ``crop_h``/``crop_w``, a ``crop`` of other
            than 2 values, or a depth crop (volumes are not supported).
    """
    given = {k: args[k] is not None for k in ("crop", "crop_h", "crop_w", "crop_d")}
    if given["crop_h"] != given["crop_w"]:
        raise ValueError(f"fn.{op_type}(): crop_h and crop_w must be given together")
    if given["crop"] and (given["crop_h"] or given["crop_w"] or given["crop_d"]):
        raise ValueError(f"fn.{op_type}(): crop is not compatible with crop_h, crop_w and crop_d; give one of them")
    crop = args["crop"]
    if crop is not None and not isinstance(crop, DataNode) and len(crop) != 2:
        raise ValueError(
            f"fn.{op_type}(): crop={list(crop)!r} must be (crop_H, crop_W): pipestate crops images, not volumes"
        )
    depth = args["crop_d"]
    if depth is not None and (isinstance(depth, DataNode) or depth > 0):
        raise ValueError(f"fn.{op_type}(): crop_d crops volumes, which pipestate does not support; leave it out")


def crop_size_of(args: Mapping[str, Any]) -> tuple[float, float] | None:
    """The requested ``(crop_H, crop_W)`` of one sample, or ``None`` when no crop is given.

    Raises:
        ValueError: a per-sample ``crop`` of other than 2 values.
    """
    crop = args["crop"]
    if crop is not None:
        if len(crop) != 2:
            raise ValueError(f"crop={list(crop)!r} must have 2 values (crop_H, crop_W)")
        return float(crop[0]), float(crop[1])
    if args["crop_h"] is not None:
        return float(args["crop_h"]), float(args["crop_w"])
    return None


def crop_window_of(
    in_hw: tuple[int, int], args: Mapping[str, Any], double: bool = False
) -> tuple[tuple[int, int], tuple[int, int]]:
    """DALI's ``CropAttr``: the ``(anchor, shape)`` in (H, W) of one sample's crop window.

    Sizes are truncated; a size of 0 (or none given) keeps the input's extent; the anchor is
    ``crop_pos * (in - crop)`` (in float32, or in double with ``double=True`` as ``resize_crop_mirror``
    computes it) rounded half away from zero (``rounding='round'``) or truncated.

    Raises:
        ValueError: a crop position outside [0, 1].
    """
    size = crop_size_of(args)
    anchor, shape = [], []
    for d, pos_name in enumerate(("crop_pos_y", "crop_pos_x")):
        n = in_hw[d]
        c = int(np.float32(size[d])) if size is not None else 0
        pos = np.float32(args[pos_name]) if c > 0 else np.float32(0.5)
        if c <= 0:
            c = n
        offset = float(pos) * (n - c) if double else float(np.float32(pos * np.float32(n - c)))
        if args.get("rounding", "round") == "truncate":
            start = math.trunc(offset)
        else:
            start = int(math.copysign(math.floor(abs(offset) + 0.5), offset))
        anchor.append(start)
        shape.append(c)
    return (anchor[0], anchor[1]), (shape[0], shape[1])


# ---- resize arguments ------------------------------------------------------------------------------------

INTERP = Enum(DALIInterpType)
FILTER_ARGS = (
    Arg(
        "interp_type",
        INTERP,
        DALIInterpType.INTERP_LINEAR,
        "Interpolation (types.INTERP_*); min_filter/mag_filter override it",
        tensor=True,
    ),
    Arg("min_filter", INTERP, None, "Filter when scaling down (default: interp_type)", tensor=True),
    Arg("mag_filter", INTERP, None, "Filter when scaling up (default: interp_type)", tensor=True),
    Arg("antialias", sch.Bool(), True, "Widen the filter when scaling down (not for INTERP_NN)"),
    Arg("dtype", sch.DType(), None, "Output type: the input's (default) or types.FLOAT"),
    Arg("minibatch_size", sch.Int(1), 32, "Accepted for DALI compatibility (no effect on the CPU)"),
    Arg("temp_buffer_hint", sch.Int(0), 0, "Accepted for DALI compatibility (ignored on the CPU, as in DALI)"),
)
SIZE_ARGS = (
    Arg("resize_x", sch.Float(), None, "Output width; 0 or absent keeps the aspect ratio; negative flips", tensor=True),
    Arg(
        "resize_y", sch.Float(), None, "Output height; 0 or absent keeps the aspect ratio; negative flips", tensor=True
    ),
    Arg("resize_z", sch.Float(), None, "Output depth of volumes (pipestate supports no volumes)", tensor=True),
    Arg(
        "size",
        sch.Seq(sch.Float(), min_length=1, broadcast=True),
        None,
        "Output size (H, W); 0 derives an extent from the others",
        tensor=True,
    ),
    Arg("resize_shorter", sch.Float(), None, "Length of the shorter side (keeps the aspect ratio)", tensor=True),
    Arg("resize_longer", sch.Float(), None, "Length of the longer side (keeps the aspect ratio)", tensor=True),
    Arg(
        "mode",
        sch.Str(("default", "stretch", "not_larger", "not_smaller")),
        "default",
        "How missing or conflicting extents are chosen",
    ),
    Arg(
        "max_size",
        sch.Seq(sch.Float(0.0), min_length=1, broadcast=True),
        None,
        "Upper limit of the output size (H, W), or one value for both",
    ),
    Arg(
        "roi_start",
        sch.Seq(sch.Float(), min_length=1, broadcast=True),
        None,
        "Input region start (H, W), in pixels or relative",
        tensor=True,
    ),
    Arg(
        "roi_end",
        sch.Seq(sch.Float(), min_length=1, broadcast=True),
        None,
        "Input region end (H, W); a start beyond the end flips",
        tensor=True,
    ),
    Arg("roi_relative", sch.Bool(), False, "roi_start/roi_end are fractions of the input size"),
    Arg("subpixel_scale", sch.Bool(), True, "Keep fractional scales by adjusting the source window"),
)
RESIZE_ARGS = SIZE_ARGS + FILTER_ARGS


def check_size_args(op_type: str, args: Mapping[str, Any], required: bool = True) -> None:
    """DALI's rules between the size arguments (definition time).

    Raises:
        ValueError: no way (or several ways) of giving the size, ``mode`` with ``resize_shorter``/``resize_longer``,
            a volumetric ``resize_z``, only one of ``roi_start``/``roi_end``.
    """
    given = lambda k: args[k] is not None  # noqa: E731
    ways = (given("resize_x") or given("resize_y")) + given("size") + given("resize_shorter") + given("resize_longer")
    if ways > 1 or (required and ways == 0):
        raise ValueError(
            f"fn.{op_type}(): give the output size in exactly one way: resize_x/resize_y, size, "
            "resize_shorter or resize_longer"
        )
    if (given("resize_shorter") or given("resize_longer")) and args["mode"] != "default":
        raise ValueError(f"fn.{op_type}(): mode is not compatible with resize_shorter/resize_longer; drop mode")
    if given("resize_z"):
        raise ValueError(f"fn.{op_type}(): resize_z resizes volumes, which pipestate does not support")
    if given("roi_start") != given("roi_end"):
        raise ValueError(f"fn.{op_type}(): roi_start and roi_end must be given together")


def resize_params_of(in_hw: tuple[int, int], args: Mapping[str, Any]) -> ResizeParams:
    """The output size and source window of one sample from its (resolved) size arguments."""
    return resize_params(
        in_hw,
        resize_x=args["resize_x"],
        resize_y=args["resize_y"],
        size=args["size"],
        resize_shorter=args["resize_shorter"],
        resize_longer=args["resize_longer"],
        mode=None if args["resize_shorter"] is not None or args["resize_longer"] is not None else args["mode"],
        max_size=args["max_size"],
        roi_start=args["roi_start"],
        roi_end=args["roi_end"],
        roi_relative=args["roi_relative"],
        subpixel_scale=args["subpixel_scale"],
    )


def filters_of(args: Mapping[str, Any]) -> tuple[str, str]:
    """``(min_filter, mag_filter)`` kernel names from ``interp_type``/``min_filter``/``mag_filter``."""
    interp = args["interp_type"]
    low = args["min_filter"] if args["min_filter"] is not None else interp
    high = args["mag_filter"] if args["mag_filter"] is not None else interp
    return FILTER_OF[low], FILTER_OF[high]


def output_dtype(op_type: str, args: Mapping[str, Any], input_dtype: np.dtype) -> np.dtype:
    """The resampling output type: ``dtype`` when given (the input's type or float32), else the input's.

    Raises:
        TypeError: another ``dtype``.
    """
    dtype = args["dtype"]
    if dtype is None or dtype == input_dtype:
        return input_dtype
    if dtype != np.float32:
        raise TypeError(f"fn.{op_type}(): dtype={dtype} must be the input's type ({input_dtype}) or types.FLOAT")
    return dtype

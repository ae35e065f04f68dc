"""Convolution operators: ``fn.gaussian_blur``, ``fn.laplacian`` and ``fn.filter`` (with its legacy alias
``fn.experimental.filter``).

The data axes are the layout's letters other than ``C`` (channels, first or last) and ``F`` (frames, first);
without a layout every axis is a data axis (1 to 3 of them), as in DALI. ``gaussian_blur`` and ``laplacian``
reproduce DALI's windows and ``float32`` separable arithmetic exactly; ``filter`` calls OpenCV's ``filter2D``
as DALI's CPU operator does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import Example, Sample, SampleOperator, Tensor, register, saturate_cast
from pipestate.operators import schema as sch
from pipestate.operators.image._kernels import convolution as conv
from pipestate.operators.schema import Arg

_NUMERIC = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16", "float32")


def data_axes(layout: str, ndim: int, op_type: str, allowed: tuple[int, ...] = (1, 2, 3)) -> tuple[int, ...]:
    """The data (spatial) axes of a sample: all but ``C`` (first or last) and ``F`` (first).

    Raises:
        ValueError: channels or frames in an unsupported place, or a number of data axes not in ``allowed``.
    """
    if not layout:
        axes = tuple(range(ndim))
    else:
        if "F" in layout and layout.index("F") != 0:
            raise ValueError(f"fn.{op_type}(): layout {layout!r}: frames (F) must be the first axis")
        if "C" in layout and layout.index("C") not in (0 + ("F" in layout), len(layout) - 1):
            raise ValueError(f"fn.{op_type}(): layout {layout!r}: channels (C) must be the first or last data axis")
        axes = tuple(i for i, c in enumerate(layout) if c not in "CF")
    if len(axes) not in allowed:
        hint = " (mark the channels in the layout, e.g. HWC)" if not layout and ndim == max(allowed) + 1 else ""
        raise ValueError(
            f"fn.{op_type}() works on samples with {' or '.join(map(str, allowed))} data axes; this one has "
            f"{len(axes)} (layout {layout!r}, {ndim} dimensions){hint}"
        )
    return axes


def _per_axis(values: tuple, count: int, name: str, index: int) -> tuple:
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise ValueError(f"{name} (sample {index}) = {list(values)} must have one value or one per data axis ({count})")
    return tuple(values)


def _out_dtype(op: SampleOperator, image: np.ndarray, dtype: np.dtype | None) -> np.dtype:
    if dtype is None or dtype == image.dtype:
        return image.dtype
    if dtype != np.float32:
        raise TypeError(f"fn.{op.type}(): dtype={dtype.name} must be float32 or the input's type ({image.dtype})")
    return dtype


_DTYPE = Arg("dtype", sch.DType(), None, "Output type: float32 or the input's (default)")


@register
class GaussianBlur(SampleOperator):
    """Gaussian blur: separable correlation with DALI's normalized Gaussian window per data axis. Give ``sigma``,
    ``window_size`` or both (one value, or one per data axis, outermost first); ``window_size`` alone sets
    ``sigma = (radius - 1) * 0.3 + 0.8``, ``sigma`` alone ``window_size = 2 * ceil(3 * sigma) + 1``."""

    type = "gaussian_blur"
    INPUTS = (sch.Input("input", "Images, volumes or sequences of them", dtypes=(*_NUMERIC, "float64")),)
    ARGS = (
        Arg("sigma", sch.Seq(sch.Float(0.0), min_length=1, broadcast=True), (0.0,), "Sigma per data axis", tensor=True),
        Arg(
            "window_size",
            sch.Seq(sch.Int(0), min_length=1, broadcast=True),
            (0,),
            "Window diameter per data axis (odd)",
            tensor=True,
        ),
        _DTYPE,
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (7, 6, 3), layout="HWC", ragged=(0, 1)),),
        args={"window_size": [5, 3]},
        arg_inputs={"sigma": Tensor("float32", (), low=0.3, high=2.0)},
        dali="exact",
    )

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (image,) = inputs
        out_dtype = _out_dtype(self, image, args["dtype"])
        axes = data_axes(s.layouts[0], image.ndim, self.type)
        sigmas = _per_axis(args["sigma"], len(axes), "sigma", s.index)
        sizes = _per_axis(args["window_size"], len(axes), "window_size", s.index)
        windows = []
        for k, (sigma, size) in enumerate(zip(sigmas, sizes)):
            if sigma == 0 and size == 0:
                raise ValueError(f"sigma and window_size (sample {s.index}) are both 0 for data axis {k}; give one")
            if size > conv.MAX_GAUSSIAN_WINDOW or sigma > conv.MAX_GAUSSIAN_SIGMA:
                raise ValueError(
                    f"window_size={size}, sigma={sigma} (sample {s.index}, data axis {k}): pipestate supports "
                    f"windows of up to {conv.MAX_GAUSSIAN_WINDOW} taps (sigma up to {conv.MAX_GAUSSIAN_SIGMA})"
                )
            if size == 0:
                size = conv.gaussian_window_size(sigma)
            elif size % 2 == 0:
                raise ValueError(f"window_size (sample {s.index}) = {size} (data axis {k}) must be odd")
            if sigma == 0:
                sigma = conv.gaussian_sigma(size)
            windows.append(conv.gaussian_window(sigma, size))
        return saturate_cast(conv.separable(image, windows, axes), out_dtype)


@register
class Laplacian(SampleOperator):
    """The Laplacian: the sum over data axes of second derivatives, each a separable correlation with a
    derivative window along its axis and smoothing windows along the others (OpenCV's windows), scaled by
    ``scale`` (or by ``2 ** -(sum of window sizes - axes - 2)`` with ``normalized_kernel=True``)."""

    type = "laplacian"
    INPUTS = (sch.Input("input", "Images, volumes or sequences of them", dtypes=_NUMERIC),)
    _SIZE = sch.Seq(sch.Int(1, conv.MAX_LAPLACIAN_WINDOW), min_length=1, broadcast=True)
    ARGS = (
        Arg("window_size", _SIZE, (3,), "Derivative window size per data axis (odd, 3 to 31)", tensor=True),
        Arg("smoothing_size", _SIZE, None, "Smoothing window size per data axis (odd, 1 to 31)", tensor=True),
        Arg(
            "scale",
            sch.Seq(sch.Float(), min_length=1, broadcast=True),
            None,
            "Factor of each partial derivative",
            tensor=True,
        ),
        Arg("normalized_kernel", sch.Bool(), False, "Scale each partial derivative by 2^-(sizes - axes - 2)"),
        _DTYPE,
    )
    EXAMPLE = Example(
        inputs=(Tensor("int16", (6, 7, 2), layout="HWC", ragged=(0, 1), low=-100, high=100),),
        args={"smoothing_size": 1, "dtype": np.dtype(np.float32)},
        arg_inputs={"window_size": Tensor("int32", (2,), values=lambda i: [3 + 2 * (i % 3), 5])},
        dali="exact",
    )

    def validate(self) -> None:
        super().validate()
        if self.args["normalized_kernel"] and self.args["scale"] is not None:
            raise TypeError("fn.laplacian(): scale= cannot be given with normalized_kernel=True")

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (image,) = inputs
        out_dtype = _out_dtype(self, image, args["dtype"])
        axes = data_axes(s.layouts[0], image.ndim, self.type)
        n = len(axes)
        deriv = _per_axis(args["window_size"], n, "window_size", s.index)
        smooth = (
            deriv if args["smoothing_size"] is None else _per_axis(args["smoothing_size"], n, "smoothing_size", s.index)
        )
        for name, sizes, low in (("window_size", deriv, 3), ("smoothing_size", smooth, 1)):
            for size in sizes:
                if size % 2 == 0 or size < low:
                    raise ValueError(
                        f"{name} (sample {s.index}) = {size} must be odd and between {low} and "
                        f"{conv.MAX_LAPLACIAN_WINDOW}"
                    )
        scales = (1.0,) * n if args["scale"] is None else _per_axis(args["scale"], n, "scale", s.index)
        result = None
        for i in range(n):
            sizes = [deriv[i] if j == i else smooth[j] for j in range(n)]
            windows = [conv.derivative_window(z) if j == i else conv.smoothing_window(z) for j, z in enumerate(sizes)]
            factor = conv.laplacian_normalization(sizes, n) if args["normalized_kernel"] else scales[i]
            partial = conv.separable(image, windows, axes)
            partial *= np.float32(factor)
            if result is None:
                result = partial
            else:
                result += partial
        return saturate_cast(result, out_dtype)


_FILTER_TYPES = ("uint8", "uint16", "int16", "float32")


@register
class Filter(SampleOperator):
    """Correlates 2-D images (``HW``, ``HWC``, ``CHW`` and sequences ``F...``) with a per-sample 2-D filter, as
    DALI's CPU operator (OpenCV ``filter2D``); the optional third input gives the ``border="constant"`` fill
    value per sample."""

    type = "filter"
    INPUTS = (
        sch.Input("data", "Images or sequences of them", dtypes=_FILTER_TYPES, ndim=(2, 3, 4)),
        sch.Input("filter", "A 2-D float32 filter per sample", dtypes=("float32", "float64"), ndim=(2,)),
        sch.Input("fill_value", "A scalar of the input's type per sample", ndim=(0, 1), optional=True),
    )
    ARGS = (
        Arg(
            "anchor",
            sch.Seq(sch.Int(-1), length=2, broadcast=True),
            (-1, -1),
            "The filter's position over the input: (y, x) within the filter, -1 for its middle",
            tensor=True,
        ),
        Arg("border", sch.Str(conv.BORDERS), "reflect_101", "How out-of-bound positions are filled"),
        Arg("mode", sch.Str(("same", "valid")), "same", "same: keep the size; valid: only full filter positions"),
        _DTYPE,
    )
    EXAMPLE = Example(
        inputs=(
            Tensor("uint8", (7, 8, 3), layout="HWC", ragged=(0, 1)),
            Tensor("float32", (3, 3), values=lambda i: np.arange(9).reshape(3, 3) / (20.0 + i)),
        ),
        args={"border": "clamp"},
        arg_inputs={"anchor": Tensor("int32", (2,), values=lambda i: [i % 3, -1])},
        dali="exact",
    )

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return layouts[0] if len(layouts[0]) == ndim else ""

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        image, kernel = inputs[0], inputs[1].astype(np.float32)
        out_dtype = _out_dtype(self, image, args["dtype"])
        layout = s.layouts[0]
        axes = data_axes(layout, image.ndim, self.type, allowed=(2,))
        fill = 0.0
        if len(inputs) > 2:
            if inputs[2].size != 1:
                raise ValueError(f"fill_value must be one scalar per sample; got shape {inputs[2].shape}")
            fill = float(inputs[2].reshape(()))
        anchor = args["anchor"]
        for a, extent in zip(anchor, kernel.shape):
            if not -1 <= a < extent:
                raise ValueError(
                    f"anchor (sample {s.index}) = {list(anchor)} must lie within the filter of shape {kernel.shape}"
                )
        valid = args["mode"] == "valid"
        if valid and (image.shape[axes[0]] < kernel.shape[0] or image.shape[axes[1]] < kernel.shape[1]):
            raise ValueError(f"mode='valid' needs a sample at least as large as the filter {kernel.shape}")
        channels_last = image.ndim == axes[-1] + 2
        lead = image.shape[: axes[0]]
        planes = image.reshape((-1, *image.shape[axes[0] :]))
        outs = []
        for plane in planes:
            result = conv.filter2d(plane, kernel, anchor, args["border"], fill, valid, out_dtype)
            if channels_last and result.ndim == 2:
                result = result[..., None]
            outs.append(result)
        out = np.stack(outs).reshape((*lead, *outs[0].shape))
        return out.astype(out_dtype, copy=False)

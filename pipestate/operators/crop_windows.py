"""Random crop windows and batch permutations: ``fn.random_crop_generator``, ``fn.roi_random_crop`` and
``fn.batch_permutation``.

Every draw comes from the sample's own generator (``Sample.rng``) or, for the batch-wide permutation, from
the operator's stream at the batch's first sample (``ctx.stream(self.rng_key)``): restores, threads and
prefetching never change the output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import Operator, RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg
from pipestate.rng import Stream

F32 = np.float32
# Candidates drawn per window at most (DALI draws up to num_attempts one by one; beyond this many, a window
# that fits is vanishingly unlikely and the fallback window is used, as DALI's after its attempts)
MAX_CROP_ATTEMPTS = 1024


def random_crop_windows(
    shapes: np.ndarray, u: np.ndarray, area: Sequence[float], aspect: Sequence[float], attempts: int
) -> tuple[np.ndarray, np.ndarray]:
    """DALI's ``RandomCropGenerator`` for a batch of image shapes, given the uniform draws.

    A window of random area fraction (``area``) and aspect ratio (width / height, log-uniform in
    ``aspect``), randomly placed; the first of ``attempts`` candidates that fits is used; when none fits,
    the largest window of an allowed aspect ratio, scaled down to the largest area. float32 arithmetic as
    DALI's.

    Args:
        shapes: (n, 2) int64 (height, width) per sample.
        u: (n, 2 * attempts + 2) float64 uniform draws in [0, 1) per sample.

    Returns:
        (anchors (n, 2) ``[y, x]``, shapes (n, 2) ``[h, w]``), int64; zeros for an empty image.
    """
    height, width = shapes[:, 0], shapes[:, 1]
    empty = (height <= 0) | (width <= 0)
    hf, wf = height.astype(F32), width.astype(F32)
    min_ratio, max_ratio = F32(aspect[0]), F32(aspect[1])
    min_area = wf * hf * F32(area[0])
    max_w = np.maximum(1, (hf * max_ratio).astype(np.int64))
    max_h = np.maximum(1, (wf * (F32(1) / min_ratio)).astype(np.int64))
    too_wide = height * max_w < min_area
    too_tall = ~too_wide & (width * max_h < min_area)
    # the candidates, (n, attempts)
    scale = (area[0] + u[:, :attempts] * (area[1] - area[0])).astype(F32)
    target = scale * (height * width).astype(F32)[:, None]
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    ratio = np.exp((log_lo + u[:, attempts : 2 * attempts] * (log_hi - log_lo)).astype(F32))
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.maximum(1, _roundf(np.sqrt(target * ratio)))
        h = np.maximum(1, _roundf(np.sqrt(target / ratio)))
        wh = w.astype(F32) / h.astype(F32)
    fits = (w <= width[:, None]) & (h <= height[:, None]) & (wh >= min_ratio) & (wh <= max_ratio)
    first = np.argmax(fits, axis=1)
    found = fits.any(axis=1)
    rows = np.arange(len(shapes))
    out_h, out_w = h[rows, first], w[rows, first]
    # no candidate fits: the largest window of an allowed ratio, scaled down to the largest area
    image_ratio = wf / np.maximum(hf, F32(1))
    fb_h = np.where(image_ratio > max_ratio, height, np.where(image_ratio < min_ratio, max_h, height))
    fb_w = np.where(image_ratio > max_ratio, max_w, np.where(image_ratio < min_ratio, width, width))
    max_area = F32(area[1]) * wf * hf
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(np.minimum(F32(1), max_area / (fb_h * fb_w).astype(F32)))
    fb_h = np.maximum(1, (fb_h.astype(F32) * root).astype(np.int64))
    fb_w = np.maximum(1, (fb_w.astype(F32) * root).astype(np.int64))
    out_h = np.where(too_wide, height, np.where(too_tall, max_h, np.where(found, out_h, fb_h)))
    out_w = np.where(too_wide, max_w, np.where(too_tall, width, np.where(found, out_w, fb_w)))
    y = np.floor(u[:, -2] * (height - out_h + 1)).astype(np.int64)
    x = np.floor(u[:, -1] * (width - out_w + 1)).astype(np.int64)
    anchors = np.where(empty[:, None], 0, np.stack([y, x], axis=1))
    sizes = np.where(empty[:, None], 0, np.stack([out_h, out_w], axis=1))
    return anchors, sizes


def _roundf(values: np.ndarray) -> np.ndarray:
    """C's ``roundf`` to integers: halves away from zero."""
    return (np.sign(values) * np.floor(np.abs(values) + F32(0.5))).astype(np.int64)


def _range_arg(name: str, default: tuple[float, float], doc: str) -> Arg:
    return Arg(name, sch.Seq(sch.Float(0.0), length=2, broadcast=True), default, doc)


@register
class RandomCropGenerator(SampleOperator):
    """A random crop window (anchor ``[y, x]`` and shape ``[h, w]``, int32) for an image of the given shape
    (HW or HWC), of random area and aspect ratio (DALI's ``fn.random_crop_generator``; feed it to
    ``fn.slice`` with ``axes=[0, 1]``)."""

    type = "random_crop_generator"
    INPUTS = (sch.Input("shape", "The shape of the image to crop: (H, W) or (H, W, C)", sch.INTEGERS, (1,)),)
    ARGS = (
        Arg("num_attempts", sch.Int(1), 10, "Maximum number of attempts to draw an area and an aspect ratio"),
        _range_arg("random_area", (0.08, 1.0), "Range of the window's area, as a fraction of the image's"),
        _range_arg("random_aspect_ratio", (0.75, 4.0 / 3.0), "Range of the window's aspect ratio (width / height)"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("int64", (3,), values=lambda i: [40 + 7 * i, 30 + 11 * (i % 4), 3]),),
        args={"random_area": [0.2, 0.9]},
        dali="test:tests/operators/test_crop_windows.py",
    )

    def validate(self) -> None:
        super().validate()
        self.num_outputs = 2
        area, aspect = self.args["random_area"], self.args["random_aspect_ratio"]
        if not area[0] <= area[1]:
            raise ValueError(f"fn.random_crop_generator(): random_area={list(area)} must be [min, max] with min <= max")
        if not 0 < aspect[0] <= aspect[1]:
            raise ValueError(
                f"fn.random_crop_generator(): random_aspect_ratio={list(aspect)} must be [min, max] with 0 < min <= max"
            )

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def _windows(self, stream: Stream, shapes: np.ndarray) -> tuple[np.ndarray, ...]:
        if shapes.shape[1] not in (2, 3):
            raise ValueError(
                f"fn.random_crop_generator(): the input has {shapes.shape[1]} values; it must be an image shape "
                "(H, W) or (H, W, C)"
            )
        a = self.args
        attempts = min(a["num_attempts"], MAX_CROP_ATTEMPTS)
        u = stream.uniform(2 * attempts + 2, np.float64)
        anchors, sizes = random_crop_windows(
            shapes[:, :2].astype(np.int64), u, a["random_area"], a["random_aspect_ratio"], attempts
        )
        return anchors.astype(np.int32), sizes.astype(np.int32)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
        anchors, sizes = self._windows(Stream(self.rng_key, s.id, 1), inputs[0].reshape(1, -1))
        return anchors[0], sizes[0]

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...]:
        return self._windows(ctx.stream(self.rng_key), inputs[0])


_IVEC = sch.Seq(sch.Int(), min_length=1, broadcast=True)


@register
class ROIRandomCrop(SampleOperator):
    """The start of a ``crop_shape`` window placed at random so that it holds as much of the region of
    interest as it can (inside it, or inside the window when the region is larger), within ``in_shape`` or
    the input's shape when given (DALI's ``fn.roi_random_crop``; int64)."""

    type = "roi_random_crop"
    INPUTS = (sch.Input("data", "The data to crop (its shape bounds the window)", optional=True),)
    ARGS = (
        Arg("crop_shape", sch.Seq(sch.Int(0), min_length=1, broadcast=True), sch.REQUIRED, "Window shape", tensor=True),
        Arg("roi_start", _IVEC, sch.REQUIRED, "Region of interest start", tensor=True),
        Arg("roi_end", _IVEC, None, "Region of interest end (not with roi_shape)", tensor=True),
        Arg("roi_shape", _IVEC, None, "Region of interest shape (not with roi_end)", tensor=True),
        Arg(
            "in_shape",
            sch.Seq(sch.Int(0), min_length=1, broadcast=True),
            None,
            "Shape of the data (not with an input)",
            tensor=True,
        ),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (30, 40, 3), layout="HWC"),),
        arg_inputs={"roi_start": Tensor("int32", (2,), values=lambda i: [i % 5, 2 * (i % 3)])},
        args={"crop_shape": [12, 10], "roi_shape": [8, 20]},
        dali="test:tests/operators/test_crop_windows.py",
    )

    def validate(self) -> None:
        super().validate()
        a = self.args
        if (a["roi_end"] is None) == (a["roi_shape"] is None):
            raise TypeError("fn.roi_random_crop(): give exactly one of roi_end= or roi_shape=")
        if a["in_shape"] is not None and self.inputs:
            raise TypeError("fn.roi_random_crop(): in_shape= cannot be combined with an input (its shape is used)")

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def _starts(self, stream: Stream, n: int, args: Mapping[str, Any], data_shapes: np.ndarray | None) -> np.ndarray:
        """The window starts of ``n`` samples: ``args`` hold constants or per-sample rows (batch first)."""
        where = "fn.roi_random_crop()"
        crop = _rows(args["crop_shape"], n, None, "crop_shape")
        ndim = crop.shape[1]
        start = _rows(args["roi_start"], n, ndim, "roi_start")
        if args["roi_shape"] is not None:
            extent = _rows(args["roi_shape"], n, ndim, "roi_shape")
        else:
            extent = _rows(args["roi_end"], n, ndim, "roi_end") - start
        bounds = None
        if args["in_shape"] is not None:
            bounds = _rows(args["in_shape"], n, ndim, "in_shape")
        elif data_shapes is not None:
            if data_shapes.shape[1] < ndim:
                raise ValueError(f"{where}: the input has {data_shapes.shape[1]} dimensions; crop_shape has {ndim}")
            bounds = data_shapes[:, :ndim]
        if bounds is not None:
            if (bounds < crop).any():
                raise ValueError(
                    f"{where}: crop_shape {crop[0].tolist()} is larger than the input shape {bounds[0].tolist()}"
                )
            if (start < 0).any() or (start + extent > bounds).any():
                raise ValueError(f"{where}: the region of interest is outside the input shape {bounds[0].tolist()}")
        inside = extent > crop  # the window inside the region, or the region inside the window
        low = np.where(inside, start, start + extent - crop)
        high = np.where(inside, start + extent - crop, start)
        if bounds is not None:  # and the window inside the data
            low, high = np.maximum(0, low), np.minimum(bounds - crop, high)
        u = stream.uniform(ndim, np.float64)
        out = low + np.floor(u * np.maximum(high - low + 1, 0)).astype(np.int64)
        return np.where(extent == crop, start, np.where(high >= low, out, low)).astype(np.int64)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        shapes = np.asarray([inputs[0].shape], dtype=np.int64) if inputs else None
        try:
            return self._starts(Stream(self.rng_key, s.id, 1), 1, args, shapes)[0]
        except ValueError as exc:
            raise ValueError(f"{exc} (sample {s.index})") from None

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...]:
        n = ctx.batch_size
        shapes = np.tile(np.asarray(inputs[0].shape[1:], dtype=np.int64), (n, 1)) if inputs else None
        return (self._starts(ctx.stream(self.rng_key), n, args, shapes),)


def _rows(value: Any, n: int, ndim: int | None, name: str) -> np.ndarray:
    """An argument (a constant tuple, or per-sample values with the batch first) as (n, ndim) int64 rows; one
    value stands for every dimension."""
    if isinstance(value, np.ndarray):  # per-sample values, batch first (the vectorized path)
        a = value.astype(np.int64).reshape(n, -1)
    else:
        a = np.asarray(value, dtype=np.int64).reshape(1, -1)
    if ndim is None:
        ndim = a.shape[1]
    if a.shape[1] == 1 and ndim > 1:
        a = np.repeat(a, ndim, axis=1)
    if a.shape[1] != ndim:
        raise ValueError(f"fn.roi_random_crop(): {name} has {a.shape[1]} values; crop_shape has {ndim}")
    return np.broadcast_to(a, (n, ndim))


@register
class BatchPermutation(Operator):
    """A random permutation of the batch's sample indices, one int32 per sample (DALI's
    ``fn.batch_permutation``); ``allow_repetitions`` draws each index independently, ``no_fixed_points``
    excludes ``out[i] == i`` (ignored for a batch of one)."""

    type = "batch_permutation"
    ARGS = (
        Arg("allow_repetitions", sch.Bool(), False, "Indices may repeat (and some be left out)"),
        Arg("no_fixed_points", sch.Bool(), False, "No index maps to itself (out[i] != i)"),
    )
    EXAMPLE = Example(args={"no_fixed_points": True}, batch_size=5, dali="test:tests/operators/test_crop_windows.py")

    def validate(self) -> None:
        if self.inputs:
            raise TypeError("fn.batch_permutation() takes no inputs")

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        n = ctx.batch_size
        if n == 0:
            return (Batch(np.empty(0, dtype=np.int32)),)
        rng = ctx.stream(self.rng_key).generator(0)
        derange = self.args["no_fixed_points"] and n > 1
        if self.args["allow_repetitions"]:
            out = rng.integers(n - derange, size=n)
            if derange:
                out = out + (out >= np.arange(n))  # skip i itself: uniform over the other n - 1 indices
        else:
            while True:
                out = rng.permutation(n)
                if not derange or (out != np.arange(n)).all():
                    break
        return (Batch(out.astype(np.int32)),)

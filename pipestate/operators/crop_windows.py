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

F32 = np.float32


def random_crop_window(
    rng: np.random.Generator, height: int, width: int, area: Sequence[float], aspect: Sequence[float], attempts: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """DALI's ``RandomCropGenerator``: a window of random area fraction (``area``) and aspect ratio
    (width / height, log-uniform in ``aspect``), randomly placed; when ``attempts`` draws fail, the largest
    window of an allowed aspect ratio, scaled down to the largest area, randomly placed.

    Returns:
        ((y, x), (h, w)); ((0, 0), (0, 0)) for an empty image.
    """
    if height <= 0 or width <= 0:
        return (0, 0), (0, 0)
    min_ratio, max_ratio = F32(aspect[0]), F32(aspect[1])
    min_area = F32(width * height) * F32(area[0])
    max_w = max(1, int(F32(height) * max_ratio))
    max_h = max(1, int(F32(width) * (F32(1) / min_ratio)))
    if height * max_w < min_area:  # the image is too wide
        h, w = height, max_w
    elif width * max_h < min_area:  # too tall
        h, w = max_h, width
    else:
        log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
        for _ in range(attempts):
            scale = F32(area[0] + rng.random() * (area[1] - area[0]))
            target = scale * F32(height * width)
            ratio = F32(math.exp(F32(log_lo + rng.random() * (log_hi - log_lo))))
            w = max(1, _roundf(np.sqrt(target * ratio)))
            h = max(1, _roundf(np.sqrt(target / ratio)))
            wh = F32(w) / F32(h)
            if w <= width and h <= height and min_ratio <= wh <= max_ratio:
                break
        else:
            max_area = F32(area[1]) * F32(width) * F32(height)
            ratio = F32(width) / F32(height)
            if ratio > max_ratio:
                h, w = height, max_w
            elif ratio < min_ratio:
                h, w = max_h, width
            else:
                h, w = height, width
            scale = min(F32(1), max_area / F32(h * w))
            root = F32(np.sqrt(scale))
            h, w = max(1, int(F32(h) * root)), max(1, int(F32(w) * root))
    y = int(rng.integers(height - h + 1))
    x = int(rng.integers(width - w + 1))
    return (y, x), (h, w)


def _roundf(value: np.float32) -> int:
    """C's ``roundf`` to int: halves away from zero."""
    return int(np.floor(abs(float(value)) + 0.5) * (1 if value >= 0 else -1))


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

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
        (shape,) = inputs
        if len(shape) not in (2, 3):
            raise ValueError(
                f"fn.random_crop_generator(): the input has {len(shape)} values; it must be an image shape (H, W) or (H, W, C)"
            )
        a = self.args
        anchor, size = random_crop_window(
            s.rng, int(shape[0]), int(shape[1]), a["random_area"], a["random_aspect_ratio"], a["num_attempts"]
        )
        return np.asarray(anchor, dtype=np.int32), np.asarray(size, dtype=np.int32)


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
        Arg("in_shape", sch.Seq(sch.Int(0), min_length=1, broadcast=True), None, "Shape of the data (not with an input)", tensor=True),
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

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        where = "fn.roi_random_crop()"
        crop = list(args["crop_shape"])
        ndim = len(crop)
        values = {}
        for name in ("roi_start", "roi_end", "roi_shape", "in_shape"):
            value = args[name]
            if value is not None:
                if len(value) == 1 and ndim > 1:
                    value = tuple(value) * ndim
                if len(value) != ndim:
                    raise ValueError(f"{where}: {name} has {len(value)} values; crop_shape has {ndim}")
                values[name] = list(value)
        bounds = values.get("in_shape") or (list(inputs[0].shape[:ndim]) if inputs else None)
        start = values["roi_start"]
        extent = values["roi_shape"] if "roi_shape" in values else [e - b for e, b in zip(values["roi_end"], start)]
        if bounds is not None:
            if len(bounds) < ndim:
                raise ValueError(f"{where}: the input has {len(bounds)} dimensions; crop_shape has {ndim}")
            for d in range(ndim):
                if bounds[d] < crop[d]:
                    raise ValueError(f"{where}: crop_shape {crop} is larger than the input shape {bounds[:ndim]} (axis {d})")
                if start[d] < 0 or start[d] + extent[d] > bounds[d]:
                    raise ValueError(f"{where}: the region of interest is outside the input shape {bounds[:ndim]} (axis {d})")
        out = np.empty(ndim, dtype=np.int64)
        for d in range(ndim):
            if extent[d] == crop[d]:
                out[d] = start[d]
                continue
            if extent[d] > crop[d]:  # the window inside the region
                low, high = start[d], start[d] + extent[d] - crop[d]
            else:  # the region inside the window
                low, high = start[d] + extent[d] - crop[d], start[d]
            if bounds is not None:  # and the window inside the data
                low, high = max(0, low), min(bounds[d] - crop[d], high)
            out[d] = low + s.rng.integers(high - low + 1) if high >= low else low
        return out


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

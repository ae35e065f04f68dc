"""Pasting: ``fn.paste`` (an image on a larger canvas) and ``fn.multi_paste`` (regions of several images of
the batch onto one canvas), as DALI computes them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator, saturate_cast
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

_F = np.float32


@register
class Paste(SampleOperator):
    """Paste each image on a canvas ``ratio`` times larger (at least ``min_canvas_size``) filled with
    ``fill_value`` (DALI's ``fn.paste``), at ``paste_x``/``paste_y`` (fractions of the free space)."""

    type = "paste"
    INPUTS = (sch.Input("images", "uint8 HWC images", ("uint8",), layouts=("HWC",)),)
    ARGS = (
        Arg("ratio", sch.Float(1.0), sch.REQUIRED, "Canvas size / input size (at least 1)", tensor=True),
        Arg(
            "fill_value",
            sch.Seq(sch.Int(-(2**31), 2**31 - 1), min_length=1, broadcast=True),
            sch.REQUIRED,
            "Canvas colour: one value, or n_channels values (converted as C converts to uint8)",
        ),
        Arg("n_channels", sch.Int(1, 1024), 3, "Channels of the images"),
        Arg("paste_x", sch.Float(0.0, 1.0), 0.5, "Horizontal position, 0 (left) to 1 (right)", tensor=True),
        Arg("paste_y", sch.Float(0.0, 1.0), 0.5, "Vertical position, 0 (top) to 1 (bottom)", tensor=True),
        Arg("min_canvas_size", sch.Float(0.0), 0.0, "Smallest canvas extent", tensor=True),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (6, 7, 3), layout="HWC", ragged=(0, 1)),),
        args={"fill_value": (10, 20, 300)},
        arg_inputs={"ratio": Tensor("float32", (), low=1, high=2.5), "paste_x": Tensor("float32", (), low=0, high=1)},
    )

    def validate(self) -> None:
        super().validate()
        fill, channels = self.args["fill_value"], self.args["n_channels"]
        if len(fill) not in (1, channels):
            raise ValueError(
                f"fn.{self.type}(): fill_value has {len(fill)} values; give one or n_channels ({channels})"
            )
        # DALI converts the fill values with a C cast to uint8 (wrapping around)
        self.fill = (np.array(fill * (channels if len(fill) == 1 else 1), np.int64) & 0xFF).astype(np.uint8)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        h, w, c = x.shape
        if c != args["n_channels"]:
            raise ValueError(f"the image has {c} channels; n_channels is {args['n_channels']} (sample {s.index})")
        ratio, least = _F(args["ratio"]), _F(args["min_canvas_size"])
        out_h = int(max(_F(h) * ratio, least))
        out_w = int(max(_F(w) * ratio, least))
        if out_h * out_w * c > 2**28:
            raise ValueError(f"the canvas {[out_h, out_w]} is too large (sample {s.index})")
        y = int(_F(args["paste_y"]) * _F(out_h - h))
        x0 = int(_F(args["paste_x"]) * _F(out_w - w))
        out = np.empty((out_h, out_w, c), np.uint8)
        out[...] = self.fill
        out[y : y + h, x0 : x0 + w] = x
        return out


class Rows(sch.Kind):
    """Per-paste coordinates: a ``(pastes, 2)`` array (one (y, x) row per paste) of ints or floats."""

    def __init__(self, floats: bool) -> None:
        self.floats = floats
        self.text = f"a (pastes, 2) array of {'floats' if floats else 'ints'} (one (y, x) row per paste)"

    def check(self, value: Any, where: str) -> np.ndarray:
        array = np.asarray(value)
        if array.dtype.kind not in ("iuf" if self.floats else "iu") or array.ndim != 2 or array.shape[1] != 2:
            raise TypeError(f"{where}={value!r} must be {self.text}")
        if not np.isfinite(array).all():
            raise ValueError(f"{where}={value!r} must be finite")
        return array.astype(np.float32 if self.floats else np.int64)

    def check_samples(self, samples: Any, where: str) -> None:
        for i, sample in enumerate(samples):
            self.check(np.asarray(sample), f"{where} (sample {i})")

    def sample_value(self, sample: np.ndarray) -> np.ndarray:
        return sample.astype(np.float32 if self.floats else np.int64)


@register
class MultiPaste(SampleOperator):
    """Paste regions of images of the batch onto canvases (DALI's ``fn.multi_paste``): output sample ``i``
    gets, in order, the regions of the inputs ``in_ids[i]`` (one input) or of every input's sample ``i``
    (several inputs), at ``out_anchors``; regions start at ``in_anchors`` and span ``shapes`` (by default to
    the input's end). ``*_rel`` variants are fractions (anchors truncated, shapes rounded up). The canvas
    (``output_size``, default the inputs' common shape) starts at 0."""

    type = "multi_paste"
    INPUTS = tuple(
        sch.Input("images", "HWC images (or FHWC sequences)", sch.NUMBERS, layouts=("HWC", "FHWC"), optional=k > 0)
        for k in range(64)
    )
    ARGS = (
        Arg("in_ids", sch.Seq(sch.Int(0)), None, "Per output sample: the batch indices to paste from", tensor=True),
        Arg("output_size", sch.Seq(sch.Int(0), min_length=2), None, "Canvas (H, W)", tensor=True),
        Arg("in_anchors", Rows(False), None, "Region starts in the inputs (pastes x 2)", tensor=True),
        Arg("in_anchors_rel", Rows(True), None, "Region starts, as fractions of the input's size", tensor=True),
        Arg("shapes", Rows(False), None, "Region sizes (pastes x 2)", tensor=True),
        Arg("shapes_rel", Rows(True), None, "Region sizes, as fractions of the input's size", tensor=True),
        Arg("out_anchors", Rows(False), None, "Where the regions go in the canvas (pastes x 2)", tensor=True),
        Arg("out_anchors_rel", Rows(True), None, "Where the regions go, as fractions of the canvas", tensor=True),
        Arg("dtype", sch.DType(), None, "Output type (default: the input's)"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (6, 7, 3), layout="HWC", ragged=(0, 1)),),
        args={"output_size": (12, 14)},
        arg_inputs={
            "in_ids": Tensor("int32", (2,), values=lambda i: [i % 3, (i + 1) % 3]),
            "in_anchors_rel": Tensor("float32", (2, 2), low=0, high=0.5),
            "shapes_rel": Tensor("float32", (2, 2), values=lambda i: [[0.5, 0.5], [0.25, 0.5]]),
            "out_anchors": Tensor("int32", (2, 2), low=0, high=3),
        },
    )

    def validate(self) -> None:
        super().validate()
        a = self.args
        for name in ("in_anchors", "shapes", "out_anchors"):
            if a[name] is not None and a[name + "_rel"] is not None:
                raise ValueError(f"fn.{self.type}(): {name} and {name}_rel are mutually exclusive; give one")
        if (a["in_ids"] is not None) == (len(self.inputs) > 1):
            raise TypeError(f"fn.{self.type}(): give in_ids with one input, or several inputs without in_ids")

    def prepare(
        self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch], layouts: tuple[str, ...]
    ) -> dict[str, Sequence] | None:
        return {"_batches": [inputs] * ctx.batch_size}

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        batches: list[Batch] = args["_batches"]
        where = f" (sample {s.index})"
        if args["in_ids"] is not None:
            ids = list(args["in_ids"])
            for k in ids:
                if not 0 <= k < len(batches[0]):
                    raise ValueError(f"in_ids has {k}; the batch has {len(batches[0])} samples{where}")
            sources = [batches[0][k] for k in ids]
        else:
            sources = [b[s.index] for b in batches]
        first = inputs[0]
        if args["output_size"] is not None:
            size = list(args["output_size"])
            if len(size) != 2:
                raise ValueError(f"output_size={size!r} must be (H, W){where}")
        else:
            shapes = {b[i].shape for b in batches for i in range(len(b))}
            if len(shapes) != 1:
                raise ValueError(f"the inputs differ in shape; give output_size{where}")
            size = list(first.shape[-3:-1])
        dtype = self.args["dtype"] if self.args["dtype"] is not None else first.dtype
        if math.prod(size) * first.shape[-1] > 2**28:
            raise ValueError(f"output_size={size!r} is too large{where}")
        out = np.zeros((*first.shape[:-3], size[0], size[1], first.shape[-1]), dtype)
        n = len(sources)
        rows = {name: self._rows(args, name, n, where) for name in ("in_anchors", "shapes", "out_anchors")}
        for k, src in enumerate(sources):
            if src.shape[:-3] != first.shape[:-3] or src.shape[-1] != first.shape[-1] or src.dtype != first.dtype:
                raise ValueError(f"the pasted images differ in frames, channels or type{where}")
            in_hw = np.array(src.shape[-3:-1])
            anchor = self._coords(rows["in_anchors"], k, in_hw, np.floor, np.zeros(2, np.int64))
            shape = self._coords(rows["shapes"], k, in_hw, np.ceil, in_hw - anchor)
            dest = self._coords(rows["out_anchors"], k, np.array(size), np.floor, np.zeros(2, np.int64))
            if (anchor < 0).any() or (anchor + shape > in_hw).any():
                raise ValueError(
                    f"paste {k}: the region {anchor.tolist()} + {shape.tolist()} leaves its input "
                    f"{in_hw.tolist()}{where}"
                )
            if (dest < 0).any() or (dest + shape > np.array(size)).any():
                raise ValueError(
                    f"paste {k}: the region {shape.tolist()} at {dest.tolist()} leaves the canvas {size}{where}"
                )
            region = src[..., anchor[0] : anchor[0] + shape[0], anchor[1] : anchor[1] + shape[1], :]
            out[..., dest[0] : dest[0] + shape[0], dest[1] : dest[1] + shape[1], :] = saturate_cast(region, dtype)
        return out

    @staticmethod
    def _rows(args: Mapping[str, Any], name: str, n: int, where: str) -> tuple[np.ndarray, bool] | None:
        for key, rel in ((name, False), (name + "_rel", True)):
            value = args[key]
            if value is not None:
                if len(value) != n:
                    raise ValueError(f"{key} has {len(value)} rows for {n} pastes{where}")
                return value, rel
        return None

    @staticmethod
    def _coords(
        rows: tuple[np.ndarray, bool] | None, k: int, extent: np.ndarray, rounding, default: np.ndarray
    ) -> np.ndarray:
        if rows is None:
            return default
        values, rel = rows
        if rel:
            return rounding((values[k] * extent.astype(_F)).astype(_F)).astype(np.int64)
        return values[k].astype(np.int64)

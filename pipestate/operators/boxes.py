"""Bounding boxes: ``fn.bb_flip``, ``fn.bbox_paste`` and ``fn.box_encoder`` (SSD's anchor matching).

Boxes are float32 rows of 4 coordinates, relative to the image (0..1): ``[x, y, w, h]`` (``xywh``) or
``[left, top, right, bottom]`` (``ltrb``). The arithmetic is DALI's, in float32, so the outputs are
bit-identical to DALI's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import RunContext, register
from pipestate.operators.coords import FLAG
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

F32 = np.float32
_BOXES = sch.Input(
    "boxes", "Bounding boxes: rows of 4 float32 coordinates (or a flat list of them)", ("float32",), (1, 2)
)
_LTRB = Arg("ltrb", sch.Bool(), False, "True: boxes are [left, top, right, bottom]; False: [x, y, width, height]")


def _example_boxes(index: int) -> np.ndarray:
    """Valid xywh boxes inside the unit square (a varying number per sample) for the examples."""
    rng = np.random.default_rng(index)
    lo = rng.uniform(0, 0.6, (1 + index % 4, 2))
    size = rng.uniform(0.05, 0.4, lo.shape)
    return np.concatenate([lo, size], axis=1).astype(F32)


def box_rows(boxes: np.ndarray, op: str) -> np.ndarray:
    """``boxes`` as (N, 4) rows.

    Raises:
        ValueError: the number of coordinates is not a multiple of 4.
    """
    if boxes.size % 4:
        raise ValueError(f"fn.{op}(): the boxes have {boxes.size} coordinates; boxes have 4 each")
    return boxes.reshape(-1, 4)


@register
class BbFlip(SampleOperator):
    """Mirror bounding boxes horizontally and/or vertically in the unit square (DALI's ``fn.bb_flip``)."""

    type = "bb_flip"
    INPUTS = (_BOXES,)
    ARGS = (
        _LTRB,
        Arg("horizontal", FLAG, 1, "Flip horizontally (non-zero: flip)", tensor=True),
        Arg("vertical", FLAG, 0, "Flip vertically (non-zero: flip)", tensor=True),
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (3, 4), ragged=(0,), low=0, high=0.5),),
        arg_inputs={"vertical": Tensor("int32", (), values=lambda i: i % 2)},
    )

    def _flip(self, boxes: np.ndarray, horizontal: Any, vertical: Any) -> np.ndarray:
        lo, hi = boxes[..., 0:2], boxes[..., 2:4]
        if not self.args["ltrb"]:
            hi = lo + hi
        axes = np.stack([np.asarray(horizontal, bool), np.asarray(vertical, bool)], axis=-1)
        if axes.ndim == 2:  # one flag pair per sample of a (batch, boxes, 4) array
            axes = axes[:, None, :]
        new_lo = np.where(axes, F32(1) - hi, lo)
        new_hi = np.where(axes, F32(1) - lo, hi)
        if not self.args["ltrb"]:
            new_hi = new_hi - new_lo
        return np.concatenate([new_lo, new_hi], axis=-1)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (boxes,) = inputs
        rows = box_rows(boxes, self.type)
        return self._flip(rows, args["horizontal"], args["vertical"]).reshape(boxes.shape)

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        (boxes,) = inputs
        if boxes.shape[-1] != 4 or boxes.ndim != 3:
            return None
        n = len(boxes)
        horizontal = np.broadcast_to(np.asarray(args["horizontal"]).reshape(-1), (n,))
        vertical = np.broadcast_to(np.asarray(args["vertical"]).reshape(-1), (n,))
        return (self._flip(boxes, horizontal, vertical),)


@register
class BBoxPaste(SampleOperator):
    """Move boxes to where they land when the image is pasted on a canvas ``ratio`` times larger at
    ``(paste_x, paste_y)`` (DALI's ``fn.bbox_paste``)."""

    type = "bbox_paste"
    INPUTS = (_BOXES,)
    ARGS = (
        Arg("ratio", sch.Float(), sch.REQUIRED, "Ratio of the canvas size to the input size (at least 1)", tensor=True),
        _LTRB,
        Arg("paste_x", sch.Float(), 0.5, "Horizontal position of the paste (0: left, 1: right)", tensor=True),
        Arg("paste_y", sch.Float(), 0.5, "Vertical position of the paste (0: top, 1: bottom)", tensor=True),
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (0, 4), values=_example_boxes),),
        arg_inputs={"ratio": Tensor("float32", (), low=1, high=4), "paste_x": Tensor("float32", (), low=0, high=1)},
        args={"ltrb": True},
    )

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (boxes,) = inputs
        rows = box_rows(boxes, self.type)
        ratio = F32(args["ratio"])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            scale = F32(1) / ratio
            ofs_mul = (ratio - F32(1)) / ratio
            offsets = []
            for paste in (F32(args["paste_x"]), F32(args["paste_y"])):
                ofs = paste * ofs_mul
                if scale + ofs > 1:  # keep boxes that were inside (0, 1) inside it
                    ofs = F32(1) - scale
                    while scale + ofs > 1:
                        ofs = np.nextafter(ofs, F32(-1))
                offsets.append(ofs)
            ofs = np.asarray(offsets, dtype=F32)
            out = np.empty_like(rows)
            out[:, 0:2] = rows[:, 0:2] * scale + ofs
            out[:, 2:4] = rows[:, 2:4] * scale + ofs if self.args["ltrb"] else rows[:, 2:4] * scale
        return out.reshape(boxes.shape)


@register
class BoxEncoder(SampleOperator):
    """Match ``ltrb`` boxes to anchors by IoU and encode them as SSD does (DALI's ``fn.box_encoder``).

    Every anchor gets the box it overlaps most when that IoU exceeds ``criteria`` (each box is matched at
    least to its best anchor); outputs are one ``[cx, cy, w, h]`` box (or, with ``offset``, the normalized
    offsets from the anchor) and one label per anchor; unmatched anchors keep the anchor (offset 0) and
    label 0.
    """

    type = "box_encoder"
    INPUTS = (
        sch.Input("boxes", "Boxes as [left, top, right, bottom] rows", ("float32",), (2,)),
        sch.Input("labels", "One int32 label per box", ("int32",), (1, 2)),
    )
    ARGS = (
        Arg("anchors", sch.Seq(sch.Float(), min_length=4, broadcast=True), sch.REQUIRED, "Anchors, ltrb, flattened"),
        Arg("criteria", sch.Float(0.0, 1.0), 0.5, "IoU threshold for matching a box to an anchor"),
        Arg("offset", sch.Bool(), False, "Output normalized offsets from the anchors instead of boxes"),
        Arg("scale", sch.Float(), 1.0, "Rescales boxes and anchors before the offsets are computed"),
        Arg("means", sch.Seq(sch.Float(), length=4), (0.0, 0.0, 0.0, 0.0), "[x y w h] means for the offsets"),
        Arg("stds", sch.Seq(sch.Float(), length=4), (1.0, 1.0, 1.0, 1.0), "[x y w h] standard deviations"),
    )
    EXAMPLE = Example(
        inputs=(
            Tensor("float32", (0, 4), values=lambda i: _ltrb(_example_boxes(i))),
            Tensor("int32", (0,), values=lambda i: np.arange(1 + i % 4, dtype=np.int32) + 1),
        ),
        args={
            "anchors": [v for k in range(16) for v in (k % 4 / 4, k // 4 / 4, k % 4 / 4 + 0.3, k // 4 / 4 + 0.3)],
            "offset": True,
            "scale": 2.0,
            "stds": [0.1, 0.1, 0.2, 0.2],
        },
        dali="close:1e-5",  # the offsets' logarithm: within an ulp of glibc's logf
    )

    def validate(self) -> None:
        super().validate()
        self.num_outputs = 2
        anchors = self.args["anchors"]
        if len(anchors) % 4:
            raise ValueError(f"fn.box_encoder(): anchors has {len(anchors)} values; anchors are 4 values each (ltrb)")
        if 0.0 in self.args["stds"]:
            raise ValueError("fn.box_encoder(): stds must not contain 0")
        self.anchors = np.asarray(anchors, dtype=F32).reshape(-1, 4)
        lo, hi = self.anchors[:, 0:2], self.anchors[:, 2:4]
        self._anchor_area = _volume(hi - lo)
        self._anchor_columns = [np.ascontiguousarray(self.anchors[:, k]) for k in range(4)]
        self._anchor_center = (lo + hi) * F32(0.5)
        self._anchor_extent = hi - lo

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
        boxes, labels = inputs
        boxes = box_rows(boxes, self.type)
        labels = labels.reshape(-1)
        if len(labels) != len(boxes):
            raise ValueError(f"fn.box_encoder(): {len(boxes)} boxes but {len(labels)} labels")
        n_anchors = len(self.anchors)
        offset = self.args["offset"]
        if offset:
            out = np.zeros((n_anchors, 4), dtype=F32)
        else:
            out = np.concatenate([self._anchor_center, self._anchor_extent], axis=1)
        out_labels = np.zeros(n_anchors, dtype=np.int32)
        if not len(boxes):
            return out, out_labels
        ious = self._ious(boxes)
        # each anchor's best box (the last of equal IoUs, as DALI's >= scan)
        best_box = len(boxes) - 1 - np.argmax(ious[::-1], axis=0)
        best_iou = ious[best_box, np.arange(n_anchors)]
        matched = np.flatnonzero(best_iou > F32(self.args["criteria"]))
        box_idx = best_box[matched]
        lo, hi = boxes[box_idx, 0:2], boxes[box_idx, 2:4]
        center, extent = (lo + hi) * F32(0.5), hi - lo
        if offset:
            center, extent = self._offsets(center, extent, matched)
        out[matched, 0:2] = center
        out[matched, 2:4] = extent
        out_labels[matched] = labels[box_idx]
        return out, out_labels

    def _ious(self, boxes: np.ndarray) -> np.ndarray:
        """(boxes, anchors) IoU in float32; each box's best anchor (the last of equal IoUs) gets 2."""
        a = self._anchor_columns
        b = [boxes[:, k : k + 1] for k in range(4)]
        w = np.minimum(b[2], a[2])
        w -= np.maximum(b[0], a[0])
        h = np.minimum(b[3], a[3])
        h -= np.maximum(b[1], a[1])
        overlap = (w > 0) & (h > 0)
        inter = w
        inter *= h
        inter[~overlap] = 0
        union = (b[2] - b[0]) * (b[3] - b[1]) + self._anchor_area
        union -= inter
        with np.errstate(divide="ignore", invalid="ignore"):
            ious = np.divide(inter, union, out=np.zeros_like(inter), where=overlap)
        n = ious.shape[1]
        best = n - 1 - np.argmax(ious[:, ::-1], axis=1)
        ious[np.arange(len(boxes)), best] = F32(2)
        return ious

    def _offsets(self, center: np.ndarray, extent: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scale = F32(self.args["scale"])
        means = np.asarray(self.args["means"], dtype=F32)
        stds = np.asarray(self.args["stds"], dtype=F32)
        a_center = self._anchor_center[anchors] * scale
        a_extent = self._anchor_extent[anchors] * scale
        center, extent = center * scale, extent * scale
        with np.errstate(divide="ignore", invalid="ignore"):
            c = ((center - a_center) / a_extent - means[0:2]) / stds[0:2]
            # the logarithm correctly rounded (DALI's glibc logf is within one ulp of it)
            log = np.log((extent / a_extent).astype(np.float64)).astype(F32)
            e = (log - means[2:4]) / stds[2:4]
        return c, e


def _volume(extent: np.ndarray) -> np.ndarray:
    return extent[..., 0] * extent[..., 1]


def _ltrb(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, 0:2], xywh[:, 0:2] + xywh[:, 2:4]], axis=1)

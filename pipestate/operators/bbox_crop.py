"""``fn.random_bbox_crop`` (a random crop window that keeps the bounding boxes consistent) and the
deprecated ``fn.ssd_random_crop``.

The search is DALI's: each round draws one of the ``thresholds`` (or, with ``allow_no_crop``, the whole
image), then up to ``num_attempts`` candidate windows; a window is accepted when its overlap with the boxes
(IoU or the covered fraction, the smallest over the boxes or the largest) reaches the threshold and at
least one box remains; after ``total_num_attempts`` the best window so far is used. Candidates are drawn
and scored a block at a time (numpy), then walked in order exactly as DALI's loop. Every draw comes from
the sample's own generator (``Sample.rng``): restores, threads and prefetching never change the output.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import _box_geometry as geo
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

F32 = np.float32
# DALI searches forever when no window can satisfy the constraints; pipestate stops after this many attempts.
MAX_ATTEMPTS = 100_000


def _example_ltrb(index: int) -> np.ndarray:
    """1..4 valid ltrb boxes in the unit square for the examples."""
    rng = np.random.default_rng(1000 + index)
    lo = rng.uniform(0, 0.7, (1 + index % 4, 2))
    return np.concatenate([lo, lo + rng.uniform(0.05, 0.3, lo.shape)], axis=1).astype(F32)


class _Search:
    """The crop search of one sample (see the module documentation)."""

    def __init__(self, op: RandomBBoxCrop, rng: np.random.Generator, boxes: np.ndarray, args: Mapping[str, Any]):
        self.op, self.rng, self.boxes, self.ndim = op, rng, boxes, boxes.shape[2]
        self.crop_shape = self.input_shape = None
        if args["input_shape"] is not None:
            self.input_shape = op.whd(args["input_shape"], "input_shape", self.ndim)
        if args["crop_shape"] is not None:
            self.crop_shape = op.whd(args["crop_shape"], "crop_shape", self.ndim)

    def _candidates(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` candidate windows: (relative crops (n, 2, ndim), output crops, usable mask)."""
        rng, ndim, op = self.rng, self.ndim, self.op
        if self.crop_shape is not None:
            size, crop = self.input_shape.astype(F32), self.crop_shape.astype(F32)
            room = np.maximum(self.input_shape - self.crop_shape, 0)
            anchor = np.floor(rng.random((n, ndim)) * (room + 1)).astype(F32)
            out = np.stack([anchor, anchor + crop], axis=1)
            rel = np.stack([anchor / size, anchor / size + crop / size], axis=1)
            return rel, out, np.ones(n, dtype=bool)
        low, high = op.scaling
        shape = (low + rng.random((n, ndim)) * (high - low)).astype(F32)
        scale = self.input_shape.astype(F32) if self.input_shape is not None else None
        if scale is not None:
            shape = shape * scale
        if op.fixed_ratios is not None:
            shape = self._fix_aspect_ratios(shape)
        usable = op.valid_aspect_ratio(shape)
        if scale is not None:
            shape = shape / scale
        anchor = (rng.random((n, ndim)) * (F32(1) - shape)).astype(F32)
        rel = np.stack([anchor, anchor + shape], axis=1)
        return rel, rel, usable

    def _fix_aspect_ratios(self, shape: np.ndarray) -> np.ndarray:
        """DALI's ``FixAspectRatios``: in a random order of the dimensions, set each later extent from an
        earlier one by the fixed ratios, then rescale to the previous largest extent."""
        n, ndim = shape.shape
        fixed = self.op.fixed_ratios
        order = np.argsort(self.rng.random((n, ndim)), axis=1)
        largest = shape.max(axis=1)
        rows = np.arange(n)
        for i0 in range(ndim):
            for i1 in range(i0 + 1, ndim):
                d0, d1 = order[:, i0], order[:, i1]
                ratio = fixed[d1, d0]
                set_ = ratio > 0
                shape[rows[set_], d1[set_]] = shape[rows[set_], d0[set_]] * ratio[set_]
        return (largest[:, None] * shape / shape.max(axis=1)[:, None]).astype(F32)

    def _metric(self, rel: np.ndarray) -> np.ndarray:
        if not len(self.boxes):
            return np.zeros(len(rel), dtype=F32)
        crops, boxes = rel[:, None], self.boxes[None]
        values = geo.overlap(crops, boxes) if self.op.args["threshold_type"] == "overlap" else geo.iou(crops, boxes)
        return values.min(axis=1) if self.op.args["all_boxes_above_threshold"] else values.max(axis=1)

    def _keep(self, rel: np.ndarray) -> np.ndarray:
        """Indices of the boxes kept for the window ``rel`` (centroid inside, or enough area inside)."""
        threshold = self.op.args["bbox_prune_threshold"]
        if threshold is None:
            keep = geo.centroids_inside(self.boxes, rel)
        else:
            inter = geo.intersection_volume(rel[None], self.boxes)
            with np.errstate(divide="ignore", invalid="ignore"):
                keep = (inter > 0) & (inter / geo.volume(self.boxes) >= F32(threshold))
        return np.flatnonzero(keep)

    def run(self, no_crop: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(output crop (2, ndim), kept box indices, remapped boxes or None for the uncropped boxes)."""
        op, rng = self.op, self.rng
        options = op.options
        attempts = op.args["num_attempts"]
        total = op.args["total_num_attempts"]
        limit = total if total > 0 else MAX_ATTEMPTS
        count, best = 0, F32(-1)
        found = (np.zeros((2, self.ndim), dtype=F32), np.empty(0, dtype=np.int64), np.empty((0, 2, self.ndim), F32))
        while count < limit:
            threshold = options[rng.integers(len(options))]
            if threshold is None:
                return no_crop[1], np.arange(len(self.boxes)), None
            n = min(attempts, limit - count)
            rel, out, usable = self._candidates(n)
            metric = self._metric(rel)
            for j in range(n):
                count += 1
                if not usable[j]:
                    continue
                valid = bool(metric[j] >= threshold) or not len(self.boxes)  # nothing to overlap: any window
                if metric[j] <= best and not valid:
                    continue
                best = metric[j]
                keep = self._keep(rel[j])
                found = (out[j], keep, geo.remap(self.boxes[keep], rel[j]))
                if valid and (len(keep) or not len(self.boxes)):
                    return found
        if total <= 0:
            raise ValueError(
                f"fn.random_bbox_crop(): no crop window satisfies thresholds={list(op.args['thresholds'])} within "
                f"{MAX_ATTEMPTS} attempts (DALI would search forever); allow_no_crop=True, lower thresholds or "
                "total_num_attempts= (use the best window found) end the search"
            )
        if not op.args["quiet"] and len(self.boxes):
            warnings.warn(
                f"fn.random_bbox_crop(): could not find a valid cropping window to satisfy the specified requirements "
                f"(attempted {count} times); using the best cropping window so far (best_metric={best:g})",
                RuntimeWarning,
                stacklevel=2,
            )
        return found


@register
class RandomBBoxCrop(SampleOperator):
    """A random crop window of the image coordinate space with the bounding boxes mapped into it and
    filtered (DALI's ``fn.random_bbox_crop``).

    Outputs: the window's ``anchor`` and ``shape`` (float32, ``[x, y(, z)]``; relative, or in pixels with
    ``crop_shape``), the kept boxes in the window's coordinates (in ``bbox_layout``), their labels (with a
    labels input) and their indices (``output_bbox_indices``). Boxes are relative coordinates inside
    ``[0, 1]``; a box is kept when its centre is inside the window, or, with ``bbox_prune_threshold``, when
    at least that fraction of its area is.
    """

    type = "random_bbox_crop"
    INPUTS = (
        sch.Input("boxes", "Boxes: rows of 2*ndim relative coordinates (ndim 2 or 3)", ("float32",), (2,)),
        sch.Input("labels", "One label (or row of labels) per box", ("int32",), (1, 2), optional=True),
    )
    ARGS = (
        Arg("aspect_ratio", sch.Seq(sch.Float(0.0), min_length=2, broadcast=True), (1.0, 1.0), "Range of window aspect ratios (2 values, or 6 in 3-D)"),
        Arg("thresholds", sch.Seq(sch.Float(0.0, 1.0), min_length=1, broadcast=True), (0.0,), "Minimum overlap metrics, one drawn per round"),
        Arg("scaling", sch.Seq(sch.Float(0.0), length=2), (1.0, 1.0), "Range [min, max] of the window's extents, relative"),
        Arg("bbox_layout", sch.Str(), None, "Order of the box coordinates (default xyXY / xyzXYZ)"),
        Arg("shape_layout", sch.Str(), None, "Order of crop_shape and input_shape (default WH / WHD)"),
        Arg("ltrb", sch.Bool(), True, "Deprecated: True is bbox_layout xyXY, False xyWH"),
        Arg("num_attempts", sch.Int(1), 1, "Candidate windows per drawn threshold"),
        Arg("total_num_attempts", sch.Int(), -1, "Give up after this many candidates and use the best one (-1: never)"),
        Arg("all_boxes_above_threshold", sch.Bool(), True, "Every box must reach the threshold (False: one box)"),
        Arg("allow_no_crop", sch.Bool(), True, "Not cropping is one more possible outcome"),
        Arg("crop_shape", sch.Seq(sch.Int(0), broadcast=True), None, "Fixed window shape in pixels (needs input_shape)", tensor=True),
        Arg("input_shape", sch.Seq(sch.Int(1), broadcast=True), None, "Shape of the image", tensor=True),
        Arg("bbox_prune_threshold", sch.Float(0.0, 1.0), None, "Keep boxes with at least this fraction of their area inside"),
        Arg("output_bbox_indices", sch.Bool(), False, "Add an output with the indices of the kept boxes"),
        Arg("threshold_type", sch.Str(("iou", "overlap")), "iou", "Overlap metric: iou, or overlap (fraction of the box inside)"),
        Arg("quiet", sch.Bool(), False, "Do not warn when the best window is used instead of a valid one"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (0, 4), values=_example_ltrb), Tensor("int32", (0,), values=lambda i: np.arange(1 + i % 4, dtype=np.int32))),
        args={"thresholds": [0.0, 0.1, 0.3], "scaling": [0.3, 1.0], "aspect_ratio": [0.5, 2.0], "bbox_layout": "xyXY", "output_bbox_indices": True},
        dali="test:tests/operators/test_bbox_crop.py",
    )

    def validate(self) -> None:
        super().validate()
        a, raw, where = self.args, self.raw_args, "fn.random_bbox_crop()"
        self.num_outputs = 3 + (len(self.inputs) > 1) + a["output_bbox_indices"]
        if len(a["aspect_ratio"]) not in (2, 6):
            raise ValueError(f"{where}: aspect_ratio must have 2 values (or 6 for 3-D boxes); got {len(a['aspect_ratio'])}")
        ranges = np.asarray(a["aspect_ratio"], dtype=F32).reshape(-1, 2)
        if (ranges[:, 0] > ranges[:, 1]).any():
            raise ValueError(f"{where}: aspect_ratio={list(a['aspect_ratio'])} must be [min, max] ranges with min <= max")
        if a["scaling"][0] > a["scaling"][1]:
            raise ValueError(f"{where}: scaling={list(a['scaling'])} must be [min, max] with 0 <= min <= max")
        if "ltrb" in raw:
            if a["bbox_layout"] is not None:
                raise ValueError(f"{where}: give bbox_layout= or the deprecated ltrb=, not both")
            warnings.warn(f"{where}: ltrb= is deprecated; use bbox_layout='xyXY' (ltrb=True) or 'xyWH'", DeprecationWarning, stacklevel=2)
        if (a["crop_shape"] is None) != (a["input_shape"] is None) and a["crop_shape"] is not None:
            raise ValueError(f"{where}: crop_shape= needs input_shape= (the window is placed in the image)")
        if a["total_num_attempts"] == 0 or a["total_num_attempts"] < -1:
            raise ValueError(f"{where}: total_num_attempts={a['total_num_attempts']} must be > 0 (or -1: no limit)")
        allow = a["allow_no_crop"]
        if a["crop_shape"] is not None:
            for name in ("aspect_ratio", "scaling"):
                if name in raw:
                    raise ValueError(f"{where}: {name}= cannot be combined with crop_shape= (the window's shape is fixed)")
            if "allow_no_crop" in raw and allow:
                raise ValueError(f"{where}: allow_no_crop=True cannot be combined with crop_shape=")
            allow = False
        self.options: list[float | None] = [float(F32(t)) for t in a["thresholds"]] + ([None] if allow else [])
        self.scaling = tuple(F32(v) for v in a["scaling"])
        self.ranges = ranges

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def prepare(
        self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch], layouts: tuple[str, ...]
    ) -> dict[str, Sequence] | None:
        widths = {s.shape[1] for s in inputs[0]}
        if len(widths) > 1:
            raise ValueError(f"fn.random_bbox_crop(): every sample's boxes must have the same number of coordinates; got {sorted(widths)}")
        width = next(iter(widths), 4)
        if width not in (4, 6):
            raise ValueError(f"fn.random_bbox_crop(): boxes have {width} coordinates; 4 (2-D) or 6 (3-D) are supported")
        ndim = width // 2
        self.prepare_ndim(ndim)
        return None

    def prepare_ndim(self, ndim: int) -> None:
        """Per-dimensionality derived values (the layout, fixed aspect ratios); cheap, recomputed per batch."""
        where = "fn.random_bbox_crop()"
        layout = self.args["bbox_layout"] or geo.default_layout(ndim, self.args["ltrb"])
        geo.check_layout(layout, ndim, where)
        self.layout = layout
        shape_layout = self.args["shape_layout"] or "WHD"[:ndim]
        if sorted(shape_layout) != sorted("WHD"[:ndim]):
            raise ValueError(f"{where}: shape_layout={shape_layout!r} must be a permutation of {'WHD'[:ndim]!r}")
        self.shape_perm = [shape_layout.index(c) for c in "WHD"[:ndim]]
        fixed = np.zeros((ndim, ndim), dtype=F32)
        pairs, k = [], 0
        for d0 in range(ndim):
            for d1 in range(d0 + 1, ndim):
                low, high = self.ranges[k]
                pairs.append((d0, d1, low, high))
                if low == high:
                    fixed[d0, d1], fixed[d1, d0] = low, F32(1.0 / low) if low else 0
                k = (k + 1) % len(self.ranges)
        self.fixed_ratios = fixed if (fixed > 0).any() else None
        self.pairs = pairs

    def valid_aspect_ratio(self, shape: np.ndarray) -> np.ndarray:
        """Mask of the (n, ndim) window extents whose pairwise ratios lie in ``aspect_ratio`` (a fixed ratio
        within float32 rounding)."""
        ok = np.ones(len(shape), dtype=bool)
        with np.errstate(divide="ignore", invalid="ignore"):
            for d0, d1, low, high in self.pairs:
                ratio = shape[:, d0] / shape[:, d1]
                if low == high:
                    ok &= np.abs(ratio - low) <= F32(1e-5) * low
                else:
                    ok &= (ratio >= low) & (ratio <= high)
        return ok

    def whd(self, value: Sequence[int], name: str, ndim: int) -> np.ndarray:
        """A per-sample ``crop_shape``/``input_shape`` as an int64 vector in W, H(, D) order."""
        if len(value) != ndim:
            raise ValueError(f"fn.random_bbox_crop(): {name} has {len(value)} values; the boxes are {ndim}-D")
        return np.asarray([value[p] for p in self.shape_perm], dtype=np.int64)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
        coords = inputs[0]
        ndim = coords.shape[1] // 2
        boxes = geo.read_boxes(coords, self.layout)
        lo, hi = boxes[:, 0], boxes[:, 1]
        bad = ~((lo >= 0) & (hi <= 1)).all(axis=1)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"fn.random_bbox_crop(): box {k} {coords[k].tolist()} ({self.layout}) is outside [0, 1]; boxes are "
                "relative coordinates"
            )
        search = _Search(self, s.rng, boxes, args)
        whole = np.stack([np.zeros(ndim, F32), np.ones(ndim, F32)])
        if search.input_shape is not None and search.crop_shape is not None:
            no_crop = (whole, whole * search.input_shape.astype(F32))
        else:
            no_crop = (whole, whole)
        crop, keep, mapped = search.run(no_crop)
        out_boxes = coords.copy() if mapped is None else geo.write_boxes(mapped, self.layout)
        outputs = [crop[0].astype(F32), (crop[1] - crop[0]).astype(F32), out_boxes]
        if len(inputs) > 1:
            labels = inputs[1]
            if len(labels) != len(coords):
                raise ValueError(f"fn.random_bbox_crop(): {len(coords)} boxes but {len(labels)} labels")
            outputs.append(labels[keep])
        if self.args["output_bbox_indices"]:
            outputs.append(keep.astype(np.int32))
        return tuple(outputs)


@register
class SSDRandomCrop(SampleOperator):
    """Deprecated in DALI (use ``fn.random_bbox_crop``): crop an HWC image so that the boxes' IoU with the
    window reaches a threshold drawn from (any, 0.1, 0.3, 0.5, 0.7, 0.9) or leave it uncropped (DALI's
    ``fn.ssd_random_crop``). Outputs the cropped image, the kept ltrb boxes (centre inside the window,
    mapped into it) and their labels."""

    type = "ssd_random_crop"
    INPUTS = (
        sch.Input("image", "An image (HWC, or HW)", None, (2, 3)),
        sch.Input("boxes", "ltrb boxes, relative", ("float32",), (2,)),
        sch.Input("labels", "One int32 label per box", ("int32",), (1, 2)),
    )
    ARGS = (Arg("num_attempts", sch.Int(0), 1, "Candidate windows per drawn threshold"),)
    EXAMPLE = Example(
        inputs=(
            Tensor("uint8", (20, 24, 3), layout="HWC", ragged=(0, 1)),
            Tensor("float32", (0, 4), values=_example_ltrb),
            Tensor("int32", (0,), values=lambda i: np.arange(1 + i % 4, dtype=np.int32)),
        ),
        args={"num_attempts": 5},
        dali="test:tests/operators/test_bbox_crop.py",
    )
    OPTIONS = (-1.0, 0.1, 0.3, 0.5, 0.7, 0.9, None)

    def validate(self) -> None:
        super().validate()
        self.num_outputs = 3

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return layouts[0] if index == 0 else ""

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
        image, boxes, labels = inputs
        rng = s.rng
        n = len(boxes)
        attempts = self.args["num_attempts"]
        while True:
            option = self.OPTIONS[rng.integers(len(self.OPTIONS))]
            if option is None:
                return image, boxes, labels
            if not attempts:
                continue
            draws = (F32(0.3) + rng.random((attempts, 4)) * F32(0.7)).astype(F32)
            for w, h, u, v in draws:
                ratio = w / h
                if ratio < 0.5 or ratio > 2.0:
                    continue
                left = float(u * (F32(1) - w))
                top = float(v * (F32(1) - h))
                right, bottom = left + float(w), top + float(h)
                crop = np.array([[left, top], [right, bottom]], dtype=F32)
                if n and (_ssd_iou(boxes, crop) < F32(option)).any():
                    continue
                xc = 0.5 * (boxes[:, 0].astype(np.float64) + boxes[:, 2])
                yc = 0.5 * (boxes[:, 1].astype(np.float64) + boxes[:, 3])
                kept = np.flatnonzero((xc >= left) & (xc <= right) & (yc >= top) & (yc <= bottom))
                if not len(kept):
                    continue
                if kept[-1] >= len(labels):
                    raise ValueError(f"fn.ssd_random_crop(): box {kept[-1]} is kept but there are {len(labels)} labels")
                minus = np.array([left, top, left, top])
                scale = np.array([float(w), float(h), float(w), float(h)])
                out_boxes = np.clip((boxes[kept].astype(np.float64) - minus) / scale, 0.0, 1.0).astype(F32)
                height, width = image.shape[:2]
                x0, x1 = _llround(left * width), _llround(right * width)
                y0, y1 = _llround(top * height), _llround(bottom * height)
                return image[y0:y1, x0:x1].copy(), out_boxes, labels[kept]


def _llround(value: float) -> int:
    """C's ``llround``: to the nearest integer, halves away from zero."""
    return int(np.floor(abs(value) + 0.5) * np.sign(value))


def _ssd_iou(boxes: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """IoU of ltrb ``boxes`` with the window, in float32 as DALI's ``cpu_iou`` (no special case for 0)."""
    lt = np.maximum(boxes[:, 0:2], crop[0])
    rb = np.minimum(boxes[:, 2:4], crop[1])
    delta = np.maximum(rb - lt, F32(0))
    inter = delta[:, 0] * delta[:, 1]
    area1 = (boxes[:, 3] - boxes[:, 1]) * (boxes[:, 2] - boxes[:, 0])
    area2 = (crop[1, 1] - crop[0, 1]) * (crop[1, 0] - crop[0, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        return (inter / (area1 + area2 - inter)).astype(F32)

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
from pipestate.operators import _bbox_search as search
from pipestate.operators import _box_geometry as geo
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg
from pipestate.rng import Stream

F32 = np.float32


def _example_ltrb(index: int) -> np.ndarray:
    """1..4 valid ltrb boxes in the unit square for the examples."""
    rng = np.random.default_rng(1000 + index)
    lo = rng.uniform(0, 0.7, (1 + index % 4, 2))
    return np.concatenate([lo, lo + rng.uniform(0.05, 0.3, lo.shape)], axis=1).astype(F32)


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
        Arg(
            "aspect_ratio",
            sch.Seq(sch.Float(0.0), min_length=2, broadcast=True),
            (1.0, 1.0),
            "Range of window aspect ratios (2 values, or 6 in 3-D)",
        ),
        Arg(
            "thresholds",
            sch.Seq(sch.Float(0.0, 1.0), min_length=1, broadcast=True),
            (0.0,),
            "Minimum overlap metrics, one drawn per round",
        ),
        Arg(
            "scaling",
            sch.Seq(sch.Float(0.0), length=2),
            (1.0, 1.0),
            "Range [min, max] of the window's extents, relative",
        ),
        Arg("bbox_layout", sch.Str(), None, "Order of the box coordinates (default xyXY / xyzXYZ)"),
        Arg("shape_layout", sch.Str(), None, "Order of crop_shape and input_shape (default WH / WHD)"),
        Arg("ltrb", sch.Bool(), True, "Deprecated: True is bbox_layout xyXY, False xyWH"),
        Arg("num_attempts", sch.Int(1), 1, "Candidate windows per drawn threshold"),
        Arg("total_num_attempts", sch.Int(), -1, "Give up after this many candidates and use the best one (-1: never)"),
        Arg("all_boxes_above_threshold", sch.Bool(), True, "Every box must reach the threshold (False: one box)"),
        Arg("allow_no_crop", sch.Bool(), True, "Not cropping is one more possible outcome"),
        Arg(
            "crop_shape",
            sch.Seq(sch.Int(0), broadcast=True),
            None,
            "Fixed window shape in pixels (needs input_shape)",
            tensor=True,
        ),
        Arg("input_shape", sch.Seq(sch.Int(1), broadcast=True), None, "Shape of the image", tensor=True),
        Arg(
            "bbox_prune_threshold",
            sch.Float(0.0, 1.0),
            None,
            "Keep boxes with at least this fraction of their area inside",
        ),
        Arg("output_bbox_indices", sch.Bool(), False, "Add an output with the indices of the kept boxes"),
        Arg(
            "threshold_type",
            sch.Str(("iou", "overlap")),
            "iou",
            "Overlap metric: iou, or overlap (fraction of the box inside)",
        ),
        Arg("quiet", sch.Bool(), False, "Do not warn when the best window is used instead of a valid one"),
    )
    EXAMPLE = Example(
        inputs=(
            Tensor("float32", (0, 4), values=_example_ltrb),
            Tensor("int32", (0,), values=lambda i: np.arange(1 + i % 4, dtype=np.int32)),
        ),
        args={
            "thresholds": [0.0, 0.1, 0.3],
            "scaling": [0.3, 1.0],
            "aspect_ratio": [0.5, 2.0],
            "bbox_layout": "xyXY",
            "output_bbox_indices": True,
        },
        dali="test:tests/operators/test_bbox_crop.py",
    )

    def validate(self) -> None:
        super().validate()
        a, raw, where = self.args, self.raw_args, "fn.random_bbox_crop()"
        self.num_outputs = 3 + (len(self.inputs) > 1) + a["output_bbox_indices"]
        if len(a["aspect_ratio"]) not in (2, 6):
            raise ValueError(
                f"{where}: aspect_ratio must have 2 values (or 6 for 3-D boxes); got {len(a['aspect_ratio'])}"
            )
        ranges = np.asarray(a["aspect_ratio"], dtype=F32).reshape(-1, 2)
        if (ranges[:, 0] > ranges[:, 1]).any():
            raise ValueError(
                f"{where}: aspect_ratio={list(a['aspect_ratio'])} must be [min, max] ranges with min <= max"
            )
        if a["scaling"][0] > a["scaling"][1]:
            raise ValueError(f"{where}: scaling={list(a['scaling'])} must be [min, max] with 0 <= min <= max")
        if "ltrb" in raw:
            if a["bbox_layout"] is not None:
                raise ValueError(f"{where}: give bbox_layout= or the deprecated ltrb=, not both")
            warnings.warn(
                f"{where}: ltrb= is deprecated; use bbox_layout='xyXY' (ltrb=True) or 'xyWH'",
                DeprecationWarning,
                stacklevel=2,
            )
        if (a["crop_shape"] is None) != (a["input_shape"] is None) and a["crop_shape"] is not None:
            raise ValueError(f"{where}: crop_shape= needs input_shape= (the window is placed in the image)")
        if a["total_num_attempts"] == 0 or a["total_num_attempts"] < -1:
            raise ValueError(f"{where}: total_num_attempts={a['total_num_attempts']} must be > 0 (or -1: no limit)")
        allow = a["allow_no_crop"]
        if a["crop_shape"] is not None:
            for name in ("aspect_ratio", "scaling"):
                if name in raw:
                    raise ValueError(
                        f"{where}: {name}= cannot be combined with crop_shape= (the window's shape is fixed)"
                    )
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
        """Read and check every sample's boxes, then draw and score the first block of candidates of the
        whole batch at once (see ``_bbox_search``); each sample continues from its row."""
        where = "fn.random_bbox_crop()"
        widths = {s.shape[1] for s in inputs[0]}
        if len(widths) > 1:
            raise ValueError(
                f"{where}: every sample's boxes must have the same number of coordinates; got {sorted(widths)}"
            )
        width = next(iter(widths), 4)
        if width not in (4, 6):
            raise ValueError(f"{where}: boxes have {width} coordinates; 4 (2-D) or 6 (3-D) are supported")
        n, ndim = ctx.batch_size, width // 2
        config, layout, perm = self._config(ndim)
        boxes = self._read(list(inputs[0]), layout)
        shapes = {}
        for name in ("input_shape", "crop_shape"):
            if self.args[name] is None or not n:
                continue
            rows = arg_inputs[name] if name in arg_inputs else [self.args[name]] * n
            shapes[name] = np.stack([self.whd(np.asarray(r).reshape(-1).tolist(), name, ndim, perm) for r in rows])
        input_shape, crop_shape = shapes.get("input_shape"), shapes.get("crop_shape")
        rounds = config.rounds(0)
        u = ctx.stream(self.rng_key).uniform(config.words(rounds, crop_shape is not None), np.float32)
        choices, rel, out, usable = search.candidates(config, u, rounds, input_shape, crop_shape)
        padded, valid = search.pad(boxes, ndim)
        metric = search.metrics(config, rel, padded, valid)
        kept = search.keep_masks(config, rel, padded, valid)
        kind, index = search.first_events(config, choices, usable, metric, kept, valid)
        rows = np.arange(n)
        mapped = search.remap_all(padded, rel[rows, index])  # every box in its sample's accepted window
        chosen = kept[rows, index]
        per_sample = []
        for i in range(n):
            if kind[i] == 1:  # decided by the first block: this window and its boxes
                keep = np.flatnonzero(chosen[i, : len(boxes[i])])
                decided = ("window", out[i, index[i]], keep, mapped[i, keep])
            elif kind[i] == 2:
                decided = ("no_crop",)
            else:
                decided = ("search", (choices[i], rel[i], out[i], usable[i], metric[i]))
            sizes = (None if input_shape is None else input_shape[i], None if crop_shape is None else crop_shape[i])
            per_sample.append((config, layout, boxes[i], *sizes, decided))
        return {"_search": per_sample}

    def _config(self, ndim: int) -> tuple[search.Config, str, list[int]]:
        """The search configuration, box layout and shape permutation for boxes of ``ndim`` dimensions."""
        a, where = self.args, "fn.random_bbox_crop()"
        layout = a["bbox_layout"] or geo.default_layout(ndim, a["ltrb"])
        geo.check_layout(layout, ndim, where)
        shape_layout = a["shape_layout"] or "WHD"[:ndim]
        if sorted(shape_layout) != sorted("WHD"[:ndim]):
            raise ValueError(f"{where}: shape_layout={shape_layout!r} must be a permutation of {'WHD'[:ndim]!r}")
        fixed = np.zeros((ndim, ndim), dtype=F32)
        pairs, k = [], 0
        for d0 in range(ndim):
            for d1 in range(d0 + 1, ndim):
                low, high = self.ranges[k]
                pairs.append((d0, d1, low, high))
                if low == high:
                    fixed[d0, d1], fixed[d1, d0] = low, F32(1.0 / low) if low else 0
                k = (k + 1) % len(self.ranges)
        config = search.Config(
            ndim=ndim,
            options=tuple(self.options),
            attempts=min(a["num_attempts"], search.MAX_ROUND_ATTEMPTS),
            total=a["total_num_attempts"],
            scaling=self.scaling,
            pairs=tuple(pairs),
            fixed=fixed if (fixed > 0).any() else None,
            overlap=a["threshold_type"] == "overlap",
            all_boxes=a["all_boxes_above_threshold"],
            prune=a["bbox_prune_threshold"],
            quiet=a["quiet"],
        )
        return config, layout, [shape_layout.index(c) for c in "WHD"[:ndim]]

    @staticmethod
    def _read(samples: list[np.ndarray], layout: str) -> list[np.ndarray]:
        """The samples' boxes as (n, 2, ndim) start/end corners.

        Raises:
            ValueError: a box outside [0, 1] (naming the sample and the box).
        """
        boxes = [geo.read_boxes(coords, layout) for coords in samples]
        every = np.concatenate(boxes) if boxes else np.empty((0, 2, 1), F32)
        if ((every[:, 0] < 0) | (every[:, 1] > 1)).any():
            for index, (coords, b) in enumerate(zip(samples, boxes)):
                bad = np.flatnonzero(((b[:, 0] < 0) | (b[:, 1] > 1)).any(axis=1))
                if len(bad):
                    raise ValueError(
                        f"fn.random_bbox_crop(): sample {index}: box {bad[0]} {coords[bad[0]].tolist()} ({layout}) is "
                        "outside [0, 1]; boxes are relative coordinates"
                    )
        return boxes

    @staticmethod
    def whd(value: Sequence[int], name: str, ndim: int, perm: Sequence[int]) -> np.ndarray:
        """A ``crop_shape``/``input_shape`` as an int64 vector in W, H(, D) order (``perm``: from shape_layout)."""
        if len(value) != ndim:
            raise ValueError(f"fn.random_bbox_crop(): {name} has {len(value)} values; the boxes are {ndim}-D")
        return np.asarray([value[p] for p in perm], dtype=np.int64)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
        coords = inputs[0]
        config, layout, boxes, input_shape, crop_shape, decided = args["_search"]
        ndim = config.ndim
        if len(inputs) > 1 and len(inputs[1]) != len(coords):
            raise ValueError(f"fn.random_bbox_crop(): {len(coords)} boxes but {len(inputs[1])} labels")
        if decided[0] == "window":
            result = decided[1:]
        elif decided[0] == "no_crop":
            result = None
        else:
            result = search.Search(config, boxes, input_shape, crop_shape).run(
                decided[1], Stream(self.rng_key, s.id, 1)
            )
        if result is None:  # no crop: the whole image, every box as given
            whole = np.ones(ndim, dtype=F32) if crop_shape is None else input_shape.astype(F32)
            crop, keep, out_boxes = np.stack([np.zeros(ndim, F32), whole]), np.arange(len(coords)), coords.copy()
        else:
            crop, keep, mapped = result
            out_boxes = geo.write_boxes(mapped, layout)
        outputs = [crop[0].astype(F32), (crop[1] - crop[0]).astype(F32), out_boxes]
        if len(inputs) > 1:
            outputs.append(inputs[1][keep])
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
    ARGS = (
        Arg(
            "num_attempts",
            sch.Int(1),
            1,
            "Candidate windows per drawn threshold (more than 1024 act as 1024, then a new threshold is drawn)",
        ),
    )
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
        attempts = min(self.args["num_attempts"], search.MAX_ROUND_ATTEMPTS)
        while True:
            option = self.OPTIONS[rng.integers(len(self.OPTIONS))]
            if option is None:
                return image, boxes, labels
            for w, h, u, v in _ssd_draws(rng, attempts):
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


def _ssd_draws(rng: np.random.Generator, attempts: int):
    """``attempts`` candidate (w, h, u, v) draws, in chunks (w, h uniform in [0.3, 1))."""
    while attempts > 0:
        n = min(attempts, 64)
        attempts -= n
        yield from (F32(0.3) + rng.random((n, 4)) * F32(0.7)).astype(F32)


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

"""``fn.segmentation.*``: ``select_masks`` (COCO polygons by mask id), ``random_mask_pixel`` and
``random_object_bbox`` (random points and object boxes of segmentation masks).

The random operators draw only from each sample's own generator (``Sample.rng``): restores, threads and
prefetching never change their output. Connected blobs are found with SciPy (``scipy.ndimage.label``, face
connectivity, as DALI's labeling); SciPy comes with the ``image`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.graph import DataNode
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg


def _ndimage() -> Any:
    try:
        import scipy.ndimage
    except ImportError:  # pragma: no cover - the image extra installs it
        raise ImportError(
            "fn.segmentation.random_object_bbox finds blobs with SciPy: pip install 'pipestate[image]'"
        ) from None
    return scipy.ndimage


def _example_polygons(index: int) -> tuple[np.ndarray, np.ndarray]:
    """(polygons, vertices) of 3 masks with 1..2 polygons each, for the examples."""
    counts = [3 + (index + k) % 3 for k in range(4)]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    polygons = np.array([[k % 3, s, s + c] for k, (s, c) in enumerate(zip(starts, counts))], dtype=np.int32)
    vertices = (np.arange(sum(counts) * 2, dtype=np.float32).reshape(-1, 2) + index) / 10
    return polygons, vertices


@register
class SelectMasks(SampleOperator):
    """Keep the polygons of the masks listed in ``mask_ids`` (DALI's ``fn.segmentation.select_masks``).

    Outputs follow the order of ``mask_ids``, with the vertices renumbered; as in DALI, a mask id keeps
    only its last polygon (COCO masks of several polygons keep their last one).
    """

    type = "segmentation.select_masks"
    INPUTS = (
        sch.Input("mask_ids", "Ids of the masks to keep (no duplicates)", ("int32",), (1,)),
        sch.Input("polygons", "Rows of [mask_id, start_vertex, end_vertex)", ("int32",), (2,)),
        sch.Input("vertices", "Rows of vertex coordinates", None, (2,)),
    )
    ARGS = (Arg("reindex_masks", sch.Bool(), False, "Replace the mask ids by their index in mask_ids"),)
    EXAMPLE = Example(
        inputs=(
            Tensor("int32", (0,), values=lambda i: [[2, 0], [1], [0, 1, 2]][i % 3]),
            Tensor("int32", (0, 3), values=lambda i: _example_polygons(i)[0]),
            Tensor("float32", (0, 2), values=lambda i: _example_polygons(i)[1]),
        ),
        args={"reindex_masks": True},
    )

    def validate(self) -> None:
        super().validate()
        self.num_outputs = 2

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
        mask_ids, polygons, vertices = inputs
        where = f"fn.{self.type}()"
        if polygons.shape[1] != 3:
            raise ValueError(f"{where}: polygons must have 3 columns (mask_id, start, end); got {polygons.shape[1]}")
        chosen: dict[int, list[int]] = {}
        for k, mask_id in enumerate(mask_ids.tolist()):
            if mask_id in chosen:
                raise ValueError(f"{where}: mask_ids must not repeat a value; {mask_id} is repeated")
            chosen[mask_id] = [k if self.args["reindex_masks"] else mask_id, -1, -1]
        n_vertices = len(vertices)
        for mask_id, start, end in polygons.tolist():
            entry = chosen.get(mask_id)
            if entry is None:
                continue
            if start < 0 or end > n_vertices:
                raise ValueError(
                    f"{where}: the vertex range [{start}, {end}) of mask id {mask_id} is outside the "
                    f"{n_vertices} vertices"
                )
            if end < start:
                raise ValueError(
                    f"{where}: the vertex range [{start}, {end}) of mask id {mask_id} ends before it starts"
                )
            entry[1], entry[2] = start, end  # a later polygon of the same mask replaces it, as in DALI
        out_polygons = np.empty((len(chosen), 3), dtype=np.int32)
        pieces = []
        at = 0
        for k, (mask_id, (new_id, start, end)) in enumerate(chosen.items()):
            if start == -1 and end == -1:
                raise ValueError(f"{where}: mask id {mask_id} is selected but no polygon has it")
            out_polygons[k] = (new_id, at, at + end - start)
            pieces.append(vertices[start:end])
            at += end - start
        out_vertices = np.concatenate(pieces) if pieces else np.empty((0, vertices.shape[1]), dtype=vertices.dtype)
        return out_polygons, out_vertices


_MASK_TYPES = ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32")


@register
class RandomMaskPixel(SampleOperator):
    """A random pixel position of a mask (int64, one coordinate per dimension): uniform among the foreground
    pixels (value ``> threshold``, or ``== value``) when ``foreground`` is non-zero and there are any, else
    uniform over the whole mask (DALI's ``fn.segmentation.random_mask_pixel``)."""

    type = "segmentation.random_mask_pixel"
    INPUTS = (sch.Input("mask", "A mask of any shape", _MASK_TYPES),)
    ARGS = (
        Arg("value", sch.Int(), None, "Foreground pixels equal this value (not with threshold)", tensor=True),
        Arg("threshold", sch.Float(), 0.0, "Foreground pixels are above this value", tensor=True),
        Arg("foreground", sch.Int(), 0, "Non-zero: pick a foreground pixel; 0: any pixel", tensor=True),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (6, 5), ragged=(0, 1), low=0, high=3),),
        arg_inputs={"foreground": Tensor("int32", (), values=lambda i: (i + 1) % 3)},
        args={"threshold": 1.5},
        dali="test:tests/operators/test_segmentation.py",
    )

    def validate(self) -> None:
        super().validate()
        if self.args["value"] is not None and "threshold" in self.raw_args:
            raise TypeError(f"fn.{self.type}(): value= and threshold= cannot be given together; choose one")

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (mask,) = inputs
        if mask.size == 0:
            raise ValueError(f"fn.{self.type}(): the mask of sample {s.index} is empty ({mask.shape})")
        rng = s.rng
        if args["foreground"]:
            if args["value"] is not None:
                value = args["value"]
                # a value the mask's type cannot hold selects no pixel (DALI then picks any pixel)
                fits = np.can_cast(np.min_scalar_type(value), mask.dtype) or mask.dtype.kind == "f"
                flat = np.flatnonzero(mask == value) if fits else np.empty(0, np.int64)
            else:
                flat = np.flatnonzero(mask.astype(np.float32) > np.float32(args["threshold"]))
            if len(flat):
                index = flat[rng.integers(len(flat))]
                return np.asarray(np.unravel_index(index, mask.shape), dtype=np.int64)
        return np.asarray([rng.integers(extent) for extent in mask.shape], dtype=np.int64)


_FORMATS = ("anchor_shape", "start_end", "box")


def _labels_present(mask: np.ndarray) -> set[int]:
    """The labels occurring in ``mask``: one vectorized comparison per value when the values span a short
    range (segmentation maps have few labels), a histogram for 8- and 16-bit masks, a sort otherwise."""
    if not mask.size:
        return set()
    low, high = int(mask.min()), int(mask.max())
    if high - low < 32:
        return {v for v in range(low, high + 1) if (mask == v).any()}
    if mask.dtype.kind in "bu" and mask.dtype.itemsize <= 2:
        return set(np.flatnonzero(np.bincount(mask.reshape(-1))).tolist())
    return set(np.unique(mask).tolist())


def _unused_label(classes: list[int]) -> int:
    """DALI's background when the default one (0) is a class: one below the smallest class, or (when that
    would leave int32) the largest int32 not among the classes."""
    if min(classes) > -(2**31):
        return min(classes) - 1
    label, taken = 2**31 - 1, set(classes)
    while label in taken:
        label -= 1
    return label


@register
class RandomObjectBBox(SampleOperator):
    """The bounding box of a random object (a connected blob of one label) of a segmentation mask (DALI's
    ``fn.segmentation.random_object_bbox``).

    With probability ``foreground_prob`` a class is drawn (uniformly among the labels present, or by
    ``class_weights``), then one of its blobs (among the ``k_largest``, above ``threshold``); a class
    without a suitable blob is dropped and another drawn. Otherwise, or when no blob qualifies, the box is
    the whole mask. Outputs (int32): ``anchor, shape`` / ``start, end`` / one ``box`` (``format``), plus the
    class label (``output_class``; the background label for a whole-mask box).
    """

    type = "segmentation.random_object_bbox"
    INPUTS = (
        sch.Input(
            "mask",
            "A labeled segmentation map",
            ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32"),
            (1, 2, 3, 4, 5, 6),
        ),
    )
    ARGS = (
        Arg("ignore_class", sch.Bool(), False, "Pick among all blobs alike, whatever their class"),
        Arg("output_class", sch.Bool(), False, "Add an output with the selected class label"),
        Arg("foreground_prob", sch.Float(0.0, 1.0), 1.0, "Probability of picking an object box", tensor=True),
        Arg("classes", sch.Seq(sch.Int(), broadcast=True), None, "Labels considered foreground", tensor=True),
        Arg("background", sch.Int(), None, "Background label (default 0, or a value not in classes)", tensor=True),
        Arg(
            "class_weights",
            sch.Seq(sch.Float(0.0), broadcast=True),
            None,
            "Relative probabilities of the classes",
            tensor=True,
        ),
        Arg("k_largest", sch.Int(1), None, "Only the k largest blobs (by volume) are candidates"),
        Arg(
            "threshold",
            sch.Seq(sch.Int(), broadcast=True),
            None,
            "Per-axis minimum size of a candidate blob",
            tensor=True,
        ),
        Arg("format", sch.Str(_FORMATS), "anchor_shape", "Output format: anchor_shape, start_end or box"),
        Arg("cache_objects", sch.Bool(), False, "Accepted for DALI compatibility (blobs are found again each time)"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (12, 10), ragged=(0, 1), low=0, high=2.6),),
        arg_inputs={"foreground_prob": Tensor("float32", (), low=0.3, high=1)},
        args={"output_class": True, "k_largest": 3, "format": "box"},
        dali="test:tests/operators/test_segmentation.py",
    )

    def validate(self) -> None:
        super().validate()
        a = self.args
        self.num_outputs = 1 + (a["format"] != "box") + a["output_class"]
        if a["ignore_class"] and (a["classes"] is not None or a["class_weights"] is not None or a["output_class"]):
            raise TypeError(
                f"fn.{self.type}(): ignore_class=True cannot be combined with classes=, class_weights= or "
                "output_class=True"
            )
        classes, weights = a["classes"], a["class_weights"]
        if classes is not None and weights is not None and not isinstance(classes, DataNode):
            if not isinstance(weights, DataNode) and len(classes) != len(weights):
                raise ValueError(
                    f"fn.{self.type}(): classes has {len(classes)} labels but class_weights has {len(weights)} weights"
                )

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def prepare(
        self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch], layouts: tuple[str, ...]
    ) -> dict[str, Sequence] | None:
        _ndimage()
        return None

    def _classes(self, args: Mapping[str, Any]) -> tuple[int, list[int] | None, list[float] | None]:
        """(background, classes, weights) for a sample, as DALI resolves them."""
        where = f"fn.{self.type}()"
        explicit_bg = args["background"] is not None
        background = args["background"] if explicit_bg else 0
        if self.args["ignore_class"]:
            return background, None, None
        classes = list(args["classes"]) if args["classes"] is not None else None
        weights = list(args["class_weights"]) if args["class_weights"] is not None else None
        if classes is not None:
            if weights is not None and len(weights) != len(classes):
                raise ValueError(f"{where}: classes has {len(classes)} labels but class_weights has {len(weights)}")
            if background in classes:
                if explicit_bg:
                    raise ValueError(
                        f"{where}: class label {background} is also the background label; choose another background= "
                        "or remove it from classes="
                    )
                background = _unused_label(classes)
            if weights is None:
                weights = [1.0] * len(classes)
        elif weights is not None:
            classes, label = [], 0
            for _ in weights:
                if label == background:
                    label += 1
                classes.append(label)
                label += 1
        return background, classes, weights

    def _boxes(self, mask: np.ndarray, label: int | None, background: int) -> np.ndarray:
        """The (n, 2, ndim) (start, end) boxes of the blobs of ``label`` (every non-background label if None)."""
        ndimage = _ndimage()
        targets = [label] if label is not None else sorted(_labels_present(mask) - {background})
        boxes = []
        for value in targets:
            blobs, count = ndimage.label(mask == value)
            for slices in ndimage.find_objects(blobs, count):
                boxes.append([[sl.start for sl in slices], [sl.stop for sl in slices]])
        return np.asarray(boxes, dtype=np.int64).reshape(-1, 2, mask.ndim)

    def _pick(self, boxes: np.ndarray, args: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray | None:
        if args["threshold"] is not None and len(boxes):
            threshold = np.broadcast_to(np.asarray(args["threshold"]), boxes.shape[2:])
            boxes = boxes[~((boxes[:, 1] - boxes[:, 0]) < threshold).any(axis=1)]
        n = len(boxes)
        if not n:
            return None
        k = self.args["k_largest"]
        if k is not None and k < n:
            volume = np.prod(boxes[:, 1] - boxes[:, 0], axis=1)
            order = np.lexsort((np.arange(n), -volume))
            return boxes[order[rng.integers(k)]]
        return boxes[rng.integers(n)]

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
        (mask,) = inputs
        rng = s.rng
        background, classes, weights = self._classes(args)
        box, label = None, background
        if rng.random() < args["foreground_prob"]:
            if self.args["ignore_class"]:
                box = self._pick(self._boxes(mask, None, background), args, rng)
            else:
                present = _labels_present(mask) - {background}
                if classes is None:
                    classes, weights = sorted(present), [1.0] * len(present)
                weights = [w if c in present else 0.0 for c, w in zip(classes, weights)]
                while sum(weights) > 0:
                    cdf = np.cumsum(weights)
                    k = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(cdf) - 1)
                    box = self._pick(self._boxes(mask, classes[k], background), args, rng)
                    if box is not None:
                        label = classes[k]
                        break
                    weights[k] = 0.0
        if box is None:
            box, label = np.array([[0] * mask.ndim, list(mask.shape)]), background
        start, end = box.astype(np.int32)
        fmt = self.args["format"]
        outputs = (
            [np.concatenate([start, end])] if fmt == "box" else [start, end - start if fmt == "anchor_shape" else end]
        )
        if self.args["output_class"]:
            outputs.append(np.asarray(label, dtype=np.int32))
        return tuple(outputs)

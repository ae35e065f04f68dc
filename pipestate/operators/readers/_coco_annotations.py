"""COCO annotation files parsed once into flat arrays (one row per kept annotation, offsets per sample).

DALI's COCO loader rules: images ordered by id (or as listed by ``images``), category ids mapped to 1..N in
the order of the ``categories`` list (``avoid_class_remapping``: kept), annotations in file order, those
narrower or lower than ``size_threshold`` pixels left out (and crowd annotations without
``include_iscrowd``), images without annotations left out with ``skip_empty``. Coordinates are float32;
``ltrb`` and ``ratio`` are applied in float32 in DALI's order.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

F32 = np.float32


@dataclasses.dataclass
class CocoIndex:
    """The samples of a COCO reader, flat.

    Attributes:
        paths: Image file path of each sample.
        image_ids: int32 image id of each sample.
        sizes: (n, 2) int64 (height, width) of each sample's image, from the annotation file.
        box_offsets: (n + 1,) offsets of each sample's rows in ``boxes``/``labels``/``segmentations``.
        boxes: (A, 4) float32 boxes.
        labels: (A,) int32 labels.
        poly_offsets: (n + 1,) offsets of each sample's rows in ``polygons``.
        polygons: (P, 3) int32 ``[mask index, start, end)`` rows, indices relative to the sample's vertices.
        vertex_offsets: (n + 1,) offsets of each sample's rows in ``vertices``.
        vertices: (V, 2) float32 vertices.
        segmentations: The raw ``segmentation`` of each annotation (for pixelwise masks), or ``None``.
    """

    paths: list[str]
    image_ids: np.ndarray
    sizes: np.ndarray
    box_offsets: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    poly_offsets: np.ndarray
    polygons: np.ndarray
    vertex_offsets: np.ndarray
    vertices: np.ndarray
    segmentations: list[Any] | None


def _load(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"fn.readers.coco(): annotations_file {path!r} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"fn.readers.coco(): annotations_file {path!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"fn.readers.coco(): annotations_file {path!r} has no 'images' list (not a COCO file)")
    return data


def parse(
    annotations_file: str,
    file_root: str,
    *,
    images: Sequence[str] | None = None,
    skip_empty: bool = False,
    size_threshold: float = 0.1,
    include_iscrowd: bool = True,
    ltrb: bool = False,
    ratio: bool = False,
    polygons: bool = False,
    coordinate_indices: bool = False,
    avoid_class_remapping: bool = False,
    keep_segmentations: bool = False,
) -> CocoIndex:
    """Parse ``annotations_file`` into a :class:`CocoIndex` (see the module documentation).

    Args:
        polygons: Collect polygon masks (``polygon_masks`` / ``masks``).
        coordinate_indices: Polygon rows index coordinates (2 per vertex) instead of vertices (``masks``).
        keep_segmentations: Keep each annotation's raw segmentation (``pixelwise_masks``).

    Raises:
        FileNotFoundError / ValueError: the file is missing, not JSON, or not COCO (naming the field).
    """
    where = f"fn.readers.coco(): {annotations_file!r}"
    data = _load(annotations_file)
    try:
        categories = [int(c["id"]) for c in data.get("categories", [])]
        records = sorted(
            (int(im["id"]), str(im["file_name"]), int(im["height"]), int(im["width"])) for im in data["images"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: an image or category entry lacks a valid {exc} field") from None
    label_of = {cid: (cid if avoid_class_remapping else k + 1) for k, cid in enumerate(categories)}
    by_id = {rec[0]: k for k, rec in enumerate(records)}
    per_image: list[list[tuple]] = [[] for _ in records]  # (box, label, segmentation)
    threshold = F32(size_threshold)
    for ann in data.get("annotations", []):
        try:
            k = by_id.get(int(ann["image_id"]))
            if k is None:
                continue
            box = np.asarray(ann["bbox"], dtype=F32)
            category = int(ann["category_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: annotation {ann.get('id')!r} lacks a valid {exc} field") from None
        if box.shape != (4,) or box[2] < threshold or box[3] < threshold:
            continue
        if not include_iscrowd and ann.get("iscrowd", 0):
            continue
        if category not in label_of:
            raise ValueError(f"{where}: annotation {ann.get('id')!r} has category_id {category}, not in 'categories'")
        per_image[k].append((box, label_of[category], ann.get("segmentation")))
    if images is not None:
        by_name = {rec[1]: k for k, rec in enumerate(records)}
        missing = [name for name in images if name not in by_name]
        if missing:
            raise ValueError(f"{where}: images= names {missing[:3]} that the annotations file does not list")
        order = [by_name[name] for name in images]
    else:
        order = list(range(len(records)))
    if skip_empty:
        order = [k for k in order if per_image[k]]
    return _flatten(records, per_image, order, file_root, ltrb, ratio, polygons, coordinate_indices, keep_segmentations)


def _flatten(
    records: list[tuple[int, str, int, int]],
    per_image: list[list[tuple]],
    order: list[int],
    file_root: str,
    ltrb: bool,
    ratio: bool,
    polygons: bool,
    coordinate_indices: bool,
    keep_segmentations: bool,
) -> CocoIndex:
    boxes, labels, polys, verts, segs = [], [], [], [], []
    box_off, poly_off, vert_off = [0], [0], [0]
    for k in order:
        _, _, height, width = records[k]
        w, h = F32(width), F32(height)
        n_vert = 0
        for mask, (box, label, segmentation) in enumerate(per_image[k]):
            box = box.copy()
            if ltrb:
                box[2] += box[0]
                box[3] += box[1]
            if ratio:
                box /= np.array([w, h, w, h], dtype=F32)
            boxes.append(box)
            labels.append(label)
            if keep_segmentations:
                segs.append(segmentation)
            if polygons and isinstance(segmentation, list):
                for poly in segmentation:
                    xy = np.asarray(poly, dtype=F32).reshape(-1, 2)
                    if ratio:
                        xy = xy / np.array([w, h], dtype=F32)
                    scale = 2 if coordinate_indices else 1
                    polys.append((mask, n_vert * scale, (n_vert + len(xy)) * scale))
                    verts.append(xy)
                    n_vert += len(xy)
        box_off.append(len(boxes))
        poly_off.append(len(polys))
        vert_off.append(vert_off[-1] + n_vert)
    return CocoIndex(
        paths=[os.path.join(file_root, records[k][1]) for k in order],
        image_ids=np.asarray([records[k][0] for k in order], dtype=np.int32),
        sizes=np.asarray([[records[k][2], records[k][3]] for k in order], dtype=np.int64).reshape(-1, 2),
        box_offsets=np.asarray(box_off, dtype=np.int64),
        boxes=np.asarray(boxes, dtype=F32).reshape(-1, 4),
        labels=np.asarray(labels, dtype=np.int32),
        poly_offsets=np.asarray(poly_off, dtype=np.int64),
        polygons=np.asarray(polys, dtype=np.int32).reshape(-1, 3),
        vertex_offsets=np.asarray(vert_off, dtype=np.int64),
        vertices=np.concatenate(verts).astype(F32) if verts else np.empty((0, 2), dtype=F32),
        segmentations=segs if keep_segmentations else None,
    )

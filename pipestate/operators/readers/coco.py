"""``fn.readers.coco``: COCO images (encoded bytes) with their boxes, labels, masks and image ids.

The annotation file is parsed once, at build, into flat arrays (``_coco_annotations``); a batch reads its
image files and slices those arrays. Sharding, shuffling and padding are the file reader's (``_base``): the
state is a position, restored in O(1).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators.base import BuildEnv, RunContext, register
from pipestate.operators.example import Example
from pipestate.operators.readers import _coco_annotations, _coco_masks, _files
from pipestate.operators.readers._base import Reader, shard_args
from pipestate.operators.readers.file import read_samples
from pipestate.operators.schema import Arg
from pipestate.rng import derive_key

_UNSUPPORTED = (
    "preprocessed_annotations",
    "meta_files_path",
    "save_preprocessed_annotations_dir",
    "dump_meta_files_path",
)


@register
class CocoReader(Reader):
    """Read a COCO dataset: a directory of images and a JSON annotation file (DALI's ``fn.readers.coco``).

    Outputs: ``images`` (the encoded files, 1-D uint8), ``bboxes`` (float32 ``[x, y, w, h]`` rows, or
    ``[l, t, r, b]`` with ``ltrb``; relative with ``ratio``), ``labels`` (int32), then ``polygons`` (int32
    ``[mask, start, end)`` rows) and ``vertices`` (float32 ``[x, y]`` rows) with ``polygon_masks``, or
    ``pixelwise_masks`` (int32 HW1 label maps) with ``pixelwise_masks``, then ``image_ids`` (int32, one
    per sample) with ``image_ids``.

    Raises:
        ValueError / TypeError: invalid or conflicting arguments (at definition); a missing or malformed
            annotation file (at build, naming it).
    """

    type = "readers.coco"
    EXAMPLE = Example(
        setup="tests.operators.readers.coco_data:example_dataset",
        args={
            "polygon_masks": True,
            "image_ids": True,
            "ltrb": True,
            "ratio": True,
            "random_shuffle": True,
            "initial_fill": 4,
        },
        dali="test:tests/operators/readers/test_coco.py",
    )
    ARGS = (
        Arg("file_root", sch.Path(), None, "Directory the image file names are relative to"),
        Arg("annotations_file", sch.Path(), None, "The COCO JSON annotation file"),
        Arg(
            "images",
            sch.Seq(sch.Str(), min_length=1, broadcast=True),
            None,
            "Image file names to read, in this order (default: all, by id)",
        ),
        Arg("ltrb", sch.Bool(), False, "Boxes as [left, top, right, bottom] (default [x, y, width, height])"),
        Arg("ratio", sch.Bool(), False, "Box and polygon coordinates relative to the image size"),
        Arg("skip_empty", sch.Bool(), False, "Leave out images without any (kept) annotation"),
        Arg("size_threshold", sch.Float(), 0.1, "Leave out annotations narrower or lower than this (pixels)"),
        Arg("include_iscrowd", sch.Bool(), True, "Keep annotations marked iscrowd=1"),
        Arg(
            "avoid_class_remapping", sch.Bool(), False, "Labels are the category ids (default: 1..N in category order)"
        ),
        Arg("polygon_masks", sch.Bool(), False, "Output the mask polygons (polygons, vertices)"),
        Arg("masks", sch.Bool(), False, "Deprecated: polygons indexing coordinates (2 per vertex) instead of vertices"),
        Arg("pixelwise_masks", sch.Bool(), False, "Output the masks as int32 label maps (H, W, 1)"),
        Arg("image_ids", sch.Bool(), False, "Output each image's id"),
        Arg("save_img_ids", sch.Bool(), None, "Deprecated alias of image_ids"),
        Arg("shuffle_after_epoch_seed", sch.Int(0, 2**63 - 1), None, "Seed of the shuffle_after_epoch permutation"),
        Arg("preprocessed_annotations", sch.Path(), None, "DALI's binary preprocessed annotations (not supported)"),
        Arg("meta_files_path", sch.Path(), None, "Deprecated alias of preprocessed_annotations (not supported)"),
        Arg("save_preprocessed_annotations", sch.Bool(), False, "Write DALI's binary annotations (not supported)"),
        Arg("save_preprocessed_annotations_dir", sch.Path(), None, "Where to write them (not supported)"),
        Arg("dump_meta_files", sch.Bool(), None, "Deprecated alias of save_preprocessed_annotations (not supported)"),
        Arg("dump_meta_files_path", sch.Path(), None, "Deprecated alias of save_preprocessed_annotations_dir"),
        *shard_args(),
    )

    def validate(self) -> None:
        super().validate()
        a, where = self.args, "fn.readers.coco()"
        if a["file_root"] is None:
            raise TypeError(f"{where} needs file_root= (the directory of the images)")
        if a["annotations_file"] is None:
            raise TypeError(f"{where} needs annotations_file= (the COCO JSON file)")
        for name in _UNSUPPORTED:
            if a[name] is not None:
                raise ValueError(
                    f"{where}: {name}= (DALI's binary preprocessed annotations) is not supported; pipestate parses "
                    "annotations_file once when the pipeline is built"
                )
        if a["save_preprocessed_annotations"] or a["dump_meta_files"]:
            raise ValueError(
                f"{where}: save_preprocessed_annotations= is not supported (the JSON is parsed once at build)"
            )
        self.polygons = a["polygon_masks"] or a["masks"]
        if self.polygons and a["pixelwise_masks"]:
            raise ValueError(f"{where}: polygon_masks= (or masks=) and pixelwise_masks= cannot be combined; choose one")
        self.with_ids = a["image_ids"] or bool(a["save_img_ids"])
        self.num_outputs = 3 + 2 * self.polygons + a["pixelwise_masks"] + self.with_ids

    def setup(self, env: BuildEnv) -> None:
        super().setup(env)
        seed = self.args["shuffle_after_epoch_seed"]
        if seed is not None:
            self.shuffle = dataclasses.replace(self.shuffle, key=derive_key("reader-seed", int(seed)))

    def discover(self) -> tuple[int, Iterable[bytes]]:
        a = self.args
        self.index = _coco_annotations.parse(
            a["annotations_file"],
            a["file_root"],
            images=a["images"],
            skip_empty=a["skip_empty"],
            size_threshold=a["size_threshold"],
            include_iscrowd=a["include_iscrowd"],
            ltrb=a["ltrb"],
            ratio=a["ratio"],
            polygons=self.polygons,
            coordinate_indices=a["masks"] and not a["polygon_masks"],
            avoid_class_remapping=a["avoid_class_remapping"],
            keep_segmentations=a["pixelwise_masks"],
        )
        idx = self.index
        if not idx.paths:
            raise ValueError(
                f"fn.readers.coco(): {a['annotations_file']!r} lists no images"
                + (" with annotations (skip_empty=True)" if a["skip_empty"] else "")
            )
        listing = [
            _files.encode_paths(idx.paths),
            idx.image_ids.tobytes(),
            idx.box_offsets.tobytes(),
            idx.boxes.tobytes(),
            idx.labels.tobytes(),
        ]
        if self.polygons:
            listing += [idx.polygons.tobytes(), idx.vertices.tobytes()]
        return len(idx.paths), listing

    def read(self, ctx: RunContext, indices: list[int]) -> tuple[Batch, ...]:
        idx = self.index
        images = self.read_chunks(ctx, lambda chunk: read_samples(idx.paths, None, chunk), indices)
        bo = idx.box_offsets
        outputs = [
            Batch(images),
            Batch([idx.boxes[bo[i] : bo[i + 1]] for i in indices]),
            Batch([idx.labels[bo[i] : bo[i + 1]] for i in indices]),
        ]
        if self.polygons:
            po, vo = idx.poly_offsets, idx.vertex_offsets
            outputs.append(Batch([idx.polygons[po[i] : po[i + 1]] for i in indices]))
            outputs.append(Batch([idx.vertices[vo[i] : vo[i + 1]] for i in indices]))
        if self.args["pixelwise_masks"]:
            masks = ctx.map(self._pixelwise, indices)
            outputs.append(Batch(masks, layout="HWC"))
        if self.with_ids:
            outputs.append(Batch(idx.image_ids[indices].reshape(-1, 1)))
        return tuple(outputs)

    def _pixelwise(self, i: int) -> np.ndarray:
        idx = self.index
        height, width = (int(v) for v in idx.sizes[i])
        bo = idx.box_offsets
        segmentations = idx.segmentations[bo[i] : bo[i + 1]]
        labels = idx.labels[bo[i] : bo[i + 1]]
        where = os.path.basename(idx.paths[i])
        return _coco_masks.label_map(segmentations, labels, height, width, where)

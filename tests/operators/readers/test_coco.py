"""fn.readers.coco against DALI's reader on generated COCO datasets: the same samples in the same order with
the same reader_meta for every shard_id/num_shards/stick_to_shard/pad_last_batch combination, and the same
boxes, labels, polygons, vertices, pixelwise masks and image ids for each option; restores read nothing
before the position; malformed annotation files are clear errors naming the file."""

from __future__ import annotations

import itertools
import json
import math
import os

import numpy as np
import pytest

from pipestate import fn, pipeline_def
from pipestate.operators.readers import _coco_masks
from tests.operators.readers.coco_data import write_coco

SLOW = os.environ.get("PIPESTATE_SLOW") == "1"  # batch sizes 1, 3, 4 (a sample by default)
dali = pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_coco(os.fspath(tmp_path_factory.mktemp("coco")), n_images=13, seed=1)


def run(library, args, batch_size, iters, **kwargs):
    """(reader_meta, batches as lists of per-output sample arrays) of ``library``'s COCO reader."""
    if library == "dali":
        decorator = dali.pipeline_def(
            batch_size=batch_size, num_threads=1, device_id=None, seed=1, prefetch_queue_depth=1
        )
        readers = dali.fn.readers
    else:
        decorator = pipeline_def(batch_size=batch_size, num_threads=1, seed=1, prefetch_queue_depth=1)
        readers = fn.readers

    @decorator
    def pipe():
        return tuple(readers.coco(**args, name="r", **kwargs))

    p = pipe()
    if library == "dali":
        p.build()
    meta = p.reader_meta("r")
    batches = [[[np.array(out[i]) for i in range(batch_size)] for out in p.run()] for _ in range(iters)]
    if library != "dali":
        p.close()
    return meta, batches


def differences(a, b):
    out = []
    for j, (x, y) in enumerate(zip(a, b)):
        for k, (xo, yo) in enumerate(zip(x, y)):
            for i, (xs, ys) in enumerate(zip(xo, yo)):
                if xs.dtype != ys.dtype or xs.shape != ys.shape or xs.tobytes() != ys.tobytes():
                    out.append(
                        f"iteration {j}, output {k}, sample {i}: {xs.dtype}{xs.shape} vs DALI {ys.dtype}{ys.shape}"
                    )
    return out


OPTIONS = [
    {},
    {"ltrb": True, "ratio": True, "polygon_masks": True, "image_ids": True},
    {"skip_empty": True, "include_iscrowd": False, "masks": True, "image_ids": True},
    {"avoid_class_remapping": True, "size_threshold": 0.01, "polygon_masks": True, "ratio": True},
    {"pixelwise_masks": True, "image_ids": True},
    {"images": ["img_004.jpg", "img_002.jpg", "img_004.jpg", "img_011.jpg"], "image_ids": True, "ltrb": True},
]


@pytest.mark.dali_differential("readers.coco")
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "default")
def test_outputs_equal_dalis(dataset, options):
    meta, ours = run("pipestate", dataset, 3, 6, **options)
    dali_meta, theirs = run("dali", dataset, 3, 6, **options)
    assert meta == dali_meta
    assert not differences(ours, theirs)


SHARD_CONFIGS = [(sid, ns) for ns in (1, 2, 3, 4) for sid in range(ns)]


@pytest.mark.dali_differential("readers.coco")
@pytest.mark.parametrize("batch_size", [1, 3, 4] if SLOW else [3])
def test_same_sequence_and_meta_as_dali_for_every_shard_option(dataset, batch_size):
    failures = []
    for (sid, ns), stick, pad in itertools.product(SHARD_CONFIGS, [False, True], [False, True]):
        kwargs = {
            "shard_id": sid,
            "num_shards": ns,
            "stick_to_shard": stick,
            "pad_last_batch": pad,
            "image_ids": True,
            "skip_empty": True,
        }
        iters = (ns + 1) * math.ceil(math.ceil(9 / ns) / batch_size) + 2
        meta, ours = run("pipestate", dataset, batch_size, iters, **kwargs)
        dali_meta, theirs = run("dali", dataset, batch_size, iters, **kwargs)
        if meta != dali_meta or differences(ours, theirs):
            failures.append(
                f"shard {sid}/{ns} stick={stick} pad={pad}: meta {meta} vs {dali_meta}; {differences(ours, theirs)[:2]}"
            )
    assert not failures, "\n".join(failures)


def _rle_string(counts):
    """The COCO API's compressed RLE string of ``counts`` (``rleToString``)."""
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


@pytest.mark.dali_differential("readers.coco")
def test_pixelwise_masks_of_random_polygons_and_rles_equal_dalis(tmp_path):
    """COCO's polygon rasterization, overlapping masks (higher labels on top) and compressed RLE strings."""
    import cv2

    rng = np.random.default_rng(4)
    os.makedirs(tmp_path / "images")
    images, annotations = [], []
    for k in range(6):
        h, w = int(rng.integers(15, 40)), int(rng.integers(15, 40))
        cv2.imwrite(os.fspath(tmp_path / "images" / f"{k}.jpg"), np.zeros((h, w, 3), np.uint8))
        images.append({"id": k, "file_name": f"{k}.jpg", "height": h, "width": w})
        for j in range(4):
            ann = {
                "id": len(annotations),
                "image_id": k,
                "category_id": int(rng.integers(1, 4)),
                "bbox": [1.0, 1.0, 5.0, 5.0],
                "iscrowd": 0,
            }
            if j == 3:
                counts = [int(v) for v in rng.integers(1, 30, 8)]
                counts.append(h * w - sum(counts))
                ann["segmentation"] = {"counts": _rle_string(counts) if k % 2 else counts, "size": [h, w]}
            else:
                n = int(rng.integers(3, 8))
                poly = np.stack([rng.uniform(-2, w + 2, n), rng.uniform(-2, h + 2, n)], axis=1).reshape(-1)
                ann["segmentation"] = [poly.round(2).tolist()]
            annotations.append(ann)
    # DALI quirks: an image whose smallest label has no mask at all gets an empty map; RLE masks of a label
    # that also has polygons are ignored
    cv2.imwrite(os.fspath(tmp_path / "images" / "6.jpg"), np.zeros((10, 12, 3), np.uint8))
    images.append({"id": 6, "file_name": "6.jpg", "height": 10, "width": 12})
    square = [[2.0, 2.0, 8.0, 2.0, 8.0, 7.0, 2.0, 7.0]]
    for category, segmentation in [(3, []), (1, square), (2, square), (2, {"counts": [5, 20, 95], "size": [10, 12]})]:
        annotations.append(
            {
                "id": len(annotations),
                "image_id": 6,
                "category_id": category,
                "bbox": [1.0, 1.0, 5.0, 5.0],
                "segmentation": segmentation,
            }
        )
    cv2.imwrite(os.fspath(tmp_path / "images" / "7.jpg"), np.zeros((10, 12, 3), np.uint8))
    images.append({"id": 7, "file_name": "7.jpg", "height": 10, "width": 12})
    for category, segmentation in [(1, square), (2, {"counts": [5, 20, 95], "size": [10, 12]}), (2, square)]:
        annotations.append(
            {
                "id": len(annotations),
                "image_id": 7,
                "category_id": category,
                "bbox": [1.0, 1.0, 5.0, 5.0],
                "segmentation": segmentation,
            }
        )
    data = {"images": images, "annotations": annotations, "categories": [{"id": c} for c in (3, 1, 2)]}
    (tmp_path / "ann.json").write_text(json.dumps(data))
    args = {"file_root": os.fspath(tmp_path / "images"), "annotations_file": os.fspath(tmp_path / "ann.json")}
    _, ours = run("pipestate", args, 2, 4, pixelwise_masks=True)
    _, theirs = run("dali", args, 2, 4, pixelwise_masks=True)
    assert not differences(ours, theirs)


def test_rle_strings_round_trip():
    counts = [5, 3, 0, 12, 7, 100, 1]
    assert _coco_masks._string_counts(_rle_string(counts)) == counts


def test_restore_reads_nothing_before_the_position(dataset, monkeypatch):
    """The restored reader reads only the samples that follow the position (it never replays the epoch)."""
    from pipestate.operators.readers import coco

    read = []
    original = coco.read_samples
    monkeypatch.setattr(coco, "read_samples", lambda paths, where, idx: read.extend(idx) or original(paths, where, idx))

    @pipeline_def(batch_size=2, num_threads=1, seed=1, enable_checkpointing=True, prefetch_queue_depth=1)
    def pipe():
        return tuple(fn.readers.coco(**dataset, polygon_masks=True, random_shuffle=True, initial_fill=4))

    p = pipe()
    for _ in range(5):
        p.run()
    blob = p.checkpoint()
    expected = [[np.array(s) for s in out] for out in p.run()]
    for _ in range(3):  # enough for the restored run's reads, prefetching included
        p.run()
    p.close()
    order = list(read)  # the samples of the uninterrupted run, in reading order
    read.clear()
    restored = pipe(checkpoint=blob)
    got = [[np.array(s) for s in out] for out in restored.run()]
    restored.close()
    assert read == order[10 : 10 + len(read)], f"restore read {read}, the continuation is {order[10:]}"
    assert all(a.tobytes() == b.tobytes() for x, y in zip(got, expected) for a, b in zip(x, y))


def build_error(**kwargs):
    @pipeline_def(batch_size=2, num_threads=1)
    def pipe():
        return tuple(fn.readers.coco(**kwargs))

    p = pipe()
    try:
        p.run()
    finally:
        p.close()


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        ("not json", ValueError, "not valid JSON"),
        ('{"annotations": []}', ValueError, "no 'images' list"),
        ('{"images": [{"id": 1}]}', ValueError, "file_name"),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4}], "categories": [], '
            '"annotations": [{"id": 9, "image_id": 1, "category_id": 5, "bbox": [0, 0, 2, 2]}]}',
            ValueError,
            "category_id 5",
        ),
        ('{"images": [], "categories": []}', ValueError, "lists no images"),
    ],
)
def test_malformed_annotation_files_are_named(tmp_path, content, error, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(error, match=match) as info:
        build_error(file_root=os.fspath(tmp_path), annotations_file=os.fspath(path))
    assert "bad.json" in str(info.value) or match == "lists no images"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"polygon_masks": True, "pixelwise_masks": True}, ValueError, "cannot be combined"),
        ({"preprocessed_annotations": "x"}, ValueError, "not supported"),
        ({"save_preprocessed_annotations": True}, ValueError, "not supported"),
        ({"images": ["missing.jpg"]}, ValueError, "missing.jpg"),
        ({"shard_id": 3, "num_shards": 2}, ValueError, "shard_id"),
    ],
)
def test_bad_arguments(dataset, kwargs, error, match):
    with pytest.raises(error, match=match):
        build_error(**dataset, **kwargs)


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        build_error(file_root=os.fspath(tmp_path), annotations_file=os.fspath(tmp_path / "nothing.json"))

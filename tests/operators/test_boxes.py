"""fn.bb_flip, fn.bbox_paste, fn.box_encoder and fn.segmentation.select_masks: bit-identical to DALI on
varied boxes (xywh/ltrb, per-sample arguments, empty samples, many anchors, SSD offsets); errors."""

from __future__ import annotations

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def
from tests.operators._both import assert_same, source

RNG = np.random.default_rng(11)


def xywh(n):
    lo = RNG.uniform(0, 0.7, (n, 2))
    return np.concatenate([lo, RNG.uniform(0.01, 0.3, (n, 2))], axis=1).astype(np.float32)


def ltrb(n):
    b = xywh(n)
    b[:, 2:] += b[:, :2]
    return b


XYWH = [xywh(n) for n in (5, 1, 7)]
LTRB = [ltrb(n) for n in (5, 1, 7)]
EMPTY = [np.zeros((0, 4), np.float32)] * 3
LABELS = [np.arange(len(b), dtype=np.int32) + 1 for b in LTRB]
MANY = [ltrb(n) for n in (40, 3, 0)]
MANY_LABELS = [np.arange(len(b), dtype=np.int32) + 1 for b in MANY]
FLAGS = [np.array(v, np.int32) for v in (0, 1, 1)]
RATIOS = [np.float32(v) for v in (1.0, 2.5, 4.0)]
PASTE = [np.float32(v) for v in (0.0, 0.3, 1.0)]
ANCHORS = [v for k in range(64) for v in (k % 8 / 8, k // 8 / 8, k % 8 / 8 + 0.2, k // 8 / 8 + 0.25)]

CASES = {
    "bb_flip": lambda fn, t: fn.bb_flip(source(fn, XYWH)),
    "bb_flip ltrb vertical": lambda fn, t: fn.bb_flip(source(fn, LTRB), ltrb=True, vertical=1, horizontal=0),
    "bb_flip per sample": lambda fn, t: fn.bb_flip(
        source(fn, XYWH), vertical=source(fn, FLAGS), horizontal=source(fn, FLAGS[::-1])
    ),
    "bb_flip flat": lambda fn, t: fn.bb_flip(source(fn, [b.reshape(-1) for b in XYWH])),
    "bb_flip empty": lambda fn, t: fn.bb_flip(source(fn, EMPTY)),
    "bbox_paste": lambda fn, t: fn.bbox_paste(source(fn, XYWH), ratio=2.0),
    "bbox_paste ltrb": lambda fn, t: fn.bbox_paste(source(fn, LTRB), ratio=3.0, ltrb=True, paste_x=0.2, paste_y=0.9),
    "bbox_paste per sample": lambda fn, t: fn.bbox_paste(
        source(fn, LTRB),
        ratio=source(fn, RATIOS),
        ltrb=True,
        paste_x=source(fn, PASTE),
        paste_y=source(fn, PASTE[::-1]),
    ),
    "bbox_paste ratio below 1": lambda fn, t: fn.bbox_paste(source(fn, LTRB), ratio=0.5),
    "box_encoder": lambda fn, t: fn.box_encoder(source(fn, LTRB), source(fn, LABELS), anchors=ANCHORS),
    "box_encoder many boxes": lambda fn, t: fn.box_encoder(
        source(fn, MANY), source(fn, MANY_LABELS), anchors=ANCHORS, criteria=0.3
    ),
    "box_encoder offsets": lambda fn, t: fn.box_encoder(
        source(fn, MANY),
        source(fn, MANY_LABELS),
        anchors=ANCHORS,
        criteria=0.2,
        offset=True,
        scale=300.0,
        means=[0.1, 0.2, 0.3, 0.4],
        stds=[0.1, 0.1, 0.2, 0.2],
    ),
    "box_encoder labels Nx1": lambda fn, t: fn.box_encoder(
        source(fn, LTRB), source(fn, [v.reshape(-1, 1) for v in LABELS]), anchors=ANCHORS
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_equal_dalis(case):
    assert_same(CASES[case])


POLYGONS = [np.array([[0, 0, 3], [1, 3, 7], [0, 7, 10], [2, 10, 12]], np.int32)] * 3
VERTICES = [np.arange(24, dtype=np.float32).reshape(12, 2) + k for k in range(3)]
SELECT_CASES = {
    "keep order": lambda fn, t: fn.segmentation.select_masks(
        source(fn, [np.array([0, 2], np.int32)] * 3), source(fn, POLYGONS), source(fn, VERTICES)
    ),
    "reindex": lambda fn, t: fn.segmentation.select_masks(
        source(fn, [np.array(v, np.int32) for v in ([2, 0], [1], [0, 1, 2])]),
        source(fn, POLYGONS),
        source(fn, VERTICES),
        reindex_masks=True,
    ),
    "none selected": lambda fn, t: fn.segmentation.select_masks(
        source(fn, [np.zeros(0, np.int32)] * 3), source(fn, POLYGONS), source(fn, VERTICES)
    ),
    "int64 vertices": lambda fn, t: fn.segmentation.select_masks(
        source(fn, [np.array([1], np.int32)] * 3),
        source(fn, POLYGONS),
        source(fn, [v.astype(np.int64) for v in VERTICES]),
    ),
}


@pytest.mark.parametrize("case", list(SELECT_CASES))
def test_select_masks_equals_dalis(case):
    assert_same(lambda fn, t: tuple(SELECT_CASES[case](fn, t)))


def run_error(build):
    @pipeline_def(batch_size=2, num_threads=1)
    def pipe():
        out = build()
        return tuple(out) if isinstance(out, list) else out

    p = pipe()
    try:
        p.run()
    finally:
        p.close()


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: fn.bb_flip(np.zeros((2, 5), np.float32)), OperatorError, "10 coordinates"),
        (lambda: fn.bb_flip(fn.external_source(source=lambda: [np.zeros((2, 4))] * 2)), OperatorError, "float32"),
        (lambda: fn.bbox_paste(np.zeros((2, 4), np.float32)), TypeError, "ratio"),
        (
            lambda: fn.box_encoder(np.zeros((2, 4), np.float32), np.zeros(2, np.int32), anchors=[0.0] * 5),
            ValueError,
            "anchors",
        ),
        (
            lambda: fn.box_encoder(
                np.zeros((2, 4), np.float32), np.zeros(2, np.int32), anchors=[0.0] * 4, stds=[1.0, 0.0, 1.0, 1.0]
            ),
            ValueError,
            "stds",
        ),
        (
            lambda: fn.box_encoder(np.zeros((2, 4), np.float32), np.zeros(3, np.int32), anchors=[0.0] * 4),
            OperatorError,
            "2 boxes but 3 labels",
        ),
        (
            lambda: fn.box_encoder(
                np.zeros((2, 4), np.float32), np.zeros(2, np.int32), anchors=[0.0] * 4, criteria=1.5
            ),
            ValueError,
            "criteria",
        ),
        (
            lambda: fn.segmentation.select_masks(np.array([1, 1], np.int32), POLYGONS[0], VERTICES[0]),
            OperatorError,
            "1 is repeated",
        ),
        (
            lambda: fn.segmentation.select_masks(np.array([5], np.int32), POLYGONS[0], VERTICES[0]),
            OperatorError,
            "mask id 5 is selected but no polygon",
        ),
        (
            lambda: fn.segmentation.select_masks(
                np.array([1], np.int32), np.array([[1, 3, 20]], np.int32), VERTICES[0]
            ),
            OperatorError,
            "outside the 12 vertices",
        ),
        (
            lambda: fn.segmentation.select_masks(np.array([1], np.int32), np.array([[1, 3]], np.int32), VERTICES[0]),
            OperatorError,
            "3 columns",
        ),
    ],
)
def test_errors_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        run_error(build)


def test_select_masks_keeps_the_last_polygon_of_a_mask_as_dali():
    """DALI keeps one polygon per mask id (the last one): mask 0 has polygons [0, 3) and [7, 10)."""
    out = assert_same(SELECT_CASES["keep order"])
    polygons, vertices = out[0][0][0][0], out[0][1][0][0]
    assert polygons.tolist() == [[0, 0, 3], [2, 3, 5]]
    assert (vertices[:3] == VERTICES[0][7:10]).all()

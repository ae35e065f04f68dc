"""fn.random_bbox_crop and fn.ssd_random_crop against DALI.

- Where the window is determined (the whole image: ``scaling=[1, 1]``, or ``crop_shape == input_shape``),
  every output equals DALI's bit for bit: the box mapping, filtering, layouts, labels and indices.
- Random windows satisfy every constraint DALI's own operator test checks (``dali/test/python/operator_1/
  test_random_bbox_crop_op.py``, its checks adapted here: DALI's test builds ``ops.RandomBBoxCrop`` inside a
  ``Pipeline`` subclass, which pipestate's API does not have): extents in ``scaling``, aspect ratios in range,
  kept boxes = the centroid or area filter of the window, mapped boxes, fixed shapes, overlap thresholds.
- The distributions (crop or no crop, window area, boxes kept) match DALI's by a chi-square test.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def
from tests.operators._both import assert_same, dali, outputs, source

BOXES_2D = np.array(
    [[0.0123, 0.0123, 0.2123, 0.2123], [0.1123, 0.1123, 0.19123, 0.19123], [0.3123, 0.3123, 0.5123, 0.5123]], np.float32
)
BOXES_3D = np.array(
    [[0.123, 0.6123, 0.6123, 0.7123, 0.7123, 0.7123], [0.1123, 0.1123, 0.1123, 0.2123, 0.2123, 0.2123],
     [0.7123, 0.7123, 0.7123, 0.8123, 0.8123, 0.8123]], np.float32,
)  # fmt: skip
SAMPLE_BOXES = {2: [BOXES_2D, BOXES_2D[[2, 1]], BOXES_2D[[2]]], 3: [BOXES_3D, BOXES_3D[[2, 1]], BOXES_3D[[2]]]}
LABELS = [np.array([1, 2, 3], np.int32), np.array([3, 2], np.int32), np.array([3], np.int32)]
BOXES = np.array([[0.1, 0.1, 0.3, 0.4], [0.5, 0.5, 0.9, 0.8], [0.0, 0.6, 0.2, 1.0], [0.45, 0.0, 0.55, 1.0]], np.float32)

DETERMINED = {
    "whole image": lambda fn, t: fn.random_bbox_crop(
        source(fn, [BOXES] * 3), bbox_layout="xyXY", scaling=[1, 1], allow_no_crop=False
    ),
    "labels and indices": lambda fn, t: fn.random_bbox_crop(
        source(fn, [BOXES] * 3),
        source(fn, [np.arange(4, dtype=np.int32)] * 3),
        bbox_layout="xyXY",
        scaling=[1, 1],
        allow_no_crop=False,
        output_bbox_indices=True,
    ),
    "2-D labels": lambda fn, t: fn.random_bbox_crop(
        source(fn, [BOXES] * 3),
        source(fn, [np.arange(8, dtype=np.int32).reshape(4, 2)] * 3),
        bbox_layout="xyXY",
        scaling=[1, 1],
    ),
    "yxYX": lambda fn, t: fn.random_bbox_crop(
        source(fn, [BOXES[:, [1, 0, 3, 2]]] * 3), bbox_layout="yxYX", scaling=[1, 1], allow_no_crop=False
    ),
    "xyWH": lambda fn, t: fn.random_bbox_crop(
        source(fn, [np.concatenate([BOXES[:, :2], BOXES[:, 2:] - BOXES[:, :2]], 1)] * 3),
        bbox_layout="xyWH",
        scaling=[1, 1],
        allow_no_crop=False,
    ),
    "fixed window = image": lambda fn, t: fn.random_bbox_crop(
        source(fn, [BOXES] * 3), bbox_layout="xyXY", crop_shape=[200, 100], input_shape=[200, 100], allow_no_crop=False
    ),
    "fixed, prune threshold": lambda fn, t: fn.random_bbox_crop(
        source(fn, [BOXES] * 3),
        bbox_layout="xyXY",
        crop_shape=[200, 100],
        input_shape=[200, 100],
        allow_no_crop=False,
        bbox_prune_threshold=0.2,
        output_bbox_indices=True,
    ),
    "fixed, shape_layout HW": lambda fn, t: fn.random_bbox_crop(
        source(fn, [BOXES] * 3),
        bbox_layout="xyXY",
        crop_shape=[100, 200],
        input_shape=[100, 200],
        shape_layout="HW",
        allow_no_crop=False,
    ),
    "3-D whole": lambda fn, t: fn.random_bbox_crop(source(fn, SAMPLE_BOXES[3]), scaling=[1, 1], allow_no_crop=False),
    "empty": lambda fn, t: fn.random_bbox_crop(
        source(fn, [np.zeros((0, 4), np.float32)] * 3), bbox_layout="xyXY", scaling=[1, 1], allow_no_crop=False
    ),
}


@pytest.mark.dali_differential("random_bbox_crop")
@pytest.mark.parametrize("case", list(DETERMINED))
def test_determined_windows_equal_dalis(case):
    assert_same(lambda fn, t: tuple(DETERMINED[case](fn, t)))


# ---- DALI's checks (test_random_bbox_crop_op.py) on pipestate's random windows --------------------------------
def run_crop(n_iters, ndim, **kwargs):
    """Batches of (input boxes, anchor, shape, boxes, [labels], [indices]) of pipestate's operator."""

    def build(fn, t):
        boxes = source(fn, SAMPLE_BOXES[ndim])
        inputs = [boxes, source(fn, LABELS)] if kwargs.pop("labels", False) else [boxes]
        return (boxes, *fn.random_bbox_crop(*inputs, **kwargs))

    return outputs("pipestate", build, 3, n_iters)


def map_box(box, anchor, shape):
    ndim = len(anchor)
    start = np.clip((np.maximum(anchor, box[:ndim]) - anchor) / shape, 0, 1)
    end = np.clip((np.minimum(anchor + shape, box[ndim:]) - anchor) / shape, 0, 1)
    return np.concatenate([start, end])


def kept_by_centroid(anchor, shape, boxes):
    ndim = len(anchor)
    centre = 0.5 * (boxes[:, :ndim] + boxes[:, ndim:])
    return np.flatnonzero(((centre >= anchor) & (centre <= anchor + shape)).all(axis=1))


def kept_by_area(anchor, shape, boxes, threshold):
    ndim = len(anchor)
    lo, hi = np.maximum(boxes[:, :ndim], anchor), np.minimum(boxes[:, ndim:], anchor + shape)
    inter = np.where((hi > lo).all(axis=1), np.prod(hi - lo, axis=1), 0)
    area = np.prod(boxes[:, ndim:] - boxes[:, :ndim], axis=1)
    return np.flatnonzero((inter != 0) & (inter / area >= threshold))


def check_boxes(anchor, shape, in_boxes, out_boxes, keep, indices):
    if indices is not None:
        assert indices.tolist() == list(keep)
    assert len(out_boxes) == len(keep)
    for box, out in zip(in_boxes[keep], out_boxes):
        assert np.allclose(map_box(box, anchor, shape), out, atol=1e-6)


@pytest.mark.parametrize(
    ("ndim", "scaling", "aspect_ratio", "prune"),
    [
        (ndim, scaling, ar, prune)
        for ndim, scaling, prune in itertools.product([2, 3], [[0.3, 0.5], [0.1, 0.3], [0.9, 0.99]], [None, 0.0, 0.3])
        for ar in {
            2: [[0.01, 100], [0.5, 2.0], [1.0, 1.0]],
            3: [[0.5, 2.0, 0.6, 2.1, 0.4, 1.9], [1.0, 1.0], [0.5, 0.5, 0.25, 0.25, 0.5, 0.5]],
        }[ndim]
    ],
)
def test_variable_windows_meet_dalis_checks(ndim, scaling, aspect_ratio, prune):
    layout = "xyzXYZ" if ndim == 3 else "xyXY"
    batches = run_crop(
        12,
        ndim,
        thresholds=[0, 0.01, 0.05, 0.1, 0.15],
        bbox_layout=layout,
        scaling=scaling,
        aspect_ratio=aspect_ratio,
        num_attempts=100,
        allow_no_crop=False,
        all_boxes_above_threshold=False,
        output_bbox_indices=True,
        bbox_prune_threshold=prune,
    )
    ranges = np.asarray(aspect_ratio).reshape(-1, 2)
    for batch in batches:
        for in_boxes, anchor, shape, boxes, indices in zip(*(samples for samples, _ in batch)):
            assert scaling[0] - 1e-6 <= shape.max() <= scaling[1] + 1e-6
            assert ((anchor >= 0) & (anchor <= 1) & (anchor + shape > 0) & (anchor + shape <= 1 + 1e-6)).all()
            for k, (d0, d1) in enumerate(itertools.combinations(range(ndim), 2)):
                low, high = ranges[k % len(ranges)]
                ratio = shape[d0] / shape[d1]
                assert np.isclose(ratio, low) if low == high else low <= ratio <= high
            keep = (
                kept_by_centroid(anchor, shape, in_boxes)
                if prune is None
                else kept_by_area(anchor, shape, in_boxes, prune)
            )
            check_boxes(anchor, shape, in_boxes, boxes, keep, indices)


@pytest.mark.parametrize(
    ("ndim", "crop_shape", "prune", "labels"),
    [
        (2, c, p, lb)
        for c, p, lb in itertools.product([[100, 50], [400, 300], [600, 400]], [None, 0.1, 0.5], [True, False])
    ]
    + [(3, c, p, lb) for c, p, lb in itertools.product([[100, 50, 32], [600, 400, 48]], [None, 0.3], [True, False])],
)
def test_fixed_windows_meet_dalis_checks(ndim, crop_shape, prune, labels):
    input_shape = [400, 300, 64][:ndim]
    layout = "xyzXYZ" if ndim == 3 else "xyXY"
    batches = run_crop(
        10,
        ndim,
        labels=labels,
        thresholds=[0, 0.01, 0.05, 0.1, 0.15],
        bbox_layout=layout,
        input_shape=input_shape,
        crop_shape=crop_shape,
        all_boxes_above_threshold=False,
        bbox_prune_threshold=prune,
    )
    for batch in batches:
        samples = [s for s, _ in batch]
        for in_boxes, anchor, shape, boxes in zip(*samples[:4]):
            for d in range(ndim):
                low, high = sorted((0.0, input_shape[d] - crop_shape[d]))
                assert low <= anchor[d] <= max(high, 0) and shape[d] == crop_shape[d]
            rel_anchor, rel_shape = anchor / input_shape, shape / np.asarray(input_shape, np.float32)
            keep = (
                kept_by_centroid(rel_anchor, rel_shape, in_boxes)
                if prune is None
                else kept_by_area(rel_anchor, rel_shape, in_boxes, prune)
            )
            check_boxes(rel_anchor, rel_shape, in_boxes, boxes, keep, None)
        if labels:
            for in_labels, kept in zip(LABELS, samples[4]):
                assert set(kept.tolist()) <= set(in_labels.tolist())


@pytest.mark.parametrize(
    ("ndim", "crop_shape"), [(2, [150, 150]), (2, [400, 300]), (3, [50, 50, 32]), (3, [400, 300, 64])]
)
def test_overlap_threshold_one_keeps_a_whole_box(ndim, crop_shape):
    input_shape = [400, 300, 64][:ndim]
    batches = run_crop(
        10,
        ndim,
        thresholds=[1.0],
        threshold_type="overlap",
        num_attempts=1000,
        bbox_layout="xyzXYZ"[: 2 * ndim] if ndim == 3 else "xyXY",
        input_shape=input_shape,
        crop_shape=crop_shape,
        all_boxes_above_threshold=False,
    )
    for batch in batches:
        for in_boxes, anchor, shape in zip(*(s for s, _ in batch[:3])):
            lo, hi = anchor / input_shape, (anchor + shape) / input_shape
            inside = (in_boxes[:, :ndim] >= lo - 1e-6).all(axis=1) & (in_boxes[:, ndim:] <= hi + 1e-6).all(axis=1)
            assert inside.any()


def test_square_windows_with_input_shape():
    def build(fn, t):
        shape = fn.external_source(source=lambda: [np.array([400 + 50 * i, 600 - 40 * i], np.int32) for i in range(3)])
        _, crop, _ = fn.random_bbox_crop(
            source(fn, SAMPLE_BOXES[2]),
            aspect_ratio=(1.0, 1.0),
            scaling=(0.5, 0.8),
            bbox_layout="xyXY",
            total_num_attempts=100,
            allow_no_crop=False,
            input_shape=shape,
        )
        return shape, crop

    for batch in outputs("pipestate", build, 3, 3):
        for in_shape, crop in zip(batch[0][0], batch[1][0]):
            np.testing.assert_allclose(in_shape[0] * crop[0], in_shape[1] * crop[1], rtol=1e-5)


def test_empty_samples_are_cropped_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batches = outputs(
            "pipestate",
            lambda fn, t: fn.random_bbox_crop(
                source(fn, [np.zeros((0, 4), np.float32)]),
                thresholds=[1.0],
                bbox_layout="xyXY",
                allow_no_crop=False,
                input_shape=[600, 400],
                crop_shape=[200, 200],
            ),
            1,
            3,
        )
    for (anchor, _), (shape, _), (boxes, _) in batches:
        assert boxes[0].shape == (0, 4) and shape[0].tolist() == [200, 200] and (anchor[0] <= [400, 200]).all()


def test_an_impossible_threshold_uses_the_best_window_and_warns():
    build = functools.partial(
        fn.random_bbox_crop, thresholds=[1.0], bbox_layout="xyXY", allow_no_crop=False, total_num_attempts=10
    )

    @pipeline_def(batch_size=2, num_threads=1, seed=3)
    def pipe():
        boxes = (np.random.default_rng(0).uniform(0, 0.5, (5, 4)) + [0, 0, 0.5, 0.5]).astype(np.float32)
        return tuple(build(fn.external_source(source=lambda: [boxes] * 2)))

    p = pipe()
    with pytest.warns(RuntimeWarning, match="attempted 10 times"):
        p.run()
    p.close()
    quiet = functools.partial(
        fn.random_bbox_crop,
        thresholds=[1.0],
        bbox_layout="xyXY",
        allow_no_crop=False,
        total_num_attempts=10,
        quiet=True,
    )
    import warnings

    @pipeline_def(batch_size=2, num_threads=1, seed=3)
    def pipe2():
        boxes = np.array([[0.5, 0.5, 0.6, 0.6]], np.float32)
        return tuple(quiet(fn.external_source(source=lambda: [boxes] * 2)))

    p = pipe2()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p.run()
    p.close()


# ---- distributions against DALI ------------------------------------------------------------------------------------
def summaries(library, **kwargs):
    """Per-sample (no crop?, area bin, boxes kept) of an SSD-style configuration, 40 batches of 8."""
    batches = outputs(
        library, lambda fn, t: tuple(fn.random_bbox_crop(source(fn, [BOXES] * 8), bbox_layout="xyXY", **kwargs)), 8, 40
    )
    out = []
    for batch in batches:
        for shape, boxes in zip(batch[1][0], batch[2][0]):
            area = float(np.prod(shape))
            out.append((area == 1.0, min(int(area * 5), 4), len(boxes)))
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        {"thresholds": [0.0, 0.1, 0.3, 0.5, 0.7, 0.9], "scaling": [0.3, 1.0], "aspect_ratio": [0.5, 2.0]},
        {
            "thresholds": [0.1, 0.3],
            "scaling": [0.3, 1.0],
            "aspect_ratio": [0.5, 2.0],
            "threshold_type": "overlap",
            "num_attempts": 5,
            "allow_no_crop": False,
            "all_boxes_above_threshold": False,
        },
        {
            "thresholds": [0.2],
            "scaling": [0.5, 0.9],
            "aspect_ratio": [1.0, 1.0],
            "allow_no_crop": False,
            "bbox_prune_threshold": 0.3,
            "num_attempts": 3,
            "all_boxes_above_threshold": False,
        },
    ],
)
def test_outcomes_are_distributed_as_dalis(kwargs):
    from scipy.stats import chi2_contingency

    dali()
    ours, theirs = summaries("pipestate", **kwargs), summaries("dali", **kwargs)
    for k in range(3):  # each statistic: crop or not, area bin, boxes kept
        keys = sorted({o[k] for o in ours} | {o[k] for o in theirs})
        table = np.array([[sum(o[k] == v for o in data) for v in keys] for data in (ours, theirs)])
        if len(keys) > 1:
            assert chi2_contingency(table).pvalue > 1e-3, (k, keys, table.tolist())


# ---- ssd_random_crop ---------------------------------------------------------------------------------------------
def coordinate_image():
    """A 40x50 image whose pixel (y, x) holds (y, x, 0): a crop shows where it was taken."""
    y, x = np.mgrid[0:40, 0:50]
    return np.stack([y, x, np.zeros_like(y)], axis=-1).astype(np.uint8)


def ssd_outputs(library, iters=30):
    image = coordinate_image()
    labels = np.arange(4, dtype=np.int32)
    return outputs(
        library,
        lambda fn, t: tuple(
            fn.ssd_random_crop(
                source(fn, [image] * 8, "HWC"), source(fn, [BOXES] * 8), source(fn, [labels] * 8), num_attempts=3
            )
        ),
        8,
        iters,
    )


@pytest.mark.dali_differential("ssd_random_crop")
def test_ssd_random_crop_meets_dalis_rules_and_distribution():
    from scipy.stats import chi2_contingency

    dali()
    image = coordinate_image()
    stats = {}
    for library in ("pipestate", "dali"):
        stats[library] = []
        for batch in ssd_outputs(library):
            assert batch[0][1] == "HWC"
            for crop, boxes, labels in zip(*(s for s, _ in batch)):
                assert crop.dtype == np.uint8 and boxes.dtype == np.float32 and labels.dtype == np.int32
                assert ((boxes >= 0) & (boxes <= 1)).all() and set(labels.tolist()) <= {0, 1, 2, 3}
                uncropped = crop.shape == image.shape
                if uncropped:
                    assert (crop == image).all() and boxes.tobytes() == BOXES.tobytes()
                else:  # a window of the image with w, h in [0.3, 1] and w / h in [0.5, 2]
                    h, w = crop.shape[0] / 40, crop.shape[1] / 50
                    assert 0.25 <= h <= 1.0 and 0.25 <= w <= 1.0 and 0.4 <= w / h <= 2.5
                    y0, x0 = (int(v) for v in crop[0, 0, :2])
                    assert (crop == image[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]]).all()
                stats[library].append((uncropped, len(labels)))
    for k in range(2):
        keys = sorted({s[k] for data in stats.values() for s in data})
        table = [[sum(s[k] == v for s in data) for v in keys] for data in stats.values()]
        if len(keys) > 1:
            assert chi2_contingency(table).pvalue > 1e-3, (k, keys, table)


def run_error(build):
    @pipeline_def(batch_size=2, num_threads=1)
    def pipe():
        return tuple(build())

    p = pipe()
    try:
        p.run()
    finally:
        p.close()


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: fn.random_bbox_crop(BOXES * 2, bbox_layout="xyXY"), OperatorError, "outside"),
        (lambda: fn.random_bbox_crop(BOXES, bbox_layout="xyXZ"), OperatorError, "bbox_layout"),
        (lambda: fn.random_bbox_crop(BOXES, crop_shape=[10, 10]), ValueError, "input_shape"),
        (
            lambda: fn.random_bbox_crop(BOXES, crop_shape=[10, 10], input_shape=[20, 20], allow_no_crop=True),
            ValueError,
            "allow_no_crop",
        ),
        (
            lambda: fn.random_bbox_crop(BOXES, crop_shape=[10, 10], input_shape=[20, 20], scaling=[0.5, 1.0]),
            ValueError,
            "scaling",
        ),
        (lambda: fn.random_bbox_crop(BOXES, aspect_ratio=[1.0, 2.0, 3.0]), ValueError, "aspect_ratio"),
        (lambda: fn.random_bbox_crop(BOXES, scaling=[0.9, 0.2]), ValueError, "scaling"),
        (lambda: fn.random_bbox_crop(BOXES, thresholds=[1.5]), ValueError, "thresholds"),
        (lambda: fn.random_bbox_crop(BOXES, bbox_layout="xyXY", ltrb=True), ValueError, "ltrb"),
        (lambda: fn.random_bbox_crop(BOXES, total_num_attempts=0), ValueError, "total_num_attempts"),
        (lambda: fn.random_bbox_crop(BOXES, np.zeros(3, np.int32)), OperatorError, "4 boxes but 3 labels"),
        (lambda: fn.random_bbox_crop(np.zeros((2, 5), np.float32)), OperatorError, "5 coordinates"),
        (
            lambda: fn.random_bbox_crop(BOXES, thresholds=[1.0], allow_no_crop=False, scaling=[0.3, 0.5]),
            OperatorError,
            "search forever",
        ),
        (
            lambda: fn.ssd_random_crop(np.zeros((4, 4, 3), np.uint8), BOXES, np.zeros(4, np.float32)),
            OperatorError,
            "labels",
        ),
    ],
)
def test_errors_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        run_error(build)

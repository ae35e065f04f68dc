"""fn.segmentation.random_mask_pixel and random_object_bbox against DALI: the same possible outcomes with
frequencies a chi-square test cannot tell apart, DALI's exact output where it is deterministic, and the
constraints DALI guarantees (a foreground pixel whenever there is one, a box of one blob of one class)."""

from __future__ import annotations

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def
from tests.operators._both import assert_same, assert_same_distribution, dali, outputs, source

MASK = np.zeros((6, 8), np.int32)
MASK[0:2, 0:3] = 1
MASK[3:6, 4:8] = 2
MASK[4, 0] = 1
MASK[2:4, 2:4] = 3
DIAGONAL = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], np.uint8)
MASKS = [MASK] * 8

OBJECT_CASES = {
    "default": lambda fn, t: fn.segmentation.random_object_bbox(source(fn, MASKS)),
    "face connectivity": lambda fn, t: fn.segmentation.random_object_bbox(source(fn, [DIAGONAL] * 8)),
    "start_end and class": lambda fn, t: fn.segmentation.random_object_bbox(
        source(fn, MASKS), format="start_end", output_class=True
    ),
    "ignore_class k_largest": lambda fn, t: fn.segmentation.random_object_bbox(
        source(fn, MASKS), k_largest=2, ignore_class=True, format="box"
    ),
    "threshold": lambda fn, t: fn.segmentation.random_object_bbox(
        source(fn, MASKS), threshold=[2, 2], format="box", output_class=True
    ),
    "foreground_prob": lambda fn, t: fn.segmentation.random_object_bbox(
        source(fn, MASKS), foreground_prob=0.5, output_class=True
    ),
    "class_weights": lambda fn, t: fn.segmentation.random_object_bbox(
        source(fn, MASKS), class_weights=[0.2, 0.0, 1.0], output_class=True, format="box"
    ),
    "background in classes": lambda fn, t: fn.segmentation.random_object_bbox(
        source(fn, MASKS), classes=[0, 1], output_class=True, format="box"
    ),
    "explicit background": lambda fn, t: fn.segmentation.random_object_bbox(
        source(fn, MASKS), background=2, output_class=True, format="box"
    ),
    "1-D": lambda fn, t: fn.segmentation.random_object_bbox(
        source(fn, [np.array([0, 1, 1, 0, 2, 2, 2], np.int32)] * 8), format="box", ignore_class=True
    ),
    "3-D": lambda fn, t: fn.segmentation.random_object_bbox(
        source(fn, [np.stack([MASK, MASK[::-1]]).astype(np.uint8)] * 8), format="box"
    ),
}
PIXEL_CASES = {
    "foreground": lambda fn, t: fn.segmentation.random_mask_pixel(source(fn, MASKS), foreground=1),
    "value": lambda fn, t: fn.segmentation.random_mask_pixel(source(fn, MASKS), foreground=1, value=3),
    "absent value": lambda fn, t: fn.segmentation.random_mask_pixel(source(fn, MASKS), foreground=1, value=7),
    "float threshold": lambda fn, t: fn.segmentation.random_mask_pixel(
        source(fn, [MASK.astype(np.float32) * 0.5] * 8), foreground=1, threshold=1.2
    ),
    "any pixel": lambda fn, t: fn.segmentation.random_mask_pixel(source(fn, MASKS)),
    "HWC": lambda fn, t: fn.segmentation.random_mask_pixel(
        source(fn, [MASK[:, :, None].astype(np.uint8)] * 8, "HWC"), foreground=1
    ),
}


@pytest.mark.dali_differential("segmentation.random_object_bbox")
@pytest.mark.parametrize("case", list(OBJECT_CASES))
def test_object_boxes_are_distributed_as_dalis(case):
    build = OBJECT_CASES[case]
    assert_same_distribution(lambda fn, t: tuple(o) if isinstance(o := build(fn, t), list) else o)


@pytest.mark.dali_differential("segmentation.random_mask_pixel")
@pytest.mark.parametrize("case", list(PIXEL_CASES))
def test_mask_pixels_are_distributed_as_dalis(case):
    assert_same_distribution(PIXEL_CASES[case])


def test_deterministic_cases_equal_dalis():
    assert_same(
        lambda fn, t: fn.segmentation.random_object_bbox(source(fn, MASKS), k_largest=1, classes=[1], format="box"), 8
    )
    assert_same(
        lambda fn, t: tuple(
            fn.segmentation.random_object_bbox(source(fn, MASKS), foreground_prob=0.0, output_class=True)
        ),
        8,
    )


def test_random_mask_pixel_picks_foreground_pixels_of_random_masks():
    dali()
    rng = np.random.default_rng(5)
    masks = [(rng.random((9, 7)) < 0.1).astype(np.uint8) * 3 for _ in range(8)]
    for batch in outputs(
        "pipestate", lambda fn, t: fn.segmentation.random_mask_pixel(source(fn, masks), foreground=1), 8, 5
    ):
        for mask, pixel in zip(masks, batch[0][0]):
            assert pixel.dtype == np.int64 and mask[tuple(pixel)] == 3


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
        (lambda: fn.segmentation.random_mask_pixel(MASK, value=1, threshold=0.5), TypeError, "value= and threshold="),
        (lambda: fn.segmentation.random_object_bbox(MASK.astype(np.float32)), OperatorError, "mask"),
        (
            lambda: fn.segmentation.random_object_bbox(MASK, ignore_class=True, output_class=True),
            TypeError,
            "ignore_class",
        ),
        (
            lambda: fn.segmentation.random_object_bbox(MASK, classes=[1, 2], class_weights=[1.0]),
            ValueError,
            "class_weights",
        ),
        (lambda: fn.segmentation.random_object_bbox(MASK, classes=[1, 2], background=2), OperatorError, "background"),
        (lambda: fn.segmentation.random_object_bbox(MASK, format="corners"), ValueError, "format"),
    ],
)
def test_errors_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        run_error(build)

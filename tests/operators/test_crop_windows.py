"""fn.random_crop_generator, fn.roi_random_crop and fn.batch_permutation against DALI: the same possible
windows and permutations with frequencies a chi-square test cannot tell apart, DALI's exact output where it
is deterministic, and DALI's guarantees (windows inside the image and the ROI rules, permutations)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def
from tests.operators._both import assert_same, assert_same_distribution, dali, outputs, source


def shape_source(fn, shape, dtype=np.int64):
    return source(fn, [np.array(shape, dtype)] * 8)


CROP_CASES = {
    "small image": lambda fn, t: tuple(fn.random_crop_generator(shape_source(fn, [6, 5]), random_area=[0.3, 1.0])),
    "HWC int32": lambda fn, t: tuple(
        fn.random_crop_generator(shape_source(fn, [5, 7, 3], np.int32), random_aspect_ratio=[0.5, 2.0])
    ),
    "fallback too wide": lambda fn, t: tuple(
        fn.random_crop_generator(shape_source(fn, [30, 60]), random_area=[2.0, 3.0])
    ),
    "fallback aspect": lambda fn, t: tuple(
        fn.random_crop_generator(shape_source(fn, [40, 30]), random_area=[2.0, 3.0], random_aspect_ratio=[3.0, 4.0])
    ),
    "fallback tall": lambda fn, t: tuple(
        fn.random_crop_generator(shape_source(fn, [40, 30]), random_area=[2.0, 3.0], random_aspect_ratio=[0.2, 0.25])
    ),
}
ROI_CASES = {
    "ROI end": lambda fn, t: fn.roi_random_crop(crop_shape=[4, 4], roi_start=[2, 1], roi_end=[5, 9]),
    "in_shape": lambda fn, t: fn.roi_random_crop(
        crop_shape=[8, 8], roi_start=[2, 2], roi_shape=[3, 3], in_shape=[12, 10]
    ),
    "input": lambda fn, t: fn.roi_random_crop(
        source(fn, [np.zeros((10, 12, 3), np.uint8)] * 8),
        crop_shape=[4, 5, 3],
        roi_start=[2, 2, 0],
        roi_shape=[6, 6, 3],
    ),
    "per-sample ROI": lambda fn, t: fn.roi_random_crop(
        crop_shape=[5, 5], roi_start=source(fn, [np.array([i % 3, 1], np.int32) for i in range(8)]), roi_shape=[7, 2]
    ),
}


@pytest.mark.dali_differential("random_crop_generator")
@pytest.mark.parametrize("case", list(CROP_CASES))
def test_crop_windows_are_distributed_as_dalis(case):
    assert_same_distribution(CROP_CASES[case], iters=60)


@pytest.mark.dali_differential("roi_random_crop")
@pytest.mark.parametrize("case", list(ROI_CASES))
def test_roi_windows_are_distributed_as_dalis(case):
    assert_same_distribution(ROI_CASES[case], iters=60)


def test_deterministic_windows_equal_dalis():
    assert_same(lambda fn, t: fn.roi_random_crop(crop_shape=[4, 4], roi_start=[3, 2], roi_shape=[4, 4]), 8)
    assert_same(lambda fn, t: tuple(fn.random_crop_generator(shape_source(fn, [0, 10]))), 8)
    assert_same(lambda fn, t: tuple(fn.random_crop_generator(shape_source(fn, [1, 1]))), 8)


def test_crop_windows_fit_the_image_and_the_ranges():
    dali()
    shapes = [np.array([h, w], np.int64) for h, w in [(100, 60), (37, 200), (480, 640), (9, 9)] * 2]
    build = lambda fn, t: tuple(fn.random_crop_generator(source(fn, shapes), random_area=[0.2, 0.9]))  # noqa: E731
    for batch in outputs("pipestate", build, 8, 10):
        for (h, w), anchor, shape in zip(shapes, batch[0][0], batch[1][0]):
            assert anchor.dtype == shape.dtype == np.int32
            assert (anchor >= 0).all() and anchor[0] + shape[0] <= h and anchor[1] + shape[1] <= w
            ratio, area = shape[1] / shape[0], shape[0] * shape[1] / (h * w)
            if h > 10:
                assert 0.74 <= ratio <= 1.34 and 0.19 <= area <= 0.91, (h, w, shape)


def permutations(library, n, iters, **kwargs):
    batches = outputs(library, lambda fn, t: fn.batch_permutation(**kwargs), n, iters)
    return [tuple(int(v) for v in batch[0][0]) for batch in batches]


@pytest.mark.dali_differential("batch_permutation")
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"no_fixed_points": True}, {"allow_repetitions": True}, {"allow_repetitions": True, "no_fixed_points": True}],
)
def test_permutations_are_distributed_as_dalis(kwargs):
    from scipy.stats import chi2_contingency

    dali()
    n = 3
    ours, theirs = permutations("pipestate", n, 400, **kwargs), permutations("dali", n, 400, **kwargs)
    possible = set(itertools.product(range(n), repeat=n))
    if not kwargs.get("allow_repetitions"):
        possible = {p for p in possible if len(set(p)) == n}
    if kwargs.get("no_fixed_points"):
        possible = {p for p in possible if all(v != i for i, v in enumerate(p))}
    assert set(ours) == set(theirs) == possible
    keys = sorted(possible)
    table = [[ours.count(k) for k in keys], [theirs.count(k) for k in keys]]
    if len(keys) > 1:
        assert chi2_contingency(table).pvalue > 1e-3, table


def test_batch_permutation_of_one_sample_is_zero():
    assert permutations("pipestate", 1, 3, no_fixed_points=True) == [(0,)] * 3


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
        (lambda: fn.random_crop_generator(np.array([10], np.int64)), OperatorError, r"\(H, W\)"),
        (lambda: fn.random_crop_generator(np.array([10.0, 5.0], np.float32)), OperatorError, "shape"),
        (
            lambda: fn.random_crop_generator(np.array([10, 5], np.int64), random_area=[0.9, 0.1]),
            ValueError,
            "random_area",
        ),
        (
            lambda: fn.roi_random_crop(crop_shape=[4], roi_start=[1], roi_end=[3], roi_shape=[2]),
            TypeError,
            "roi_end= or roi_shape=",
        ),
        (
            lambda: fn.roi_random_crop(crop_shape=[40, 2], roi_start=[1, 1], roi_shape=[2, 2], in_shape=[30, 30]),
            OperatorError,
            "larger than",
        ),
        (
            lambda: fn.roi_random_crop(crop_shape=[4, 2], roi_start=[1, 1], roi_shape=[40, 2], in_shape=[30, 30]),
            OperatorError,
            "outside",
        ),
        (
            lambda: fn.roi_random_crop(crop_shape=[4, 2], roi_start=[1], roi_shape=[4, 2, 2]),
            OperatorError,
            "roi_shape has 3",
        ),
        (lambda: fn.batch_permutation(np.zeros(2, np.int32)), TypeError, "no inputs"),
    ],
)
def test_errors_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        run_error(build)

"""The random image operators: random_resized_crop, decoders.image_random_crop (and its experimental alias),
jitter.

- Given the same drawn window, the output equals DALI's: ``fn.resize`` with the window as its region of
  interest for random_resized_crop (within 1 level on at most 0.5 % of values, the resampling ties),
  ``fn.decoders.image_slice`` for image_random_crop (exact).
- The windows' distribution matches DALI's: the window sizes DALI's ``decoders.image_random_crop`` draws and
  ours, compared with two-sample Kolmogorov-Smirnov tests of the area fraction and the log aspect ratio.
- jitter (GPU-only in DALI): every pixel comes from within ``nDegree / 2`` pixels, offsets uniform, ``mask``.
"""

import numpy as np
import pytest

from pipestate import fn, pipeline_def
from pipestate.operators.image._kernels.random_crop import random_crop_window
from pipestate.rng import Stream, derive_key
from tests.operators.image._dali import assert_close, dali, encode, run_dali, test_image

pytest.importorskip("cv2")
SEED = 77
IMAGES = [test_image(20 + i, 50 + 9 * i, 70 - 6 * i) for i in range(4)]
PNGS = [np.frombuffer(encode(im, ".png"), np.uint8) for im in IMAGES]


def windows(h_w: list, seed: int = SEED, first: int = 0, **kw) -> list:
    """The windows the operator with ``seed=seed`` draws for samples ``first, first + 1, ...``."""
    key = derive_key("op-seed", seed)
    return [random_crop_window(Stream(key, first + i, 1).generator(0), h, w, **kw) for i, (h, w) in enumerate(h_w)]


def run_ours(build, samples, steps=1, batch_size=None):
    @pipeline_def(batch_size=batch_size or len(samples), num_threads=2, seed=1)
    def pipe():
        return build(fn.external_source(source=lambda: list(samples), layout=None if samples[0].ndim == 1 else "HWC"))

    p = pipe()
    outs = [[np.array(s) for s in p.run()[0]] for _ in range(steps)]
    p.close()
    return outs


@pytest.mark.dali_differential("random_resized_crop")
@pytest.mark.parametrize(
    "size, kw",
    [
        ((24, 30), {}),
        ((64, 40), {"random_area": (0.3, 0.5)}),
        ((17, 17), {"random_aspect_ratio": (0.5, 2.0), "antialias": False}),
    ],
)
def test_random_resized_crop_equals_dali_resize_of_the_same_window(size, kw):
    dali()
    ours = run_ours(lambda x: fn.random_resized_crop(x, size=size, seed=SEED, **kw), IMAGES, steps=2)
    draw = {k: v for k, v in kw.items() if k != "antialias"}
    for step in range(2):
        wins = windows([im.shape[:2] for im in IMAGES], first=step * len(IMAGES), **draw)
        for i, ((y, x), (h, w)) in enumerate(wins):
            expected = run_dali(
                [IMAGES[i]],
                lambda fn, types, node, y=y, x=x, h=h, w=w: fn.resize(
                    node, size=size, roi_start=(y, x), roi_end=(y + h, x + w), antialias=kw.get("antialias", True)
                ),
            )
            assert_close([[ours[step][i]]], [expected], atol=1, fraction=0.005, where=f"step {step} sample {i}")


@pytest.mark.dali_differential("decoders.image_random_crop", "experimental.decoders.image_random_crop")
@pytest.mark.parametrize("op", ["decoders", "experimental.decoders"])
def test_image_random_crop_equals_dali_slice_of_the_same_window(op):
    dali()
    module = fn.decoders if op == "decoders" else fn.experimental.decoders
    ours = run_ours(lambda x: module.image_random_crop(x, seed=SEED, random_area=(0.2, 0.6)), PNGS)[0]
    wins = windows([im.shape[:2] for im in IMAGES], random_area=(0.2, 0.6))
    for i, ((y, x), (h, w)) in enumerate(wins):
        expected = run_dali(
            [PNGS[i]],
            lambda fn, types, node, y=y, x=x, h=h, w=w: fn.decoders.image_slice(node, start=(x, y), shape=(w, h)),
            layout=None,
        )
        assert np.array_equal(ours[i], expected[0])


def _area_and_ratio(shapes: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return shapes[:, 0] * shapes[:, 1] / (h * w), np.log(shapes[:, 1] / shapes[:, 0])


@pytest.mark.parametrize("kw", [{}, {"random_area": (0.5, 0.9), "random_aspect_ratio": (0.6, 1.2)}])
def test_window_distribution_matches_dalis(kw):
    """The (h, w) of DALI's image_random_crop windows and of ours follow the same distribution."""
    stats = pytest.importorskip("scipy.stats")
    d_fn, d_types, d_pipeline_def = dali()
    h, w, n = 120, 160, 400
    data = np.frombuffer(encode(test_image(3, h, w), ".png"), np.uint8)

    @d_pipeline_def(batch_size=n, num_threads=1, device_id=None, seed=3)
    def dali_pipe():
        return d_fn.decoders.image_random_crop(d_fn.external_source(source=lambda: [data] * n), **kw)

    p = dali_pipe()
    p.build()
    dalis = np.array([np.array(s).shape[:2] for s in p.run()[0]])
    ours = np.array([s.shape[:2] for s in run_ours(lambda x: fn.decoders.image_random_crop(x, **kw), [data] * n)[0]])
    for theirs_values, our_values in zip(_area_and_ratio(dalis, h, w), _area_and_ratio(ours, h, w)):
        assert stats.ks_2samp(theirs_values, our_values).pvalue > 1e-3


@pytest.mark.parametrize("h, w", [(100, 100), (40, 400), (400, 30), (1, 1), (3, 50)])
def test_windows_fit_and_follow_the_requested_ranges(h, w):
    rng = np.random.default_rng(0)
    area_range = (0.08, 0.5)  # on a square image no window of this area is rejected
    draws = [random_crop_window(rng, h, w, area_range, (3 / 4, 4 / 3), 10) for _ in range(2000)]
    for (y, x), (ch, cw) in draws:
        assert 1 <= ch <= h and 1 <= cw <= w and 0 <= y <= h - ch and 0 <= x <= w - cw
    if (h, w) == (100, 100):  # nothing is rejected: area and log-ratio are uniform over their ranges
        area = np.array([ch * cw for _, (ch, cw) in draws]) / (h * w)
        ratio = np.log(np.array([cw / ch for _, (ch, cw) in draws]))
        assert abs(area.mean() - 0.29) < 0.01 and abs(ratio.mean()) < 0.02
        assert np.log(3 / 4) - 0.02 <= ratio.min() and ratio.max() <= np.log(4 / 3) + 0.02


def test_random_crops_are_per_sample_and_restorable():
    outs = run_ours(lambda x: fn.random_resized_crop(x, size=(8, 8)), [IMAGES[0]] * 6, steps=2)
    flat = [s.tobytes() for step in outs for s in step]
    assert len(set(flat)) == len(flat)  # every sample its own window, every step new ones


@pytest.mark.dali_differential("jitter")
def test_jitter_moves_pixels_by_at_most_half_the_degree():
    h, w, n = 40, 50, 5
    coords = np.dstack(np.mgrid[0:h, 0:w]).astype(np.float32) + 1  # each pixel holds (y + 1, x + 1)
    coords = np.dstack([coords, np.zeros((h, w), np.float32)])
    masks = [np.int32(i != 2) for i in range(4)]

    @pipeline_def(batch_size=4, num_threads=2, seed=2)
    def pipe():
        x = fn.external_source(source=lambda: [coords] * 4, layout="HWC")
        return fn.jitter(x, nDegree=n, fill_value=-1.0, mask=fn.external_source(source=lambda: masks))

    p = pipe()
    (out,) = p.run()
    p.close()
    assert np.array_equal(out[2], coords)  # mask 0: unchanged
    offsets = []
    for i in (0, 1, 3):
        got = out[i]
        inside = got[:, :, 0] >= 0
        dy = got[:, :, 0] - coords[:, :, 0]
        dx = got[:, :, 1] - coords[:, :, 1]
        assert np.all(np.abs(dy[inside]) <= n // 2) and np.all(np.abs(dx[inside]) <= n // 2)
        assert (~inside).mean() < 0.1 and np.all(~inside == (got[:, :, 0] == -1))
        offsets.append(dx[5:-5, 5:-5].ravel())
    counts = np.unique(np.concatenate(offsets), return_counts=True)[1]
    assert len(counts) == n and counts.min() > 0.8 * counts.mean()  # uniform over the n offsets
    assert not np.array_equal(out[0], out[1])


def test_bad_random_crop_arguments():
    with pytest.raises(ValueError, match="size"):
        run_ours(lambda x: fn.random_resized_crop(x, size=(1, 2, 3)), IMAGES)
    with pytest.raises(TypeError, match="size"):
        run_ours(lambda x: fn.random_resized_crop(x), IMAGES)
    with pytest.raises(ValueError, match="random_area"):
        run_ours(lambda x: fn.random_resized_crop(x, size=4, random_area=(0.5, 0.1)), IMAGES)
    with pytest.raises(ValueError, match="num_attempts"):
        run_ours(lambda x: fn.random_resized_crop(x, size=4, num_attempts=-1), IMAGES)

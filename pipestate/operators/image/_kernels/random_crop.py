"""DALI's random crop window (``RandomCropGenerator``): the window of ``random_resized_crop`` and
``decoders.image_random_crop``.

An area fraction is drawn uniformly from ``random_area`` and an aspect ratio (width / height) log-uniformly from
``random_aspect_ratio``; the window of that area and ratio (sides rounded to nearest) is accepted when it fits
the image and its rounded ratio stays in range, else another attempt is made, up to ``num_attempts``; after
that, the largest window of an allowed ratio within the maximum area is taken. The window is placed at a
uniformly drawn integer position. Sizes are computed in ``float32`` as in DALI; the draws come from
the caller's generator (the sample's own stream), so they differ from DALI's but follow the same distribution.
"""

from __future__ import annotations

import math

import numpy as np

_F = np.float32


def random_crop_window(
    rng: np.random.Generator,
    height: int,
    width: int,
    random_area: tuple[float, float] = (0.08, 1.0),
    random_aspect_ratio: tuple[float, float] = (3 / 4, 4 / 3),
    num_attempts: int = 10,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Draw one crop window of an image ``height`` x ``width``.

    Args:
        rng: The sample's generator.
        height, width: The image size.
        random_area: Range of the window's area as a fraction of the image's.
        random_aspect_ratio: Range of the window's width / height (drawn log-uniformly).
        num_attempts: Draws before falling back to the largest window of an allowed ratio.

    Returns:
        ``((y, x), (h, w))``: the window's top-left corner and size (an empty image gives an empty window).
    """
    h_img, w_img = int(height), int(width)
    if h_img <= 0 or w_img <= 0:
        return (0, 0), (0, 0)
    min_ratio, max_ratio = _F(random_aspect_ratio[0]), _F(random_aspect_ratio[1])
    max_hw_ratio = _F(_F(1) / min_ratio)
    area_lo, area_hi = _F(random_area[0]), _F(random_area[1])
    min_area = _F(_F(w_img * h_img) * area_lo)
    max_w = max(1, int(_F(h_img) * max_ratio))
    max_h = max(1, int(_F(w_img) * max_hw_ratio))
    if _F(h_img * max_w) < min_area:  # the image is too wide for any allowed window
        h, w = h_img, max_w
    elif _F(w_img * max_h) < min_area:  # too tall
        h, w = max_h, w_img
    else:
        log_lo, log_hi = math.log(min_ratio), math.log(max_ratio)
        for _ in range(num_attempts):
            scale = _F(area_lo + _F(rng.random()) * (area_hi - area_lo))
            target = _F(scale * _F(h_img * w_img))
            ratio = _F(math.exp(log_lo + rng.random() * (log_hi - log_lo)))
            w = max(1, _round(math.sqrt(_F(target * ratio))))
            h = max(1, _round(math.sqrt(_F(target / ratio))))
            rounded = _F(_F(w) / _F(h))
            if w <= w_img and h <= h_img and min_ratio <= rounded <= max_ratio:
                break
        else:
            max_area = _F(area_hi * _F(w_img * h_img))
            ratio = _F(_F(w_img) / _F(h_img))
            if ratio > max_ratio:
                h, w = h_img, max_w
            elif ratio < min_ratio:
                h, w = max_h, w_img
            else:
                h, w = h_img, w_img
            factor = math.sqrt(min(_F(1), _F(max_area / _F(w * h))))
            w = max(1, int(w * factor))
            h = max(1, int(h * factor))
    x = int(rng.integers(0, w_img - w + 1))
    y = int(rng.integers(0, h_img - h + 1))
    return (y, x), (h, w)


def _round(value: float) -> int:
    """``std::roundf`` of a float32 value: halves away from zero."""
    v = float(_F(value))
    return int(math.copysign(math.floor(abs(v) + 0.5), v))

"""``fn.equalize`` (and its legacy alias ``fn.experimental.equalize``): per-channel histogram equalization of
``uint8`` images and videos with OpenCV's ``equalizeHist``, as DALI's CPU operator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import Example, Sample, SampleOperator, Tensor, register
from pipestate.operators import schema as sch


def _equalize(image: np.ndarray) -> np.ndarray:
    """Equalize each channel of one HW or HWC ``uint8`` image (OpenCV ``split``/``equalizeHist``/``merge``)."""
    import cv2

    if image.ndim == 2:
        return cv2.equalizeHist(np.ascontiguousarray(image))
    if image.shape[2] == 1:
        return cv2.equalizeHist(np.ascontiguousarray(image[..., 0]))[..., None]
    return cv2.merge([cv2.equalizeHist(c) for c in cv2.split(np.ascontiguousarray(image))]).reshape(image.shape)


@register
class Equalize(SampleOperator):
    """Histogram equalization of each channel of ``uint8`` images (``HW``, ``HWC``, ``CHW``) and sequences of them
    (``FHW``, ``FHWC``, ``FCHW``)."""

    type = "equalize"
    INPUTS = (
        sch.Input("images", "uint8 images", dtypes=("uint8",), layouts=("HW", "HWC", "CHW", "FHW", "FHWC", "FCHW")),
    )
    EXAMPLE = Example(inputs=(Tensor("uint8", (9, 8, 3), layout="HWC", ragged=(0, 1), low=40, high=160),))

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (image,) = inputs
        layout = s.layouts[0]
        if layout.endswith("C"):  # channels last: HWC images (FHWC: one per frame)
            frames = image.reshape((-1, *image.shape[-3:]))
        else:  # HW planes (CHW, FHW, FCHW: one per leading index)
            frames = image.reshape((-1, *image.shape[-2:]))
        if len(frames) == 1:
            return _equalize(frames[0]).reshape(image.shape)
        return np.stack([_equalize(f) for f in frames]).reshape(image.shape)

"""``fn.equalize`` (and its legacy alias ``fn.experimental.equalize``): per-channel histogram equalization of
``uint8`` images and videos with OpenCV's ``equalizeHist``, as DALI's CPU operator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import Example, Sample, SampleOperator, Tensor, register
from pipestate.operators import schema as sch


def _equalize_planes(planes: np.ndarray) -> np.ndarray:
    import cv2

    return np.stack([cv2.equalizeHist(np.ascontiguousarray(p)) for p in planes])


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
        if layout.endswith("C"):  # channels last: equalize each channel plane
            moved = np.moveaxis(image, -1, -3)
            planes = _equalize_planes(moved.reshape((-1, *moved.shape[-2:])))
            return np.ascontiguousarray(np.moveaxis(planes.reshape(moved.shape), -3, -1))
        planes = _equalize_planes(image.reshape((-1, *image.shape[-2:])))
        return planes.reshape(image.shape)


@register
class ExperimentalEqualize(Equalize):
    """Legacy alias of ``fn.equalize`` (DALI keeps ``fn.experimental.equalize`` for backward compatibility)."""

    type = "experimental.equalize"

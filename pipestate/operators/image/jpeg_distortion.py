"""``fn.jpeg_compression_distortion``: JPEG compression artifacts, from an OpenCV JPEG encode and decode at the
given quality, as DALI's CPU operator (bit-exact with the same libjpeg-turbo)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import Example, Sample, SampleOperator, Tensor, register
from pipestate.operators import schema as sch
from pipestate.operators.schema import Arg


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode an RGB ``uint8`` image as JPEG at ``quality`` (clamped to 1..100) and decode it back."""
    import cv2

    bgr = np.ascontiguousarray(image[..., ::-1])
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, min(max(quality, 1), 100)])
    if not ok:  # pragma: no cover - OpenCV encodes any non-empty 3-channel uint8 image
        raise ValueError(f"OpenCV could not encode an image of shape {image.shape} as JPEG")
    return np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1])


@register
class JpegCompressionDistortion(SampleOperator):
    """Introduces JPEG compression artifacts into RGB ``uint8`` images (``HWC``, or sequences ``FHWC``): the image is
    JPEG-encoded at ``quality`` (1 to 100; values outside are clamped) and decoded back."""

    type = "jpeg_compression_distortion"
    INPUTS = (sch.Input("images", "RGB uint8 images", dtypes=("uint8",), layouts=("HWC", "FHWC")),)
    ARGS = (Arg("quality", sch.Int(), 50, "JPEG quality, 1 (lowest) to 100 (highest); clamped", tensor=True),)
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (16, 12, 3), layout="HWC", ragged=(0, 1)),),
        arg_inputs={"quality": Tensor("int32", (), low=1, high=100)},
    )

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (image,) = inputs
        if image.shape[-1] != 3:
            raise ValueError(f"fn.{self.type}() works on 3-channel RGB images; this sample has shape {image.shape}")
        if 0 in image.shape:
            return image.copy()
        if image.ndim == 4:
            return np.stack([jpeg_roundtrip(frame, args["quality"]) for frame in image])
        return jpeg_roundtrip(image, args["quality"])

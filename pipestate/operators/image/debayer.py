"""``fn.debayer`` (and its legacy alias ``fn.experimental.debayer``): demosaicing of single-channel Bayer images
with OpenCV's ``demosaicing``, as DALI's CPU operator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import Example, Sample, SampleOperator, Tensor, register
from pipestate.operators import schema as sch
from pipestate.operators.schema import Arg

ALGORITHMS = ("default", "bilinear_ocv", "edgeaware_ocv", "vng_ocv", "gray_ocv", "default_npp")
_PATTERNS = {(0, 0): "BG", (0, 1): "GB", (1, 0): "GR", (1, 1): "RG"}
_SUFFIX = {"bilinear_ocv": "2RGB", "edgeaware_ocv": "2RGB_EA", "vng_ocv": "2RGB_VNG", "gray_ocv": "2GRAY"}


@register
class Debayer(SampleOperator):
    """Converts single-channel Bayer-mosaic images (``HW``, ``HWC`` with one channel, ``FHW``) to ``HWC`` RGB
    (``FHWC`` for sequences); ``blue_position`` is the blue sensor's (row, column) in the 2x2 tile that starts at
    the second row and column (OpenCV's convention: (0, 0) is BGGR)."""

    type = "debayer"
    INPUTS = (sch.Input("images", "Bayer images", dtypes=("uint8", "uint16"), layouts=("HW", "HWC", "FHW", "FHWC")),)
    ARGS = (
        Arg(
            "blue_position",
            sch.Seq(sch.Int(0, 1), length=2),
            sch.REQUIRED,
            "(row, column) of the blue sensor in the 2x2 Bayer tile",
            tensor=True,
        ),
        Arg("algorithm", sch.Str(ALGORITHMS), "default", "bilinear_ocv (default), edgeaware_ocv, vng_ocv, gray_ocv"),
    )
    EXAMPLE = Example(
        inputs=(
            Tensor(
                "uint8",
                (6, 8),
                layout="HW",
                values=lambda i: (np.arange(48 * (1 + i % 2)) * 37 % 256).reshape(6 * (1 + i % 2), 8),
            ),
        ),
        arg_inputs={"blue_position": Tensor("int32", (2,), values=lambda i: [i % 2, (i // 2) % 2])},
    )

    def validate(self) -> None:
        super().validate()
        if self.args["algorithm"] == "default_npp":
            raise ValueError("fn.debayer(): algorithm='default_npp' runs on the GPU only; use bilinear_ocv (default)")

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return "FHWC" if ndim == 4 else "HWC"

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        import cv2

        (image,) = inputs
        layout = s.layouts[0]
        if layout.endswith("C"):
            if image.shape[-1] != 1:
                raise ValueError(f"fn.debayer() expects single-channel images; this sample has shape {image.shape}")
            image = image[..., 0]
        height, width = image.shape[-2:]
        if height % 2 or width % 2:
            raise ValueError(f"the height and width of a Bayer image must be even; this sample is {height} x {width}")
        algorithm = args["algorithm"]
        algorithm = "bilinear_ocv" if algorithm == "default" else algorithm
        if algorithm == "vng_ocv" and image.dtype != np.uint8:
            raise TypeError("algorithm='vng_ocv' supports uint8 images only")
        code = getattr(cv2, "COLOR_Bayer" + _PATTERNS[tuple(args["blue_position"])] + _SUFFIX[algorithm])
        frames = [cv2.demosaicing(np.ascontiguousarray(f), code) for f in image.reshape((-1, height, width))]
        frames = [f[..., None] if f.ndim == 2 else f for f in frames]
        out = np.stack(frames)
        return out if image.ndim == 3 else out[0]

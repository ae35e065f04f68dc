"""Decoding encoded images to HWC ``uint8`` arrays with DALI's CPU decoder semantics (``fn.decoders.image``).

The decoding library is OpenCV (``opencv-python-headless``, pinned in the ``image`` extra): its bundled
libjpeg-turbo decodes JPEG with the same IDCT and chroma upsampling as DALI's CPU decoder, so JPEG pixels are
identical, and it reads PNG, BMP, TIFF and WebP; it releases the GIL while decoding. See
``docs/dependencies.md`` for the measurements behind the choice and ``docs/images.md`` for the differences.

Semantics, as DALI's:
- ``RGB``/``BGR``: 3 channels; alpha is dropped, grey images are replicated.
- ``GRAY``: 1 channel; JPEG decodes luma directly (as libjpeg does for DALI), other formats convert from RGB
  (PNG truncates, as DALI's PNG path does; the others round).
- ``YCbCr``: ITU-R BT.601 studio range, converted from the decoded RGB.
- ``ANY_DATA``: the file's own channels (1, 3 or 4) in RGB(A) order.
- 16-bit images are scaled to 8 bits with rounding (``v / 257``); JPEG EXIF orientation is applied unless
  ``adjust_orientation=False``.
"""

from __future__ import annotations

import struct

import numpy as np

from pipestate.operators.image._kernels import color

OUTPUT_TYPES = ("RGB", "BGR", "GRAY", "YCbCr", "ANY_DATA")
_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


class ImageDecodeError(ValueError):
    """An encoded sample could not be decoded; the message names the sample's source."""


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - the image extra installs it
        raise ImportError("image decoding needs OpenCV: pip install 'pipestate[image]'") from exc
    return cv2


def _where(source: str | None) -> str:
    return f" from {source!r}" if source else ""


def image_format(data: bytes | np.ndarray) -> str | None:
    """The container format of ``data`` from its first bytes: ``"jpeg"``, ``"png"``, ``"bmp"``, ``"tiff"``,
    ``"webp"`` or ``None`` when it is none of them."""
    head = bytes(memoryview(data)[:12])
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _jpeg_header(data: bytes) -> tuple[int, int, int, int]:
    """(height, width, components, EXIF orientation) read from a JPEG's markers."""
    pos, n = 2, len(data)
    orientation = 1
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise ValueError("bad JPEG marker")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            orientation = _exif_orientation(data[pos + 10 : pos + 2 + length])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return height, width, data[pos + 9], orientation
        pos += 2 + length
    raise ValueError("no JPEG frame header")


def _exif_orientation(tiff: bytes) -> int:
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    end = "<" if tiff[:2] == b"II" else ">"
    ifd = struct.unpack(end + "I", tiff[4:8])[0]
    if ifd + 2 > len(tiff):
        return 1
    for i in range(struct.unpack(end + "H", tiff[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(tiff):
            break
        if struct.unpack(end + "H", tiff[entry : entry + 2])[0] == 0x0112:
            value = struct.unpack(end + "H", tiff[entry + 8 : entry + 10])[0]
            return value if 1 <= value <= 8 else 1
    return 1


def peek_shape(
    data: bytes | np.ndarray, output_type: str = "RGB", *, adjust_orientation: bool = True, source: str | None = None
) -> tuple[int, int, int]:
    """The ``(height, width, channels)`` of ``decode(data, output_type)`` (DALI's ``peek_image_shape`` reports
    the RGB shape: 3 channels); JPEG and PNG are read from their headers without decoding.

    Raises:
        ValueError: ``output_type`` is unknown.
        ImageDecodeError: the bytes are not a supported image (the message names ``source``).
    """
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type={output_type!r} is unknown; use one of {list(OUTPUT_TYPES)}")
    raw = bytes(memoryview(data).cast("B"))
    fmt = image_format(raw)
    size = None
    try:
        if fmt == "jpeg":
            height, width, comps, orientation = _jpeg_header(raw)
            if adjust_orientation and orientation >= 5:
                height, width = width, height
            size, channels = (height, width), 1 if comps == 1 else 3
        elif fmt == "png" and raw[12:16] == b"IHDR":
            width, height = struct.unpack(">II", raw[16:24])
            size, channels = (height, width), {0: 1, 2: 3, 3: 3, 4: 1, 6: 4}.get(raw[25], 3)
    except (ValueError, struct.error, IndexError) as exc:
        raise ImageDecodeError(f"cannot read the image header of the sample{_where(source)}: {exc}") from exc
    if size is None:
        height, width, channels = decode(raw, "ANY_DATA", adjust_orientation=adjust_orientation, source=source).shape
        size = (height, width)
    if output_type != "ANY_DATA":
        channels = 1 if output_type == "GRAY" else 3
    return size[0], size[1], channels


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return np.rint(img / np.float32(257)).astype(np.uint8)
    if img.dtype.kind == "f":
        return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    raise TypeError(f"unsupported decoded element type {img.dtype}")


def _decode_any(cv2, buf: np.ndarray) -> np.ndarray | None:
    """Any-format decode to RGB(A)/GRAY ``uint8`` with the file's own channels."""
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    img = _to_uint8(img)
    if img.ndim == 2:
        return img[:, :, None]
    if img.shape[2] == 2:  # grey + alpha
        return img[:, :, :1]
    if img.shape[2] == 3:
        return img[:, :, ::-1]
    return img[:, :, [2, 1, 0, 3]]


def decode(
    data: bytes | np.ndarray,
    output_type: str = "RGB",
    *,
    adjust_orientation: bool = True,
    source: str | None = None,
) -> np.ndarray:
    """Decode one encoded image as DALI's CPU ``fn.decoders.image`` does.

    Args:
        data: The encoded bytes (``bytes`` or a 1-D ``uint8`` array).
        output_type: ``"RGB"``, ``"BGR"``, ``"GRAY"``, ``"YCbCr"`` or ``"ANY_DATA"``.
        adjust_orientation: Apply a JPEG's EXIF orientation (DALI's default).
        source: Where the sample came from (a file name); named in errors.

    Returns:
        A C-contiguous ``(H, W, C)`` ``uint8`` array.

    Raises:
        ValueError: ``output_type`` is unknown.
        ImageDecodeError: the bytes are empty, not a supported format, or damaged.
    """
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type={output_type!r} is unknown; use one of {list(OUTPUT_TYPES)}")
    cv2 = _cv2()
    buf = np.frombuffer(memoryview(data).cast("B"), np.uint8)
    if buf.size == 0:
        raise ImageDecodeError(f"cannot decode the sample{_where(source)}: it is empty")
    fmt = image_format(buf)
    if fmt is None:
        raise ImageDecodeError(
            f"cannot decode the sample{_where(source)}: not a JPEG, PNG, BMP, TIFF or WebP "
            f"image (first bytes {bytes(buf[:8])!r})"
        )
    orient = 0 if adjust_orientation else cv2.IMREAD_IGNORE_ORIENTATION
    img = None
    if fmt == "jpeg":
        want = output_type
        if output_type == "ANY_DATA":  # the file's own channels: read them from the header
            try:
                comps = _jpeg_header(bytes(buf[:65536]))[2]
            except (ValueError, struct.error, IndexError):
                comps = 3
            want = "GRAY" if comps == 1 else "RGB"
        if want == "GRAY":
            img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE | orient)
            img = None if img is None else img[:, :, None]
        elif want == "BGR":
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR_BGR | orient)
        else:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR_RGB | orient)
        if img is not None and want == "YCbCr":
            img = color.rgb_to_ycbcr(img)
    else:
        img = _decode_any(cv2, buf)
        if img is not None and output_type != "ANY_DATA":
            rgb = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]
            if output_type == "RGB":
                img = rgb
            elif output_type == "BGR":
                img = rgb[:, :, ::-1]
            elif output_type == "GRAY":
                img = img[:, :, :1] if img.shape[2] == 1 else color.rgb_to_gray(rgb, truncate=fmt == "png")
            else:
                img = color.rgb_to_ycbcr(rgb)
    if img is None:
        raise ImageDecodeError(
            f"cannot decode the sample{_where(source)}: the {fmt.upper()} data is damaged "
            f"or truncated ({buf.size} bytes)"
        )
    return np.ascontiguousarray(img)

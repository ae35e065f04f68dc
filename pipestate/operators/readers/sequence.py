"""``fn.readers.sequence``: sequences of decoded frames from directories of image files (one per stream)."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example
from pipestate.operators.readers import _files
from pipestate.operators.readers._base import Reader, shard_args
from pipestate.operators.schema import Arg
from pipestate.types import DALIImageType

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".pnm", ".ppm", ".pgm", ".pbm", ".jp2", ".webp")


def decode_frame(data: bytes, image_type: DALIImageType, path: str) -> np.ndarray:
    """Decode one frame to HWC uint8 in ``image_type`` (RGB, BGR: 3 channels; GRAY: 1).

    The one place that decodes images in this reader (OpenCV, whose libjpeg-turbo/libpng output equals
    DALI's host decoding on JPEG and PNG frames), kept apart so that it can be replaced by the shared image
    decoder.

    Raises:
        ImportError: OpenCV is missing. ValueError: not a decodable image (naming ``path``).
    """
    try:
        import cv2
    except ImportError:
        raise ImportError("fn.readers.sequence decodes frames with OpenCV: pip install 'pipestate[image]'") from None
    buf = np.frombuffer(data, dtype=np.uint8)
    gray = image_type == DALIImageType.GRAY
    image = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR) if buf.size else None
    if image is None:
        raise ValueError(f"fn.readers.sequence(): cannot decode frame {path!r} (not an image, or damaged)")
    if gray:
        return image[:, :, None]
    return image if image_type == DALIImageType.BGR else np.ascontiguousarray(image[:, :, ::-1])


def list_streams(root: str) -> list[list[str]]:
    """List ``root/<stream>/<frame>`` as DALI does: image files one level down, sorted by path, by directory."""
    try:
        dirs = sorted(e.path for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        raise FileNotFoundError(f"file_root: directory {root!r} does not exist") from None
    except NotADirectoryError:
        raise NotADirectoryError(f"file_root: {root!r} is not a directory") from None
    files = []
    for d in dirs:
        with os.scandir(d) as it:
            files += [
                f"{d}/{e.name}" for e in it if not e.name.startswith(".") and e.name.lower().endswith(IMAGE_EXTENSIONS)
            ]
    files.sort()
    streams: dict[str, list[str]] = {}
    for f in files:
        streams.setdefault(f[: f.rfind("/") + 1], []).append(f)
    return list(streams.values())


@register
class SequenceReader(Reader):
    """Read frame sequences from a directory of streams (DALI's ``fn.readers.sequence``).

    Each sub-directory of ``file_root`` is a stream whose image files, sorted by name, are its frames. A
    sequence is ``sequence_length`` frames ``stride`` apart; consecutive sequences start ``step`` frames
    apart; sequences never cross streams and only complete ones are read. Frames are decoded (OpenCV,
    ``pip install pipestate[image]``).


    Returns:
        The sequences as uint8 arrays ``(sequence_length, H, W, C)``, layout ``"FHWC"``.

    Raises:
        ValueError / TypeError: invalid arguments (at definition); no complete sequence (at build); a frame
            that cannot be decoded (naming it, when read).
        FileNotFoundError: a missing ``file_root`` (at build) or frame (when read).
    """

    type = "readers.sequence"
    EXAMPLE = Example(
        setup="tests.operators.readers.datasets:frames",
        args={"random_shuffle": True, "initial_fill": 2},
        dali="test:tests/operators/readers/test_dali_parity_formats.py",
    )
    DALI_FIXED_SHUFFLE = True
    ARGS = (
        Arg("file_root", sch.Path(), sch.REQUIRED, "Directory of streams, one sub-directory of frames each"),
        Arg("sequence_length", sch.Int(1), sch.REQUIRED, "Frames per sequence"),
        Arg("step", sch.Int(1), 1, "Distance between the first frames of consecutive sequences"),
        Arg("stride", sch.Int(1), 1, "Distance between consecutive frames of a sequence"),
        Arg("image_type", sch.Int(0, 2), DALIImageType.RGB, "Color space of the output: types.RGB, BGR or GRAY"),
        *shard_args(shuffle_after_epoch=False),
    )

    def discover(self) -> tuple[int, Iterable[bytes]]:
        a = self.args
        length, step, stride = a["sequence_length"], a["step"], a["stride"]
        frames: list[str] = []
        starts = []
        for stream in list_streams(a["file_root"]):
            base = len(frames)
            frames += stream
            last = len(stream) - (length - 1) * stride  # first frames must be < last
            starts += [base + i for i in range(0, max(last, 0), step)]
        if not starts:
            raise ValueError(
                f"fn.readers.sequence(): no complete sequence of {length} frames (stride {stride}) in the "
                f"streams of file_root={a['file_root']!r}"
            )
        self.frames = frames
        self.starts = np.asarray(starts, dtype=np.int64)
        root = os.path.join(a["file_root"], "")
        relative = [f[len(root) :] if f.startswith(root) else f for f in frames]
        return len(starts), [_files.encode_paths(relative), self.starts.tobytes(), b"%d %d" % (length, stride)]

    def _read(self, indices: list[int]) -> list[np.ndarray]:
        a = self.args
        image_type = DALIImageType(a["image_type"])
        out = []
        for i in indices:
            first = int(self.starts[i])
            frames = []
            for k in range(a["sequence_length"]):
                path = self.frames[first + k * a["stride"]]
                try:
                    data = _files.read_bytes(path)
                except OSError as exc:
                    raise type(exc)(exc.errno, f"cannot read frame {path!r}: {exc.strerror}") from None
                frames.append(decode_frame(data, image_type, path))
            shapes = {f.shape for f in frames}
            if len(shapes) > 1:
                raise ValueError(
                    f"fn.readers.sequence(): the frames of the sequence starting at {frames and path!r} "
                    f"differ in shape {sorted(shapes)}; a sequence needs frames of one size"
                )
            out.append(np.stack(frames))
        return out

    def read(self, ctx: RunContext, indices: list[int]) -> tuple[Batch, ...]:
        return (Batch.from_samples(self.read_chunks(ctx, self._read, indices), layout="FHWC"),)

"""The DALI test utilities the ported checkpointing tests use, recreated for pipestate.

DALI's tests import ``test_utils`` (``compare_pipelines``, ``get_dali_extra_path``,
``create_sign_off_decorator``), ``nose_utils`` (``assert_raises``, ``assert_warns``, ``attr``) and
``nose2.tools`` (``params``, ``cartesian_params``); this module provides the same names with the same
behaviour on top of pytest, so the ported test bodies stay as DALI wrote them.

``get_dali_extra_path()`` returns ``$DALI_EXTRA_PATH`` when it holds DALI_extra, and otherwise a
generated stand-in with the same layout for the parts the ported tests read, made once per machine under
the temporary directory: ``db/single/jpeg`` holds real JPEGs (encoded with OpenCV; the image operators'
tests decode them, with DALI's ``100/swan-3584559_640.jpg``), ``db/tfrecord/train`` and
``db/3D/MRI/Knee/npy_2d_slices/STU00001`` deterministic random bytes (the readers do not decode them), the
sequence reader's frames PNGs, the NeMo reader's audio WAV files and a COCO dataset (``db/coco``:
images and ``instances.json``) for the COCO reader.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

GPU_DEVICES = ("gpu", "mixed")


# ---- test_utils -------------------------------------------------------------------------------------
def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (lengths here are below 128: one varint byte)."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def _example(features: dict[str, tuple[int, Any]]) -> bytes:
    """A ``tf.train.Example`` with one value per feature: ``{name: (1, bytes) | (3, small int)}`` (BytesList,
    Int64List), serialized by hand (TensorFlow's schema: Example.features=1, Features.feature=1 (map),
    Feature.bytes_list=1 / int64_list=3, each list's value=1)."""
    entries = b""
    for name, (kind, value) in features.items():
        inner = _field(1, value) if kind == 1 else _field(1, bytes([value]))  # packed int64 < 128: one byte
        entries += _field(1, _field(1, name.encode()) + _field(2, _field(kind, inner)))
    return _field(1, entries)



def get_dali_extra_path() -> str:
    """DALI_extra's location: ``$DALI_EXTRA_PATH`` if it holds the data, else a generated stand-in."""
    env = os.environ.get("DALI_EXTRA_PATH")
    if env and os.path.isdir(os.path.join(env, "db", "single", "jpeg")):
        return env
    # keyed by the generating code (this module and the dataset writers it uses): a change makes a new directory
    from tests.operators.readers import coco_data, formats

    sha = hashlib.sha256()
    for module in (__file__, coco_data.__file__, formats.__file__):
        with open(module, "rb") as f:
            sha.update(f.read())
    digest = sha.hexdigest()[:16]
    root = os.path.join(tempfile.gettempdir(), f"pipestate-dali-extra-{digest}")
    if not os.path.isdir(root):
        staging = tempfile.mkdtemp(prefix="pipestate-dali-extra-", dir=tempfile.gettempdir())
        _generate(staging)
        try:
            os.rename(staging, root)
        except OSError:  # another process made it first
            shutil.rmtree(staging, ignore_errors=True)
    return root


def _generate(root: str) -> None:
    rng = np.random.default_rng(2024)
    # db/single/jpeg: class directories of small JPEGs (62 files, plus the swan the stateless tests decode)
    for c, name in enumerate(["100", "113", "134", "137", "1400", "1505", "2202", "318", "457", "584", "65", "91"]):
        folder = os.path.join(root, "db", "single", "jpeg", name)
        os.makedirs(folder)
        for i in range(4 + c % 3):
            with open(os.path.join(folder, f"img_{c:02d}_{i}.jpg"), "wb") as f:
                f.write(_jpeg(rng, 48 + 8 * ((c + i) % 5), 64 + 8 * ((c * 3 + i) % 6)))
    with open(os.path.join(root, "db", "single", "jpeg", "100", "swan-3584559_640.jpg"), "wb") as f:
        f.write(_jpeg(rng, 96, 128))
    # db/tfrecord/train (+ train.idx): 100 Examples with image/encoded and image/class/label
    from pipestate import tfrecord as tfr

    folder = os.path.join(root, "db", "tfrecord")
    os.makedirs(folder)
    path = os.path.join(folder, "train")
    tfr.write_records(
        path,
        [
            _example({"image/encoded": (1, rng.bytes(int(rng.integers(8, 40)))), "image/class/label": (3, i % 7)})
            for i in range(100)
        ],
    )
    tfr.tfrecord2idx(path, os.path.join(folder, "train.idx"))
    # db/3D/MRI/Knee/npy_2d_slices/STU00001: 120 2-D float32 arrays of varying shapes
    folder = os.path.join(root, "db", "3D", "MRI", "Knee", "npy_2d_slices", "STU00001")
    os.makedirs(folder)
    for i in range(120):
        np.save(os.path.join(folder, f"slice_{i:03d}.npy"), rng.random((4 + i % 3, 5)).astype(np.float32))
    _generate_formats(root, rng)


def _jpeg(rng: np.random.Generator, height: int, width: int) -> bytes:
    """A real JPEG (smooth gradients plus noise, quality 90) drawn from ``rng``; random bytes where OpenCV is
    missing (the readers' tests do not decode)."""
    try:
        import cv2
    except ImportError:
        return rng.bytes(int(rng.integers(16, 64)))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    c = rng.uniform(0.2, 1.0, (3, 3))
    planes = [(c[k, 0] * x / width + c[k, 1] * y / height) * 200 + 20 for k in range(3)]
    image = np.clip(np.stack(planes, -1) + rng.integers(-20, 21, (height, width, 3)), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes()


def _generate_formats(root: str, rng: np.random.Generator) -> None:
    """The DALI_extra stand-ins of the format readers' tests (each part skipped when its writer is missing):
    db/webdataset/MNIST/devel-{0,1,2}.tar, db/recordio/train.{rec,idx}, db/lmdb, db/c2lmdb,
    db/sequence/frames, db/audio/wav."""
    from tests.operators.readers import formats

    folder = os.path.join(root, "db", "webdataset", "MNIST")
    os.makedirs(folder)
    for k in range(3):  # 1,800 samples: DALI's cases need more than 6 shards x 4 batches of 64
        members = [
            (f"{i:06d}.{ext}", rng.bytes(int(rng.integers(8, 40))) if ext == "jpg" else b"%d" % (i % 10))
            for i in range(600 * k, 600 * (k + 1))
            for ext in ("jpg", "cls")
        ]
        formats.write_tar(os.path.join(folder, f"devel-{k}.tar"), members)
    folder = os.path.join(root, "db", "recordio")
    os.makedirs(folder)
    payloads = [formats.image_record(i, image=rng.bytes(int(rng.integers(8, 40)))) for i in range(64)]
    formats.write_recordio([os.path.join(folder, "train.rec")], os.path.join(folder, "train.idx"), payloads, [64])
    try:
        import lmdb  # noqa: F401
    except ImportError:
        pass
    else:
        formats.write_lmdb(os.path.join(root, "db", "lmdb"), [formats.caffe_datum(i) for i in range(64)])
        formats.write_lmdb(os.path.join(root, "db", "c2lmdb"), [formats.caffe2_protos(i) for i in range(64)])
    try:
        import cv2
    except ImportError:
        pass
    else:
        for s in range(2):  # 2 streams of 20 frames: 32 sequences of 5
            folder = os.path.join(root, "db", "sequence", "frames", f"{s}")
            os.makedirs(folder)
            for f in range(20):
                cv2.imwrite(os.path.join(folder, f"{f:05d}.png"), rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    try:
        import soundfile
    except ImportError:
        pass
    else:
        folder = os.path.join(root, "db", "audio", "wav")
        os.makedirs(folder)
        for i in range(45):
            signal = (rng.standard_normal(8000 + 97 * i) * 3000).astype(np.int16)
            soundfile.write(os.path.join(folder, f"{i:03d}.wav"), signal, 16000, subtype="PCM_16")
        # the file DALI's stateless test of decoders.audio reads (a LibriSpeech utterance in DALI_extra)
        signal = (rng.standard_normal(16000) * 3000).astype(np.int16)
        soundfile.write(os.path.join(folder, "237-134500-0000.wav"), signal, 16000, subtype="PCM_16")
    try:
        import cv2  # noqa: F401
    except ImportError:
        pass
    else:  # db/coco: 64 JPEGs and instances.json (polygons, crowd RLEs, images without annotations)
        from tests.operators.readers.coco_data import write_coco

        write_coco(os.path.join(root, "db", "coco"), n_images=64, seed=17)


def check_batch(
    batch1: Any, batch2: Any, batch_size: int | None = None, eps: float = 1e-07, max_allowed_error: float | None = None
) -> None:
    """Assert two batches hold the same samples (DALI's check: mean absolute error <= ``eps``, or every absolute
    error <= ``max_allowed_error`` when given; layouts equal)."""
    if batch_size is None:
        batch_size = len(batch1)
    for batch in (batch1, batch2):
        assert len(batch) == batch_size, f"Incorrect batch size. Expected: {batch_size}, actual: {len(batch)}"
    if hasattr(batch1, "layout") and hasattr(batch2, "layout"):
        assert batch1.layout() == batch2.layout(), f'Layout mismatch "{batch1.layout()}" != "{batch2.layout()}"'
    for i in range(batch_size):
        left, right = np.array(batch1[i]), np.array(batch2[i])
        assert left.shape == right.shape, f"Shape mismatch {left.shape} != {right.shape}"
        if left.size == 0:
            continue
        if left.dtype == bool:
            left = left.astype(int)
        if right.dtype == bool:
            right = right.astype(int)
        absdiff = np.abs(left.astype(np.float64) - right.astype(np.float64))
        err = absdiff.mean()
        if max_allowed_error is not None and absdiff.max() > max_allowed_error:
            raise AssertionError(
                f"Max error: [{absdiff.max()}] > max_allowed_error [{max_allowed_error}]\nIndex in batch: {i}\n"
            )
        if max_allowed_error is None and err > eps:
            raise AssertionError(
                f"Mean error: [{err}], Min error: [{absdiff.min()}], Max error: [{absdiff.max()}]\n"
                f"Total error count: [{np.count_nonzero(absdiff)}], Tensor size: [{absdiff.size}]\n"
                f"Index in batch: {i}\n"
            )


def compare_pipelines(pipe1: Any, pipe2: Any, batch_size: int, N_iterations: int, eps: float = 1e-07) -> None:  # noqa: N803
    """Run both pipelines ``N_iterations`` times and assert every output batch matches (DALI's helper)."""
    for _ in range(N_iterations):
        out1 = tuple(out.as_cpu() for out in pipe1.run())
        out2 = tuple(out.as_cpu() for out in pipe2.run())
        assert len(out1) == len(out2)
        for a, b in zip(out1, out2):
            check_batch(a, b, batch_size, eps)


def create_sign_off_decorator() -> Callable[..., Callable]:
    """DALI's coverage bookkeeping: ``@decorator("op.name", ...)`` records the names in ``.tested_ops``."""
    tested: set[str] = set()

    def sign_off(*names: str) -> Callable:
        def decorate(test: Callable) -> Callable:
            tested.update(names)
            return test

        return decorate

    sign_off.tested_ops = tested  # type: ignore[attr-defined]
    return sign_off


def is_gds_supported() -> bool:
    """GPUDirect Storage (DALI's GPU numpy reader): never, on the CPU."""
    return False


# ---- nose_utils -------------------------------------------------------------------------------------
def attr(*tags: str) -> Callable[[Callable], Callable]:
    """nose's ``@attr``: the tags become pytest markers (``sanitizer_skip``, ``cupy``, ``slow``, ...)."""

    def decorate(test: Callable) -> Callable:
        for tag in tags:
            test = getattr(pytest.mark, tag)(test)
        return test

    return decorate


@contextmanager
def assert_warns(exception: type[Warning] = Warning, *, glob: str | None = None):
    """Assert the block emits a warning of ``exception`` whose message matches the shell pattern ``glob``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    messages = [str(w.message) for w in caught if issubclass(w.category, exception)]
    glob = _our_name(glob)
    assert any(glob is None or fnmatch.fnmatchcase(m, f"*{glob}*") for m in messages), (
        f"no {exception.__name__} matching {glob!r}; got {messages}"
    )


def _our_name(glob: str | None) -> str | None:
    """Messages that name the library say "pipestate" where DALI's say "DALI"."""
    return None if glob is None else glob.replace("DALI", "pipestate")


class _Raises:
    def __init__(self, exception: type[BaseException], glob: str | None, regex: str | None = None) -> None:
        self.exception, self.glob, self.regex = exception, _our_name(glob), _our_name(regex)

    def __enter__(self) -> _Raises:
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> bool:
        if kind is None:
            raise AssertionError(f"{self.exception.__name__} was not raised")
        if not issubclass(kind, self.exception):
            return False
        if self.glob is not None and not fnmatch.fnmatchcase(str(value), f"*{self.glob}*"):
            raise AssertionError(f"{kind.__name__}({value!s}) does not match {self.glob!r}") from value
        if self.regex is not None and not re.search(self.regex, str(value)):
            raise AssertionError(f"{kind.__name__}({value!s}) does not match {self.regex!r}") from value
        return True


def assert_raises(
    exception: type[BaseException], *args: Any, glob: str | None = None, regex: str | None = None, **kwargs: Any
) -> Any:
    """nose's ``assert_raises``: a context manager, or ``assert_raises(exc, func, *args, glob=..., regex=...)``."""
    if not args:
        return _Raises(exception, glob, regex)
    with _Raises(exception, glob, regex):
        args[0](*args[1:], **kwargs)
    return None


# ---- nose2.tools ------------------------------------------------------------------------------------
def _mark_gpu(values: tuple) -> Any:
    if any(isinstance(v, str) and v in GPU_DEVICES for v in values):
        return pytest.param(*values, marks=pytest.mark.skip(reason="GPU-only case: pipestate runs on the CPU"))
    return pytest.param(*values)


def params(*cases: Any) -> Callable[[Callable], Callable]:
    """nose2's ``@params``: one test per case (a tuple of positional arguments, or one value).

    A case shorter than the test's parameter list leaves the remaining parameters at their defaults.
    """

    def decorate(test: Callable) -> Callable:
        import inspect

        signature = inspect.signature(test)
        tuples = [case if isinstance(case, tuple) else (case,) for case in cases]
        names = list(signature.parameters)[: max(len(t) for t in tuples)]
        padded = [_mark_gpu(tuple(t) + tuple(signature.parameters[n].default for n in names[len(t) :])) for t in tuples]

        def run(**kwargs: Any) -> Any:  # pytest refuses to parametrize parameters that have defaults
            return test(**kwargs)

        run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
        )
        run.__name__, run.__qualname__, run.__module__ = test.__name__, test.__qualname__, test.__module__
        run.pytestmark = list(getattr(test, "pytestmark", []))  # type: ignore[attr-defined]
        return pytest.mark.parametrize(names, padded)(run)

    return decorate


def cartesian_params(*axes: Iterable[Any]) -> Callable[[Callable], Callable]:
    """nose2's ``@cartesian_params``: one test per element of the product of ``axes``."""
    return params(*itertools.product(*axes))

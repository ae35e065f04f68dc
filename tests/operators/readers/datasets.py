"""Small datasets in every format the readers read, each sample identifying its index (for parity tests)."""

from __future__ import annotations

import os

import numpy as np

from tests.operators.readers import formats


def webdataset(root: str, counts: tuple[int, ...] = (7, 5, 9)) -> dict:
    """Archives of ``counts`` samples with DALI indexes; ``ext=["jpg", "cls"]`` reads (bytes, index text)."""
    paths, indexes, start = [], [], 0
    from pipestate.operators.readers import _wds_index

    for k, n in enumerate(counts):
        path = formats.write_tar(os.path.join(root, f"part-{k}.tar"), formats.wds_members(start, n))
        index = os.path.join(root, f"part-{k}.idx")
        _wds_index.wds2idx(path, index)
        paths.append(path)
        indexes.append(index)
        start += n
    return {"paths": paths, "index_paths": indexes, "ext": ["jpg", "cls"]}


def recordio(root: str, n: int = 23) -> dict:
    """Two ``.rec`` files (10 + rest records, every fifth multi-label) and their index."""
    payloads = [formats.image_record(i) if i % 5 else formats.image_record(i, [i, i + 0.5]) for i in range(n)]
    recs = [os.path.join(root, "a.rec"), os.path.join(root, "b.rec")]
    index = os.path.join(root, "all.idx")
    formats.write_recordio(recs, index, payloads, [10, n - 10])
    return {"path": recs, "index_path": [index]}


def caffe(root: str, n: int = 17) -> dict:
    return {"path": formats.write_lmdb(os.path.join(root, "caffe"), [formats.caffe_datum(i) for i in range(n)])}


def caffe2(root: str, n: int = 17) -> dict:
    values = [formats.caffe2_protos(i, label_type=2, extra=1, bbox=True) for i in range(n)]
    return {
        "path": formats.write_lmdb(os.path.join(root, "c2"), values),
        "label_type": 2,
        "additional_inputs": 1,
        "bbox": True,
    }


def audio(root: str, n: int = 13) -> dict:
    """WAV/FLAC files (mono and stereo, two rates) and a manifest with offsets, durations and texts."""
    import soundfile

    rng = np.random.default_rng(1)
    entries = []
    for i in range(n):
        x = (rng.standard_normal((300 + 37 * i, 1 + i % 2)) * 9000).clip(-32768, 32767).astype(np.int16)
        path = os.path.join(root, f"a{i}." + ("wav" if i % 3 else "flac"))
        soundfile.write(path, x, 8000 + 1000 * (i % 2), subtype="PCM_16")
        entry = {"audio_filepath": path, "text": f"utterance {i} é"}
        if i % 4:
            entry["duration"] = 0.02 + i / 300
        if i % 5 == 1:
            entry["offset"] = 0.003
        entries.append(entry)
    return {"manifest_filepaths": [formats.write_manifest(os.path.join(root, "manifest.json"), entries)]}


def frames(root: str, counts: tuple[int, ...] = (4, 6, 5)) -> dict:
    """Streams of small PNG/JPEG frames (``file_root/<stream>/<frame>``); read 2-frame sequences."""
    import cv2

    rng = np.random.default_rng(0)
    for v, count in enumerate(counts):
        os.makedirs(os.path.join(root, "frames", f"s{v}"), exist_ok=True)
        for f in range(count):
            img = np.linspace(0, 255, 12 * 16 * 3).reshape(12, 16, 3) + rng.integers(-20, 20, (12, 16, 3))
            ext = "jpg" if (v + f) % 2 else "png"
            cv2.imwrite(os.path.join(root, "frames", f"s{v}", f"{f:03d}.{ext}"), img.clip(0, 255).astype(np.uint8))
    return {"file_root": os.path.join(root, "frames"), "sequence_length": 2}


# reader type -> (dataset builder, optional dependency it needs)
DATASETS = {
    "webdataset": (webdataset, None),
    "mxnet": (recordio, None),
    "caffe": (caffe, "lmdb"),
    "caffe2": (caffe2, "lmdb"),
    "nemo_asr": (audio, "soundfile"),
    "sequence": (frames, "cv2"),
}

"""Format readers vs DALI CPU: samples/s of webdataset, mxnet, caffe, caffe2, nemo_asr and sequence.

Each reader reads the same generated data in pipestate and in DALI (``device_id=None``), with the same
``num_threads`` and batch size, interleaved (A B A B), a few warm-up batches then timed rounds; the table
gives the median (min–max) of the rounds and the ratio pipestate / DALI. Run:

    PYTHONPATH=. python benchmarks/readers_formats.py [--threads 2] [--rounds 5] [--iters 30]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time
import warnings

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import pipestate  # noqa: E402
from benchmarks._common import dali_available, fmt, interleave, machine, markdown_table, save, summary  # noqa: E402
from tests.operators.readers import formats  # noqa: E402

SEED = 2026


def build_data(root: str) -> dict[str, tuple[dict, int]]:
    """Generate each format once (deterministic): reader -> (arguments, batch size)."""
    from pipestate.operators.readers import _wds_index

    rng = np.random.default_rng(SEED)
    out: dict[str, tuple[dict, int]] = {}
    # webdataset: 4 archives x 1,000 samples of a 512-byte "jpg" and a label
    paths, idx = [], []
    for k in range(4):
        members = [(f"{i:07d}.{e}", rng.bytes(512) if e == "jpg" else b"%d" % (i % 1000))
                   for i in range(1000 * k, 1000 * (k + 1)) for e in ("jpg", "cls")]
        paths.append(formats.write_tar(os.path.join(root, f"wds-{k}.tar"), members))
        idx.append(os.path.join(root, f"wds-{k}.idx"))
        _wds_index.wds2idx(paths[-1], idx[-1])
    out["webdataset"] = ({"paths": paths, "index_paths": idx, "ext": ["jpg", "cls"]}, 64)
    # mxnet: 4,000 records of 512 bytes
    payloads = [formats.image_record(i, image=rng.bytes(512)) for i in range(4000)]
    formats.write_recordio([os.path.join(root, "t.rec")], os.path.join(root, "t.idx"), payloads, [4000])
    out["mxnet"] = ({"path": os.path.join(root, "t.rec"), "index_path": os.path.join(root, "t.idx")}, 64)
    # caffe, caffe2: 4,000 records of 512 encoded bytes
    from pipestate._proto.pipestate.caffe.v1 import caffe_pb2

    datums = [caffe_pb2.Datum(data=rng.bytes(512), encoded=True, label=i % 1000).SerializeToString()
              for i in range(4000)]
    out["caffe"] = ({"path": formats.write_lmdb(os.path.join(root, "caffe"), datums)}, 64)
    protos = []
    for i in range(4000):
        p = caffe_pb2.TensorProtos()
        img = p.protos.add(data_type=caffe_pb2.TensorProto.STRING)
        img.string_data.append(rng.bytes(512))
        p.protos.add(data_type=caffe_pb2.TensorProto.INT32, int32_data=[i % 1000])
        protos.append(p.SerializeToString())
    out["caffe2"] = ({"path": formats.write_lmdb(os.path.join(root, "c2"), protos)}, 64)
    # nemo_asr: 256 WAV files of 0.5 s, 16 kHz, stereo (downmixed to float)
    import soundfile

    entries = []
    for i in range(256):
        path = os.path.join(root, f"a{i}.wav")
        soundfile.write(path, (rng.standard_normal((8000, 2)) * 3000).astype(np.int16), 16000, subtype="PCM_16")
        entries.append({"audio_filepath": path, "duration": 0.5, "text": f"utterance {i}"})
    out["nemo_asr"] = ({"manifest_filepaths": formats.write_manifest(os.path.join(root, "m.json"), entries)}, 32)
    # sequence: 8 streams x 40 PNG frames of 64x64, sequences of 4
    import cv2

    for s in range(8):
        os.makedirs(os.path.join(root, "frames", f"{s}"))
        for f in range(40):
            frame = (np.linspace(0, 255, 64 * 64 * 3).reshape(64, 64, 3) + rng.integers(-20, 20, (64, 64, 3)))
            cv2.imwrite(os.path.join(root, "frames", f"{s}", f"{f:04d}.png"), frame.clip(0, 255).astype(np.uint8))
    out["sequence"] = ({"file_root": os.path.join(root, "frames"), "sequence_length": 4}, 8)
    return out


def pipeline(lib, reader: str, kwargs: dict, batch_size: int, threads: int):
    extra = {"device_id": None} if lib is not pipestate else {}

    @lib.pipeline_def(batch_size=batch_size, num_threads=threads, seed=1, **extra)
    def pipe():
        out = getattr(lib.fn.readers, reader)(random_shuffle=True, initial_fill=256, name="r", **kwargs)
        return tuple(out) if isinstance(out, list) else out

    p = pipe()
    if lib is not pipestate:
        p.build()
    return p


def measure(lib, reader: str, kwargs: dict, batch_size: int, threads: int, iters: int):
    """A function timing ``iters`` batches of a pipeline built once (samples/s)."""
    p = pipeline(lib, reader, kwargs, batch_size, threads)
    for _ in range(3):
        p.run()

    def once() -> float:
        start = time.perf_counter()
        for _ in range(iters):
            p.run()
        return iters * batch_size / (time.perf_counter() - start)

    return once


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args(argv)
    import nvidia.dali as dali

    warnings.simplefilter("ignore")
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as root:
        data = build_data(root)
        for reader, (kwargs, batch) in data.items():
            runs = interleave({"pipestate": measure(pipestate, reader, kwargs, batch, args.threads, args.iters),
                               "DALI": measure(dali, reader, kwargs, batch, args.threads, args.iters)}, args.rounds)
            results[reader] = runs
            ratio = summary(runs["pipestate"])[0] / summary(runs["DALI"])[0]
            rows.append([f"`readers.{reader}`", str(batch), fmt(runs["pipestate"], 0), fmt(runs["DALI"], 0),
                         f"{ratio:.2f}"])
    table = (f"Format readers, samples/s, random_shuffle (initial_fill=256), {args.threads} threads ({machine()})\n\n"
             + markdown_table(["reader", "batch", "pipestate", "DALI CPU", "ratio"], rows))
    print(table)

    def plot(path: pathlib.Path) -> None:
        import matplotlib.pyplot as plt

        names = list(results)
        x = np.arange(len(names))
        fig, ax = plt.subplots(figsize=(8, 4))
        for k, lib in enumerate(["pipestate", "DALI"]):
            ax.bar(x + (k - 0.5) * 0.4, [summary(results[n][lib])[0] for n in names], 0.4, label=lib)
        ax.set_xticks(x, names)
        ax.set_ylabel("samples/s (median)")
        ax.set_yscale("log")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path)

    save("readers_formats", table, plot)


if __name__ == "__main__":
    if not dali_available():
        sys.exit("DALI is not installed: pip install nvidia-dali-cuda120")
    main()

"""Audio operators vs DALI CPU: samples/s per operator on synthetic audio, and readers.nemo_asr with resampling.

Every operator runs in a pipeline fed by an external source of the same batch (``batch`` samples of ``seconds``
of 16 kHz float32 noise, or what the operator takes: the spectrogram of it, WAV bytes of it), at the same
``num_threads``, pipestate and DALI interleaved (A B A B), median and min-max over ``rounds``. The NeMo row reads
a manifest of 16-bit 22.05 kHz WAV files and resamples them to 16 kHz in the reader.

    PYTHONPATH=. python benchmarks/audio_ops.py --threads 2 --rounds 5
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time

import numpy as np

import pipestate
from benchmarks._common import dali_available, fmt, interleave, machine, markdown_table, save

RATE = 16000


def _signals(batch: int, seconds: float) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(int(RATE * seconds)) * 0.1).astype(np.float32) for _ in range(batch)]


def _wav(signal: np.ndarray, rate: int = RATE) -> np.ndarray:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, signal, rate, format="WAV", subtype="PCM_16")
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def _spectrogram(lib, x):
    return lib.fn.spectrogram(x, nfft=512, window_length=400, window_step=160)


def cases(batch: int, seconds: float) -> list[tuple[str, str, list[np.ndarray], str, object]]:
    """(name, input description, batch, input layout, build(lib, node))."""
    signals = _signals(batch, seconds)
    spec = [_np_spectrogram(s) for s in signals]
    wavs = [_wav(s) for s in signals]
    audio = f"{seconds:g} s float32 @16 kHz"
    return [
        ("decoders.audio", f"{seconds:g} s WAV int16", wavs, "", lambda lib, x: lib.fn.decoders.audio(x)[0]),
        (
            "decoders.audio 16→8 kHz",
            f"{seconds:g} s WAV int16",
            wavs,
            "",
            lambda lib, x: lib.fn.decoders.audio(x, sample_rate=8000)[0],
        ),
        (
            "audio_resample 16→44.1 kHz",
            audio,
            signals,
            "",
            lambda lib, x: lib.fn.audio_resample(x, in_rate=16000, out_rate=44100),
        ),
        (
            "audio_resample 16→8 kHz",
            audio,
            signals,
            "",
            lambda lib, x: lib.fn.audio_resample(x, in_rate=16000, out_rate=8000),
        ),
        ("preemphasis_filter", audio, signals, "", lambda lib, x: lib.fn.preemphasis_filter(x)),
        ("nonsilent_region", audio, signals, "", lambda lib, x: lib.fn.nonsilent_region(x, window_length=256)[0]),
        ("spectrogram 512/400/160", audio, signals, "", _spectrogram),
        (
            "power_spectrum nfft 512",
            "(100, 512) float32",
            [s[: 100 * 512].reshape(100, 512) for s in signals],
            "",
            lambda lib, x: lib.fn.power_spectrum(x),
        ),
        (
            "mel_filter_bank 64",
            f"spectrogram {spec[0].shape}",
            spec,
            "ft",
            lambda lib, x: lib.fn.mel_filter_bank(x, sample_rate=RATE, nfilter=64),
        ),
        ("to_decibels", f"spectrogram {spec[0].shape}", spec, "ft", lambda lib, x: lib.fn.to_decibels(x)),
        (
            "mfcc 13",
            f"(64, {spec[0].shape[1]}) float32",
            [s[:64] for s in spec],
            "ft",
            lambda lib, x: lib.fn.mfcc(x, n_mfcc=13),
        ),
    ]


def _np_spectrogram(signal: np.ndarray) -> np.ndarray:
    from pipestate.operators.audio import _kernels

    frames = _kernels.frames(signal, _kernels.hann(400), 160, 512, True, True)
    return np.ascontiguousarray(_kernels.spectrum(frames, 512, 2).T)


def runner(lib, build, data: list[np.ndarray], layout: str, threads: int):
    extra = {"device_id": None} if lib is not pipestate else {}

    @lib.pipeline_def(batch_size=len(data), num_threads=threads, prefetch_queue_depth=1, **extra)
    def pipe():
        return build(lib, lib.fn.external_source(source=lambda: data, layout=layout or None))

    p = pipe()
    p.build()
    for _ in range(2):
        p.run()
    return p


def rate(p, batch: int, iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
        p.run()
    return batch * iters / (time.perf_counter() - start)


def nemo_manifest(root: str, count: int, seconds: float) -> str:
    import soundfile

    rng = np.random.default_rng(1)
    lines = []
    for i in range(count):
        path = os.path.join(root, f"u{i}.wav")
        soundfile.write(
            path, (rng.standard_normal(int(22050 * seconds)) * 0.1).astype(np.float32), 22050, subtype="PCM_16"
        )
        lines.append(json.dumps({"audio_filepath": path, "text": f"utterance {i}", "duration": seconds}))
    manifest = os.path.join(root, "manifest.json")
    with open(manifest, "w") as f:
        f.write("\n".join(lines) + "\n")
    return manifest


def nemo_runner(lib, manifest: str, batch: int, threads: int):
    extra = {"device_id": None} if lib is not pipestate else {}

    @lib.pipeline_def(batch_size=batch, num_threads=threads, prefetch_queue_depth=1, **extra)
    def pipe():
        audio, _, text = lib.fn.readers.nemo_asr(manifest_filepaths=[manifest], sample_rate=16000, downmix=True)
        return audio, text

    p = pipe()
    p.build()
    for _ in range(2):
        p.run()
    return p


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=5)
    args = parser.parse_args(argv)
    if not dali_available():
        raise SystemExit("DALI is not installed: pip install '.[dali]'")
    import nvidia.dali as dali

    rows, names, ratios = [], [], []
    for name, what, data, layout, build in cases(args.batch, args.seconds):
        ours, theirs = (
            runner(pipestate, build, data, layout, args.threads),
            runner(dali, build, data, layout, args.threads),
        )
        res = interleave(
            {
                "ours": lambda p=ours: rate(p, args.batch, args.iters),
                "dali": lambda p=theirs: rate(p, args.batch, args.iters),
            },
            args.rounds,
        )
        ours.close()
        ratio = [a / b for a, b in zip(res["ours"], res["dali"])]
        rows.append([name, what, fmt(res["ours"]), fmt(res["dali"]), fmt(ratio, 2)])
        names.append(name)
        ratios.append(float(np.median(ratio)))
    with tempfile.TemporaryDirectory() as root:
        manifest = nemo_manifest(root, 4 * args.batch, args.seconds)
        ours, theirs = (
            nemo_runner(pipestate, manifest, args.batch, args.threads),
            nemo_runner(dali, manifest, args.batch, args.threads),
        )
        res = interleave(
            {"ours": lambda: rate(ours, args.batch, args.iters), "dali": lambda: rate(theirs, args.batch, args.iters)},
            args.rounds,
        )
        ours.close()
    ratio = [a / b for a, b in zip(res["ours"], res["dali"])]
    rows.append(
        [
            "readers.nemo_asr 22.05→16 kHz",
            f"{args.seconds:g} s WAV int16, downmix",
            fmt(res["ours"]),
            fmt(res["dali"]),
            fmt(ratio, 2),
        ]
    )
    names.append("nemo_asr resample")
    ratios.append(float(np.median(ratio)))
    header = ["operator", "input", "pipestate samples/s", "DALI samples/s", "ratio"]
    table = (
        f"Audio operators, batch {args.batch}, {args.threads} threads, {args.rounds} rounds of {args.iters} "
        f"batches ({machine()}):\n\n" + markdown_table(header, rows)
    )
    print(table)

    def plot(path):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1))
        ax.barh(names, ratios)
        ax.axvline(1.0, color="k", linewidth=0.8)
        ax.axvline(0.5, color="r", linewidth=0.8, linestyle="--")
        ax.set_xlabel("pipestate / DALI CPU (samples/s)")
        fig.tight_layout()
        fig.savefig(path)

    save("audio_ops", table, plot)


if __name__ == "__main__":
    main()

"""DALI differentials for the audio operators beyond the generic suite: real WAV/FLAC/OGG files generated here,
decoded by ``fn.decoders.audio`` and ``fn.readers.nemo_asr`` with and without resampling (bit-exact), the
resampler over rates, qualities, channel counts and integer types (bit-exact), and the spectral chain on speech-
length signals (tolerances stated per test)."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

import pipestate

dali = pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)")
soundfile = pytest.importorskip("soundfile", reason="soundfile is not installed (pip install 'pipestate[audio]')")


def _run(lib, build, batch_size: int, inputs: list[list[np.ndarray]] | None = None, steps: int = 1) -> list:
    extra = {"device_id": None} if lib is dali else {}

    @lib.pipeline_def(batch_size=batch_size, num_threads=2, seed=3, prefetch_queue_depth=1, **extra)
    def pipe():
        nodes = [lib.fn.external_source(source=(lambda b: lambda: b)(batch)) for batch in (inputs or [])]
        out = build(lib, *nodes)
        return tuple(out) if isinstance(out, (list, tuple)) else out

    p = pipe()
    if lib is dali:
        p.build()
    result = []
    for _ in range(steps):
        result.append([[np.array(o[i]) for i in range(batch_size)] for o in p.run()])
    return result


def _assert_same(ours: list, theirs: list, atol: float = 0.0, loose: tuple[int, ...] = ()) -> None:
    """Outputs equal byte for byte; samples in ``loose`` (OGG/Vorbis: the float decoders of DALI's and
    soundfile's libvorbis builds differ in the last bit, which resampling spreads) within 2**-21 of full scale."""
    for step_a, step_d in zip(ours, theirs):
        for k, (out_a, out_d) in enumerate(zip(step_a, step_d)):
            for i, (a, d) in enumerate(zip(out_a, out_d)):
                assert a.dtype == d.dtype and a.shape == d.shape, f"output {k} sample {i}: {a.shape} vs {d.shape}"
                if i in loose and a.dtype.kind in "fi" and a.ndim:
                    full = 1.0 if a.dtype.kind == "f" else float(np.iinfo(a.dtype).max)
                    np.testing.assert_allclose(a, d, atol=full * 2.0**-21 + (a.dtype.kind == "i"), rtol=0)
                elif atol:
                    np.testing.assert_allclose(a, d, atol=atol, rtol=0, err_msg=f"output {k} sample {i}")
                else:
                    assert a.tobytes() == d.tobytes(), f"output {k} sample {i} differs"


def _encoded(fmt: str, channels: int, rate: int, frames: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / rate
    tone = 0.4 * np.sin(2 * np.pi * (220 + 110 * np.arange(channels)) * t)
    tone = tone + 0.05 * rng.standard_normal((frames, channels))
    buffer = io.BytesIO()
    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS"}[fmt]
    soundfile.write(buffer, tone.astype(np.float32), rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


FILES = [("WAV", 1, 16000, 4000), ("WAV", 2, 22050, 5000), ("FLAC", 1, 8000, 3000), ("FLAC", 3, 44100, 9000),
         ("OGG", 2, 16000, 4000), ("WAV", 1, 11025, 10)]


@pytest.fixture(scope="module")
def encoded() -> list[np.ndarray]:
    return [np.frombuffer(_encoded(*f, seed=i), dtype=np.uint8) for i, f in enumerate(FILES)]


@pytest.mark.dali_differential("decoders.audio")
@pytest.mark.parametrize("dtype", ["INT16", "INT32", "FLOAT"])
@pytest.mark.parametrize("downmix", [False, True])
@pytest.mark.parametrize("sample_rate", [None, 16000.0, 12345.0])
def test_decoder_equals_dalis(encoded, dtype, downmix, sample_rate):
    """WAV, FLAC and OGG/Vorbis, 1-3 channels: exactly DALI's samples and rates (tolerance 0)."""
    kwargs = {"downmix": downmix}
    if sample_rate is not None:
        kwargs["sample_rate"] = sample_rate

    def build(lib, data):
        return lib.fn.decoders.audio(data, dtype=getattr(lib.types, dtype), **kwargs)

    n = len(encoded)
    ogg = tuple(i for i, f in enumerate(FILES) if f[0] == "OGG")
    _assert_same(_run(pipestate, build, n, [encoded]), _run(dali, build, n, [encoded]), loose=ogg)


@pytest.mark.dali_differential("audio_resample")
@pytest.mark.parametrize("quality", [0.0, 50.0, 100.0])
@pytest.mark.parametrize("rates", [(44100.0, 16000.0), (16000.0, 44100.0), (8000.0, 8001.0), (3.0, 7.0)])
def test_resample_equals_dalis(rates, quality):
    """Mono and 2-5 channel float32 signals, long enough for several 256-sample blocks: bit-exact."""
    rng = np.random.default_rng(7)
    mono = [rng.uniform(-1, 1, shape).astype(np.float32) for shape in [(2000,), (1,), (0,)]]
    multi = [rng.uniform(-1, 1, shape).astype(np.float32) for shape in [(1500, 2), (700, 5), (300, 9)]]

    def build(lib, data):
        return lib.fn.audio_resample(data, in_rate=rates[0], out_rate=rates[1], quality=quality)

    for batch in (mono, multi):
        _assert_same(_run(pipestate, build, len(batch), [batch]), _run(dali, build, len(batch), [batch]))


@pytest.mark.dali_differential("audio_resample")
@pytest.mark.parametrize(("in_type", "out_type"), [(np.int16, None), (np.int16, "FLOAT"), (np.float32, "INT16"),
                                                   (np.uint8, "INT16"), (np.float32, "UINT16")])
def test_resample_types_equal_dalis(in_type, out_type):
    """Integer normalization to and from [-1, 1] (and [0, 1] for unsigned), with scale and out_length: bit-exact."""
    rng = np.random.default_rng(3)
    if np.dtype(in_type).kind == "f":
        batch = [rng.uniform(-1, 1, 900).astype(in_type), rng.uniform(-1, 1, 400).astype(in_type)]
    else:
        info = np.iinfo(in_type)
        batch = [rng.integers(info.min, info.max, 900).astype(in_type),
                 rng.integers(info.min, info.max, 400).astype(in_type)]
    def build(lib, data):
        extra = {} if out_type is None else {"dtype": getattr(lib.types, out_type)}
        return lib.fn.audio_resample(data, scale=0.73, **extra), lib.fn.audio_resample(data, out_length=333, **extra)

    _assert_same(_run(pipestate, build, 2, [batch]), _run(dali, build, 2, [batch]))


@pytest.mark.dali_differential("spectrogram", "mel_filter_bank", "to_decibels", "mfcc")
def test_speech_chain_close_to_dalis():
    """One second at 16 kHz through spectrogram (512/160) -> mel (64) -> dB -> MFCC (13): DALI's CPU FFT is FFTS
    in float32, ours pocketfft in float64 rounded to float32, so the power spectrum agrees to ~1e-6 relative; the
    mel energies inherit that, the dB values agree to 1e-3 dB and the MFCCs to 2e-2 (a sum of 64 dB values)."""
    rng = np.random.default_rng(11)
    batch = [rng.standard_normal(16000).astype(np.float32) * 0.1, rng.standard_normal(12345).astype(np.float32)]

    def build(lib, data):
        spec = lib.fn.spectrogram(data, nfft=512, window_length=400, window_step=160)
        mel = lib.fn.mel_filter_bank(spec, sample_rate=16000, nfilter=64)
        db = lib.fn.to_decibels(mel, cutoff_db=-80)
        return spec, mel, db, lib.fn.mfcc(db, n_mfcc=13, normalize=True)

    ours, theirs = _run(pipestate, build, 2, [batch]), _run(dali, build, 2, [batch])
    for k, rtol, atol in [(0, 2e-5, 1e-6), (1, 2e-5, 1e-7), (2, 0, 1e-3), (3, 0, 2e-2)]:
        for a, d in zip(ours[0][k], theirs[0][k]):
            assert a.shape == d.shape
            np.testing.assert_allclose(a, d, rtol=rtol, atol=atol, err_msg=f"output {k}")


@pytest.mark.dali_differential("readers.nemo_asr")
@pytest.mark.parametrize("dtype", ["INT16", "FLOAT"])
@pytest.mark.parametrize("downmix", [True, False])
@pytest.mark.parametrize("sample_rate", [16000.0, 44100.0, 8000.0])
def test_nemo_asr_resampling_equals_dalis(tmp_path, dtype, downmix, sample_rate):
    """readers.nemo_asr resamples in the reader as DALI does: the same samples and rates (tolerance 0), with
    offsets and durations."""
    lines = []
    for i, (fmt, channels, rate, frames) in enumerate(FILES[:5]):
        path = os.path.join(tmp_path, f"f{i}.{fmt.lower()}")
        with open(path, "wb") as f:
            f.write(_encoded(fmt, channels, rate, frames, seed=i))
        entry = {"audio_filepath": path, "text": f"t{i}"}
        if i % 2:
            entry.update(offset=0.01, duration=0.1)
        lines.append(json.dumps(entry))
    manifest = os.path.join(tmp_path, "manifest.json")
    with open(manifest, "w") as f:
        f.write("\n".join(lines) + "\n")

    def build(lib):
        return lib.fn.readers.nemo_asr(manifest_filepaths=[manifest], dtype=getattr(lib.types, dtype), downmix=downmix,
                                       sample_rate=sample_rate, read_text=False, quality=60.0)

    ogg = tuple(i for i, f in enumerate(FILES[:5]) if f[0] == "OGG")
    _assert_same(_run(pipestate, build, 5, steps=2), _run(dali, build, 5, steps=2), loose=ogg)

"""``fn.decoders.audio`` and :func:`decode_audio`, the one audio decoder (also used by ``readers.nemo_asr``).

Decoding is libsndfile's (the ``soundfile`` package: WAV, FLAC, OGG/Vorbis, OGG/Opus), the library DALI uses,
so the decoded values are DALI's; downmixing and resampling follow DALI's ``DecodeAudio`` step by step.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.audio import _kernels, _resampling
from pipestate.operators.base import register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

OUTPUT_DTYPES = (np.dtype(np.int16), np.dtype(np.int32), np.dtype(np.float32))
_SF_TYPES = {np.int16: "int16", np.int32: "int32", np.float32: "float32"}


def _soundfile():
    try:
        import soundfile
    except ImportError:
        raise ImportError("audio decoding needs the 'soundfile' package: pip install 'pipestate[audio]'") from None
    return soundfile


def decode_audio(
    source: str | bytes,
    dtype: np.dtype,
    downmix: bool,
    sample_rate: float = 0.0,
    lobes: int = 16,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[np.ndarray, float]:
    """Decode audio as DALI does (``DecodeAudio``), optionally a part of it, downmixed and resampled.

    Args:
        source: A file path or the encoded bytes.
        dtype: int16, int32 or float32.
        downmix: Average the channels into one (1-D output; else ``(frames, channels)``).
        sample_rate: Resample to this rate when positive and different from the file's.
        lobes: The resampling window (:func:`~pipestate.operators.audio._resampling.lobes_for_quality`).
        offset, duration: Seconds: frames ``int(offset * rate)`` to ``+ int(duration * rate)``, clipped to the
            file (all of it when ``duration`` is ``None`` or negative).

    Returns:
        (samples, the file's sample rate).

    Raises:
        ImportError: ``soundfile`` is missing. ValueError: data libsndfile cannot decode.
    """
    soundfile = _soundfile()
    handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        with soundfile.SoundFile(handle) as f:
            rate, total, channels = float(f.samplerate), f.frames, f.channels
            resample = sample_rate > 0 and sample_rate != rate
            mix = downmix and channels > 1
            start = int(offset * rate) if offset > 0 else 0
            length = total if duration is None or duration < 0 else int(duration * rate)
            length = max(0, min(length, total - start))
            f.seek(min(start, total))
            as_float = dtype == np.float32 or resample or mix  # DALI decodes to float to mix or resample
            data = f.read(length, dtype="float32" if as_float else _SF_TYPES[dtype.type], always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise ValueError(f"cannot decode audio: {exc}") from None
    if resample:
        signal = _kernels.downmix(data) if mix else data
        out = _resampling.resample(signal, rate, float(np.float32(sample_rate)), lobes)
        if downmix and out.ndim == 2:
            out = out[:, 0]
        return _kernels.from_float(out, dtype), rate
    if mix:
        return _kernels.from_float(_kernels.downmix(data), dtype), rate
    out = data[:, 0] if downmix else data
    return (_kernels.from_float(out, dtype) if as_float else np.ascontiguousarray(out)), rate


def _example_audio(index: int) -> np.ndarray:
    """An encoded file for the operator's example: WAV or FLAC, mono or stereo, 8 or 11.025 kHz."""
    soundfile = _soundfile()
    rng = np.random.default_rng(index)
    frames = 200 + 37 * (index % 5)
    data = (rng.standard_normal((frames, 1 + index % 2)) * 6000).clip(-32768, 32767).astype(np.int16)
    buffer = io.BytesIO()
    soundfile.write(buffer, data, [8000, 11025][index % 2], format=["WAV", "FLAC"][index % 3 == 2], subtype="PCM_16")
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


@register
class AudioDecoder(SampleOperator):
    """Decode WAV, FLAC and OGG audio (DALI's ``fn.decoders.audio``), optionally downmixed and resampled.

    Returns:
        audio (``dtype``; ``(frames,)`` with ``downmix``, else ``(frames, channels)``) and the sample rate
        (float32 scalar: ``sample_rate`` when given, else the file's).

    Raises:
        ImportError: ``soundfile`` is missing. ValueError: an unsupported ``dtype``; data that is not audio
            libsndfile decodes (naming the sample).
    """

    type = "decoders.audio"
    INPUTS = (sch.Input("data", "Encoded audio file contents, 1-D uint8", ("uint8",), (1,)),)
    ARGS = (
        Arg("downmix", sch.Bool(), False, "Average the channels into one (1-D output)"),
        Arg("dtype", sch.DType(), np.dtype(np.float32), "Output type: types.INT16, INT32 or FLOAT"),
        Arg("sample_rate", sch.Float(), 0.0, "Resample to this rate in Hz (0: keep the file's)", tensor=True),
        Arg("quality", sch.Float(0, 100), 50.0, "Resampling quality: 0: 3 sinc lobes, 50: 16, 100: 64"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (0,), values=_example_audio),),
        args={"downmix": True, "dtype": np.dtype(np.int16)},
        arg_inputs={"sample_rate": Tensor("float32", (), values=lambda i: [16000.0, 8000.0, 22050.0][i % 3])},
    )

    def validate(self) -> None:
        super().validate()
        if self.args["dtype"] not in OUTPUT_DTYPES:
            raise ValueError(f"fn.decoders.audio(): dtype={self.args['dtype']} must be types.INT16, INT32 or FLOAT")
        self.num_outputs = 2
        self.lobes = _resampling.lobes_for_quality(self.args["quality"])
        self.resampling = self.args["sample_rate"] is not None and (
            not isinstance(self.args["sample_rate"], (int, float)) or self.args["sample_rate"] > 0
        )

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> tuple:
        target = float(args["sample_rate"] or 0.0) if self.resampling else 0.0
        audio, rate = decode_audio(
            inputs[0].tobytes(),
            self.args["dtype"],
            self.args["downmix"],
            target,
            self.lobes,
        )
        return audio, np.float32(target if self.resampling else rate)

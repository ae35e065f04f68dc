"""``fn.readers.nemo_asr``: audio, sample rate, transcript and index of the entries of NeMo manifests."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Iterable

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators.audio import _resampling
from pipestate.operators.audio.decoders import decode_audio
from pipestate.operators.base import BuildEnv, RunContext, register
from pipestate.operators.example import Example
from pipestate.operators.readers import _files
from pipestate.operators.readers._base import Reader, shard_args
from pipestate.operators.schema import Arg
from pipestate.rng import derive_key

_OUTPUT_DTYPES = (np.dtype(np.int16), np.dtype(np.int32), np.dtype(np.float32))


class ManifestError(ValueError):
    """A NeMo manifest line cannot be used (names the manifest and line)."""


def parse_manifest(path: str, min_duration: float, max_duration: float, read_text: bool) -> list[tuple]:
    """Read a NeMo manifest: one JSON object per line (blank lines skipped).

    Returns:
        ``(audio_filepath, offset, duration or None, text bytes)`` of the entries kept by the duration filter.

    Raises:
        FileNotFoundError: no such manifest. ManifestError: a line that is not a JSON object, or a field of the
            wrong type (naming ``path:line``).
    """
    try:
        text = _files.read_bytes(path, what="manifest_filepaths: ").decode("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"manifest_filepaths: {path!r} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: the manifest is not UTF-8 text ({exc})") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}:{number}: not a JSON object ({exc.msg}): {line[:80]!r}") from None
        if not isinstance(obj, dict):
            raise ManifestError(f"{path}:{number}: expected a JSON object per line, got {type(obj).__name__}")
        audio = obj.get("audio_filepath")
        if not audio:
            warnings.warn(f"{path}:{number}: skipping a manifest line without audio_filepath", stacklevel=2)
            continue
        try:
            duration = None if obj.get("duration") is None else float(obj["duration"])
            offset = float(obj.get("offset") or 0.0)
        except (TypeError, ValueError):
            raise ManifestError(f"{path}:{number}: duration and offset must be numbers (seconds)") from None
        if not isinstance(audio, str):
            raise ManifestError(f"{path}:{number}: audio_filepath must be a string")
        if duration is not None and not (math.isfinite(duration) and math.isfinite(offset)):
            raise ManifestError(f"{path}:{number}: duration and offset must be finite")
        value = 0.0 if duration is None else duration
        if (max_duration > 0 and value > max_duration) or (min_duration > 0 and value < min_duration):
            continue
        transcript = obj.get("text", "") if read_text else ""
        entries.append((audio, offset, duration, str(transcript).encode("utf-8")))
    return entries


@register
class NemoAsrReader(Reader):
    """Read NeMo ASR manifests (DALI's ``fn.readers.nemo_asr``): audio with its rate, transcript and index.

    Each manifest line is a JSON object with ``audio_filepath`` (relative paths are relative to the working
    directory, as in DALI), optional ``duration`` and ``offset`` (seconds: the part of the file read) and
    ``text``. Entries outside ``[min_duration, max_duration]`` are left out; ``idx`` counts the entries kept.
    Audio is decoded with libsndfile (``pip install pipestate[audio]``) by the shared audio decoder
    (:func:`pipestate.operators.audio.decoders.decode_audio`) and, with ``sample_rate``, resampled in the reader
    with DALI's windowed-sinc resampler (``quality``), as DALI does.


    Returns:
        audio (``dtype``; 1-D with ``downmix``, else ``(frames, channels)``), then as requested the sample
        rate (float32 scalar: the file's, also when resampling, as DALI), the transcript (UTF-8 bytes as 1-D
        uint8) and the entry index (int64 (1,)).

    Raises:
        ValueError / TypeError: invalid arguments (at definition); ``ManifestError`` (a ``ValueError``) for a
            line that is not a JSON object (naming the manifest and line); an audio file that cannot be decoded
            (naming it, when read).
        FileNotFoundError: a missing manifest (at build).
    """

    type = "readers.nemo_asr"
    EXAMPLE = Example(
        setup="tests.operators.readers.datasets:audio",
        args={"shuffle_after_epoch": True, "read_idxs": True},
        dali="test:tests/operators/readers/test_dali_parity_formats.py",
    )
    DALI_FIXED_SHUFFLE = True
    ARGS = (
        Arg(
            "manifest_filepaths",
            sch.Seq(sch.Path(), min_length=1, broadcast=True),
            sch.REQUIRED,
            "NeMo manifest file(s), JSON lines",
        ),
        Arg("read_sample_rate", sch.Bool(), True, "Output each sample's rate"),
        Arg("read_text", sch.Bool(), True, "Output each sample's transcript"),
        Arg("read_idxs", sch.Bool(), False, "Output each sample's index among the kept manifest entries"),
        Arg("dtype", sch.DType(), np.dtype(np.float32), "Output type: float32, int16 or int32"),
        Arg("downmix", sch.Bool(), True, "Average the channels into one (1-D output)"),
        Arg("sample_rate", sch.Float(), -1.0, "Resample to this rate in Hz (<= 0: keep each file's rate)"),
        Arg("quality", sch.Float(0, 100), 50.0, "Resampling quality: 0: 3 sinc lobes, 50: 16, 100: 64"),
        Arg("min_duration", sch.Float(), 0.0, "Leave out entries shorter than this (seconds; 0: no limit)"),
        Arg("max_duration", sch.Float(), 0.0, "Leave out entries longer than this (seconds; 0: no limit)"),
        Arg("normalize_text", sch.Bool(), None, "Deprecated in DALI, ignored"),
        Arg(
            "shuffle_after_epoch_seed",
            sch.Int(0, 2**63 - 1),
            None,
            "Seed of the shuffle_after_epoch permutation (default: a fixed seed)",
        ),
        *shard_args(),
    )

    def validate(self) -> None:
        super().validate()
        a = self.args
        if a["dtype"] not in _OUTPUT_DTYPES:
            raise ValueError(f"fn.readers.nemo_asr(): dtype={a['dtype']} must be types.FLOAT, INT16 or INT32")
        self.num_outputs = 1 + int(a["read_sample_rate"]) + int(a["read_text"]) + int(a["read_idxs"])
        self.lobes = _resampling.lobes_for_quality(a["quality"])

    def setup(self, env: BuildEnv) -> None:
        super().setup(env)
        seed = self.args["shuffle_after_epoch_seed"]
        if seed is not None:  # shuffle_after_epoch's permutation keyed by its own seed, the same on every shard
            self.shuffle = dataclasses.replace(self.shuffle, key=derive_key("reader-seed", int(seed)))

    def discover(self) -> tuple[int, Iterable[bytes]]:
        a = self.args
        entries = []
        for path in a["manifest_filepaths"]:
            entries += parse_manifest(path, a["min_duration"], a["max_duration"], a["read_text"])
        if not entries:
            raise ValueError(
                f"fn.readers.nemo_asr(): no entries in {list(a['manifest_filepaths'])} (after "
                f"min_duration={a['min_duration']}, max_duration={a['max_duration']})"
            )
        self.paths = [e[0] for e in entries]
        self.offsets = np.asarray([e[1] for e in entries], dtype=np.float64)
        self.durations = np.asarray([-1.0 if e[2] is None else e[2] for e in entries], dtype=np.float64)
        self.texts = [e[3] for e in entries]
        listing = [
            _files.encode_paths(self.paths),
            self.offsets.tobytes(),
            self.durations.tobytes(),
            b"\0".join(self.texts),
        ]
        return len(entries), listing

    def _read(self, indices: list[int]) -> list[tuple[np.ndarray, float]]:
        a = self.args
        out = []
        for i in indices:
            duration = float(self.durations[i])
            try:
                decoded = decode_audio(
                    self.paths[i],
                    a["dtype"],
                    a["downmix"],
                    a["sample_rate"],
                    self.lobes,
                    float(self.offsets[i]),
                    None if duration < 0 else duration,
                )
            except ValueError as exc:
                raise ValueError(f"audio file {self.paths[i]!r}: {exc}") from None
            out.append(decoded)
        return out

    def read(self, ctx: RunContext, indices: list[int]) -> tuple[Batch, ...]:
        a = self.args
        samples = self.read_chunks(ctx, self._read, indices)
        outs = [Batch([s[0] for s in samples])]
        if a["read_sample_rate"]:
            outs.append(Batch(np.asarray([s[1] for s in samples], dtype=np.float32)))
        if a["read_text"]:
            outs.append(Batch([np.frombuffer(self.texts[i], dtype=np.uint8) for i in indices]))
        if a["read_idxs"]:
            outs.append(Batch(np.asarray(indices, dtype=np.int64).reshape(-1, 1)))
        return tuple(outs)

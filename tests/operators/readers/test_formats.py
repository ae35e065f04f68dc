"""The format readers (webdataset, mxnet, caffe, caffe2, nemo_asr, sequence), fn.io.file.read and
fn.decoders.numpy: outputs, restore at every step across epoch boundaries, and clear errors for damaged input."""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def, types
from pipestate.operators.readers import _wds_index
from pipestate.testing import assert_equal_output_after_checkpoint
from tests.operators.readers import datasets, formats


def needs(module: str):
    return pytest.importorskip(module, reason=f"{module} is not installed")


@pipeline_def(batch_size=3, num_threads=2, seed=5, enable_checkpointing=True, prefetch_queue_depth=2)
def reader_pipe(reader: str, **kw):
    out = getattr(fn.readers, reader)(name="r", **kw)
    return tuple(out) if isinstance(out, list) else out


def first_error(reader: str, **kw) -> BaseException:
    """The error of building the pipeline, or the cause of its first run()'s OperatorError."""
    try:
        pipe = reader_pipe(reader, batch_size=1, **kw)
    except (ValueError, OSError) as exc:
        return exc
    try:
        with pytest.raises(OperatorError) as info:
            for _ in range(50):
                pipe.run()
    finally:
        pipe.close()
    return info.value.__cause__


# ---- restore at every step, across reader epochs, with shuffling and sharding ---------------------------
RESUME = {
    "webdataset": dict(random_shuffle=True, initial_fill=4, shard_id=1, num_shards=2),
    "mxnet": dict(random_shuffle=True, initial_fill=3, pad_last_batch=True, num_shards=3, shard_id=2),
    "caffe": dict(random_shuffle=True, initial_fill=5, stick_to_shard=True, num_shards=2),
    "caffe2": dict(shard_id=1, num_shards=3),
    "nemo_asr": dict(shuffle_after_epoch=True, num_shards=2, read_idxs=True),
    "sequence": dict(random_shuffle=True, initial_fill=2, pad_last_batch=True),
}


@pytest.mark.parametrize("reader", sorted(RESUME))
def test_restore_anywhere_continues_exactly(tmp_path, reader: str) -> None:
    build, module = datasets.DATASETS[reader]
    if module:
        needs(module)
    kwargs = dict(build(os.fspath(tmp_path)), **RESUME[reader])
    make = functools.partial(reader_pipe, reader, **kwargs)
    per_epoch = -(-make().reader_meta("r")["epoch_size_padded"] // 3)
    assert_equal_output_after_checkpoint(make, steps=2 * per_epoch + 3)


def test_webdataset_archive_order_shuffle_covers_every_sample_each_epoch(tmp_path) -> None:
    data = datasets.webdataset(os.fspath(tmp_path), counts=(4, 6, 5))
    pipe = reader_pipe("webdataset", batch_size=5, shuffle_after_epoch=True, random_shuffle=True, **data)
    epochs = []
    for _ in range(4):
        epoch = []
        for _ in range(3):
            epoch += [int(bytes(s)) for s in pipe.run()[1]]
        epochs.append(epoch)
    assert all(sorted(e) == list(range(15)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1


# ---- webdataset -------------------------------------------------------------------------------------------
def test_webdataset_outputs_dtypes_and_missing_components(tmp_path) -> None:
    members = [
        ("a.x.bin", np.arange(4, dtype=np.int16).tobytes()),
        ("a.txt", b"first"),
        ("b.x.bin", np.arange(2, dtype=np.int16).tobytes()),
        ("c.TXT", b"third"),
        (".hidden.txt", b"no"),
    ]
    tar = formats.write_tar(os.fspath(tmp_path / "d.tar"), members)
    idx = os.fspath(tmp_path / "d.idx")
    assert _wds_index.wds2idx(tar, idx) == 3

    def run(**kw):
        pipe = reader_pipe(
            "webdataset", batch_size=1, paths=tar, ext=["x.bin", "txt;TXT"], dtypes=[types.INT16, types.UINT8], **kw
        )
        return [[np.array(o[0]).tolist() for o in pipe.run()] for _ in range(pipe.reader_meta("r")["epoch_size"])]

    assert run(index_paths=idx) == [[[0, 1, 2, 3], list(b"first")], [[0, 1], []], [[], list(b"third")]]
    assert run() == run(index_paths=idx)  # scanning the tar gives the same samples
    assert run(missing_component_behavior="skip") == [[[0, 1, 2, 3], list(b"first")]]
    with pytest.raises(_wds_index.WebdatasetError, match=r"d\.idx:3: the sample has no component"):
        run(index_paths=idx, missing_component_behavior="error")
    with pytest.raises(ValueError, match="missing_component_behavior='drop' must be one of"):
        run(missing_component_behavior="drop")
    pipe = reader_pipe("webdataset", batch_size=1, paths=tar, ext="txt", case_sensitive_extensions=False)
    assert [bytes(pipe.run()[0][0]) for _ in range(3)] == [b"first", b"", b"third"]


def test_wds2idx_command_writes_dalis_format(tmp_path) -> None:
    tar = formats.write_tar(os.fspath(tmp_path / "shard-0.tar"), formats.wds_members(0, 2))
    out = subprocess.run([sys.executable, "-m", "pipestate.cli", "wds2idx", tar], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "shard-0.idx").read_text()
    assert text == ("v1.2 2\njpg 512 4 000000.jpg cls 1536 1 000000.cls\njpg 2560 8 000001.jpg cls 3584 1 000001.cls\n")
    bad = subprocess.run(
        [sys.executable, "-m", "pipestate.cli", "wds2idx", os.fspath(tmp_path / "no.tar")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "no.tar" in bad.stderr


def test_webdataset_index_version_1_1_is_read(tmp_path) -> None:
    tar = formats.write_tar(os.fspath(tmp_path / "d.tar"), formats.wds_members(0, 2))
    idx = tmp_path / "d.idx"
    idx.write_text("v1.1 2\njpg 512 4 cls 1536 1\njpg 2560 8 cls 3584 1\n")
    pipe = reader_pipe("webdataset", batch_size=2, paths=tar, index_paths=os.fspath(idx), ext=["cls"])
    assert [bytes(s) for s in pipe.run()[0]] == [b"0", b"1"]


@pytest.mark.parametrize(
    "index, match",
    [
        ("v2.0 1\njpg 512 4 a.jpg\n", r"d\.idx:1: expected a version signature"),
        ("v1.2 3\njpg 512 4 a.jpg\n", r"says 3 samples but has"),
        ("v1.2 1\njpg 100 4 a.jpg\n", r"d\.idx:2: offset 100 is not a multiple of the tar block size"),
        ("v1.2 1\njpg 512\n", r"d\.idx:2: expected components"),
        ("v1.2 1\njpg 20480 4 a.jpg\n", r"d\.idx:2: component 'jpg' at offset 20480 .* ends past the end"),
        ("\xff\xfebinary", r"d\.idx:1: not a webdataset index file \(binary data\)"),
    ],
)
def test_webdataset_damaged_index_is_a_clear_error(tmp_path, index: str, match: str) -> None:
    tar = formats.write_tar(os.fspath(tmp_path / "d.tar"), formats.wds_members(0, 2))
    (tmp_path / "d.idx").write_bytes(index.encode("latin1"))
    with pytest.raises(_wds_index.WebdatasetError, match=match):
        reader_pipe("webdataset", paths=tar, index_paths=os.fspath(tmp_path / "d.idx"), ext="jpg")


def test_webdataset_truncated_or_garbage_tar_is_a_clear_error(tmp_path) -> None:
    tar = formats.write_tar(os.fspath(tmp_path / "d.tar"), formats.wds_members(0, 3))
    idx = os.fspath(tmp_path / "d.idx")
    _wds_index.wds2idx(tar, idx)
    with open(tar, "r+b") as f:
        f.truncate(2600)
    with pytest.raises(_wds_index.WebdatasetError, match=r"ends past the end of '.*d\.tar'"):
        reader_pipe("webdataset", paths=tar, index_paths=idx, ext="jpg")
    with pytest.raises(_wds_index.WebdatasetError, match=r"d\.tar: damaged or truncated tar archive"):
        reader_pipe("webdataset", paths=tar, ext="jpg")
    (tmp_path / "g.tar").write_bytes(b"not a tar" * 100)
    with pytest.raises(_wds_index.WebdatasetError, match=r"g\.tar: not a valid tar archive"):
        reader_pipe("webdataset", paths=os.fspath(tmp_path / "g.tar"), ext="jpg")
    with pytest.raises(FileNotFoundError, match="no.tar"):
        reader_pipe("webdataset", paths=os.fspath(tmp_path / "no.tar"), ext="jpg")


# ---- mxnet ------------------------------------------------------------------------------------------------
def test_mxnet_damaged_records_and_index(tmp_path) -> None:
    data = datasets.recordio(os.fspath(tmp_path), n=12)
    rec = data["path"][0]
    raw = bytearray(open(rec, "rb").read())
    second = int(open(data["index_path"][0]).read().split()[3])
    raw[second : second + 4] = b"\0\0\0\0"  # the second record's magic number
    open(rec, "wb").write(bytes(raw))
    err = first_error("mxnet", **data)
    assert "wrong magic number" in str(err) and "a.rec at offset" in str(err)
    idx = data["index_path"][0]
    open(idx, "a").write("99\tbad\n")
    with pytest.raises(ValueError, match=r"all\.idx:13: expected 'key offset'"):
        reader_pipe("mxnet", **data)
    open(idx, "w").write("0\t0\n1\t999999\n")
    with pytest.raises(ValueError, match=r"all\.idx:2: offset 999999 is past the end"):
        reader_pipe("mxnet", **data)


def test_mxnet_truncated_file_names_file_and_offset(tmp_path) -> None:
    data = datasets.recordio(os.fspath(tmp_path), n=12)
    rec = data["path"][1]
    with open(rec, "r+b") as f:
        f.truncate(os.path.getsize(rec) - 5)
    err = first_error("mxnet", **data)
    assert "b.rec at offset" in str(err) and "truncated" in str(err)


# ---- caffe, caffe2 ------------------------------------------------------------------------------------------
def test_caffe_outputs_raw_and_flags(tmp_path) -> None:
    needs("lmdb")
    path = formats.write_lmdb(os.fspath(tmp_path / "raw"), [formats.caffe_datum(i, encoded=False) for i in range(4)])
    image, label = reader_pipe("caffe", path=path).run()
    assert image.as_array().shape == (3, 2, 3, 1) and label.as_array().tolist() == [[0], [1], [2]]
    (only,) = [reader_pipe("caffe", path=path, image_available=False).run()[0]]
    assert only.as_array().dtype == np.int32


def test_caffe_records_that_are_not_datums_and_truncated_databases(tmp_path) -> None:
    needs("lmdb")
    path = formats.write_lmdb(os.fspath(tmp_path / "db"), [formats.caffe_datum(0), b"\xff\xff\xff garbage"])
    err = first_error("caffe", path=path)
    assert "record 1 (key b'00000001')" in str(err) and "not a caffe.Datum" in str(err)
    big = formats.write_lmdb(os.fspath(tmp_path / "big"), [formats.caffe_datum(i) * 50 for i in range(300)])
    data_file = os.path.join(big, "data.mdb")
    with open(data_file, "r+b") as f:
        f.truncate(os.path.getsize(data_file) // 2)
    with pytest.raises(ValueError, match=r"big/data\.mdb: the file has .* bytes but its pages end at byte"):
        reader_pipe("caffe", path=big)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        reader_pipe("caffe", path=os.fspath(tmp_path / "nowhere"))


def test_caffe2_label_types_and_extras(tmp_path) -> None:
    needs("lmdb")
    sparse = formats.write_lmdb(os.fspath(tmp_path / "s"), [formats.caffe2_protos(i, label_type=3) for i in range(3)])
    image, label = reader_pipe("caffe2", path=sparse, label_type=3, num_labels=5).run()
    assert label.as_array()[1].tolist() == [0.0, 0.5, 0.0, 0.25, 0.0]  # indices 1, 3 with weights
    multi = formats.write_lmdb(os.fspath(tmp_path / "m"), [formats.caffe2_protos(i, label_type=1) for i in range(3)])
    assert reader_pipe("caffe2", path=multi, label_type=1, num_labels=5).run()[1].as_array()[2].tolist() == [
        0,
        0,
        1,
        0,
        1,
    ]
    err = first_error("caffe2", path=multi, label_type=1, num_labels=5, additional_inputs=3)
    assert "the record holds 2 tensors, the additional input 0 would be tensor 3" in str(err)


# ---- nemo_asr ---------------------------------------------------------------------------------------------
def test_nemo_manifest_lines_that_are_not_json_name_the_line(tmp_path) -> None:
    needs("soundfile")
    manifest = tmp_path / "m.json"
    manifest.write_text('{"audio_filepath": "a.wav", "duration": 1}\n\n{"audio_filepath": "b.wav", duration: 2}\n')
    with pytest.raises(ValueError, match=r"m\.json:3: not a JSON object"):
        reader_pipe("nemo_asr", manifest_filepaths=os.fspath(manifest))
    manifest.write_text('["audio_filepath"]\n')
    with pytest.raises(ValueError, match=r"m\.json:1: expected a JSON object per line, got list"):
        reader_pipe("nemo_asr", manifest_filepaths=os.fspath(manifest))


def test_nemo_filters_by_duration_and_reads_offsets(tmp_path) -> None:
    sf = needs("soundfile")
    x = (np.arange(1600) - 800).astype(np.int16)
    sf.write(os.fspath(tmp_path / "a.wav"), x, 16000, subtype="PCM_16")
    path = os.fspath(tmp_path / "a.wav")
    entries = [{"audio_filepath": path, "duration": d, "offset": 0.01, "text": f"d{d}"} for d in (0.01, 0.05, 0.09)]
    manifest = formats.write_manifest(os.fspath(tmp_path / "m.json"), entries)
    audio, rate, text, idx = reader_pipe(
        "nemo_asr", batch_size=2, manifest_filepaths=manifest, min_duration=0.02, dtype=types.INT16, read_idxs=True
    ).run()
    assert [bytes(t) for t in text] == [b"d0.05", b"d0.09"] and idx.as_array().tolist() == [[0], [1]]
    assert audio[0].tolist() == x[160:960].tolist() and rate.as_array().tolist() == [16000.0, 16000.0]
    with pytest.raises(ValueError, match="no entries"):
        reader_pipe("nemo_asr", manifest_filepaths=manifest, max_duration=0.001)


def test_nemo_unreadable_audio_is_a_clear_error_and_resampling_works(tmp_path) -> None:
    sf = needs("soundfile")
    (tmp_path / "bad.wav").write_bytes(b"RIFF garbage")
    bad = os.fspath(tmp_path / "bad.wav")
    manifest = formats.write_manifest(os.fspath(tmp_path / "m.json"), [{"audio_filepath": bad}])
    assert "cannot decode audio" in str(first_error("nemo_asr", manifest_filepaths=manifest))
    sf.write(os.fspath(tmp_path / "ok.wav"), np.zeros(100, np.int16), 8000)
    ok = os.fspath(tmp_path / "ok.wav")
    manifest = formats.write_manifest(os.fspath(tmp_path / "n.json"), [{"audio_filepath": ok}])
    pipe = reader_pipe("nemo_asr", manifest_filepaths=manifest, sample_rate=16000, batch_size=1)
    audio = pipe.run()[0]
    pipe.close()
    assert audio[0].shape[0] == 200  # 100 samples at 8 kHz resampled to 16 kHz in the reader, as DALI


# ---- sequence ---------------------------------------------------------------------------------------------
def test_sequence_shapes_layout_and_broken_frames(tmp_path) -> None:
    needs("cv2")
    data = datasets.frames(os.fspath(tmp_path), counts=(3, 4))
    (seq,) = reader_pipe("sequence", file_root=data["file_root"], sequence_length=3, stride=1, step=1).run()
    assert seq.layout() == "FHWC" and seq.as_array().shape == (3, 3, 12, 16, 3)
    with open(os.path.join(data["file_root"], "s1", "002.png"), "wb") as f:
        f.write(b"not an image")
    err = first_error("sequence", file_root=data["file_root"], sequence_length=3)
    assert "cannot decode frame" in str(err) and "002.png" in str(err)
    with pytest.raises(ValueError, match="no complete sequence of 9 frames"):
        reader_pipe("sequence", file_root=data["file_root"], sequence_length=9)


# ---- io.file.read, decoders.numpy ----------------------------------------------------------------------------
def test_file_read_and_numpy_decoder(tmp_path) -> None:
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.asfortranarray(np.arange(12.0).reshape(3, 4).T)]
    paths = []
    for k, a in enumerate(arrays):
        np.save(tmp_path / f"{k}.npy", a)
        paths.append(np.frombuffer(os.fspath(tmp_path / f"{k}.npy").encode(), np.uint8))

    @pipeline_def(batch_size=2, num_threads=2, seed=1)
    def pipe(source):
        raw = fn.io.file.read(fn.external_source(source=source, batch=True))
        return raw, fn.decoders.numpy(raw, dtype=types.FLOAT)

    raw, decoded = pipe(lambda: paths).run()
    assert bytes(raw[0]) == (tmp_path / "0.npy").read_bytes()
    assert [d.tolist() for d in decoded] == [a.tolist() for a in arrays]
    missing = [np.frombuffer(b"/no/such/file.npy", np.uint8)] * 2
    with pytest.raises(OperatorError) as info:
        pipe(lambda: missing).run()
    assert isinstance(info.value.__cause__, FileNotFoundError) and "/no/such/file.npy" in str(info.value.__cause__)
    buf = io.BytesIO()
    np.save(buf, np.zeros(100))
    truncated = np.frombuffer(buf.getvalue()[:-8], np.uint8)

    @pipeline_def(batch_size=1, num_threads=1, seed=1)
    def decode(source):
        return fn.decoders.numpy(fn.external_source(source=source, batch=True))

    with pytest.raises(OperatorError) as info:
        decode(lambda: [truncated]).run()
    assert "sample 0: the header says (100,) float64 (800 bytes) but 792 data bytes follow" in str(info.value.__cause__)


def test_manifest_helper_writes_json_lines(tmp_path) -> None:
    path = formats.write_manifest(os.fspath(tmp_path / "m.json"), [{"a": 1}, {"b": 2}])
    assert [json.loads(line) for line in open(path)] == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize("reader", ["webdataset", "mxnet"])
def test_restore_reads_nothing_before_the_position(tmp_path, monkeypatch, reader: str) -> None:
    """Restoring late in an epoch reads only the batches returned after it (no replay of the epoch)."""
    from pipestate.operators.readers import mxnet, webdataset

    cls = {"webdataset": webdataset.WebdatasetReader, "mxnet": mxnet.MXNetReader}[reader]
    build = datasets.DATASETS[reader][0]
    kwargs = dict(build(os.fspath(tmp_path)), random_shuffle=True, initial_fill=8)
    pipe = reader_pipe(reader, batch_size=2, prefetch_queue_depth=1, **kwargs)
    for _ in range(9):
        pipe.run()
    blob, expected = pipe.checkpoint(), [np.array(o[0]).tolist() for o in pipe.run()]
    pipe.close()
    reads = []
    real = cls._read
    monkeypatch.setattr(cls, "_read", lambda self, indices: reads.append(len(indices)) or real(self, indices))
    restored = reader_pipe(reader, batch_size=2, prefetch_queue_depth=1, checkpoint=blob, **kwargs)
    assert [np.array(o[0]).tolist() for o in restored.run()] == expected
    restored.close()
    assert sum(reads) <= 2 * 2, f"samples read to restore and return one batch: {sum(reads)}"

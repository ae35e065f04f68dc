"""Loads of damaged, truncated, oversized or odd files raise CorruptCheckpointError, never another
exception type or a hang (issue 9)."""

from __future__ import annotations

import json
import os
import tempfile
import uuid

import pytest
from _io_helpers import make_checkpoint, step_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipestate import Checkpointer
from pipestate.checkpoint import decode
from pipestate.errors import CheckpointError, CorruptCheckpointError
from pipestate.io import LocalCheckpointIO
from pipestate.io.base import MAX_CHECKPOINT_BYTES

fsspec = pytest.importorskip("fsspec", reason="FsspecCheckpointIO needs the optional fsspec extra")

from pipestate.io.fsspec_ import MARKER_SUFFIX, FsspecCheckpointIO  # noqa: E402

BLOB = make_checkpoint(6, pad=64)


def _mutate(blob: bytes, kind: str, pos: int, value: int, extra: bytes) -> bytes:
    pos %= len(blob) + 1
    if kind == "truncate":
        return blob[:pos]
    if kind == "flip":
        pos %= len(blob)
        return blob[:pos] + bytes([blob[pos] ^ (value or 1)]) + blob[pos + 1 :]
    if kind == "append":
        return blob + extra
    if kind == "insert":
        return blob[:pos] + extra + blob[pos:]
    return extra  # "replace": arbitrary bytes


mutations = st.tuples(
    st.sampled_from(["truncate", "flip", "append", "insert", "replace"]),
    st.integers(0, 10_000),
    st.integers(0, 255),
    st.binary(max_size=64),
)


def _check_load(load, on_disk: bytes) -> None:
    try:
        got = load()
    except CheckpointError:  # CorruptCheckpointError, or UnsupportedCheckpointVersionError for a flipped version
        return
    assert got == on_disk  # accepted: exactly the stored bytes, and they decode
    decode(got)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation=mutations)
def test_local_load_of_mutated_files_is_a_checkpoint_error(mutation):
    damaged = _mutate(BLOB, *mutation)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.pscpt")
        with open(path, "wb") as f:
            f.write(damaged)
        _check_load(lambda: LocalCheckpointIO().load_checkpoint(path), damaged)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data_mutation=mutations, marker_mutation=mutations)
def test_fsspec_marker_load_of_mutated_data_or_marker_is_a_checkpoint_error(data_mutation, marker_mutation):
    fs = fsspec.filesystem("memory")
    url = f"memory://untrusted-{uuid.uuid4().hex}/c.pscpt"
    io = FsspecCheckpointIO()
    io.save_checkpoint(BLOB, url)
    damaged = _mutate(BLOB, *data_mutation)
    fs.pipe_file(url, damaged)
    if marker_mutation[0] != "append":  # keep some valid markers so the data check is reached
        fs.pipe_file(url + MARKER_SUFFIX, _mutate(fs.cat_file(url + MARKER_SUFFIX), *marker_mutation))
    try:
        _check_load(lambda: io.load_checkpoint(url), damaged)
    finally:
        fs.rm(url.rsplit("/", 1)[0], recursive=True)


@pytest.mark.parametrize(
    "marker",
    [
        b"[" * 100_000,  # nesting deep enough for a RecursionError in json
        b'{"kind": "pipestate-checkpoint-commit", "size": Infinity, "crc32": 0}',
        b'{"kind": "pipestate-checkpoint-commit", "size": NaN, "crc32": 0}',
        b'{"kind": "pipestate-checkpoint-commit", "size": -1, "crc32": 0}',
        b'{"kind": "pipestate-checkpoint-commit", "size": 1099511627776, "crc32": 0}',
        b'{"kind": "pipestate-checkpoint-commit", "size": [], "crc32": 0}',
        b'"a string"',
        b"\xff\xfe\x00garbage",
        b" " * (1 << 17) + b"{}",
    ],
    ids=["deep", "inf", "nan", "negative", "huge", "list", "string", "binary", "oversized"],
)
def test_fsspec_damaged_marker_is_corrupt(marker):
    fs = fsspec.filesystem("memory")
    url = f"memory://untrusted-{uuid.uuid4().hex}/c.pscpt"
    io = FsspecCheckpointIO()
    io.save_checkpoint(BLOB, url)
    fs.pipe_file(url + MARKER_SUFFIX, marker)
    with pytest.raises(CorruptCheckpointError, match="commit marker is damaged"):
        io.load_checkpoint(url)
    fs.rm(url.rsplit("/", 1)[0], recursive=True)


def test_fsspec_reads_no_more_than_the_marker_promises(monkeypatch):
    fs = fsspec.filesystem("memory")
    url = f"memory://untrusted-{uuid.uuid4().hex}/c.pscpt"
    io = FsspecCheckpointIO()
    io.save_checkpoint(BLOB, url)
    fs.pipe_file(url, BLOB + b"\0" * (8 << 20))  # grown behind the marker's back
    reads = []
    real = type(fs).cat_file

    def spy(self, path, start=None, end=None, **kw):
        out = real(self, path, start=start, end=end, **kw)
        reads.append(len(out))
        return out

    monkeypatch.setattr(type(fs), "cat_file", spy)
    with pytest.raises(CorruptCheckpointError, match=rf"{len(BLOB) + 1}\+ bytes\) does not match"):
        io.load_checkpoint(url)
    assert max(reads) == len(BLOB) + 1


@pytest.mark.timeout(20)
def test_local_load_of_an_oversized_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.pscpt"
    with open(path, "wb") as f:
        f.truncate(MAX_CHECKPOINT_BYTES + 1)  # sparse: no disk space used
    with pytest.raises(CorruptCheckpointError, match="huge.pscpt.*larger than any pipestate checkpoint"):
        LocalCheckpointIO().load_checkpoint(path)
    with pytest.raises(CorruptCheckpointError, match="larger than any"):
        FsspecCheckpointIO().load_checkpoint(f"file://{path}")


@pytest.mark.timeout(20)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_load_of_a_fifo_or_device_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "checkpoint-000000000009.pscpt"
    os.mkfifo(fifo)
    with pytest.raises(CorruptCheckpointError, match="not a regular file \\(a FIFO\\)"):
        LocalCheckpointIO().load_checkpoint(fifo)
    with pytest.raises(CorruptCheckpointError, match="a character device"):
        LocalCheckpointIO().load_checkpoint("/dev/zero")
    ckpt = Checkpointer(tmp_path)
    ckpt.save(make_checkpoint(3), 3)
    assert step_of(ckpt.load_latest()) == 3  # the FIFO named like a newer checkpoint is skipped


def test_load_of_a_directory_is_is_a_directory_error(tmp_path):
    with pytest.raises(IsADirectoryError, match="loading the checkpoint"):
        LocalCheckpointIO().load_checkpoint(tmp_path)


def test_marker_json_is_what_the_docs_say(tmp_path):
    io = FsspecCheckpointIO(commit="marker")
    io.save_checkpoint(BLOB, str(tmp_path / "m.pscpt"))
    marker = json.loads((tmp_path / ("m.pscpt" + MARKER_SUFFIX)).read_bytes())
    assert marker["size"] == len(BLOB) and marker["kind"] == "pipestate-checkpoint-commit"
    assert sorted(os.listdir(tmp_path)) == ["m.pscpt", "m.pscpt" + MARKER_SUFFIX]  # no intent left

"""Step files (several named parts in one checksummed file): the codec, and loads of damaged bytes.

Whatever a step file's bytes become (truncated, bit-flipped, appended to, spliced), loading it raises
``CorruptCheckpointError`` and nothing else; an intact one round-trips.
"""

from __future__ import annotations

import json
import struct
import zlib

import pytest
from _io_helpers import make_checkpoint
from hypothesis import given, settings
from hypothesis import strategies as st

from pipestate import Checkpointer
from pipestate.errors import CorruptCheckpointError
from pipestate.io import LocalCheckpointIO
from pipestate.io.base import validate_checkpoint
from pipestate.io.step import PREFIX, Part, decode_step, encode, is_step

PARTS = [
    Part("data", "pipeline", (make_checkpoint(3),)),
    Part("model", "bytes", (b"\x00" * 300 + b"weights",)),
    Part("counters", "data", (b'{"epoch": 2}',)),
    Part("empty", "bytes", (b"",)),
]
BLOB = encode(12, PARTS, "0.test")


def test_round_trip_keeps_names_kinds_blobs_and_meta():
    parts = [*PARTS, Part("tf", "tensorflow", (b"index", b"data"), {"files": ["part.index", "part.data"]})]
    decoded = decode_step(encode(7, parts, "9.9"))
    assert decoded.step == 7 and decoded.library_version == "9.9"
    assert decoded.parts == tuple(parts)
    assert decoded.names == ["data", "model", "counters", "empty", "tf"]
    assert decoded.part("model").blobs == (b"\x00" * 300 + b"weights",)
    with pytest.raises(KeyError):
        decoded.part("nope")


def test_layout_is_the_documented_one():
    assert BLOB.startswith(PREFIX) and PREFIX == b"PSSTEP\x00\x01" and is_step(BLOB)
    header_len, header_crc = struct.unpack("<QI", BLOB[8:20])
    header = BLOB[20 : 20 + header_len]
    assert zlib.crc32(header) == header_crc
    doc = json.loads(header)
    assert doc["step"] == 12 and [p["name"] for p in doc["parts"]] == ["data", "model", "counters", "empty"]
    offset = 20 + header_len
    for part, entry in zip(PARTS, doc["parts"]):
        for blob, span in zip(part.blobs, entry["blobs"]):
            assert BLOB[offset : offset + span["length"]] == blob and zlib.crc32(blob) == span["crc32"]
            offset += span["length"]
    assert offset == len(BLOB)


def test_encode_refuses_duplicate_names_and_unknown_kinds():
    with pytest.raises(ValueError, match="distinct"):
        encode(1, [Part("a", "bytes", (b"",)), Part("a", "bytes", (b"",))])
    with pytest.raises(ValueError, match="unknown kind"):
        encode(1, [Part("a", "pickle", (b"",))])


def test_a_damaged_pipestate_part_is_named():
    broken = make_checkpoint(3)[:-1]
    with pytest.raises(CorruptCheckpointError, match="part 'data'"):
        decode_step(encode(1, [Part("data", "pipeline", (broken,))]))
    with pytest.raises(CorruptCheckpointError, match="holds 2 checkpoints"):
        decode_step(encode(1, [Part("data", "pipeline", (make_checkpoint(1), make_checkpoint(2)))]))


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (BLOB[:10], "truncated"),
        (BLOB[:-1], "truncated"),
        (BLOB + b"x", "after its last part"),
        (b"PSSTEP\x00\x02" + BLOB[8:], "format version 2"),
        (BLOB[:8] + struct.pack("<QI", 1 << 40, 0) + BLOB[20:], "header claims"),
        (BLOB[:20] + b"[" + BLOB[21:], "header's checksum"),
    ],
    ids=["head", "tail", "appended", "version", "header-length", "header-byte"],
)
def test_damage_is_reported(blob, match):
    with pytest.raises(CorruptCheckpointError, match=match):
        decode_step(blob)


def _with_header(doc: dict, body: bytes = b"") -> bytes:
    header = json.dumps(doc).encode()
    return PREFIX + struct.pack("<QI", len(header), zlib.crc32(header)) + header + body


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"step": -1, "library_version": "", "parts": []},
        {"step": 1, "library_version": "", "parts": [{"name": "a", "kind": "pickle", "meta": {}, "blobs": []}]},
        {"step": 1, "library_version": "", "parts": [{"name": "a", "kind": "bytes", "meta": [], "blobs": []}]},
        {"step": 1, "library_version": "", "parts": [{"name": "a", "kind": "bytes", "meta": {},
                                                      "blobs": [{"length": -5, "crc32": 0}]}]},
        {"step": 1, "library_version": "", "parts": [{"name": "a", "kind": "bytes", "meta": {}, "blobs": []},
                                                     {"name": "a", "kind": "bytes", "meta": {}, "blobs": []}]},
    ],
    ids=["not-an-object", "negative-step", "unknown-kind", "meta", "negative-length", "duplicate"],
)
def test_well_formed_but_wrong_headers_are_corrupt(doc):
    with pytest.raises(CorruptCheckpointError):
        decode_step(_with_header(doc))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_damage_is_corrupt_never_another_error(data):
    blob = bytearray(BLOB)
    how = data.draw(st.sampled_from(["truncate", "flip", "insert", "splice"]))
    at = data.draw(st.integers(0, len(blob) - 1))
    if how == "truncate":
        del blob[at:]
    elif how == "flip":
        blob[at] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "insert":
        blob[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    else:
        blob[at : at + 8] = data.draw(st.binary(min_size=0, max_size=8))
    if bytes(blob) == BLOB:
        return
    with pytest.raises(CorruptCheckpointError):
        validate_checkpoint(bytes(blob), where="fuzz")


def test_backends_store_and_validate_step_files(tmp_path):
    io = LocalCheckpointIO()
    io.save_checkpoint(BLOB, tmp_path / "s.pscpt")
    assert io.load_checkpoint(tmp_path / "s.pscpt") == BLOB
    damaged = bytearray(BLOB)
    damaged[-3] ^= 0xFF
    (tmp_path / "d.pscpt").write_bytes(bytes(damaged))
    with pytest.raises(CorruptCheckpointError, match="fails its checksum"):
        io.load_checkpoint(tmp_path / "d.pscpt")
    with pytest.raises(CorruptCheckpointError, match="refusing to save"):
        io.save_checkpoint(bytes(damaged), tmp_path / "e.pscpt")


def test_large_files_are_read_only_when_they_are_step_files(tmp_path, monkeypatch):
    """A file over the 2 GiB limit of a pipestate checkpoint is read only if it starts as a step file."""
    import pipestate.io.local as local

    monkeypatch.setattr(local, "MAX_CHECKPOINT_BYTES", 64)
    (tmp_path / "big.pscpt").write_bytes(BLOB)  # > 64 bytes, a step file: read
    assert local.read_checkpoint_file(tmp_path / "big.pscpt") == BLOB
    (tmp_path / "junk.pscpt").write_bytes(b"\x0d" * 100)  # > 64 bytes, not a step file: refused unread
    with pytest.raises(CorruptCheckpointError, match="larger than any pipestate checkpoint"):
        local.read_checkpoint_file(tmp_path / "junk.pscpt")


def test_a_checkpointer_skips_a_damaged_step_and_logs_the_fallback(tmp_path, caplog):
    ckpt = Checkpointer(tmp_path)
    ckpt.save({"x": b"first"}, 1)
    ckpt.save({"x": b"second"}, 2)
    path = ckpt.path_for(2)
    raw = bytearray(open(path, "rb").read())
    raw[-2] ^= 0x40  # inside the part's bytes: only its CRC notices
    open(path, "wb").write(bytes(raw))
    with caplog.at_level("WARNING", logger="pipestate.io.checkpointer"):
        state = ckpt.load_latest()
    assert state.step == 1 and state["x"] == b"first"
    text = caplog.text
    assert "skipping checkpoint" in text and "part 'x' fails its checksum" in text
    assert "falling back to step 1" in text

"""Checkpoint bytes: restore, the envelope checks, and the errors, one test per error."""

import functools
import pathlib
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipestate import (
    CheckpointError,
    CheckpointMismatchError,
    CorruptCheckpointError,
    PipestateError,
    UnsupportedCheckpointVersionError,
    fn,
    pipeline_def,
)
from pipestate import checkpoint as ckpt
from pipestate._proto.pipestate.v1 import checkpoint_pb2 as pb
from pipestate._proto.pipestate.v2 import checkpoint_pb2 as pb2
from pipestate.testing import assert_equal_output_after_checkpoint, assert_restore_chain


@pipeline_def(batch_size=8, num_threads=2, seed=42, enable_checkpointing=True)
def four_random(low=-1.0):
    u = fn.random.uniform(range=[low, 1.0], shape=[3])
    n = fn.random.normal(mean=1.0, stddev=2.0)
    c = fn.random.coin_flip(probability=0.3)
    k = fn.random.choice(5)
    return u * 2.0 + 1.0, n, c, k


def test_issue_example_restores_bit_for_bit(tmp_path):
    p = four_random()
    p.run()
    cpt = p.checkpoint(tmp_path / "run.cpt")
    assert (tmp_path / "run.cpt").read_bytes() == cpt
    expected = [p.run() for _ in range(3)]
    q = four_random(checkpoint=cpt)
    assert q.is_restored_from_checkpoint and not p.is_restored_from_checkpoint
    for e, g in zip(expected, [q.run() for _ in range(3)]):
        for eo, go in zip(e, g):
            assert eo.as_array().tobytes() == go.as_array().tobytes()


def test_restore_at_every_step():
    assert_equal_output_after_checkpoint(four_random, steps=10)


def test_chain_of_restores():
    assert_restore_chain(four_random, [2, 1, 3, 0, 4])


def test_checkpoint_before_any_run_restores_the_start():
    a = four_random()
    cpt = a.checkpoint()
    b = four_random(checkpoint=cpt)
    assert a.run()[1].as_array().tobytes() == b.run()[1].as_array().tobytes()


def test_checkpoint_describes_the_last_returned_batch_not_the_prefetched_ones():
    p = four_random(prefetch_queue_depth=4)
    p.run()
    import time

    time.sleep(0.2)  # let the prefetcher run ahead
    data = ckpt.decode(p.checkpoint())
    assert data.iteration == 1
    assert not any(op.has_state for op in data.operators)  # random operators derive their counter


def test_seed_is_adopted_from_the_checkpoint_when_none_given():
    p = four_random(seed=None)
    p.run()
    cpt = p.checkpoint()
    q = four_random(seed=None, checkpoint=cpt)
    assert q.seed == p.seed
    assert p.run()[0].as_array().tobytes() == q.run()[0].as_array().tobytes()


def test_checkpoint_needs_enable_checkpointing():
    p = four_random(enable_checkpointing=False)
    with pytest.raises(PipestateError, match="enable_checkpointing=True"):
        p.checkpoint()
    with pytest.raises(ValueError, match="enable_checkpointing=True"):
        four_random(enable_checkpointing=False, checkpoint=four_random().checkpoint())


# ---- corrupt bytes ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good():
    p = four_random()
    p.run()
    return p.checkpoint()


def test_empty_bytes(good):
    with pytest.raises(CorruptCheckpointError, match="empty"):
        four_random(checkpoint=b"")


@pytest.mark.parametrize("cut", [1, 5, 12, -1, -30])
def test_truncated(good, cut):
    with pytest.raises(CorruptCheckpointError):
        four_random(checkpoint=good[:cut])


def test_every_single_bit_flip_is_detected(good):
    for i in range(len(good)):
        for bit in (0, 3, 7):
            damaged = bytearray(good)
            damaged[i] ^= 1 << bit
            with pytest.raises(CorruptCheckpointError):
                four_random(checkpoint=bytes(damaged))


def test_foreign_bytes(good):
    with pytest.raises(CorruptCheckpointError, match="not a pipestate checkpoint"):
        four_random(checkpoint=b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(CorruptCheckpointError, match="magic"):
        four_random(checkpoint=pb.Checkpoint(magic=1234, format_version=1).SerializeToString())


def test_not_bytes_is_a_type_error():
    with pytest.raises(TypeError, match="binary mode"):
        four_random(checkpoint="run.cpt")


def test_unsupported_version(good):
    envelope = pb.Checkpoint.FromString(good)
    envelope.format_version = 99
    envelope.payload_crc32 = zlib.crc32(envelope.payload, zlib.crc32((99).to_bytes(4, "little")))
    with pytest.raises(UnsupportedCheckpointVersionError, match="version 99"):
        four_random(checkpoint=envelope.SerializeToString())


def test_errors_are_value_errors():
    assert issubclass(CheckpointError, ValueError)
    for cls in (CorruptCheckpointError, UnsupportedCheckpointVersionError, CheckpointMismatchError):
        assert issubclass(cls, CheckpointError)


# ---- mismatches ------------------------------------------------------------------------------------
def _mismatch(good, factory):
    with pytest.raises(CheckpointMismatchError) as info:
        factory(checkpoint=good)
    return info.value


def test_mismatch_batch_size(good):
    err = _mismatch(good, functools.partial(four_random, batch_size=4))
    assert "batch_size is 4, the checkpoint has 8" in str(err)


def test_mismatch_seed(good):
    err = _mismatch(good, functools.partial(four_random, seed=1))
    assert err.differences == ["seed is 1, the checkpoint has 42"]


def test_mismatch_changed_argument_names_it(good):
    err = _mismatch(good, functools.partial(four_random, low=-2.0))
    assert err.differences == ["operator 'random.uniform_0' (random.uniform): changed arguments: range"]


def test_mismatch_missing_and_extra_operators(good):
    @pipeline_def(batch_size=8, seed=42, enable_checkpointing=True)
    def other():
        u = fn.random.uniform(range=[-1.0, 1.0], shape=[3])
        n = fn.random.normal(mean=1.0, stddev=2.0)
        c = fn.random.coin_flip(probability=0.3)
        extra = fn.random.uniform(name="extra")
        return u * 2.0 + 1.0, n, c, extra

    err = _mismatch(good, other)
    assert "operators in the checkpoint but not in this pipeline: random.choice_0" in err.differences
    assert "operators in this pipeline but not in the checkpoint: extra" in err.differences


def test_mismatch_rewired_graph(good):
    @pipeline_def(batch_size=8, seed=42, enable_checkpointing=True)
    def rewired():
        u = fn.random.uniform(range=[-1.0, 1.0], shape=[3])
        n = fn.random.normal(mean=1.0, stddev=2.0)
        c = fn.random.coin_flip(probability=0.3)
        k = fn.random.choice(5)
        return u * 2.0 + 1.0, c, n, k  # outputs swapped

    err = _mismatch(good, rewired)
    assert "structure or outputs differ" in str(err)


def test_thread_count_and_prefetch_depth_are_not_part_of_the_fingerprint(good):
    q = four_random(num_threads=1, prefetch_queue_depth=5, checkpoint=good)
    assert q.fingerprint == four_random().fingerprint


# ---- the format ------------------------------------------------------------------------------------
def test_envelope_layout(good):
    envelope = pb.Checkpoint.FromString(good)
    assert good[:5] == b"\x0dPSST"  # field 1 (fixed32) then the magic's bytes
    assert envelope.format_version == ckpt.FORMAT_VERSION
    assert envelope.payload_crc32 == zlib.crc32(envelope.payload, zlib.crc32(b"\x02\x00\x00\x00"))
    payload = pb2.Payload.FromString(envelope.payload)
    assert len(payload.fingerprint) == 16
    assert [op.name for op in payload.operators][:4] == [
        "random.uniform_0",
        "random.normal_0",
        "random.coin_flip_0",
        "random.choice_0",
    ]
    assert not payload.operators[0].HasField("state")  # random operators are stateless: nothing stored
    assert payload.iteration == 1


def test_encode_decode_round_trip(good):
    data = ckpt.decode(good)
    assert ckpt.encode(data) == good


def test_no_pickle_anywhere_in_the_package():
    # The one exception: pipestate/parallel.py pickles the user's source to send it to worker processes
    # (with py_start_method="spawn"), never checkpoint contents; the checkpoint code does not import it.
    root = pathlib.Path(__file__).resolve().parent.parent / "pipestate"
    for path in root.rglob("*.py"):
        text = path.read_text()
        if path == root / "parallel.py":
            continue
        assert "import pickle" not in text and "cloudpickle" not in text and "marshal" not in text, path
    for path in [root / "checkpoint", root / "io"]:
        for file in [path] if path.is_file() else path.rglob("*.py"):
            assert "parallel" not in file.read_text(), file


def test_determinism_does_not_depend_on_library_version_string(good, monkeypatch):
    import pipestate

    reference = four_random()
    reference.run()
    expected = [np.asarray(b).tobytes() for b in reference.run()]
    monkeypatch.setattr(pipestate, "__version__", "9.9.9")
    q = four_random(checkpoint=good)  # written by "this" version, restored by "9.9.9"
    assert [np.asarray(b).tobytes() for b in q.run()] == expected


# ---- the fast encoder equals protobuf's serialization ---------------------------------------------
u64 = st.integers(0, 2**64 - 1)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=40),
)
plain = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
states = st.one_of(st.tuples(st.just(False), st.none()), st.tuples(st.just(True), plain))


def value_message(value):
    """A pipestate.v2.Value built field by field (the slow, obvious way)."""
    msg = pb2.Value()
    if value is None:
        msg.none = True
    elif isinstance(value, bool):
        msg.bool = value
    elif isinstance(value, int):
        if value < 2**63:
            msg.int = value
        else:
            msg.uint = value
    elif isinstance(value, float):
        msg.float = value
    elif isinstance(value, str):
        msg.str = value
    elif isinstance(value, bytes):
        msg.bytes = value
    elif isinstance(value, list):
        msg.list.SetInParent()
        for item in value:
            msg.list.items.append(value_message(item))
    else:
        msg.map.SetInParent()
        for key in sorted(value):
            msg.map.entries.add(key=key, value=value_message(value[key]))
    return msg


def reference_encoding(data):
    """The checkpoint bytes built with the protobuf messages field by field."""
    payload = pb2.Payload(
        library_version=data.library_version,
        fingerprint=data.fingerprint,
        batch_size=data.batch_size,
        seed=data.seed,
        iteration=data.iteration,
        epoch=data.epoch,
        iteration_in_epoch=data.iteration_in_epoch,
    )
    for r in data.operators:
        msg = payload.operators.add(name=r.name, type=r.type, digest=r.digest)
        for key, crc in r.arg_digests.items():
            msg.arg_digests[key] = crc
        if r.has_state:
            msg.state.CopyFrom(value_message(r.state))
    payload.iterator_data = data.iterator_data
    body = payload.SerializeToString(deterministic=True)
    crc = zlib.crc32(body, zlib.crc32(ckpt.FORMAT_VERSION.to_bytes(4, "little")))
    return pb.Checkpoint(
        magic=ckpt.MAGIC, format_version=ckpt.FORMAT_VERSION, payload_crc32=crc, payload=body
    ).SerializeToString(deterministic=True)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(-(2**63), 2**63 - 1),
    counters=st.tuples(u64, u64, u64),
    iterator_data=st.text(max_size=30),
    ops=st.lists(
        st.tuples(
            st.text(min_size=1, max_size=30),
            st.text(max_size=20),
            u64,
            st.dictionaries(st.text(max_size=10), st.integers(0, 2**32 - 1), max_size=4),
            states,
        ),
        max_size=6,
    ),
)
def test_fast_encoder_equals_protobuf_serialization(seed, counters, iterator_data, ops):
    data = ckpt.CheckpointData(
        library_version="0.1.0",
        fingerprint=bytes(range(16)),
        batch_size=8,
        seed=seed,
        iteration=counters[0],
        epoch=counters[1],
        iteration_in_epoch=counters[2],
        operators=tuple(ckpt.OperatorRecord(n, t, d, a, s, h) for n, t, d, a, (h, s) in ops),
        iterator_data=iterator_data,
    )
    blob = ckpt.encode(data)
    assert blob == reference_encoding(data)
    assert ckpt.decode(blob) == data


def test_iterator_data_travels_with_the_checkpoint(good):
    p = four_random()
    p.run()
    blob = p.checkpoint(iterator_data='{"epoch": 3}')
    assert four_random(checkpoint=blob).iterator_data == '{"epoch": 3}'
    assert four_random(checkpoint=good).iterator_data is None
    assert four_random().iterator_data is None

from __future__ import annotations

import json
import os
import uuid
import zlib

import pytest
from _io_helpers import make_checkpoint, step_of

from pipestate.errors import CorruptCheckpointError
from pipestate.io import AsyncCheckpointIO, Checkpointer

fsspec = pytest.importorskip("fsspec", reason="FsspecCheckpointIO needs the optional fsspec extra")

from pipestate.io.fsspec_ import MARKER_SUFFIX, FsspecCheckpointIO  # noqa: E402


@pytest.fixture
def mem_root():
    root = f"memory://pipestate-test-{uuid.uuid4().hex}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_import_pipestate_does_not_import_fsspec():
    import subprocess
    import sys

    code = "import sys, pipestate, pipestate.io; print('fsspec' in sys.modules, 's3fs' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert out.stdout.split() == ["False", "False"]


def test_memory_roundtrip_writes_marker_last(mem_root):
    io = FsspecCheckpointIO()
    url = f"{mem_root}/ck.pscpt"
    blob = make_checkpoint(4, pad=100)
    io.save_checkpoint(blob, url)
    fs = fsspec.filesystem("memory")
    assert fs.cat_file(url) == blob  # stored verbatim
    marker = json.loads(fs.cat_file(url + MARKER_SUFFIX))
    assert marker["size"] == len(blob)
    assert io.load_checkpoint(url) == blob
    assert io.list_dir(mem_root) == ["ck.pscpt"]
    io.remove_checkpoint(url)
    assert not fs.exists(url) and not fs.exists(url + MARKER_SUFFIX)
    io.remove_checkpoint(url)  # missing is fine


def test_data_without_marker_is_invisible(mem_root):
    fs = fsspec.filesystem("memory")
    io = FsspecCheckpointIO()
    fs.pipe_file(f"{mem_root}/half.pscpt", make_checkpoint(1))  # an interrupted save: no marker
    with pytest.raises(FileNotFoundError, match="commit marker"):
        io.load_checkpoint(f"{mem_root}/half.pscpt")
    assert io.list_dir(mem_root) == []


def test_data_not_matching_marker_is_corrupt(mem_root):
    fs = fsspec.filesystem("memory")
    io = FsspecCheckpointIO()
    url = f"{mem_root}/ck.pscpt"
    io.save_checkpoint(make_checkpoint(1), url)
    fs.pipe_file(url, make_checkpoint(2, pad=10))  # overwritten behind the marker's back
    with pytest.raises(CorruptCheckpointError, match="does not match its commit marker"):
        io.load_checkpoint(url)
    fs.pipe_file(url + MARKER_SUFFIX, b"{not json")
    with pytest.raises(CorruptCheckpointError, match="marker is damaged"):
        io.load_checkpoint(url)


def test_marker_validates_checkpoint_content(mem_root):
    fs = fsspec.filesystem("memory")
    io = FsspecCheckpointIO()
    junk = b"committed, but not a checkpoint"
    with pytest.raises(CorruptCheckpointError, match="refusing to save .*nothing was written"):
        io.save_checkpoint(junk, f"{mem_root}/x")  # what a load would refuse is not saved
    assert not fs.exists(f"{mem_root}/x") and not fs.exists(f"{mem_root}/x" + MARKER_SUFFIX)
    # another writer committed junk with a matching marker: the load still refuses it
    fs.pipe_file(f"{mem_root}/x", junk)
    fs.pipe_file(
        f"{mem_root}/x" + MARKER_SUFFIX,
        json.dumps(
            {"kind": "pipestate-checkpoint-commit", "version": 1, "size": len(junk), "crc32": zlib.crc32(junk)}
        ).encode(),
    )
    with pytest.raises(CorruptCheckpointError, match="not a pipestate checkpoint|does not parse"):
        io.load_checkpoint(f"{mem_root}/x")


def test_failed_save_leaves_checkpoint_invisible(mem_root, monkeypatch):
    io = FsspecCheckpointIO()
    ckpt = Checkpointer(mem_root, checkpoint_io=io)
    ckpt.save(make_checkpoint(1), 1)
    fs = fsspec.filesystem("memory")

    real_pipe_file = type(fs).pipe_file
    data_landed = []

    def fail(self, path, *args, **kwargs):
        if path.endswith(MARKER_SUFFIX):  # the marker write fails, after the data landed
            data_landed.append(fs.exists(ckpt.path_for(2)))
            raise OSError(28, "No space left on device")
        return real_pipe_file(self, path, *args, **kwargs)

    monkeypatch.setattr(type(fs), "pipe_file", fail)
    with pytest.raises(OSError) as info:
        ckpt.save(make_checkpoint(2), 2)
    monkeypatch.undo()
    assert info.value.errno == 28 and "checkpoint-000000000002.pscpt" in str(info.value)
    assert data_landed == [True]
    assert ckpt.steps() == [1]  # without its marker it does not exist ...
    assert fs.ls(mem_root, detail=False) == [
        ckpt.path_for(1)[len("memory:/") :],
        ckpt.path_for(1)[len("memory:/") :] + MARKER_SUFFIX,
    ]  # ... and its data and intent were deleted
    assert step_of(ckpt.load_latest()) == 1


def test_checkpointer_on_memory_url_defaults_to_fsspec(mem_root):
    ckpt = Checkpointer(mem_root + "/", keep_last=2)
    assert isinstance(ckpt.checkpoint_io, FsspecCheckpointIO)
    for s in range(5):
        ckpt.save(make_checkpoint(s), s)
    assert ckpt.steps() == [3, 4]
    assert ckpt.latest() == f"{mem_root}/checkpoint-000000000004.pscpt"
    fs = fsspec.filesystem("memory")
    fs.rm_file(ckpt.path_for(4) + MARKER_SUFFIX)  # newest loses its marker: fall back
    assert step_of(ckpt.load_latest()) == 3


def test_file_url_uses_atomic_rename(tmp_path):
    io = FsspecCheckpointIO()
    url = f"file://{tmp_path}/sub/ck.pscpt"
    io.save_checkpoint(make_checkpoint(7), url)
    assert os.listdir(tmp_path / "sub") == ["ck.pscpt"]  # no marker: rename is atomic here
    assert step_of(io.load_checkpoint(url)) == 7
    assert io.list_dir(f"file://{tmp_path}/sub") == ["ck.pscpt"]
    marker_io = FsspecCheckpointIO(commit="marker")
    marker_io.save_checkpoint(make_checkpoint(8), str(tmp_path / "m.pscpt"))
    assert (tmp_path / ("m.pscpt" + MARKER_SUFFIX)).exists()
    with pytest.raises(ValueError, match="commit='rename' needs a local filesystem"):
        FsspecCheckpointIO(commit="rename").save_checkpoint(make_checkpoint(), "memory://x/y")
    with pytest.raises(ValueError, match="commit must be"):
        FsspecCheckpointIO(commit="sometimes")


def test_async_over_fsspec(mem_root):
    with AsyncCheckpointIO(FsspecCheckpointIO()) as io:
        ckpt = Checkpointer(mem_root, keep_last=1, checkpoint_io=io)
        for s in range(4):
            ckpt.save(make_checkpoint(s), s)
        ckpt.wait()
        assert ckpt.steps() == [3]


# ---- S3, against a moto server on 127.0.0.1 ---------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint():
    pytest.importorskip("s3fs", reason="S3 tests need s3fs (pipestate[s3])")
    pytest.importorskip("boto3", reason="S3 tests need boto3")
    server_mod = pytest.importorskip("moto.server", reason="S3 tests need moto[server]")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    import boto3

    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    bucket = f"bucket-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    options = {"key": "testing", "secret": "testing", "endpoint_url": s3_endpoint, "skip_instance_cache": True}
    return client, bucket, options


def test_s3_roundtrip_and_marker(s3):
    client, bucket, options = s3
    io = FsspecCheckpointIO(storage_options=options)
    url = f"s3://{bucket}/run/ck.pscpt"
    blob = make_checkpoint(5, pad=2000)
    io.save_checkpoint(blob, url)
    assert client.get_object(Bucket=bucket, Key="run/ck.pscpt")["Body"].read() == blob
    marker = json.loads(client.get_object(Bucket=bucket, Key="run/ck.pscpt.commit")["Body"].read())
    assert marker["size"] == len(blob)
    assert io.load_checkpoint(url) == blob
    io.remove_checkpoint(url)
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_s3_checkpointer_latest_ignores_uncommitted(s3):
    client, bucket, options = s3
    ckpt = Checkpointer(f"s3://{bucket}/run", keep_last=2, checkpoint_io=FsspecCheckpointIO(storage_options=options))
    for s in range(4):
        ckpt.save(make_checkpoint(s), s)
    assert ckpt.steps() == [2, 3]
    # another writer died after its data PUT, before its marker: invisible
    client.put_object(Bucket=bucket, Key="run/checkpoint-000000000009.pscpt", Body=make_checkpoint(9))
    # a committed but damaged checkpoint: skipped
    blob = make_checkpoint(8)
    FsspecCheckpointIO(storage_options=options).save_checkpoint(
        blob, f"s3://{bucket}/run/checkpoint-000000000008.pscpt"
    )
    client.put_object(Bucket=bucket, Key="run/checkpoint-000000000008.pscpt", Body=blob[:-3])
    fresh = Checkpointer(f"s3://{bucket}/run", checkpoint_io=FsspecCheckpointIO(storage_options=options))
    assert fresh.steps() == [2, 3, 8]
    assert fresh.latest() == f"s3://{bucket}/run/checkpoint-000000000003.pscpt"
    assert step_of(fresh.load_latest()) == 3


def test_s3_interrupted_save_is_cleaned_by_the_next_save(s3):
    import subprocess
    import sys
    import time

    from pipestate.io.fsspec_ import PENDING_SUFFIX
    from pipestate.io.local import _HOST

    client, bucket, options = s3
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    intent = {"kind": "pipestate-checkpoint-pending", "version": 1, "host": _HOST, "pid": dead.pid, "time": time.time()}
    key = "run/checkpoint-000000000005.pscpt"
    client.put_object(Bucket=bucket, Key=key + PENDING_SUFFIX, Body=json.dumps(intent).encode())
    client.put_object(Bucket=bucket, Key=key, Body=b"half an upload")
    ckpt = Checkpointer(f"s3://{bucket}/run", checkpoint_io=FsspecCheckpointIO(storage_options=options))
    ckpt.save(make_checkpoint(6), 6)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["run/checkpoint-000000000006.pscpt", "run/checkpoint-000000000006.pscpt" + MARKER_SUFFIX]

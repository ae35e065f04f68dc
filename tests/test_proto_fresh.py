"""The generated protobuf code under pipestate/_proto matches proto/ (regenerate: python tools/gen_proto.py)."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_generated_code_is_fresh(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (a test dependency) is not installed")
    # In a subprocess: protoc's C++ and TensorFlow's (loaded by other tests) cannot share a process.
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_proto.py"), str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    generated = [tmp_path / line for line in result.stdout.split()]
    assert generated
    for path in generated:
        committed = ROOT / "pipestate" / "_proto" / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run python tools/gen_proto.py"
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run python tools/gen_proto.py"

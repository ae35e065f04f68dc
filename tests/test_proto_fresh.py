"""The generated protobuf code under pipestate/_proto matches proto/ (regenerate: python tools/gen_proto.py)."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_generated_code_is_fresh(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (a test dependency) is not installed")
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "tools" / "gen_proto.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    generated = gen.generate(tmp_path)
    assert generated
    for path in generated:
        committed = ROOT / "pipestate" / "_proto" / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run python tools/gen_proto.py"
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run python tools/gen_proto.py"

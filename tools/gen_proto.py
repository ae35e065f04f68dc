"""Regenerate pipestate/_proto from proto/ (run: python tools/gen_proto.py [OUT_DIR]).

The generated modules are committed; tests/test_proto_fresh.py fails when they are stale.
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "pipestate" / "_proto"


def generate(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Run protoc (from grpcio-tools) over every .proto under proto/ into out_dir."""
    from grpc_tools import protoc

    sources = sorted(PROTO_DIR.rglob("*.proto"))
    args = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out_dir}", f"--pyi_out={out_dir}"]
    args += [str(p) for p in sources]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    generated = sorted(p for p in out_dir.rglob("*_pb2.py*"))
    for path in generated:
        # Generated code imports sibling protos as top-level packages; make those imports package-relative.
        text = path.read_text()
        for package in ("v1", "v2"):
            text = text.replace(f"from pipestate.{package} import", f"from pipestate._proto.pipestate.{package} import")
        path.write_text(text)
    return generated


if __name__ == "__main__":
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR
    for p in generate(out):
        print(p.relative_to(out))

"""docs/operators.md is generated from the operator schemas and kept fresh."""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import gen_operator_reference  # noqa: E402


def test_operator_reference_is_fresh():
    committed = (ROOT / "docs" / "operators.md").read_text()
    stale = "docs/operators.md is stale: python tools/gen_operator_reference.py"
    assert committed == gen_operator_reference.render(), stale


def test_reference_lists_every_operator():
    from pipestate.operators import REGISTRY

    text = gen_operator_reference.render()
    for op_type in REGISTRY:
        if op_type not in ("arithmetic", "tensor_subscript"):
            assert f"## fn.{op_type}\n" in text

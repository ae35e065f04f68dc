"""docs/operators.md is generated from the operator schemas and kept fresh."""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import gen_operator_reference  # noqa: E402


def test_operator_reference_and_tables_are_fresh():
    for path, text in gen_operator_reference.rendered_pages().items():
        stale = f"{path.relative_to(ROOT)} is stale: python tools/gen_operator_reference.py"
        assert path.read_text() == text, stale


def test_reference_and_tables_list_every_operator():
    from pipestate.operators import REGISTRY

    text = gen_operator_reference.render()
    migration = gen_operator_reference.migration_table()
    guide = gen_operator_reference.user_guide_table()
    for op_type, cls in REGISTRY.items():
        if not cls.internal:
            assert f"## fn.{op_type}\n" in text
        if not cls.internal and not op_type.startswith("_"):
            assert f"`fn.{op_type}`" in migration and f"`fn.{op_type}`" in guide


def test_a_table_without_markers_is_an_error():
    import pytest

    with pytest.raises(ValueError, match="no <!-- BEGIN GENERATED operators -->"):
        gen_operator_reference.with_section("no markers here", "| t |", "docs/x.md")


def test_dali_ported_readme_lists_no_operator_pipestate_has():
    """The README's lists of DALI tests left out for missing operators must shrink as operators land."""
    import re

    from pipestate.operators import REGISTRY

    readme = (ROOT / "tests" / "dali_ported" / "README.md").read_text()
    section = readme.split("## Not ported", 1)[1]
    missing = [m for m in re.findall(r"operators? pipestate lacks \(([^)]*)\)", section)]
    names = {n.strip().strip("`") for group in missing for n in group.split(",")}
    present = sorted(n for n in names if n.removeprefix("fn.") in REGISTRY)
    assert not present, f"tests/dali_ported/README.md says pipestate lacks {present}: port their DALI tests"

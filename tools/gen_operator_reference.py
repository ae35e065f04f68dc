"""Generate docs/operators.md and the operator tables of the user guide and the migration guide from the
operator registry (run: python tools/gen_operator_reference.py).

The tables sit between ``<!-- BEGIN GENERATED operators -->`` and ``<!-- END GENERATED operators -->`` in
their pages. tests/operators/test_operator_reference.py fails when anything committed is stale.
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "operators.md"


def render() -> str:
    """The operator reference as markdown, one section per ``fn`` operator, from the registry."""
    sys.path.insert(0, str(ROOT))
    from pipestate.operators import REGISTRY
    from pipestate.operators.schema import REQUIRED, first_paragraph

    lines = [
        "# Operator reference",
        "",
        "Generated from the operator schemas by `python tools/gen_operator_reference.py`; do not edit.",
        "Every operator also takes `name=` (its stable name in checkpoints). Arguments marked *per sample*",
        "accept a DataNode giving one value per sample.",
        "",
    ]
    for op_type, cls in sorted(REGISTRY.items()):
        if cls.internal:
            continue
        state = "stateful (checkpointed)" if cls.stateful else "stateless"
        lines += [f"## fn.{op_type}", "", " ".join(first_paragraph(cls.__doc__).split()), "", f"*{state}*", ""]
        inputs = getattr(cls, "INPUTS", ())
        if inputs:
            lines += ["| input | accepts | |", "|---|---|---|"]
            for spec in inputs:
                optional = " (optional)" if spec.optional else ""
                lines.append(f"| `{spec.name}` | {spec.text} | {spec.doc}{optional} |")
            lines.append("")
        lines += ["| argument | accepts | default | |", "|---|---|---|---|"]
        for arg in cls.SCHEMA:
            default = "required" if arg.default is REQUIRED else f"`{arg.default!r}`"
            notes = ", ".join(n for n, on in (("per sample", arg.tensor), ("positional", arg.positional)) if on)
            doc = arg.doc.replace("|", "\\|")
            lines.append(f"| `{arg.name}` | {arg.kind.text} | {default} | {doc}{' (' + notes + ')' if notes else ''} |")
        lines.append("")
    return "\n".join(lines)


BEGIN, END = "<!-- BEGIN GENERATED operators -->", "<!-- END GENERATED operators -->"


def _public() -> dict:
    sys.path.insert(0, str(ROOT))
    from pipestate.operators import REGISTRY

    return {t: c for t, c in sorted(REGISTRY.items()) if not c.internal and not t.startswith("_")}


def _families() -> dict[str, list[str]]:
    families: dict[str, list[str]] = {}
    for op_type in _public():
        family = op_type.rsplit(".", 1)[0] if "." in op_type else "(top level)"
        families.setdefault(family, []).append(f"`fn.{op_type}`")
    return families


def migration_table() -> str:
    """The migration guide's table of the operators pipestate has, by family."""
    lines = ["| family | operators pipestate has (same names and arguments as DALI) |", "|---|---|"]
    lines += [f"| {family} | {', '.join(ops)} |" for family, ops in _families().items()]
    return "\n".join(lines)


def user_guide_table() -> str:
    """The user guide's table: every operator and the first sentence of its description."""
    from pipestate.operators.schema import first_paragraph

    lines = ["| operator | what it does |", "|---|---|"]
    for op_type, cls in _public().items():
        summary = " ".join(first_paragraph(cls.__doc__).split()).split(". ")[0].rstrip(".").replace("|", "\\|")
        lines.append(f"| [`fn.{op_type}`](operators.md#fn{op_type.replace('.', '').replace('_', '_')}) | {summary} |")
    return "\n".join(lines)


SECTIONS = {"docs/migrating-from-dali.md": migration_table, "docs/user-guide.md": user_guide_table}


def with_section(text: str, table: str, path: str) -> str:
    """``text`` with the generated section replaced by ``table``.

    Raises:
        ValueError: the page has no generated section markers.
    """
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{path} has no {BEGIN} ... {END} section")
    return text[: start + len(BEGIN)] + "\n" + table + "\n" + text[end:]


def rendered_pages() -> dict[pathlib.Path, str]:
    """Every generated file and page, as it should be committed."""
    pages = {OUT: render()}
    for path, table in SECTIONS.items():
        page = ROOT / path
        pages[page] = with_section(page.read_text(), table(), path)
    return pages


if __name__ == "__main__":
    for path, text in rendered_pages().items():
        path.write_text(text)
        print(path.relative_to(ROOT))

"""Generate docs/operators.md from the operator schemas (run: python tools/gen_operator_reference.py).

tests/operators/test_operator_reference.py fails when the committed reference is stale.
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
        if op_type in ("arithmetic", "tensor_subscript"):
            continue
        state = "stateful (checkpointed)" if cls.stateful else "stateless"
        lines += [f"## fn.{op_type}", "", " ".join(first_paragraph(cls.__doc__).split()), "", f"*{state}*", ""]
        lines += ["| argument | accepts | default | |", "|---|---|---|---|"]
        for arg in cls.SCHEMA:
            default = "required" if arg.default is REQUIRED else f"`{arg.default!r}`"
            notes = ", ".join(n for n, on in (("per sample", arg.tensor), ("positional", arg.positional)) if on)
            doc = arg.doc.replace("|", "\\|")
            lines.append(f"| `{arg.name}` | {arg.kind.text} | {default} | {doc}{' (' + notes + ')' if notes else ''} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    OUT.write_text(render())
    print(OUT.relative_to(ROOT))

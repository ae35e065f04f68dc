"""Extract the code blocks of the Markdown documentation, and run one page's blocks (as a script).

Conventions (documented in docs/development.md, "Documentation snippets"):

- A fenced block's info string starts with its language. ``python``/``py`` blocks run in one Python
  process per page, in document order, sharing one namespace; ``bash``/``sh``/``shell`` blocks run with
  bash in the same temporary working directory. Blocks in any other language (``text``, ``json``,
  ``proto``...) are data and are not run; a block without a language is an error.
- ``no-run`` after the language marks a block that is deliberately not run (install commands,
  placeholders that need a cluster or a cloud account).
- ``xfail`` marks a block expected to fail until a missing feature lands; it must raise (strict).
- ``raises=Name`` marks a block that shows an error: it must raise an exception with ``Name`` among
  its classes (the troubleshooting page), and passes only if it does.
- ``requires=mod1,mod2`` names modules the block needs; the top-level modules a Python block imports
  are detected too. A block whose module is missing is skipped with the reason.
- ``<!-- snippet-setup ... -->`` is a hidden Python block (invisible on the rendered page) that runs at
  its place in the page: the smallest setup the visible blocks need (e.g. a dataset on disk).

Run as ``python _docs_snippets.py PAGE.md RESULTS.json`` in the working directory the blocks should use.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import sys
import traceback

PYTHON = {"python", "py"}
SHELL = {"bash", "sh", "shell"}

# Importing these pipestate modules needs a framework that pipestate itself does not depend on.
PLUGIN_REQUIRES = {
    "pipestate.plugin.tf": "tensorflow",
    "pipestate.plugin.pytorch": "torch",
    "pipestate.plugin.jax": "jax",
    "pipestate.plugin.lightning": "pytorch_lightning",
}

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
_SETUP = re.compile(r"^<!--\s*snippet-setup\s*$")


@dataclasses.dataclass
class Block:
    """One code block of a page."""

    line: int  # 1-based line of the first code line
    lang: str
    flags: tuple[str, ...]
    code: str
    hidden: bool = False

    @property
    def kind(self) -> str:
        """``python``, ``shell`` or ``data``."""
        if self.lang in PYTHON:
            return "python"
        if self.lang in SHELL:
            return "shell"
        return "data"

    @property
    def no_run(self) -> bool:
        return "no-run" in self.flags

    @property
    def xfail(self) -> bool:
        return "xfail" in self.flags

    @property
    def raises(self) -> str | None:
        """The exception class name a ``raises=`` block must raise."""
        return next((f[7:] for f in self.flags if f.startswith("raises=")), None)

    def requires(self) -> list[str]:
        """The modules this block needs: ``requires=`` plus what a Python block imports."""
        needed = [m for f in self.flags if f.startswith("requires=") for m in f[9:].split(",") if m]
        if self.kind == "python":
            try:
                tree = ast.parse(self.code)
            except SyntaxError:
                return needed
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    for plugin, framework in PLUGIN_REQUIRES.items():
                        if name == plugin or name.startswith(plugin + "."):
                            needed.append(framework)
                    needed.append(name.split(".")[0])
        return list(dict.fromkeys(needed))


def extract(text: str) -> list[Block]:
    """Return every fenced code block and hidden setup block of a Markdown text, in order."""
    lines = text.split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m:
            fence, info = m["fence"], m["info"].strip().split()
            end = i + 1
            while end < len(lines) and not lines[end].lstrip().startswith(fence):
                end += 1
            code = "\n".join(line[len(m["indent"]) :] for line in lines[i + 1 : end])
            lang = info[0].lower() if info else ""
            blocks.append(Block(i + 2, lang, tuple(info[1:]), code + "\n"))
            i = end + 1
            continue
        if _SETUP.match(lines[i].strip()):
            end = i + 1
            while end < len(lines) and lines[end].strip() != "-->":
                end += 1
            blocks.append(Block(i + 2, "python", (), "\n".join(lines[i + 1 : end]) + "\n", hidden=True))
            i = end + 1
            continue
        i += 1
    return blocks


def missing_modules(block: Block) -> list[str]:
    """The modules a block needs that are not installed."""
    missing = []
    for name in block.requires():
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def run_page(page: str) -> list[dict]:
    """Run a page's runnable blocks in order; return one result per block."""
    with open(page, encoding="utf-8") as f:
        blocks = extract(f.read())
    namespace: dict = {"__name__": "__main__"}
    results = []
    for block in blocks:
        result = {"line": block.line, "lang": block.lang, "flags": list(block.flags), "hidden": block.hidden}
        results.append(result)
        if block.kind == "data" or block.no_run:
            result["status"] = "not-run"
            continue
        missing = missing_modules(block)
        if missing:
            result["status"], result["detail"] = "skipped", f"needs {', '.join(missing)}"
            continue
        try:
            if block.kind == "python":
                code = compile("\n" * (block.line - 1) + block.code, page, "exec")
                exec(code, namespace)  # noqa: S102 - running the documentation is the point
            else:
                proc = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", block.code], capture_output=True, text=True, timeout=120
                )
                if proc.returncode:
                    raise RuntimeError(f"exit status {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
            if block.raises:
                result["status"], result["detail"] = "error", f"did not raise {block.raises}"
            else:
                result["status"] = "ok"
        except BaseException as exc:  # noqa: BLE001 - every failure is reported, with its traceback
            if block.raises and block.raises in {cls.__name__ for cls in type(exc).__mro__}:
                result["status"], result["detail"] = "ok", f"{type(exc).__name__}: {exc}"
            else:
                result["status"], result["detail"] = "error", traceback.format_exc(limit=-8)
    return results


if __name__ == "__main__":
    page_path, out_path = sys.argv[1:3]
    page_results = run_page(page_path)
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump(page_results, out)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # do not wait for threads a snippet left behind (the results are written)

"""Every code block of README.md and docs/*.md runs (see tests/_docs_snippets.py for the conventions).

One subprocess per page (blocks of a page share a namespace and a temporary working directory); new
pages are picked up automatically.
"""

from __future__ import annotations

import json
import os
import pathlib
import stat
import subprocess
import sys

import pytest

from tests import _docs_snippets as snippets

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


def _page_id(page: pathlib.Path) -> str:
    return str(page.relative_to(ROOT))


def _has_runnable_block(page: pathlib.Path) -> bool:
    return any(b.kind != "data" and not b.no_run for b in snippets.extract(page.read_text(encoding="utf-8")))


RUNNABLE = [page for page in PAGES if _has_runnable_block(page)]


def test_pages_are_discovered():
    names = {_page_id(p) for p in PAGES}
    assert {"README.md", "docs/user-guide.md", "docs/storage.md"} <= names
    assert {"README.md", "docs/troubleshooting.md"} <= {_page_id(p) for p in RUNNABLE}


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_blocks_are_marked(page):
    """Every block has a language; a no-run or xfail block is code (data blocks are never run anyway)."""
    for block in snippets.extract(page.read_text(encoding="utf-8")):
        where = f"{_page_id(page)}:{block.line}"
        assert block.lang, f"{where}: give the block a language (`text` for output, `python`, `bash`...)"
        if block.no_run or block.xfail:
            assert block.kind != "data", f"{where}: only code blocks can be marked no-run/xfail"
            assert not (block.no_run and block.xfail), f"{where}: no-run and xfail together"
        flags = [f for f in block.flags if f not in ("no-run", "xfail")]
        unknown = [f for f in flags if not f.startswith(("requires=", "raises="))]
        assert not unknown, f"{where}: unknown snippet flags {unknown}"


def _shim_bin(tmp_path: pathlib.Path) -> str:
    """A ``pipestate`` command running this checkout (the installed one may be another copy)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "pipestate"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pipestate.cli "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return str(bindir)


@pytest.mark.parametrize("page", RUNNABLE, ids=_page_id)
def test_page_snippets_run(page, tmp_path):
    blocks = snippets.extract(page.read_text(encoding="utf-8"))
    workdir, results_file = tmp_path / "work", tmp_path / "results.json"
    workdir.mkdir()
    path = [_shim_bin(tmp_path), os.path.dirname(sys.executable), os.environ.get("PATH", "")]
    pythonpath = [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath), PATH=os.pathsep.join(path), MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "_docs_snippets.py"), str(page), str(results_file)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0 and results_file.exists(), f"the runner failed:\n{proc.stdout}\n{proc.stderr}"
    results = json.loads(results_file.read_text())
    assert len(results) == len(blocks)

    failures, skipped = [], []
    for block, result in zip(blocks, results):
        where = f"{_page_id(page)}:{block.line} ({block.lang}{' ' + ' '.join(block.flags) if block.flags else ''})"
        status = result["status"]
        if block.kind == "data" or block.no_run:
            assert status == "not-run", where
        elif status == "skipped":
            skipped.append(f"{where}: {result['detail']}")
        elif block.xfail and status == "ok":
            failures.append(f"{where}: marked xfail but ran: remove the marker")
        elif not block.xfail and status != "ok":
            failures.append(f"{where} failed:\n{result.get('detail', '')}")
    assert not failures, "\n\n".join(failures)
    if skipped:
        pytest.skip("; ".join(skipped))


def test_extract_conventions():
    text = (
        "```python\nx = 1\n```\n"
        "<!-- snippet-setup\ny = 2\n-->\n"
        "```bash no-run\npip install x\n```\n"
        "```python xfail requires=torch raises=KeyError\n"
        "import jax\nfrom pipestate.plugin.tf import PipelineDataset\n```\n"
        "````text\n```\n````\n"
    )
    blocks = snippets.extract(text)
    assert [(b.line, b.kind, b.hidden, b.no_run, b.xfail) for b in blocks] == [
        (2, "python", False, False, False),
        (5, "python", True, False, False),
        (8, "shell", False, True, False),
        (11, "python", False, False, True),
        (15, "data", False, False, False),
    ]
    assert blocks[3].requires() == ["torch", "jax", "tensorflow", "pipestate"]
    assert blocks[3].raises == "KeyError" and blocks[0].raises is None
    assert blocks[4].code == "```\n"

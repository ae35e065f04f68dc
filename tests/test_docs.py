"""The documentation stays true to the repository: links resolve inside it, every dependency in
pyproject.toml is explained, and the API reference is the one the generator writes."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

_LINK = re.compile(r"\]\(([^)\s]+)\)")
_CODE_PATH = re.compile(r"`(\.\.?/[^`\s]+)`")  # a path in backticks that starts with ./ or ../
_FENCED = re.compile(r"^(`{3,}|~{3,}).*?^\1", re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: pathlib.Path) -> set[str]:
    text = _FENCED.sub("", page.read_text(encoding="utf-8"))
    return {_slug(m[1]) for m in re.finditer(r"^#{1,6}\s+(.*)$", text, re.M)}


def _targets(page: pathlib.Path) -> list[str]:
    text = _FENCED.sub("", page.read_text(encoding="utf-8"))
    return _LINK.findall(text) + _CODE_PATH.findall(text)


def test_relative_links_resolve_inside_the_repository():
    bad = []
    for page in PAGES:
        for target in _targets(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: {target}"
            if not resolved.is_relative_to(ROOT):
                bad.append(f"{where} points outside the repository")
            elif not resolved.exists():
                bad.append(f"{where} does not exist")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                bad.append(f"{where}: no heading with that anchor")
    assert not bad, "\n".join(bad)


def test_link_checker_catches_bad_links(tmp_path):
    page = ROOT / "docs" / "user-guide.md"
    assert "readers.md" in _targets(page)
    assert _slug("Checkpoint storage (issue 5)") == "checkpoint-storage-issue-5"
    assert _slug("`fn.readers.file`") == "fnreadersfile"
    assert _slug("`Checkpointer.save` with `keep_last`") == "checkpointersave-with-keep_last"


def _requirement_names() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return sorted({re.match(r"[A-Za-z0-9._-]+", spec)[0] for spec in specs})


def test_every_dependency_is_explained():
    text = (ROOT / "docs" / "dependencies.md").read_text(encoding="utf-8")
    rows = {m[1].split("[")[0] for m in re.finditer(r"`([^`]+)`", text)}
    names = _requirement_names()
    assert "numpy" in names and "pytest" in names
    missing = [name for name in names if name not in rows]
    assert not missing, f"docs/dependencies.md does not explain {missing}"


def test_api_reference_is_fresh():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_api_reference.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode == 3:
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0, f"docs/api.md is stale: run `python tools/gen_api_reference.py`\n{proc.stdout}"

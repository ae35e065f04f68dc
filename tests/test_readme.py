"""The README starts with the two set-up commands, and .ci/run runs the test command."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash[^\n]*\n(.*?)```", text, re.S)
    assert block and text.index(block.group(0)) < 40, "the README must start with the commands block"
    return block.group(1).strip().splitlines()


def test_readme_starts_with_exactly_two_commands():
    demo, tests = readme_commands()
    assert demo.endswith("pipestate demo")
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    _, tests = readme_commands()
    venv_prefix = "python3 -m venv .venv && . .venv/bin/activate && "
    assert tests.startswith(venv_prefix)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests[len(venv_prefix) :] in ci

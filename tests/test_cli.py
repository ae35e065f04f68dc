import pathlib
import subprocess
import sys

import pytest

from pipestate import checkpoint as ckpt
from pipestate import fn, pipeline_def
from pipestate.cli import main


def test_demo_reports_identical(capsys):
    assert main(["demo", "--iterations", "5"]) == 0
    out = capsys.readouterr().out
    assert "IDENTICAL" in out and "checkpoint() ->" in out


def test_inspect_prints_every_operator(tmp_path, capsys):
    @pipeline_def(batch_size=2, seed=5, enable_checkpointing=True)
    def p():
        return fn.random.uniform(name="u") + fn.external_source(source=lambda i: [i * 1.0] * 2)

    pipe = p()
    pipe.run()
    pipe.checkpoint(tmp_path / "c.pscpt")
    assert main(["inspect", str(tmp_path / "c.pscpt")]) == 0
    out = capsys.readouterr().out
    assert f"format version {ckpt.FORMAT_VERSION}" in out and "seed:          5" in out
    assert "u (random.uniform) digest" in out and "iteration:     1" in out
    assert "external_source_0 (external_source)" in out and "{'epoch': 0, 'iteration': 1}" in out
    assert "arithmetic_0 (arithmetic)" in out and "stateless" in out


def test_inspect_reports_bad_files(tmp_path, capsys):
    (tmp_path / "bad").write_bytes(b"hello")
    assert main(["inspect", str(tmp_path / "bad")]) == 1
    assert "not a pipestate checkpoint" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing")]) == 1


@pytest.mark.timeout(120)
def test_console_entry_point_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "pipestate.cli", "demo", "--iterations", "3"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "IDENTICAL" in result.stdout


def test_inspect_prints_a_format_1_golden(capsys):
    golden = pathlib.Path(__file__).resolve().parent / "golden" / "v1" / "file_reader.cpt"
    assert main(["inspect", str(golden)]) == 0
    out = capsys.readouterr().out
    assert "format version 1" in out and "ReaderState(epoch=1, consumed=13" in out

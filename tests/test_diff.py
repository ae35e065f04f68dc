"""``pipestate diff`` and ``pipestate skip``/``exclude`` (issue 20): what differs between two checkpoints or a
checkpoint and a pipeline, as text and JSON, with the exit status equal / different / unreadable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from pipestate import diff as psdiff
from pipestate import fn, pipeline_def
from pipestate.cli import main
from tests.operators.readers.conftest import make_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A directory with a dataset, a module of pipelines (pipes.py) and a checkpoint of ``pipes:base``."""
    make_files(str(tmp_path / "data"), 12)
    (tmp_path / "pipes.py").write_text(
        textwrap.dedent(
            """
            from pipestate import fn, pipeline_def

            @pipeline_def(batch_size=4, seed=2, enable_checkpointing=True)
            def train(probability=0.5, shuffle=False):
                _, label = fn.readers.file(file_root="data", file_list="data/list.txt", name="reader",
                                           random_shuffle=shuffle)
                return label, fn.random.coin_flip(probability=probability, name="flip")

            def base():
                return train()

            def tuned():
                return train(probability=0.8)

            def shuffled():
                return train(shuffle=True)
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("pipes", None)
    import pipes

    pipe = pipes.base()
    for _ in range(2):
        pipe.run()
    (tmp_path / "a.pscpt").write_bytes(pipe.checkpoint())
    for _ in range(3):
        pipe.run()
    (tmp_path / "b.pscpt").write_bytes(pipe.checkpoint())
    return tmp_path


def test_two_checkpoints_differ_in_position_and_state(project, capsys):
    assert main(["diff", "a.pscpt", "a.pscpt"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("equal")
    assert main(["diff", "a.pscpt", "b.pscpt"]) == 1
    out = capsys.readouterr().out
    assert "iteration: 2 -> 5" in out and "state epoch: 0 -> 1" in out  # 20 samples of 12: epoch 1, sample 8
    assert main(["diff", "a.pscpt", "b.pscpt", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["equal"] is False and report["fields"]["iteration"] == {"a": 2, "b": 5}
    (reader,) = report["operators"]
    assert reader["name"] == "reader" and reader["state"] == {"epoch": {"a": 0, "b": 1}}


def test_edited_checkpoints_show_their_pending_skip_and_exclusion(project, capsys):
    assert main(["skip", "a.pscpt", "s.pscpt", "--batches", "1000000"]) == 0
    assert "iteration 2 -> 1000002; reader 'reader' skips 4000000 samples on restore" in capsys.readouterr().out
    assert main(["exclude", "s.pscpt", "s.pscpt", "3", "5:9", "--reader", "reader"]) == 0
    assert "excludes 5 indices in 2 range(s)" in capsys.readouterr().out
    assert main(["diff", "a.pscpt", "s.pscpt", "--json"]) == 1
    state = json.loads(capsys.readouterr().out)["operators"][0]["state"]
    assert state == {"excluded": {"b": [3, 4, 5, 9]}, "passed": {"b": 0}, "skip": {"b": 4000000}}
    assert main(["skip", "a.pscpt", "t.pscpt", "--samples", "6"]) == 1
    assert "not a whole number of batches of 4" in capsys.readouterr().err
    assert main(["exclude", "a.pscpt", "t.pscpt", "9:3"]) == 1
    assert "not a dataset index or a range" in capsys.readouterr().err
    assert not os.path.exists("t.pscpt")


def test_a_checkpoint_and_a_pipeline(project, capsys):
    assert main(["diff", "a.pscpt", "pipes:base"]) == 0
    assert "restore: restores as it is" in capsys.readouterr().out
    assert main(["diff", "a.pscpt", "pipes:tuned"]) == 1
    out = capsys.readouterr().out
    assert "argument probability: default -> 0.8" in out
    assert "partial_restore=True: restores reader; starts fresh flip" in out
    assert main(["diff", "pipes:shuffled", "a.pscpt", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["operators"][0]["arguments"] == {
        "random_shuffle": {"a": {"set": True, "value": True}, "b": {"set": False}}
    }
    assert not report["restore"]["partial"]["ok"] and "random_shuffle" in report["restore"]["partial"]["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.pscpt", "a.pscpt"], "No such file"),
        (["pipes.py", "a.pscpt"], "not a pipestate checkpoint"),
        (["a.pscpt", "pipes:nothing"], "AttributeError"),
        (["a.pscpt", "nomodule:base"], "ModuleNotFoundError"),
        (["pipes:base", "pipes:tuned"], "not two pipelines"),
    ],
)
def test_unreadable_sides_exit_2(project, capsys, args, message):
    assert main(["diff", *args]) == 2
    assert message in capsys.readouterr().err


def test_format_versions_and_a_pipeline_object():
    golden = os.path.join(ROOT, "tests", "golden")
    with open(os.path.join(golden, "v1", "file_reader.cpt"), "rb") as f:
        v1 = f.read()
    with open(os.path.join(golden, "v2", "file_reader.cpt"), "rb") as f:
        v2 = f.read()
    result = psdiff.diff(v1, v2)
    assert result.report["fields"]["format_version"] == {"a": 1, "b": 2} and not result.equal
    assert "format versions differ" in str(result)

    @pipeline_def(batch_size=2, seed=1, enable_checkpointing=True)
    def tiny(low=0.0):
        return fn.random.uniform(range=[low, 1.0])

    blob = tiny().checkpoint()
    assert psdiff.diff(blob, tiny()).equal
    changed = psdiff.diff(tiny(low=0.5), blob)
    assert not changed.equal and changed.report["restore"]["partial"]["reset"] == ["random.uniform_0"]
    with pytest.raises(TypeError):
        psdiff.diff(blob, 3)


def test_the_console_command(project):
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run(
        [sys.executable, "-m", "pipestate.cli", "diff", "a.pscpt", "b.pscpt"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 1 and "different" in done.stdout

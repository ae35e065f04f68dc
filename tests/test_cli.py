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


def _iterator_pipe():
    @pipeline_def(batch_size=2, seed=5, enable_checkpointing=True)
    def p():
        return fn.random.uniform(name="u")

    return p


def _numpy_iterator(pipe, **kwargs):
    import warnings

    from pipestate.plugin.base_iterator import BaseIterator, LastBatchPolicy

    class NumpyIterator(BaseIterator):
        def _convert(self, outputs):
            return outputs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "prefer reader_name to size"
        return NumpyIterator(pipe, size=7, last_batch_policy=LastBatchPolicy.PARTIAL, **kwargs)


def test_version(capsys):
    import pipestate

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"pipestate {pipestate.__version__}"


def test_inspect_json_and_iterator_counters(tmp_path, capsys):
    import json

    it = _numpy_iterator(_iterator_pipe()())
    next(it)
    next(it)
    (tmp_path / "it.pscpt").write_bytes(it.checkpoints()[0])
    assert main(["inspect", str(tmp_path / "it.pscpt")]) == 0
    text = capsys.readouterr().out
    assert "iterator:      counter=4, size=7" in text and "last_batch_policy=PARTIAL" in text
    assert main(["inspect", "--json", str(tmp_path / "it.pscpt")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "checkpoint" and info["iteration"] == 2 and info["seed"] == 5
    assert info["iterator"]["counter"] == 4 and info["iterator"]["last_batch_policy"] == 2  # PARTIAL
    assert info["operators"][0]["name"] == "u" and info["operators"][0]["stateful"] is False


def test_inspect_a_checkpointer_step_and_a_directory(tmp_path, capsys):
    import json

    from pipestate import Checkpointer

    it = _numpy_iterator(_iterator_pipe()())
    next(it)
    ckpt = Checkpointer(tmp_path, prefix="run")
    ckpt.save({"data": it, "progress": {"epoch": 1}, "blob": b"abc"}, 3)
    ckpt.save({"data": it, "progress": {"epoch": 2}, "blob": b"abc"}, 4)
    with open(ckpt.path_for(4), "r+b") as f:
        f.seek(-2, 2)
        f.write(b"!!")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    assert main(["inspect", ckpt.path_for(3)]) == 0
    text = capsys.readouterr().out
    assert "Checkpointer step 3" in text and "part 'data': iterator" in text and "counter=2, size=7" in text
    assert "part 'progress': data" in text and "{'epoch': 1}" in text and "part 'blob': bytes, 3 bytes" in text
    assert main(["inspect", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "2 checkpoint(s)" in text and "notes.txt" not in text
    lines = [line for line in text.splitlines() if "run-" in line]
    assert "valid" in lines[0] and "3" in lines[0] and "DAMAGED" in lines[1] and "fails its checksum" in lines[1]
    assert main(["inspect", "--json", str(tmp_path)]) == 0
    listing = json.loads(capsys.readouterr().out)["checkpoints"]
    assert [(e["step"], e["valid"]) for e in listing] == [(3, True), (4, False)]


def test_verify_exit_status(tmp_path, capsys):
    from pipestate import Checkpointer

    pipe = _iterator_pipe()()
    ckpt = Checkpointer(tmp_path)
    ckpt.save(pipe, 1)
    assert main(["verify", ckpt.path_for(1)]) == 0
    assert main(["verify", str(tmp_path)]) == 0
    (tmp_path / "checkpoint-000000000002.pscpt").write_bytes(b"\x0dPSST broken")
    assert main(["verify", str(tmp_path / "checkpoint-000000000002.pscpt")]) == 1
    assert main(["verify", str(tmp_path)]) == 1
    assert "1 of 2 checkpoint(s) are damaged" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["verify", str(tmp_path / "empty")]) == 1
    assert main(["verify", str(tmp_path / "missing")]) == 1


def test_inspect_a_lightning_checkpoint_without_unpickling(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    it = _numpy_iterator(_iterator_pipe()())
    next(it)
    torch.save({"epoch": 2, "global_step": 17, "state_dict": {"w": torch.ones(2)},
                "PipelineDataModule": {"iterator": it.state_dict()}}, tmp_path / "epoch=2-step=17.ckpt")
    assert main(["inspect", str(tmp_path / "epoch=2-step=17.ckpt")]) == 0
    text = capsys.readouterr().out
    assert "Lightning checkpoint" in text and "epoch 2, global_step 17, 1 pipestate checkpoint(s)" in text
    assert "PipelineDataModule.iterator.checkpoints[0]:" in text and "counter=2, size=7" in text

    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"x": Evil()}, tmp_path / "evil.ckpt")
    assert main(["inspect", str(tmp_path / "evil.ckpt")]) == 1
    captured = capsys.readouterr()
    assert "weights_only" in captured.err and "executed" not in captured.out
    assert main(["inspect", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "17" in listing and "DAMAGED" in listing  # the evil one

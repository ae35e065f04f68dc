"""Lightning: Trainer.fit(ckpt_path=...) resumes the data exactly mid-epoch; CheckpointIO through pipestate.io."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install pipestate[torch])")
pl = pytest.importorskip("pytorch_lightning", reason="pytorch-lightning is not installed (the test extra has it)")

from pipestate import fn, pipeline_def  # noqa: E402
from pipestate.plugin.lightning import PipelineDataModule, PipestateCheckpointIO  # noqa: E402
from pipestate.plugin.pytorch import DALIGenericIterator  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    os.mkdir(root / "0")
    for i in range(14):
        (root / "0" / f"{i:02}.jpg").write_bytes(np.full(4, i, np.uint8).tobytes())
    return str(root)


def make_iterator(data_dir):
    @pipeline_def(batch_size=3, seed=5, enable_checkpointing=True)
    def pipe():
        data, _ = fn.readers.file(file_root=data_dir, name="Reader", random_shuffle=True, initial_fill=5)
        return fn.cast(data, dtype="float32") + fn.random.uniform(range=[0.0, 0.1])

    return DALIGenericIterator(pipe(), ["x"], reader_name="Reader", auto_reset=True)


class Recorder(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.seen = []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch["x"][:, 0].tolist())
        return self.layer(batch["x"]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(module, datamodule, max_steps, ckpt_path=None, plugins=None):
    trainer = pl.Trainer(
        max_steps=max_steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        plugins=plugins,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer


@pytest.mark.parametrize("stop_at", [3, 5, 7])  # mid-epoch (5 batches per epoch), the epoch end, the next epoch
def test_resume_sees_the_batches_of_an_uninterrupted_run(data_dir, tmp_path, stop_at):
    total = 11
    whole = Recorder()
    fit(whole, PipelineDataModule(lambda: make_iterator(data_dir)), total)

    first = Recorder()
    trainer = fit(first, PipelineDataModule(lambda: make_iterator(data_dir)), stop_at)
    path = str(tmp_path / "stop.ckpt")
    trainer.save_checkpoint(path)
    second = Recorder()
    fit(second, PipelineDataModule(lambda: make_iterator(data_dir)), total, ckpt_path=path)

    assert len(first.seen) == stop_at
    assert first.seen + second.seen == whole.seen

    # control: the same resume without the data position repeats batches, and the check catches it
    class Forgetful(PipelineDataModule):
        def load_state_dict(self, state_dict):
            pass

    third = Recorder()
    fit(third, Forgetful(lambda: make_iterator(data_dir)), total, ckpt_path=path)
    assert first.seen + third.seen != whole.seen


@pytest.mark.parametrize("async_save", [False, True])
def test_checkpoint_io_saves_through_pipestate(data_dir, tmp_path, async_save):
    io_plugin = PipestateCheckpointIO(async_save=async_save)
    module = Recorder()
    trainer = fit(module, PipelineDataModule(lambda: make_iterator(data_dir)), 4, plugins=[io_plugin])
    path = tmp_path / "sub" / "a.ckpt"
    trainer.save_checkpoint(str(path))
    loaded = io_plugin.load_checkpoint(str(path), weights_only=False)
    assert loaded["global_step"] == 4 and "PipelineDataModule" in loaded
    assert [p.name for p in path.parent.iterdir()] == ["a.ckpt"]  # no temp file left behind
    io_plugin.remove_checkpoint(str(path))
    assert not path.exists()
    io_plugin.close()

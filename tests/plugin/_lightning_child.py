"""A realistic Lightning training script for the kill-and-resume tests (run in a subprocess).

``python _lightning_child.py CONFIG_JSON``: trains on 120 files in 4 class folders of different sizes
(batch 16: epochs do not divide into batches) with ``PipelineDataModule``, ``PipestateCheckpointIO`` and
``ModelCheckpoint(every_n_train_steps=...)`` (or ``every_n_epochs=1``), resuming from the newest ``.ckpt``
in the run's directory.
Each training step appends one JSON line (step, epoch, batch index, the batch's labels and first feature)
to ``steps.jsonl``; with ``kill_at`` the process SIGKILLs itself in that step (once the saves already
queued are durable, unless ``settle`` is false: then the resume point depends on the timing). At the end it writes
``final.json``: the counters, the checkpoint file names and the final weights (as hex bytes).
"""

from __future__ import annotations

import glob
import json
import os
import signal
import sys
import warnings

import numpy as np
import pytorch_lightning as pl
import torch

from pipestate import fn, pipeline_def
from pipestate.plugin.lightning import PipelineDataModule, PipestateCheckpointIO
from pipestate.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

CLASS_SIZES = (45, 35, 25, 15)  # 120 files


def write_dataset(root: str) -> str:
    data = os.path.join(root, "data")
    if not os.path.isdir(data):
        for c, n in enumerate(CLASS_SIZES):
            os.makedirs(os.path.join(data, f"c{c}"))
            for i in range(n):
                with open(os.path.join(data, f"c{c}", f"{i:03d}.jpg"), "wb") as f:
                    f.write(np.random.default_rng(100 * c + i).bytes(8))
    return data


def main(config: dict) -> None:
    run = config["run"]
    os.makedirs(run, exist_ok=True)
    data = write_dataset(config["data_root"])
    policy = getattr(LastBatchPolicy, config["policy"])

    @pipeline_def(batch_size=16, num_threads=2, seed=1, enable_checkpointing=True)
    def pipe(shuffle=True):
        x, y = fn.readers.file(file_root=data, random_shuffle=shuffle, name="Reader")
        return fn.cast(x, dtype="float32") / 255.0 + fn.random.uniform(range=[0.0, 0.01]), y

    def train_iterator():
        return DALIGenericIterator(pipe(), ["x", "y"], reader_name="Reader", auto_reset=config["auto_reset"],
                                   last_batch_policy=policy)

    def val_iterator():
        return DALIGenericIterator(pipe(shuffle=False), ["x", "y"], reader_name="Reader",
                                   last_batch_policy=LastBatchPolicy.PARTIAL)

    log = open(os.path.join(run, "steps.jsonl"), "a")

    class Model(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.layer = torch.nn.Linear(8, 4)

        def training_step(self, batch, batch_idx):
            log.write(json.dumps({
                "step": self.global_step, "epoch": self.current_epoch, "batch_idx": batch_idx,
                "y": batch["y"].view(-1).tolist(), "x0": batch["x"][:, 0].tolist(),
            }) + "\n")
            log.flush()
            if self.global_step == config.get("kill_at"):
                if config.get("settle", True):
                    io_plugin.teardown()  # the saves queued so far are durable: a known resume point
                os.kill(os.getpid(), signal.SIGKILL)
            return torch.nn.functional.cross_entropy(self.layer(batch["x"]), batch["y"].long().view(-1))

        def validation_step(self, batch, batch_idx):
            if not self.trainer.sanity_checking:
                log.write(json.dumps({"val_of_epoch": self.current_epoch, "batch_idx": batch_idx,
                                      "y": batch["y"].view(-1).tolist()}) + "\n")
                log.flush()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    ckpt_dir = os.path.join(run, "checkpoints")
    found = glob.glob(os.path.join(ckpt_dir, "*.ckpt"))
    resume = max(found, key=os.path.getmtime) if found else None
    io_plugin = PipestateCheckpointIO(async_save=True)
    # every N steps (saved in on_train_batch_end) or every epoch (saved in on_train_epoch_end)
    saving = {"every_n_epochs": 1} if config["every"] == "epoch" else {"every_n_train_steps": config["every"]}
    trainer = pl.Trainer(
        max_epochs=config["max_epochs"], max_steps=config["max_steps"], plugins=[io_plugin],
        callbacks=[pl.callbacks.ModelCheckpoint(dirpath=ckpt_dir, save_top_k=-1, **saving)],
        logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
        num_sanity_val_steps=2,
    )
    model = Model()
    dm = PipelineDataModule(train_iterator, val_iterator if config.get("validate") else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, datamodule=dm, ckpt_path=resume)
    io_plugin.close()
    final = {
        "resumed_from": os.path.basename(resume) if resume else None,
        "global_step": trainer.global_step,
        "current_epoch": trainer.current_epoch,
        "checkpoints": sorted(os.listdir(ckpt_dir)),
        "weights": {k: v.numpy().tobytes().hex() for k, v in model.state_dict().items()},
    }
    with open(os.path.join(run, "final.json"), "w") as f:
        json.dump(final, f)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))

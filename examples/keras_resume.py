"""Resume ``model.fit`` exactly after an interruption, mid-epoch included (see docs/training-keras.md).

``pipestate.plugin.tf.fit_resumable`` saves model, optimizer, the input pipeline's position and the
progress in one Checkpointer step every ``period`` batches. After an interruption, calling ``train()``
again resumes from the latest step: the model then sees exactly the batches it would have seen without
the interruption, in the same epochs, and the final weights are bit-identical (with
``tf.config.experimental.enable_op_determinism()``).

Run: ``python -m examples.keras_resume /tmp/backup`` (interrupts once, resumes, compares).
"""

from __future__ import annotations

import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from pipestate import Checkpointer, fn, pipeline_def
from pipestate.plugin.tf import PipelineDataset, fit_resumable

BATCH = 8
STEPS_PER_EPOCH = 5


@pipeline_def(batch_size=BATCH, seed=42, enable_checkpointing=True)
def regression():
    """A toy input: features x uniform in [-1, 1), targets normal around 0.5."""
    x = fn.random.uniform(shape=(4,), range=[-1.0, 1.0])
    noise = fn.random.normal(shape=(1,), stddev=0.1)
    return x, noise + 0.5


def train(backup_dir: str, epochs: int = 3, callbacks: list | None = None) -> list:
    """Train (resuming from ``backup_dir`` if it holds a step) and return the final weights.

    Args:
        backup_dir: Where the steps go.
        epochs: Total epochs, counting those done before an interruption.
        callbacks: Extra Keras callbacks (the tests use one that interrupts training).
    """
    keras.utils.set_random_seed(0)  # the same initial weights (and dropout seeds) in every run
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dropout(0.25), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    dataset = PipelineDataset(regression(), (tf.float32, tf.float32), ((BATCH, 4), (BATCH, 1)))
    checkpointer = Checkpointer(backup_dir, period=3, keep_last=2)
    fit_resumable(model, dataset, checkpointer, epochs=epochs, steps_per_epoch=STEPS_PER_EPOCH,
                  callbacks=callbacks, verbose=0)
    dataset.pipeline.close()
    return model.get_weights()


class Interrupt(keras.callbacks.Callback):
    """Raises ``KeyboardInterrupt`` after batch ``batch`` of epoch ``epoch`` (simulates a crash)."""

    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__()
        self.at = (epoch, batch)
        self.current = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.current = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if (self.current, batch) == self.at:
            raise KeyboardInterrupt(f"interrupted in epoch {self.current} after batch {batch}")


def main(backup_root: str) -> bool:
    """Train uninterrupted, then interrupted mid-epoch + resumed; return whether the weights are bit-identical."""
    tf.config.experimental.enable_op_determinism()
    expected = train(f"{backup_root}/uninterrupted")
    try:
        train(f"{backup_root}/resumed", callbacks=[Interrupt(epoch=1, batch=2)])
    except KeyboardInterrupt:
        pass
    resumed = train(f"{backup_root}/resumed")
    return all(np.array_equal(a, b) for a, b in zip(expected, resumed, strict=True))


if __name__ == "__main__":
    ok = main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
    sys.stdout.write("bit-identical\n" if ok else "DIFFERENT\n")
    sys.exit(0 if ok else 1)

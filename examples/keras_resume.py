"""Resume ``model.fit`` exactly after an interruption (see docs/tensorflow.md, "Keras").

Model, optimizer, epoch and the input pipeline's position go into ONE ``tf.train.Checkpoint``, saved
at the end of every epoch by a small callback. After an interruption, ``train()`` restores the latest
checkpoint, builds the pipeline from the saved input state and calls ``fit(initial_epoch=...)``: the
model then sees exactly the batches it would have seen without the interruption, and the final weights
are bit-identical (with ``tf.config.experimental.enable_op_determinism()``).

Run: ``python -m examples.keras_resume /tmp/backup`` (interrupts once, resumes, compares).
"""

from __future__ import annotations

import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from pipestate import fn, pipeline_def
from pipestate.plugin.tf import PipelineDataset

BATCH = 8
STEPS_PER_EPOCH = 4


@pipeline_def(batch_size=BATCH, seed=42, enable_checkpointing=True)
def regression():
    """A toy input: features x uniform in [-1, 1), targets normal around 0.5."""
    x = fn.random.uniform(shape=(4,))
    noise = fn.random.normal(shape=(1,), stddev=0.1)
    return x, noise + 0.5


class InputPosition(tf.train.experimental.PythonState):
    """The pipeline state after the batches the model consumed, as a checkpoint entry."""

    def __init__(self) -> None:
        self.dataset: PipelineDataset | None = None
        self.consumed = 0  # batches the model consumed from ``dataset``
        self.restored: bytes | None = None

    def serialize(self) -> bytes:
        # tf.data may have computed batches ahead; this is the state after the consumed ones.
        return self.dataset.checkpoint_after(self.consumed)

    def deserialize(self, string_value: bytes | tf.Tensor) -> None:
        self.restored = string_value if isinstance(string_value, bytes) else string_value.numpy()


class BackupEveryEpoch(keras.callbacks.Callback):
    """Saves model, optimizer, epoch and input position together at the end of every epoch."""

    def __init__(self, manager: tf.train.CheckpointManager, epoch: tf.Variable, position: InputPosition):
        super().__init__()
        self.manager, self.epoch, self.position = manager, epoch, position

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.position.consumed += self.params["steps"]
        self.epoch.assign(epoch + 1)
        self.manager.save()


def train(backup_dir: str, epochs: int = 3, callbacks: list | None = None, resume_input: bool = True) -> list:
    """Train (resuming from ``backup_dir`` if it holds a backup) and return the final weights.

    Args:
        backup_dir: Where the backups go.
        epochs: Total epochs, counting those done before an interruption.
        callbacks: Extra Keras callbacks (the tests use one that interrupts training).
        resume_input: Restore the input position (``False`` only shows what goes wrong without it).
    """
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.optimizer.build(model.trainable_variables)
    epoch = tf.Variable(0, dtype=tf.int64)
    position = InputPosition()
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch, input=position)
    manager = tf.train.CheckpointManager(checkpoint, backup_dir, max_to_keep=2)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_consumed()
    pipe = regression(checkpoint=position.restored if resume_input else None)
    dataset = PipelineDataset(pipe, (tf.float32, tf.float32), ((BATCH, 4), (BATCH, 1)))
    position.dataset = dataset
    model.fit(
        dataset,
        epochs=epochs,
        initial_epoch=int(epoch.numpy()),
        steps_per_epoch=STEPS_PER_EPOCH,
        callbacks=[BackupEveryEpoch(manager, epoch, position), *(callbacks or [])],
        shuffle=False,
        verbose=0,
    )
    pipe.close()
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
    """Train uninterrupted, then interrupted + resumed; return whether the weights are bit-identical."""
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

"""Training loops for the kill-and-resume tests (run in a subprocess): ``python _loop_child.py CONFIG_JSON``.

``loop`` picks the story: ``torch`` (a plain PyTorch loop with ``Checkpointer`` saving iterator, model,
optimizer, RNG state and counters in one step through ``AsyncCheckpointIO``), ``keras``
(``pipestate.plugin.tf.fit_resumable``) or ``jax`` (a JAX loop saving the iterator and the parameter
pytree). Every run resumes from the newest valid step in ``run``. Each training step appends a JSON line
(step, epoch, a digest of the batch, a digest of the weights after the step) to ``steps.jsonl``; with
``kill_at`` the process SIGKILLs itself in that step, once the saves already queued are durable. At the
end ``final.json`` holds the counters and the final weights (hex bytes).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys

import numpy as np

CLASS_SIZES = (45, 35, 25, 15)  # 120 files in 4 classes of different sizes: batch 16 leaves 8 over


def write_dataset(root: str) -> str:
    data = os.path.join(root, "data")
    if not os.path.isdir(data):
        for c, n in enumerate(CLASS_SIZES):
            os.makedirs(os.path.join(data, f"c{c}"))
            for i in range(n):
                with open(os.path.join(data, f"c{c}", f"{i:03d}.jpg"), "wb") as f:
                    f.write(np.random.default_rng(100 * c + i).bytes(8))
    return data


def digest(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


class Log:
    def __init__(self, run: str, kill_at: int | None, before_kill=None) -> None:
        self.file = open(os.path.join(run, "steps.jsonl"), "a")
        self.kill_at, self.before_kill = kill_at, before_kill

    def step(self, step: int, epoch: int, batch: str, weights: str) -> None:
        self.file.write(json.dumps({"step": step, "epoch": epoch, "batch": batch, "weights": weights}) + "\n")
        self.file.flush()
        if step == self.kill_at:
            if self.before_kill is not None:
                self.before_kill()
            os.kill(os.getpid(), signal.SIGKILL)


def torch_loop(config: dict, data: str, log_factory) -> dict:
    import torch

    from pipestate import Checkpointer, fn, pipeline_def
    from pipestate.io import AsyncCheckpointIO
    from pipestate.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

    @pipeline_def(batch_size=16, num_threads=2, seed=1, enable_checkpointing=True)
    def pipe():
        x, y = fn.readers.file(file_root=data, random_shuffle=True, name="Reader")
        return fn.cast(x, dtype="float32") / 255.0, y

    it = DALIGenericIterator(pipe(), ["x", "y"], reader_name="Reader", auto_reset=True,
                             last_batch_policy=getattr(LastBatchPolicy, config.get("policy", "FILL")))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    io = AsyncCheckpointIO()
    ckpt = Checkpointer(config["run"], period=config["every"], keep_last=2, checkpoint_io=io)
    state = {"data": it, "model": model, "optimizer": opt, "rng": torch.get_rng_state(), "progress": {"epoch": 0}}
    last = ckpt.load_latest(state)
    if last is not None:
        torch.set_rng_state(state["rng"])
    log = log_factory(io.wait)
    step = 0 if last is None else last + 1
    while state["progress"]["epoch"] < config["epochs"]:
        try:
            batch = next(it)[0]
        except StopIteration:  # the end of an epoch; auto_reset starts the next one
            state["progress"]["epoch"] += 1
            continue
        loss = torch.nn.functional.cross_entropy(model(batch["x"]), batch["y"].long().view(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        weights = digest(*(p.detach().numpy() for p in model.parameters()))
        log.step(step, state["progress"]["epoch"], digest(batch["x"].numpy(), batch["y"].numpy()), weights)
        state["rng"] = torch.get_rng_state()
        ckpt.save(state, step)
        step += 1
    ckpt.close()
    io.close()
    return {"steps": step, "epochs": state["progress"]["epoch"],
            "weights": [p.detach().numpy().tobytes().hex() for p in model.parameters()]}


def keras_loop(config: dict, data: str, log_factory) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from pipestate import Checkpointer, fn, pipeline_def
    from pipestate.plugin.tf import PipelineDataset, fit_resumable

    tf.config.experimental.enable_op_determinism()

    @pipeline_def(batch_size=16, num_threads=2, seed=1, enable_checkpointing=True)
    def pipe():
        x, y = fn.readers.file(file_root=data, random_shuffle=True, name="Reader")
        return fn.cast(x, dtype="float32") / 255.0 + fn.random.uniform(range=[0.0, 0.01]), y

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.2), keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dataset = PipelineDataset(pipe(), (tf.float32, tf.int32), ((16, 8), (16, 1)))
    log = log_factory(None)

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            step = int(self.model.optimizer.iterations.numpy()) - 1
            log.step(step, self.epoch, "", digest(*self.model.get_weights()))

    ckpt = Checkpointer(config["run"], period=config["every"], keep_last=2)
    history = fit_resumable(model, dataset, ckpt, epochs=config["epochs"], steps_per_epoch=config["steps_per_epoch"],
                            callbacks=[Record()], verbose=0)
    return {"steps": int(model.optimizer.iterations.numpy()), "last_epoch": history.epoch[-1] if history else None,
            "weights": [w.tobytes().hex() for w in model.get_weights()]}


def jax_loop(config: dict, data: str, log_factory) -> dict:
    import jax
    import jax.numpy as jnp

    from pipestate import Checkpointer, fn
    from pipestate.plugin.jax import data_iterator

    @data_iterator(output_map=["x", "y"], reader_name="Reader", auto_reset=True)
    def iterator_fn():
        x, y = fn.readers.file(file_root=data, random_shuffle=True, name="Reader")
        return fn.cast(x, dtype="float32") / 255.0, y

    it = iterator_fn(batch_size=16, seed=1, enable_checkpointing=True)
    key = jax.random.PRNGKey(0)
    params = {"w": jax.random.normal(key, (8, 4)) * 0.1, "b": jnp.zeros(4)}
    velocity = jax.tree_util.tree_map(jnp.zeros_like, params)

    @jax.jit
    def train_step(params, velocity, x, y):
        def loss(p):
            logits = x @ p["w"] + p["b"]
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y, axis=1))

        grads = jax.grad(loss)(params)
        velocity = jax.tree_util.tree_map(lambda v, g: 0.9 * v + g, velocity, grads)
        return jax.tree_util.tree_map(lambda p, v: p - 0.1 * v, params, velocity), velocity

    ckpt = Checkpointer(config["run"], period=config["every"], keep_last=2)
    state = {"data": it, "params": params, "velocity": velocity, "progress": {"epoch": 0}}
    last = ckpt.load_latest(state)
    log = log_factory(None)
    step = 0 if last is None else last + 1
    while state["progress"]["epoch"] < config["epochs"]:
        try:
            batch = next(it)
        except StopIteration:
            state["progress"]["epoch"] += 1
            continue
        state["params"], state["velocity"] = train_step(state["params"], state["velocity"], batch["x"],
                                                        batch["y"].astype(jnp.int32))
        leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(state["params"])]
        log.step(step, state["progress"]["epoch"], digest(np.asarray(batch["x"]), np.asarray(batch["y"])),
                 digest(*leaves))
        ckpt.save(state, step)
        step += 1
    return {"steps": step, "epochs": state["progress"]["epoch"],
            "weights": [np.asarray(v).tobytes().hex() for v in jax.tree_util.tree_leaves(state["params"])]}


def main(config: dict) -> None:
    os.makedirs(config["run"], exist_ok=True)
    data = write_dataset(config["data_root"])
    loop = {"torch": torch_loop, "keras": keras_loop, "jax": jax_loop}[config["loop"]]
    final = loop(config, data, lambda before_kill: Log(config["run"], config.get("kill_at"), before_kill))
    with open(os.path.join(config["run"], "final.json"), "w") as f:
        json.dump(final, f)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))

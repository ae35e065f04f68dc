"""The TensorFlow plugin, with real TensorFlow (all TF tests live here: importing TF is slow)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow", reason="the TensorFlow plugin tests need tensorflow (extra 'tf')")

try:  # two logical CPUs for MirroredStrategy; must happen before TensorFlow initializes its devices
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
    TWO_CPUS = True
except RuntimeError:
    TWO_CPUS = False

from pipestate import PipestateError, fn, pipeline_def  # noqa: E402
from pipestate.plugin.tf import (  # noqa: E402
    DistributedIteratorState,
    PipelineDataset,
    PipelineState,
    input_options,
    shard_args,
)

BATCH = 4
EPOCH_LEN = 5  # batches per pipeline epoch


def _ids(info):
    if info.iteration == EPOCH_LEN:
        raise StopIteration
    return np.arange(BATCH, dtype=np.int32)[:, None] + 1000 * info.epoch_idx + BATCH * info.iteration


@pipeline_def(batch_size=BATCH, enable_checkpointing=True)
def augmented():
    image = fn.random.uniform(shape=(3, 2)) * 10.0
    return image, fn.external_source(source=_ids, batch_info=True)


SPEC = dict(output_dtypes=(tf.float32, tf.int32), output_shapes=((BATCH, 3, 2), (BATCH, 1)))


def make_dataset(seed=7, **kwargs):
    return PipelineDataset(augmented(seed=seed), **{**SPEC, **kwargs})


def as_numpy(element):
    return tuple(t.numpy() for t in element)


def take(iterator, n):
    return [as_numpy(next(iterator)) for _ in range(n)]


def assert_same(expected, got, where):
    assert len(expected) == len(got), where
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        for k, (a, b) in enumerate(zip(e, g, strict=True)):
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), (
                f"{where}: element {i}, output {k} differs"
            )


def test_elements_are_the_pipeline_batches_across_epoch_ends():
    ds = make_dataset()
    assert isinstance(ds, tf.data.Dataset)
    assert ds.element_spec == (tf.TensorSpec((BATCH, 3, 2), tf.float32), tf.TensorSpec((BATCH, 1), tf.int32))
    reference = augmented(seed=7)
    expected = []
    while len(expected) < 12:
        try:
            expected.append(tuple(np.asarray(b) for b in reference.run()))
        except StopIteration:
            reference.reset()
    reference.close()
    assert_same(expected, [as_numpy(e) for e in ds.take(12)], "take(12)")
    # every iterator starts at the dataset's start, like any tf.data dataset
    assert_same(expected[:3], take(iter(ds), 3), "second iterator")
    ids = [int(b[0, 0]) for _, b in ds.take(12)]
    assert ids[EPOCH_LEN] == 1000  # the dataset went on with epoch 1 after reset()


def test_epochs_ends_the_dataset():
    ds = make_dataset(epochs=2)
    ids = [int(b[0, 0]) for _, b in ds]
    assert len(ids) == 2 * EPOCH_LEN and ids[EPOCH_LEN] == 1000


TAILS = {
    "plain": lambda ds: ds,
    "prefetch": lambda ds: ds.prefetch(3),
    "shuffle+prefetch": lambda ds: ds.shuffle(4, seed=3).prefetch(2),
    "map+batch": lambda ds: ds.map(lambda x, y: (x * 2.0, y)).unbatch().batch(3),
}


@pytest.mark.parametrize("tail", list(TAILS))
def test_save_and_restore_in_place_and_into_a_fresh_iterator(tail, tmp_path):
    transform = TAILS[tail]
    positions, after = (0, 1, 4, 7), 5  # 4 -> 9 crosses the pipeline's epoch end
    expected = take(iter(transform(make_dataset())), max(positions) + after)
    it = iter(transform(make_dataset()))
    checkpoint = tf.train.Checkpoint(iterator=it)
    paths, consumed = {}, 0
    for position in positions:
        take(it, position - consumed)
        consumed = position
        paths[position] = checkpoint.save(str(tmp_path / f"at{position}"))
    take(it, 3)
    for position in reversed(positions):
        checkpoint.restore(paths[position]).assert_consumed()
        assert_same(expected[position : position + after], take(it, after), f"{tail}: in place at {position}")
    for position in positions:  # a new process: new pipeline (random seed!), dataset and iterator
        # Before its first element, a shuffle has not created its input iterator, so TensorFlow saves
        # no pipeline state: the new pipeline must then have the seed itself (see docs/tensorflow.md).
        seed = 7 if position == 0 and "shuffle" in tail else None
        fresh = iter(transform(PipelineDataset(augmented(seed=seed), **SPEC)))
        tf.train.Checkpoint(iterator=fresh).restore(paths[position]).assert_consumed()
        assert_same(expected[position : position + after], take(fresh, after), f"{tail}: fresh at {position}")


def test_model_variables_and_pipelines_in_one_checkpoint(tmp_path):
    ds = make_dataset()
    it = iter(ds)
    side = augmented(seed=11)  # a pipeline used without tf.data
    dense = tf.keras.layers.Dense(2)
    dense.build((None, 6))
    step = tf.Variable(0, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(model=dense, step=step, iterator=it, side=PipelineState(side))
    take(it, 2)
    side.run()
    path = checkpoint.save(str(tmp_path / "all"))
    weights = [w.numpy().copy() for w in dense.weights]
    expected_it = take(it, 3)
    expected_side = [np.asarray(b).copy() for b in side.run()]
    for w in dense.weights:
        w.assign(tf.zeros_like(w))
    step.assign(99)

    checkpoint.restore(path).assert_consumed()  # in place
    assert all(np.array_equal(w.numpy(), v) for w, v in zip(dense.weights, weights, strict=True))
    assert int(step.numpy()) == 0
    assert_same(expected_it, take(it, 3), "iterator in place")
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(expected_side, side.run(), strict=True))

    fresh_side = augmented()  # fresh pipeline with a random seed: restore adopts the saved one
    fresh = tf.train.Checkpoint(
        model=dense, step=step, iterator=iter(make_dataset(seed=None)), side=PipelineState(fresh_side)
    )
    fresh.restore(path).assert_consumed()
    assert_same(expected_it, take(fresh.iterator, 3), "iterator fresh")
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(expected_side, fresh_side.run(), strict=True))


def test_tf_function_training_loop_and_checkpoint_after(tmp_path):
    ds = make_dataset()
    it = iter(ds)

    @tf.function
    def step(iterator):
        x, y = next(iterator)
        return tf.reduce_sum(x), y[0, 0]

    ids = [int(step(it)[1]) for _ in range(6)]
    assert ids == [0, 4, 8, 12, 16, 1000]
    # checkpoint_after(n): a pipeline constructed from it continues after element n
    blob = ds.checkpoint_after(3)
    continued = PipelineDataset(augmented(checkpoint=blob), **SPEC)
    assert_same(take(iter(ds.skip(3)), 2), take(iter(continued), 2), "checkpoint_after(3)")
    with pytest.raises(KeyError, match="no state after element 50"):
        ds.checkpoint_after(50)


@pytest.mark.skipif(not TWO_CPUS, reason="TensorFlow devices were initialized before this module")
def test_distributed_iterator_shards_per_replica_and_checkpoints(tmp_path):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    @pipeline_def(batch_size=2, enable_checkpointing=True)
    def sharded(shard_id, num_shards):
        def samples(info):  # sample k of this shard is shard_id + num_shards * k (a reader's contract)
            k = np.arange(2) + 2 * info.iteration + 2 * 3 * info.epoch_idx
            return (shard_id + num_shards * k).astype(np.int64)

        noise = fn.random.uniform(shape=(2,))
        return fn.external_source(source=samples, batch_info=True), noise

    def dataset_fn(ctx):
        return PipelineDataset(sharded(**shard_args(ctx), seed=5), (tf.int64, tf.float32), ((2,), (2, 2)))

    def distribute():
        return iter(strategy.distribute_datasets_from_function(dataset_fn, options=input_options()))

    @tf.function
    def train_step(iterator):
        ids, noise = next(iterator)
        return strategy.run(lambda i, n: (i, tf.reduce_sum(n)), args=(ids, noise))

    def run(iterator, steps):
        out = []
        for _ in range(steps):
            ids, total = train_step(iterator)
            out.append(
                [
                    (i.numpy().tolist(), t.numpy().tobytes())
                    for i, t in zip(
                        strategy.experimental_local_results(ids),
                        strategy.experimental_local_results(total),
                        strict=True,
                    )
                ]
            )
        return out

    expected = run(distribute(), 6)
    replica_ids = [[ids for ids, _ in step] for step in expected]
    shard0 = [x for step in replica_ids for x in step[0]]
    shard1 = [x for step in replica_ids for x in step[1]]
    assert all(x % 2 == 0 for x in shard0) and all(x % 2 == 1 for x in shard1)  # one shard per replica
    assert sorted(shard0 + shard1) == list(range(24))

    it = distribute()
    run(it, 2)
    checkpoint = tf.train.Checkpoint(input=DistributedIteratorState(it))
    path = checkpoint.save(str(tmp_path / "dist"))
    run(it, 1)
    checkpoint.restore(path).assert_consumed()
    assert run(it, 4) == expected[2:6]
    fresh = distribute()
    tf.train.Checkpoint(input=DistributedIteratorState(fresh)).restore(path).assert_consumed()
    assert run(fresh, 4) == expected[2:6]

    default = iter(strategy.distribute_datasets_from_function(dataset_fn))
    with pytest.raises(ValueError, match="input_options"):
        DistributedIteratorState(default)


def test_keras_fit_resumes_the_input_exactly(tmp_path, monkeypatch):
    keras_resume = pytest.importorskip("examples.keras_resume")
    tf.config.experimental.enable_op_determinism()
    assert keras_resume.main(str(tmp_path / "example"))  # interrupted in epoch 1 after batch 2, step 6 saved
    # control: without restoring the input position, the resumed run trains on other batches
    expected = keras_resume.train(str(tmp_path / "reference"))
    with pytest.raises(KeyboardInterrupt):
        keras_resume.train(str(tmp_path / "no-input"), callbacks=[keras_resume.Interrupt(1, 2)])
    at = PipelineDataset._at
    monkeypatch.setattr(PipelineDataset, "_at", lambda self, state: at(self, self._start))
    resumed = keras_resume.train(str(tmp_path / "no-input"))
    assert not all(np.array_equal(a, b) for a, b in zip(expected, resumed, strict=True))


def test_fit_resumable_argument_errors(tmp_path):
    import keras

    from pipestate import Checkpointer
    from pipestate.plugin.tf import fit_resumable

    model = keras.Sequential([keras.Input((3, 2)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    ckpt = Checkpointer(tmp_path)
    with pytest.raises(TypeError, match="PipelineDataset"):
        fit_resumable(model, tf.data.Dataset.range(3), ckpt, epochs=1, steps_per_epoch=1)
    with pytest.raises(TypeError, match="initial_epoch"):
        fit_resumable(model, make_dataset(), ckpt, epochs=1, steps_per_epoch=1, initial_epoch=1)
    with pytest.raises(ValueError, match="steps_per_epoch=0"):
        fit_resumable(model, make_dataset(), ckpt, epochs=1, steps_per_epoch=0)
    history = fit_resumable(model, make_dataset(), ckpt, epochs=2, steps_per_epoch=3, verbose=0)
    assert history.epoch == [0, 1] and ckpt.latest_step() == 6
    with pytest.raises(ValueError, match="saved with steps_per_epoch=3"):
        fit_resumable(model, make_dataset(), ckpt, epochs=3, steps_per_epoch=4)
    history = fit_resumable(model, make_dataset(), ckpt, epochs=2, steps_per_epoch=3, verbose=0)
    assert history is None  # nothing left to train


@pytest.mark.parametrize("per_execution", [1, 2])
def test_fit_resumable_resumes_mid_epoch_in_process(tmp_path, per_execution):
    """Interrupted by an exception in epoch 1 (5 batches per epoch; 6 with 2 steps per execution, as Keras
    rounds up), resumed from the step saved after batch 4: bit-identical to an uninterrupted run."""
    import keras

    from pipestate import Checkpointer
    from pipestate.plugin.tf import fit_resumable

    tf.config.experimental.enable_op_determinism()

    def train(directory, stop_at=None):
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input((3, 2)), keras.layers.Flatten(), keras.layers.Dropout(0.3),
                                  keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.5), loss="mse",
                      steps_per_execution=per_execution)

        class Stop(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if stop_at is not None and int(self.model.optimizer.iterations.numpy()) >= stop_at:
                    raise KeyboardInterrupt

        fit_resumable(model, make_dataset(), Checkpointer(directory, period=4), epochs=3, steps_per_epoch=5,
                      callbacks=[Stop()], verbose=0)
        return model

    expected = train(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "resumed", stop_at=8)
    resumed = train(tmp_path / "resumed")
    per_epoch = 5 if per_execution == 1 else 6
    assert int(resumed.optimizer.iterations.numpy()) == 3 * per_epoch
    for a, b in zip(expected.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_keras_model_part_holds_every_variable(tmp_path):
    import keras

    from pipestate import Checkpointer, CheckpointMismatchError

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dropout(0.5),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    model.fit(np.ones((8, 4)), np.ones((8, 1)), epochs=1, verbose=0)
    ckpt = Checkpointer(tmp_path)
    ckpt.save({"model": model}, 1)
    keras.utils.set_random_seed(2)
    other = keras.models.clone_model(model)
    other.compile(optimizer=keras.optimizers.Adam(), loss="mse")  # its optimizer is not built yet
    ckpt.load_latest({"model": other})
    for a, b in zip(model.variables + model.optimizer.variables, other.variables + other.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    assert any("seed_generator" in v.path for v in other.variables)
    smaller = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    smaller.compile(optimizer="adam", loss="mse")
    with pytest.raises(CheckpointMismatchError, match="part 'model' holds .* variables"):
        ckpt.load_latest({"model": smaller})


def test_a_tensorflow_checkpoint_part_restores_in_place(tmp_path):
    from pipestate import Checkpointer

    v, w = tf.Variable([1.0, 2.0]), tf.Variable(3)
    ckpt = Checkpointer(tmp_path)
    ckpt.save({"vars": tf.train.Checkpoint(v=v, w=w), "module": tf.Module()}, 1)
    v.assign([0.0, 0.0])
    w.assign(0)
    ckpt.load_latest({"vars": tf.train.Checkpoint(v=v, w=w)})
    assert v.numpy().tolist() == [1.0, 2.0] and int(w.numpy()) == 3
    part = ckpt.load_latest()["vars"]  # without objects: the checkpoint's files
    assert part.kind == "tensorflow" and any(name.endswith(".index") for name in part.meta["files"])


def test_batches_per_call_keeps_the_elements_and_checkpoints_across_settings(tmp_path):
    reference = take(iter(make_dataset(batches_per_call=1)), 12)  # crosses two epoch ends
    auto = make_dataset()
    assert auto.batches_per_call == 16  # 4 x 7 floats per batch: the automatic maximum
    for ds in (auto, make_dataset(batches_per_call=3)):
        assert_same(reference, take(iter(ds), 12), f"batches_per_call={ds.batches_per_call}")
    # saved in the middle of a call (element 4 of a call of 3 after element 3), restored into datasets that
    # compute 1 or 3 batches per call: the buffered rest of the call and the pipeline state both come back
    for saved_with, restored_with in ((3, 1), (1, 3), (3, 3)):
        it = iter(make_dataset(batches_per_call=saved_with))
        take(it, 4)
        path = tf.train.Checkpoint(iterator=it).save(str(tmp_path / f"k{saved_with}{restored_with}"))
        fresh = iter(PipelineDataset(augmented(seed=None), **SPEC, batches_per_call=restored_with))
        tf.train.Checkpoint(iterator=fresh).restore(path).assert_consumed()
        assert_same(reference[4:12], take(fresh, 8), f"saved with {saved_with}, restored with {restored_with}")
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="batches_per_call"):
            make_dataset(batches_per_call=bad)


def test_large_batches_are_computed_one_per_call():
    @pipeline_def(batch_size=2, enable_checkpointing=True, seed=3)
    def large():
        return fn.random.uniform(shape=(256, 1024))  # 2 MiB per batch

    ds = PipelineDataset(large(), tf.float32, (2, 256, 1024))
    assert ds.batches_per_call == 1
    expected = large().run()[0].as_array()
    assert np.array_equal(next(iter(ds)).numpy(), expected)


def test_eager_iterator_elements_equal_tensorflows_iterator():
    from tensorflow.python.data.ops import iterator_ops

    @pipeline_def(batch_size=3, enable_checkpointing=True, seed=2)
    def one():
        return fn.random.uniform(shape=(2,))

    for ds in (make_dataset(), PipelineDataset(one(), tf.float32, (3, 2))):
        ours, theirs = iter(ds), iterator_ops.OwnedIterator(ds)
        assert type(ours) is not iterator_ops.OwnedIterator
        for _ in range(3):
            a, b = next(ours), next(theirs)
            assert type(a) is type(b)
            for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b), strict=True):
                assert isinstance(x, tf.Tensor) and x.dtype == y.dtype and x.shape == y.shape
                assert np.array_equal(x.numpy(), y.numpy())


def test_declared_dtypes_and_shapes_are_checked():
    with pytest.raises(TypeError, match=r"output 1: declared dtype float32 .* produced int32"):
        PipelineDataset(augmented(seed=1), (tf.float32, tf.float32), SPEC["output_shapes"])
    with pytest.raises(ValueError, match=r"output 0: declared shape \(4, 3, 3\) .* shape \(4, 3, 2\)"):
        PipelineDataset(augmented(seed=1), SPEC["output_dtypes"], ((BATCH, 3, 3), (BATCH, 1)))
    with pytest.raises(ValueError, match="2 outputs but output_dtypes declares 1"):
        PipelineDataset(augmented(seed=1), (tf.float32,), ((BATCH, 3, 2),))
    with pytest.raises(ValueError, match="output_shapes has 1 entries"):
        PipelineDataset(augmented(seed=1), SPEC["output_dtypes"], ((BATCH, 3, 2),))
    with pytest.raises(TypeError, match=r"output_dtypes\[0\]"):
        PipelineDataset(augmented(seed=1), (np.float32, tf.int32))
    with pytest.raises(ValueError, match="epochs=0"):
        make_dataset(epochs=0)

    @pipeline_def(batch_size=2)
    def plain():
        return fn.random.uniform()

    with pytest.raises(PipestateError, match="enable_checkpointing=True"):
        PipelineDataset(plain(), tf.float32)

    # partially declared shapes are checked only where declared; the creation check does not
    # consume a batch
    ds = PipelineDataset(augmented(seed=1), SPEC["output_dtypes"], ((None, 3, None), None))
    assert ds.element_spec[1].shape.rank is None
    assert int(next(iter(ds))[1][0, 0]) == 0


def test_a_later_batch_with_another_shape_fails_naming_the_output():
    @pipeline_def(batch_size=2, enable_checkpointing=True, seed=1)
    def growing():
        return fn.external_source(source=lambda i: np.zeros((2, 1 + i), np.float32))

    it = iter(PipelineDataset(growing(), tf.float32, (2, 1)))
    next(it)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"output 0: declared shape \(2, 1\)"):
        next(it)


def test_single_output_gives_tensor_elements():
    @pipeline_def(batch_size=3, enable_checkpointing=True, seed=2)
    def one():
        return fn.random.uniform(shape=(2,))

    ds = PipelineDataset(one(), tf.float32, (3, 2))
    assert ds.element_spec == tf.TensorSpec((3, 2), tf.float32)
    assert next(iter(ds)).shape == (3, 2)


# ---- DALI's names: DALIDataset and experimental.DALIDatasetWithInputs ------------------------------------
@pipeline_def(num_threads=2, batch_size=5, seed=1, enable_checkpointing=True)
def _sample_source_pipe():
    return fn.external_source(source=lambda x: np.array(x.iteration), batch=False)


def test_dali_dataset_takes_dalis_arguments_and_checkpoints(tmp_path):
    from pipestate.plugin.tf import DALIDataset

    ds = DALIDataset(
        pipeline=_sample_source_pipe(),
        output_dtypes=(tf.int64,),
        output_shapes=((5,),),
        batch_size=5,
        num_threads=4,
        device_id=0,
        prefetch_queue_depth=2,
    )
    it = iter(ds)
    next(it)
    path = tf.train.Checkpoint(it).save(str(tmp_path / "c"))
    expected = [next(it)[0].numpy() for _ in range(3)]
    tf.train.Checkpoint(it).restore(path)
    assert [next(it)[0].numpy().tolist() for _ in range(3)] == [e.tolist() for e in expected]
    with pytest.raises(NotImplementedError, match="input_datasets"):
        DALIDataset(_sample_source_pipe(), (tf.int64,), input_datasets={"x": None})
    with pytest.raises(ValueError, match="dtypes"):
        DALIDataset(_sample_source_pipe(), (tf.int64,), dtypes=(tf.int64,))


def test_dataset_with_inputs_refuses_checkpointing_as_dali(tmp_path):
    from pipestate.plugin.tf import experimental

    # DALI's test_inputs_unsupported (checkpointing/test_dali_checkpointing_tf_plugin.py), device_id kept
    ds = experimental.DALIDatasetWithInputs(
        pipeline=_sample_source_pipe(),
        output_dtypes=(tf.int64,),
        batch_size=5,
        output_shapes=((5,),),
        num_threads=4,
        device_id=0,
    )
    it = iter(ds)
    assert next(it)[0].numpy().tolist() == [0] * 5
    with pytest.raises(Exception, match="not supported for pipestate dataset with inputs.*use PipelineDataset"):
        tf.train.Checkpoint(it).save(str(tmp_path / "c"))


# ---- a process that used the plugin exits promptly (issue 9) ---------------------------------------------
EXIT_SCRIPT = """
import time, tensorflow as tf
from pipestate import fn, pipeline_def
from pipestate.plugin.tf import PipelineDataset

@pipeline_def(batch_size=4, num_threads=2, seed=1, enable_checkpointing=True)
def pipe():
    return fn.random.uniform(shape=[3]), fn.random.coin_flip()

keep = []
for _ in range(4):
    p = pipe()
    p.run()
    ds = PipelineDataset(p, (tf.float32, tf.int32), ((4, 3), (4,)))
    it = iter(ds)
    for _ in range(10):
        next(it)
    keep.append((p, ds, it))
print("DONE", time.time(), flush=True)
"""


def test_process_exits_promptly_with_live_iterators(tmp_path):
    import subprocess
    import sys
    import time

    script = tmp_path / "exit.py"
    script.write_text(EXIT_SCRIPT)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for attempt in range(3):
        proc = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"attempt {attempt}: the process did not exit within 120 s (hang at interpreter exit)")
        ended = time.time()
        assert proc.returncode == 0, out
        done = float(out.split("DONE")[1])
        assert ended - done < 30, f"attempt {attempt}: {ended - done:.1f} s between the script's end and exit"


def test_dali_dataset_passes_batches_per_call_on():
    from pipestate.plugin.tf import DALIDataset

    ds = DALIDataset(_sample_source_pipe(), (tf.int64,), ((5,),), batches_per_call=2)
    assert ds.batches_per_call == 2
    assert [next(iter(ds))[0].numpy().tolist()] == [[0] * 5]


@pytest.mark.skipif(not TWO_CPUS, reason="TensorFlow devices were initialized before this module")
def test_elastic_job_resumes_on_another_number_of_replicas(tmp_path):
    from pipestate import distributed
    from pipestate.plugin.tf import elastic_args, job_checkpoint

    files = []
    for i in range(14):
        path = tmp_path / f"{i:02d}.bin"
        path.write_bytes(i.to_bytes(4, "little"))
        files.append(str(path))

    @pipeline_def(seed=9, enable_checkpointing=True)
    def elastic(shard_id, num_shards, global_batch_size):
        _, index = fn.readers.file(
            files=files,
            elastic=True,
            random_shuffle=True,
            initial_fill=4,
            shard_id=shard_id,
            num_shards=num_shards,
            global_batch_size=global_batch_size,
        )
        return index, fn.random.uniform()

    def run(devices, global_batch, steps, job=None):
        strategy = tf.distribute.MirroredStrategy(devices)
        datasets = {}

        def dataset_fn(ctx):
            args = elastic_args(ctx, global_batch)
            checkpoint = None
            if job is not None:
                checkpoint = distributed.shard_checkpoint(job, args["shard_id"], args["num_shards"], global_batch)
            pipe = elastic(**args, checkpoint=checkpoint)
            datasets[ctx.input_pipeline_id] = PipelineDataset(pipe, (tf.int32, tf.float32))
            return datasets[ctx.input_pipeline_id]

        iterator = iter(strategy.distribute_datasets_from_function(dataset_fn, options=input_options()))
        seen = []
        for _ in range(steps):
            index, draw = next(iterator)
            for i, d in zip(strategy.experimental_local_results(index), strategy.experimental_local_results(draw)):
                seen += list(zip(i.numpy().ravel().tolist(), d.numpy().ravel().tolist()))
        return seen, job_checkpoint([datasets[k] for k in sorted(datasets)], steps)

    reference, _ = run(["/cpu:0"], 1, 3 * 5 + 2 * 3 + 4)
    two, job = run(["/cpu:0", "/cpu:1"], 5, 3)  # 3 global steps of 5 on two replicas (3 + 2 samples)
    one, job = run(["/cpu:0"], 3, 2, job)  # then 2 of 3 on one replica
    again, _ = run(["/cpu:0", "/cpu:1"], 4, 1, job)  # then 1 of 4 on two
    assert two + one + again == reference

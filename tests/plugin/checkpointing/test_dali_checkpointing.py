"""Port of the parts of DALI's ``dali/test/python/checkpointing/test_dali_checkpointing.py`` that the
framework-iterator tests import, plus its native tests for the operators pipestate has.

Adaptations (to remove once the core accepts DALI's options; see the report of issue 10):
- ``pipeline_args``: ``device_id=None`` instead of ``0``; no ``exec_async``/``exec_pipelined``.
- ``images_dir``: DALI_extra's ``db/single/jpeg`` is not available; a generated directory of 66 small
  files in 3 class folders stands in (the tests using it only read files, they do not decode them).
- ``device=`` is not passed to operators (pipestate's operators have no ``device`` argument yet) and
  only the CPU cases run; ``parallel=`` and ``py_start_method=`` are not passed to external sources
  (parallel external source is not implemented: those cases skip).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import numpy as np
from nose_utils import attr, cartesian_params, compare_pipelines, params

from pipestate import fn, pipeline_def


def _make_images_dir() -> str:
    root = tempfile.mkdtemp(prefix="pipestate-images-")
    atexit.register(shutil.rmtree, root, True)
    rng = np.random.default_rng(0)
    for label in range(3):
        os.mkdir(os.path.join(root, f"{label:03}"))
        for i in range(22):
            with open(os.path.join(root, f"{label:03}", f"{i:02}.jpg"), "wb") as f:
                f.write(rng.integers(0, 256, 16, dtype=np.uint8).tobytes())
    return root


images_dir = _make_images_dir()

warmup_epochs = 2
comparsion_iterations = 5
pipeline_args = {
    "batch_size": 10,
    "num_threads": 4,
    "enable_checkpointing": True,
    "device_id": 0,
    "exec_async": True,
    "exec_pipelined": True,
}


def calculate_iterations_in_epoch(pipe, batch_size, num_shards=1):
    reader_meta = pipe.reader_meta()
    try:
        epoch_size = reader_meta["Reader"]["epoch_size_padded"]
        epoch_size = epoch_size // num_shards
    except KeyError:
        epoch_size = 1
    return (epoch_size + batch_size - 1) // batch_size


def check_pipeline_checkpointing_native(pipeline_factory):
    pipe = pipeline_factory(**pipeline_args)

    iterations_in_epoch = calculate_iterations_in_epoch(pipe, pipeline_args["batch_size"])
    for _ in range(warmup_epochs * iterations_in_epoch):
        pipe.run()

    restored = pipeline_factory(**pipeline_args, checkpoint=pipe.checkpoint())
    compare_pipelines(pipe, restored, pipeline_args["batch_size"], comparsion_iterations)


def check_single_input_operator_pipeline(op, device, **kwargs):
    # ADAPTED: DALI decodes, casts and resizes images first (fn.decoders.image_random_crop, fn.resize:
    # not in pipestate); the operator is applied to the file bytes cast to float.
    @pipeline_def
    def pipeline():
        data, _ = fn.readers.file(name="Reader", file_root=images_dir, pad_last_batch=True, random_shuffle=True)
        return op(fn.cast(data, dtype="float32"), **kwargs)

    return pipeline


def check_no_input_operator(op, device, **kwargs):
    @pipeline_def
    def pipeline_factory():
        return op(device=device, **kwargs)

    check_pipeline_checkpointing_native(pipeline_factory)


def check_reader_checkpointing(reader, num_epochs, batch_size, iters_into_epoch, **kwargs):
    @pipeline_def(batch_size=batch_size, device_id=None, num_threads=4, enable_checkpointing=True)
    def pipeline():
        result = reader(name="Reader", **kwargs)
        if isinstance(result, list):
            return tuple(result)
        else:
            return result

    p = pipeline()

    num_shards = kwargs.get("num_shards", 1)

    assert p.reader_meta()["Reader"]["epoch_size"] // num_shards > 2, "Trivial test case"

    iterations_in_epoch = calculate_iterations_in_epoch(p, batch_size, num_shards)
    assert iterations_in_epoch >= (iters_into_epoch or 0), "Not enough iterations in epoch"

    for epoch in range(num_epochs):
        for i in range(iterations_in_epoch):
            p.run()
            if iters_into_epoch is not None:
                if epoch == num_epochs - 1 and i == iters_into_epoch - 1:
                    break

    restored = pipeline(checkpoint=p.checkpoint())

    compare_pipelines(p, restored, batch_size, (num_shards + 1) * iterations_in_epoch)


@params(
    (1, 3, 0, 1, True, False, False, True),
    (5, 10, 0, 2, True, False, False, True),
    (0, 32, 1, 4, False, False, False, True),
    (3, 64, 3, 4, False, False, False, True),
    (1, 3, 0, 1, True, False, True, True),
    (5, 10, 0, 2, True, False, True, True),
    (0, 32, 1, 4, False, False, True, True),
    (3, 64, 3, 4, False, False, True, True),
    (2, 7, 0, 1, False, True, False, True),
    (1, 8, 0, 2, False, True, False, True),
    (1, 8, 1, 2, False, True, False, True),
    (1, 8, 3, 4, False, True, False, True),
    (2, 11, 2, 5, False, True, False, True),
    (5, 3, 0, 1, True, False, False, True, 4),
    (2, 4, 0, 2, True, False, False, True, 5),
    (4, 5, 2, 4, False, False, True, True, 3),
    (3, 64, 3, 4, False, False, True, False),
    (5, 10, 0, 2, True, False, False, False),
    (1, 3, 0, 1, True, False, False, False),
    (10, 3, 0, 1, True, False, False, False, 1),
    (10, 10, 0, 2, True, False, False, False, 2),
    (10, 4, 2, 4, False, False, True, False, 3),
    (10, 10, 1, 2, False, False, False, False),
    (10, 10, 1, 2, False, False, False, False, 2),
    (7, 10, 0, 2, True, False, True, True, 3, 3),
    (7, 4, 2, 5, True, False, False, False, 3, 2),
    (0, 32, 3, 4, True, False, False, False, 0, 3),
)
def test_file_reader(
    num_epochs,
    batch_size,
    shard_id,
    num_shards,
    random_shuffle,
    shuffle_after_epoch,
    stick_to_shard,
    pad_last_batch,
    iters_into_epoch=None,
    initial_fill=1024,
):
    check_reader_checkpointing(
        fn.readers.file,
        num_epochs,
        batch_size,
        iters_into_epoch,
        file_root=images_dir,
        pad_last_batch=pad_last_batch,
        random_shuffle=random_shuffle,
        shard_id=shard_id,
        num_shards=num_shards,
        shuffle_after_epoch=shuffle_after_epoch,
        stick_to_shard=stick_to_shard,
        initial_fill=initial_fill,
    )


@params(*[lambda n: np.arange(n) / (n * (n - 1) / 2), lambda n: None])
def test_random_choice(p_dist):
    @pipeline_def
    def pipeline():
        n = 10
        return fn.random.choice(n, p=p_dist(n))

    check_pipeline_checkpointing_native(pipeline)


@cartesian_params(("cpu",), (None, (1,), (10,)))
def test_random_coin_flip(device, shape):
    check_no_input_operator(fn.random.coin_flip, device, shape=shape)


@cartesian_params(("cpu",), (None, (1,), (10,)))
def test_random_normal(device, shape):
    check_no_input_operator(fn.random.normal, device, shape=shape)


@cartesian_params(("cpu",), (None, (1,), (10,)))
def test_random_uniform(device, shape):
    check_no_input_operator(fn.random.uniform, device, shape=shape)


# External source


def check_external_source_pipeline_checkpointing(pipeline_factory, iterations, compare_iterations):
    def run_and_reset(pipe):
        try:
            return pipe.run()
        except StopIteration:
            pipe.reset()
            return pipe.run()

    def compare_external_source_pipelines(pipe1, pipe2, steps):
        for _ in range(steps):
            out1 = run_and_reset(pipe1)[0].as_array()
            out2 = run_and_reset(pipe2)[0].as_array()
            assert np.all(out1 == out2)

    p1 = pipeline_factory()

    for _ in range(iterations):
        run_and_reset(p1)

    cpt = p1.checkpoint()
    p2 = pipeline_factory(checkpoint=cpt)
    compare_external_source_pipelines(p1, p2, compare_iterations)


def make_external_source_test_pipeline_factory(source, mode, batch_size, parallel, **kwargs):
    if mode == "idx":
        kwargs["batch"] = True
        kwargs["batch_info"] = False
    elif mode == "batch_info":
        kwargs["batch"] = True
        kwargs["batch_info"] = True
    elif mode == "sample_info":
        kwargs["batch"] = False
        kwargs["batch_info"] = False
    else:
        raise AssertionError("Unknown mode!")

    @pipeline_def(
        batch_size=batch_size,
        num_threads=4,
        device_id=0,
        py_start_method="spawn",
        enable_checkpointing=True,
    )
    def pipeline_factory():
        return fn.external_source(source=source, parallel=parallel, **kwargs)

    return pipeline_factory


def make_dummy_source(epoch_size, batch_size, mode):
    if mode == "idx":

        def src(idx):
            if idx >= epoch_size:
                raise StopIteration()
            return [np.asarray([idx, i]) for i in range(batch_size)]

    elif mode == "batch_info":

        def src(idx):
            if idx.iteration >= epoch_size:
                raise StopIteration()
            return [np.asarray([idx.epoch_idx, idx.iteration, i]) for i in range(batch_size)]

    elif mode == "sample_info":

        def src(idx):
            if idx.idx_in_epoch >= epoch_size * batch_size:
                raise StopIteration()
            return np.asarray([idx.epoch_idx, idx.iteration, idx.idx_in_epoch, idx.idx_in_batch])

    return src


@attr("sanitizer_skip")
@cartesian_params(
    ((1, 1), (3, 4)),  # (epoch size, batch size)
    (0, 3, 15),  # test iterations
    ("idx", "batch_info", "sample_info"),  # indexing mode
    (True, False),  # parallel
)
def test_external_source_checkpointing(dataset_info, iterations, mode, parallel):
    epoch_size, batch_size = dataset_info
    source = make_dummy_source(epoch_size, batch_size, mode)
    pf = make_external_source_test_pipeline_factory(source, mode, batch_size, parallel)
    check_external_source_pipeline_checkpointing(pf, iterations, 2 * epoch_size)

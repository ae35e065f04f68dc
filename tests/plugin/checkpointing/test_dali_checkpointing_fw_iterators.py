"""Port of DALI's ``dali/test/python/checkpointing/test_dali_checkpointing_fw_iterators.py``: the PyTorch
and JAX classes, CPU cases, with only the imports changed, except for these adaptations (each marked
``ADAPTED``):

- nose-style classes (``__init__`` setting ``self.FwIterator``) become pytest classes whose
  ``setup_method`` does the same (pytest does not collect classes with ``__init__``); the framework
  imports use ``pytest.importorskip`` so a missing framework skips with a reason.
- the helpers shared with DALI's ``test_dali_checkpointing.py`` come from its port in
  ``tests/dali_ported/``; ``images_dir`` is generated here (see ``_make_images_dir``).
- ``device="gpu"`` cases skip (pipestate runs on the CPU).
- Cases that need an operator pipestate lacks skip with the operator named: ``fn.decoders.*`` and
  ``fn.resize`` (test_file_reader, test_decorator). pipestate-only
  variants without the decoding (``*_without_decoding``) run the same reader arguments.
- ``TestJaxPeekable`` (``nvidia.dali.plugin.jax.clu``, needs Google's ``clu``) is not ported, nor the
  Paddle and MXNet classes (out of scope).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import pytest
from nose_utils import SkipTest, assert_raises, cartesian_params, params  # noqa: F401

import pipestate.fn as fn
from pipestate.pipeline import pipeline_def
from pipestate.plugin.base_iterator import LastBatchPolicy
from tests.dali_ported.test_dali_checkpointing import (
    make_dummy_source,
    make_external_source_test_pipeline_factory,
    pipeline_args,
    warmup_epochs,
)


def _make_images_dir() -> str:
    """ADAPTED: DALI_extra's ``db/single/jpeg`` decoded and resized by DALI's test; here 66 files of 16 bytes,
    so that the undecoded samples have one shape (the framework iterators need dense outputs)."""
    import atexit
    import shutil

    import numpy as np

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


class FwTestBase:
    FwIterator = None

    def equal(self, a, b):
        raise NotImplementedError

    def output_map(self, *, with_labels=False):
        return ["data", "labels"] if with_labels else ["data"]

    # Helpers

    def compare_outs(self, out1, out2):
        for d1, d2 in zip(out1, out2):
            for key in d1.keys():
                assert self.equal(d1[key], d2[key])

    def compare_iters(self, iter, iter2):
        outs1 = list(x for x in iter)
        outs2 = list(x for x in iter2)
        assert len(outs1) == len(outs2)
        for out1, out2 in zip(outs1, outs2):
            self.compare_outs(out1, out2)

    def check_pipeline_checkpointing(self, pipeline_factory, reader_name=None, size=-1):
        pipe = pipeline_factory(**pipeline_args)

        iter = self.FwIterator(
            pipe,
            output_map=self.output_map(with_labels=False),
            auto_reset=True,
            reader_name=reader_name,
            size=size,
            last_batch_policy=LastBatchPolicy.FILL,
            last_batch_padded=True,
        )
        for _ in range(warmup_epochs):
            for _ in iter:
                pass

        restored = pipeline_factory(**pipeline_args, checkpoint=iter.checkpoints()[0])
        iter2 = self.FwIterator(
            restored,
            output_map=self.output_map(with_labels=False),
            auto_reset=True,
            reader_name=reader_name,
            size=size,
            last_batch_policy=LastBatchPolicy.FILL,
            last_batch_padded=True,
        )

        self.compare_iters(iter, iter2)

    def check_no_input_operator(self, op, device, **kwargs):
        if device == "gpu":  # ADAPTED
            pytest.skip("pipestate runs on the CPU")

        @pipeline_def
        def pipeline_factory():
            return op(device=device, **kwargs)

        self.check_pipeline_checkpointing(pipeline_factory, size=8)

    def check_decorator(self, decorator):
        @decorator(output_map=["images"], reader_name="Reader")
        def iterator_fn():
            jpegs, _ = fn.readers.file(file_root=images_dir, name="Reader")
            return jpegs  # ADAPTED: DALI decodes and resizes (fn.decoders.image, fn.resize)

        def make_iterator(**kwargs):
            return iterator_fn(batch_size=8, enable_checkpointing=True, **kwargs)

        iterator = make_iterator()

        for _ in range(3):
            next(iterator)

        checkpoints = iterator.checkpoints()

        iterator_restored = make_iterator(checkpoints=checkpoints)
        self.compare_iters(iterator, iterator_restored)

    # Reader tests section

    FILE_READER_CASES = (
        (1, 3, 0, 1, True, False, False),
        (5, 10, 0, 2, True, False, False),
        (3, 64, 3, 4, False, False, False),
        (0, 32, 1, 4, False, False, True),
        (3, 64, 3, 4, False, False, True),
        (1, 8, 0, 2, False, True, False),
        (1, 8, 1, 2, False, True, False),
        (1, 8, 3, 4, False, True, False),
        (1, 3, 0, 1, True, False, False, 1),
        (5, 10, 0, 2, True, False, False, 2),
        (3, 64, 3, 4, False, False, True, 3),
    )

    @params(*FILE_READER_CASES)
    def test_file_reader(
        self,
        num_epochs,
        batch_size,
        shard_id,
        num_shards,
        random_shuffle,
        shuffle_after_epoch,
        stick_to_shard,
        iters_into_epoch=None,
    ):
        pytest.skip("needs fn.decoders.image_random_crop and fn.resize, which pipestate lacks")

    @params(*FILE_READER_CASES)
    def test_file_reader_without_decoding(
        self,
        num_epochs,
        batch_size,
        shard_id,
        num_shards,
        random_shuffle,
        shuffle_after_epoch,
        stick_to_shard,
        iters_into_epoch=None,
    ):
        # pipestate: DALI's test_file_reader without the decoding and resizing
        @pipeline_def(batch_size=batch_size, device_id=None, num_threads=4, enable_checkpointing=True)
        def pipeline():
            data, label = fn.readers.file(
                name="Reader",
                file_root=images_dir,
                pad_last_batch=True,
                random_shuffle=random_shuffle,
                shard_id=shard_id,
                num_shards=num_shards,
                shuffle_after_epoch=shuffle_after_epoch,
                stick_to_shard=stick_to_shard,
            )
            return data, label

        p = pipeline()

        iter = self.FwIterator(p, output_map=self.output_map(with_labels=True), auto_reset=True, reader_name="Reader")
        for epoch in range(num_epochs):
            for i, _ in enumerate(iter):
                if iters_into_epoch is not None:
                    if epoch == num_epochs - 1 and i == iters_into_epoch - 1:
                        break

        restored = pipeline(checkpoint=iter.checkpoints()[0])
        iter2 = self.FwIterator(
            restored,
            output_map=self.output_map(with_labels=True),
            auto_reset=True,
            reader_name="Reader",
        )

        self.compare_iters(iter, iter2)

    @dataclass
    class DatasetConfig:
        dataset_size: int
        batch_size: int
        num_shards: int

    @cartesian_params(
        (
            DatasetConfig(dataset_size=11 + 11 + 12, batch_size=4, num_shards=3),
            DatasetConfig(dataset_size=4 + 5, batch_size=3, num_shards=2),
        ),
        (2, 3, 7),
        (
            # (last_batch_policy, pad_last_batch)
            (LastBatchPolicy.FILL, True),
            (LastBatchPolicy.FILL, False),
            (LastBatchPolicy.DROP, True),
            (LastBatchPolicy.DROP, False),
            (LastBatchPolicy.PARTIAL, True),
            (LastBatchPolicy.PARTIAL, False),
        ),
        (True, False),  # stick_to_shard
    )
    def test_last_batch_policy(self, dataset_config: DatasetConfig, iterations, last_batch_config, stick_to_shard):
        policy, pad_last_batch = last_batch_config
        if last_batch_config not in self.supported_last_batch_policies():
            raise SkipTest(
                f"Policy {policy} with last_batch_padded={pad_last_batch} " + f"is not supported by {self.FwIterator}"
            )
        with tempfile.TemporaryDirectory() as data_dir:
            os.mkdir(os.path.join(data_dir, "0"))
            for i in range(dataset_config.dataset_size):
                with open(os.path.join(data_dir, f"0/{i:02}.jpg"), "wb") as f:
                    f.write(bytes([i]))

            def make_pipeline(shard_id, checkpoint=None):
                @pipeline_def(
                    batch_size=dataset_config.batch_size,
                    enable_checkpointing=True,
                    num_threads=4,
                    device_id=0,
                )
                def pipeline():
                    data, _ = fn.readers.file(
                        file_root=data_dir,
                        name="Reader",
                        pad_last_batch=pad_last_batch,
                        num_shards=dataset_config.num_shards,
                        shard_id=shard_id,
                        stick_to_shard=stick_to_shard,
                    )
                    return data

                p = pipeline(checkpoint=checkpoint)
                return p

            def make_pipelines(checkpoints=None):
                if not checkpoints:
                    return [make_pipeline(shard_id) for shard_id in range(dataset_config.num_shards)]
                else:
                    assert len(checkpoints) == dataset_config.num_shards
                    return [
                        make_pipeline(shard_id, checkpoint=cpt)
                        for (shard_id, cpt) in zip(range(dataset_config.num_shards), checkpoints)
                    ]

            def make_iterator(pipes):
                return self.FwIterator(
                    pipes,
                    output_map=self.output_map(with_labels=False),
                    auto_reset=True,
                    last_batch_policy=policy,
                    prepare_first_batch=False,
                    reader_name="Reader",
                )

            pipes = make_pipelines()
            it = make_iterator(pipes)

            completed_iterations = 0
            while completed_iterations < iterations:
                try:
                    next(it)
                    completed_iterations += 1
                except StopIteration:
                    pass

            def observe(it, steps):
                """
                Returns a list with data returned on each step or None if there was an epoch end.
                This allows to compare behavior of two iterators precisely.
                """
                results = []
                for _ in range(steps):
                    try:
                        results.append(next(it))
                    except StopIteration:
                        results.append(None)
                return results

            pipes_restored = make_pipelines(it.checkpoints())
            it_restored = make_iterator(pipes_restored)

            steps = dataset_config.dataset_size * 2 // dataset_config.batch_size

            a = observe(it, steps)
            b = observe(it_restored, steps)

            assert len(a) == len(b)

            for x, y in zip(a, b):
                if x is None or y is None:
                    assert x is None and y is None
                else:
                    self.compare_outs(x, y)

    # Random operators section

    @cartesian_params(("cpu", "gpu"), (None, (1,), (10,)))
    def test_random_coin_flip(self, device, shape):
        self.check_no_input_operator(fn.random.coin_flip, device, shape=shape)

    @cartesian_params(("cpu", "gpu"), (None, (1,), (10,)))
    def test_random_normal(self, device, shape):
        self.check_no_input_operator(fn.random.normal, device, shape=shape)

    @cartesian_params(("cpu", "gpu"), (None, (1,), (10,)))
    def test_random_uniform(self, device, shape):
        self.check_no_input_operator(fn.random.uniform, device, shape=shape)

    # Stateless operators section

    @cartesian_params(("cpu", "gpu"), (None, (1,), (10,)))
    def test_constant(self, device, shape):
        self.check_no_input_operator(fn.constant, device, idata=42, shape=shape)

    # External source section

    def check_external_source_pipeline_checkpointing(self, pipeline_factory, iterations, *, size=-1):
        def run(iterator, iterations):
            completed_iterations = 0
            while completed_iterations < iterations:
                for _ in iterator:
                    completed_iterations += 1
                    if completed_iterations == iterations:
                        break

        pipeline = pipeline_factory()

        iter = self.FwIterator(
            pipeline,
            output_map=self.output_map(with_labels=False),
            auto_reset=True,
            size=size,
            last_batch_policy=LastBatchPolicy.FILL,
            last_batch_padded=True,
        )

        run(iter, iterations)

        restored = pipeline_factory(checkpoint=iter.checkpoints()[0])
        iter2 = self.FwIterator(
            restored,
            output_map=self.output_map(with_labels=False),
            auto_reset=True,
            size=size,
            last_batch_policy=LastBatchPolicy.FILL,
            last_batch_padded=True,
        )
        self.compare_iters(iter, iter2)

    @cartesian_params(
        ((1, 1), (4, 5)),  # (epoch size, batch size)
        (0, 4, 11),  # test iterations
        ("idx", "batch_info", "sample_info"),  # indexing mode
        (True, False),  # parallel
    )
    def test_external_source_checkpointing(self, dataset_info, iterations, mode, parallel):
        epoch_size, batch_size = dataset_info
        source = make_dummy_source(epoch_size, batch_size, mode)
        pf = make_external_source_test_pipeline_factory(source, mode, batch_size, parallel)
        self.check_external_source_pipeline_checkpointing(pf, iterations, size=epoch_size * batch_size)

    def test_reset(self):
        def make_iter(pipe):
            return self.FwIterator(
                pipe,
                output_map=self.output_map(with_labels=False),
                auto_reset=False,
                reader_name="Reader",
            )

        def is_empty(it):
            try:
                next(it)
                return False
            except StopIteration:
                return True

        @pipeline_def(
            batch_size=1,
            enable_checkpointing=True,
            num_threads=4,
            device_id=0,
        )
        def pipeline():
            data, _ = fn.readers.file(file_root=images_dir, name="Reader")
            return data

        pipe = pipeline()
        it = make_iter(pipe)

        for _ in it:
            pass

        checkpoint_before_reset = it.checkpoints()[0]
        it.reset()
        checkpoint_after_reset = it.checkpoints()[0]

        pipe_before_reset = pipeline(checkpoint=checkpoint_before_reset)
        it_before_reset = make_iter(pipe_before_reset)
        assert is_empty(it_before_reset)

        pipe_after_reset = pipeline(checkpoint=checkpoint_after_reset)
        it_after_reset = make_iter(pipe_after_reset)
        assert not is_empty(it_after_reset)

    @params(0, 3)
    def test_multiple_restores(self, warmup_iters):
        def make_iter(pipe):
            return self.FwIterator(
                pipe,
                output_map=self.output_map(with_labels=False),
                auto_reset=False,
                size=100,
            )

        @pipeline_def(
            batch_size=1,
            enable_checkpointing=True,
            num_threads=4,
            device_id=0,
        )
        def pipeline():
            return fn.random.uniform()

        pipe = pipeline()
        it = make_iter(pipe)

        for _ in range(warmup_iters):
            next(it)

        pipe2 = pipeline(checkpoint=it.checkpoints()[0])
        it2 = make_iter(pipe2)

        pipe3 = pipeline(checkpoint=it2.checkpoints()[0])
        it3 = make_iter(pipe3)

        self.compare_iters(it2, it3)


# Framework tests


class TestPytorch(FwTestBase):
    def setup_method(self):  # ADAPTED: DALI sets FwIterator in __init__
        pytest.importorskip("torch", reason="PyTorch is not installed (pip install pipestate[torch])")
        from pipestate.plugin.pytorch import DALIGenericIterator

        self.FwIterator = DALIGenericIterator

    def equal(self, a, b):
        return (a == b).all()

    def supported_last_batch_policies(self):
        return (
            # (last_batch_policy, pad_last_batch)
            (LastBatchPolicy.DROP, True),
            (LastBatchPolicy.DROP, False),
            (LastBatchPolicy.FILL, True),
            (LastBatchPolicy.FILL, False),
            (LastBatchPolicy.PARTIAL, False),
            (LastBatchPolicy.PARTIAL, True),
        )


class TestPytorchRagged(FwTestBase):
    def setup_method(self):  # ADAPTED
        pytest.importorskip("torch", reason="PyTorch is not installed (pip install pipestate[torch])")
        from pipestate.plugin.pytorch import DALIRaggedIterator

        self.FwIterator = DALIRaggedIterator

    def equal(self, a, b):
        return (a == b).all()

    def supported_last_batch_policies(self):
        return (
            # (last_batch_policy, pad_last_batch)
            (LastBatchPolicy.DROP, True),
            (LastBatchPolicy.DROP, False),
            (LastBatchPolicy.FILL, True),
            (LastBatchPolicy.FILL, False),
            (LastBatchPolicy.PARTIAL, False),
            (LastBatchPolicy.PARTIAL, True),
        )


class TestJax(FwTestBase):
    def setup_method(self):  # ADAPTED
        pytest.importorskip("jax", reason="JAX is not installed (pip install pipestate[jax])")
        from pipestate.plugin.jax import DALIGenericIterator

        self.FwIterator = DALIGenericIterator

    def compare_outs(self, out1, out2):
        for key in out1.keys():
            assert (out1[key] == out2[key]).all()

    def supported_last_batch_policies(self):
        return (
            # (last_batch_policy, pad_last_batch)
            (LastBatchPolicy.DROP, True),
            (LastBatchPolicy.DROP, False),
            (LastBatchPolicy.FILL, True),
            (LastBatchPolicy.FILL, False),
        )

    def test_decorator(self):
        from pipestate.plugin.jax import data_iterator

        self.check_decorator(data_iterator)

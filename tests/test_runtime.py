"""The runtime releases each intermediate batch as soon as its last consumer has run, keeps what is still
needed (pipeline outputs, batches used again later), and checks every output batch."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def
from pipestate.batch import Batch
from pipestate.operators import Operator, register, unregister


@pytest.fixture
def probes():
    """``fn.test.make`` (a batch whose array is watched) and ``fn.test.check`` (asserts which are alive)."""
    made: dict[str, weakref.ref] = {}
    seen: list[dict[str, bool]] = []

    @register
    class Make(Operator):
        """Produce a watched batch named ``tag``."""

        type = "test.make"
        ARGS = ()

        def run(self, ctx, inputs, arg_inputs):
            data = np.full((ctx.batch_size, 4), len(made), dtype=np.float32)
            made[self.name] = weakref.ref(data)
            return (Batch(data),)

    @register
    class Check(Operator):
        """Record which watched batches are alive, pass the first input through."""

        type = "test.check"

        def run(self, ctx, inputs, arg_inputs):
            seen.append({name: ref() is not None for name, ref in made.items()})
            return (inputs[0],)

    yield made, seen
    unregister("test.make")
    unregister("test.check")


def test_an_intermediate_is_freed_after_its_last_consumer(probes):
    made, seen = probes

    @pipeline_def(batch_size=2, seed=1, prefetch_queue_depth=1)
    def pipe():
        a = fn.test.make(name="a")
        b = a * 2.0  # a's last consumer
        kept = fn.test.make(name="kept")
        c = fn.test.check(b, name="probe1")  # a is gone; kept is used again below
        return fn.test.check(c + kept, name="probe2"), kept

    p = pipe()
    p.run()
    assert seen[0] == {"a": False, "kept": True}
    assert seen[1]["kept"] is True  # a pipeline output: never freed early
    p.close()


def test_an_output_batch_mixing_types_is_an_error_naming_the_operator():
    @register
    class Mixed(Operator):
        """Return samples of two element types."""

        type = "test.mixed"

        def run(self, ctx, inputs, arg_inputs):
            return (Batch([np.zeros(2, np.float32), np.zeros(2, np.int32)][: ctx.batch_size]),)

    try:

        @pipeline_def(batch_size=2, seed=1)
        def pipe():
            return fn.test.mixed()

        with pytest.raises(OperatorError, match=r"'test.mixed_0' \(test.mixed\) produced output 0 with samples of"):
            pipe().run()
    finally:
        unregister("test.mixed")


def test_a_sample_error_keeps_the_original_exception_as_its_cause(tmp_path):
    import numpy as np

    @pipeline_def(batch_size=2, seed=1)
    def pipe():
        path = np.frombuffer(str(tmp_path / "missing.bin").encode(), np.uint8)
        return fn.io.file.read(fn.external_source(source=lambda: [path, path]))

    with pytest.raises(OperatorError, match=r"io.file.read_0.*sample 0.*missing.bin") as info:
        pipe().run()
    assert isinstance(info.value.__cause__, FileNotFoundError)

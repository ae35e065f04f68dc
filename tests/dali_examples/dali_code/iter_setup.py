# From DALI's dali/test/python/test_external_source_dali.py (test_iter_setup; Apache-2.0, NVIDIA): a class-style
# pipeline fed through iter_setup() and feed_input(), ending its epoch with StopIteration. Verbatim but for
# the `build` function at the end, which the tests call.
import numpy as np
from nvidia.dali.pipeline import Pipeline
import nvidia.dali.ops as ops


class TestIterator:
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        self.i = 0
        return self

    def __next__(self):
        batch_1 = []
        batch_2 = []
        if self.i < self.n:
            batch_1.append(np.arange(0, 1, dtype=float))
            batch_2.append(np.arange(0, 1, dtype=float))
            self.i += 1
            return batch_1, batch_2
        else:
            self.i = 0
            raise StopIteration

    next = __next__


class IterSetupPipeline(Pipeline):
    def __init__(self, iterator, num_threads, device_id, **kwargs):
        super().__init__(1, num_threads, device_id, **kwargs)
        self.input_1 = ops.ExternalSource()
        self.input_2 = ops.ExternalSource()
        self.iterator = iterator

    def define_graph(self):
        self.batch_1 = self.input_1()
        self.batch_2 = self.input_2()
        return [self.batch_1, self.batch_2]

    def iter_setup(self):
        batch_1, batch_2 = next(self.iterator)
        self.feed_input(self.batch_1, batch_1)
        self.feed_input(self.batch_2, batch_2)


def build(device_id, skip=0, **kwargs):
    """The pipeline of DALI's test, its feeder moved on by ``skip`` batches (a restored pipeline's position)."""
    iterator = iter(TestIterator(5))
    for _ in range(skip):
        next(iterator)
    return IterSetupPipeline(iterator, 3, device_id, **kwargs)

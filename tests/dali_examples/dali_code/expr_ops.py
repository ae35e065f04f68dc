# From DALI's dali/test/python/test_arithmetic_ops.py (ExprOpPipeline and its input iterator; Apache-2.0,
# NVIDIA): class-style, two ExternalSource objects fed from iter_setup(), an arithmetic expression on them.
# The iterator draws from a seeded generator here (DALI's uses np.random), and `build` is added.
import numpy as np
from nvidia.dali.pipeline import Pipeline
import nvidia.dali.ops as ops


class ExternalInputIterator(object):
    def __init__(self, batch_size, left_type, right_type, shape):
        self.batch_size = batch_size
        self.left_type = left_type
        self.right_type = right_type
        self.rng = np.random.default_rng(1234)
        self.shape = shape

    def __iter__(self):
        return self

    def __next__(self):
        left = []
        right = []
        for sample in range(self.batch_size):
            left.append(self.rng.integers(1, 100, self.shape).astype(self.left_type))
            right.append(self.rng.integers(1, 100, self.shape).astype(self.right_type))
        return (left, right)

    next = __next__


class ExprOpPipeline(Pipeline):
    def __init__(self, dev, iterator, op, batch_size, num_threads, device_id, **kwargs):
        super(ExprOpPipeline, self).__init__(batch_size, num_threads, device_id, seed=12, **kwargs)
        self.left_source = ops.ExternalSource()
        self.right_source = ops.ExternalSource()
        self.dev = dev
        self.iterator = iterator
        self.op = op

    def define_graph(self):
        self.left = self.left_source()
        self.right = self.right_source()
        if self.dev == "cpu_cpu":
            return self.left, self.right, self.op(self.left, self.right)
        else:
            return self.left, self.right, self.op(self.left.gpu(), self.right.gpu())

    def iter_setup(self):
        (l, r) = self.iterator.next()
        self.feed_input(self.left, l)
        self.feed_input(self.right, r)


def build(device_id, skip=0, **kwargs):
    iterator = ExternalInputIterator(4, np.uint8, np.int16, (3, 5))
    for _ in range(skip):
        next(iterator)
    return ExprOpPipeline("cpu_cpu", iterator, lambda l, r: (l * r + 3) // (l | 1), 4, 2, device_id, **kwargs)

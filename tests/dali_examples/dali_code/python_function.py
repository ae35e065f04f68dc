# After DALI's dali/test/python/operator_1/test_python_function.py (Apache-2.0, NVIDIA): a class-style pipeline
# with ops.ExternalSource fed in iter_setup(), ops.PythonFunction and ops.Cast, and a random operator.
# The data iterator is a seeded stand-in; `build` is added.
import numpy as np
from nvidia.dali.pipeline import Pipeline
import nvidia.dali.ops as ops
import nvidia.dali.types as types


def Square(image):
    return image * image


class RandomDataIterator:
    def __init__(self, batch_size, shape):
        self.rng = np.random.default_rng(42)
        self.batch_size = batch_size
        self.shape = shape

    def __iter__(self):
        return self

    def __next__(self):
        return [self.rng.integers(0, 255, self.shape, dtype=np.uint8) for _ in range(self.batch_size)]

    next = __next__


class PythonOperatorPipeline(Pipeline):
    def __init__(self, function, batch_size, iterator, num_threads=1, device_id=0, **kwargs):
        super().__init__(batch_size, num_threads, device_id, seed=12, exec_async=False, exec_pipelined=False, **kwargs)
        self.iterator = iterator
        self.inputs = ops.ExternalSource()
        self.python_function = ops.PythonFunction(function=function)
        self.cast = ops.Cast(dtype=types.FLOAT)
        self.coin = ops.random.CoinFlip(probability=0.3)

    def define_graph(self):
        self.data = self.inputs()
        out = self.python_function(self.data)
        return self.cast(out), self.coin()

    def iter_setup(self):
        data = self.iterator.next()
        self.feed_input(self.data, data, layout="HWC")


def build(device_id, skip=0, **kwargs):
    iterator = RandomDataIterator(3, (4, 5, 3))
    for _ in range(skip):
        next(iterator)
    return PythonOperatorPipeline(Square, 3, iterator, 2, device_id, **kwargs)

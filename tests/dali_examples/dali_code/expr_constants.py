# From DALI's docs/examples/general/expressions/expr_examples.ipynb (Apache-2.0, NVIDIA): a callable without
# arguments as the source (which neither DALI nor pipestate can capture: after a restore it is called
# again, as DALI does), constants and types.Constant(...).float32(). `build` wraps the notebook's cells.
import numpy as np
from nvidia.dali.pipeline import Pipeline
import nvidia.dali.fn as fn
import nvidia.dali.types as types
from nvidia.dali.types import Constant

left_magic_values = [[[42, 7, 0], [0, 0, 0]], [[5, 10, 15], [10, 100, 1000]]]

right_magic_values = [[[3, 3, 3], [1, 3, 5]], [[1, 5, 5], [1, 1, 1]]]

batch_size = len(left_magic_values)


def convert_batch(batch):
    return [np.int32(tensor) for tensor in batch]


def get_data():
    return (convert_batch(left_magic_values), convert_batch(right_magic_values))


def build(device_id, skip=0, **kwargs):
    pipe = Pipeline(batch_size=batch_size, num_threads=4, device_id=device_id, **kwargs)
    with pipe:
        l, r = fn.external_source(source=get_data, num_outputs=2)
        add_200 = l + 200
        mul_075 = l * 0.75
        sub_15 = Constant(15).float32() - r
        div_result = l // r
        pipe.set_outputs(l, r, add_200, mul_075, sub_15, div_result, l + types.Constant(1).uint8())
    return pipe

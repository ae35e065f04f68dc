"""``fn.readers.*``: file, numpy and TFRecord readers with DALI's sharding and O(1) restore.

The sample order is a pure function of a few numbers (``_sampler``); the reader base class (``_base``)
turns it into batches and keeps the position as its checkpoint state.
"""

from pipestate.operators.readers import caffe, caffe2, file, mxnet, nemo_asr, numpy, sequence, tfrecord, webdataset  # noqa: F401
from pipestate.operators.readers._base import Reader

__all__ = ["Reader"]

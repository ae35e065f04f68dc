# After DALI's getting-started example (docs/examples/getting_started.ipynb of DALI 0.x, class style; Apache-2.0,
# NVIDIA): ops.FileReader with random shuffling and a random operator, here without the decoding and
# rotation (not implemented yet); and DALI's class-style TFRecord reader (ops.TFRecordReader). `build` added.
from nvidia.dali.pipeline import Pipeline
import nvidia.dali.ops as ops
import nvidia.dali.tfrecord as tfrec
import nvidia.dali.types as types


class RandomRotatedSimplePipeline(Pipeline):
    def __init__(self, batch_size, num_threads, device_id, image_dir, **kwargs):
        super(RandomRotatedSimplePipeline, self).__init__(batch_size, num_threads, device_id, seed=12, **kwargs)
        self.input = ops.FileReader(file_root=image_dir, random_shuffle=True, initial_fill=21)
        self.rng = ops.Uniform(range=(-10.0, 10.0))
        self.cast = ops.Cast(dtype=types.INT32)

    def define_graph(self):
        jpegs, labels = self.input(name="Reader")
        angle = self.rng()
        return (jpegs, labels, self.cast(angle * 10))


class TFRecordPipeline(Pipeline):
    def __init__(self, batch_size, num_threads, device_id, path, index_path, **kwargs):
        super(TFRecordPipeline, self).__init__(batch_size, num_threads, device_id, **kwargs)
        self.input = ops.TFRecordReader(
            path=path,
            index_path=index_path,
            features={
                "image/encoded": tfrec.FixedLenFeature((), tfrec.string, ""),
                "image/class/label": tfrec.FixedLenFeature([1], tfrec.int64, -1),
            },
        )
        self.coin = ops.random.CoinFlip(probability=0.5)

    def define_graph(self):
        inputs = self.input(name="Reader")
        images = inputs["image/encoded"]
        labels = inputs["image/class/label"]
        return images, labels, self.coin()

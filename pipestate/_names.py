"""DALI's names for operators: the ``ops`` class of an ``fn`` path, and DALI's deprecated flat aliases.

DALI names an operator by its class (``readers__File``) and derives the ``fn`` function by snake-casing
it (``nvidia/dali/fn/__init__.py``: ``_to_snake_case``, with the special cases ``b_box`` -> ``bbox``,
``mx_net`` -> ``mxnet``, ``tf_record`` -> ``tfrecord``). pipestate registers operators by their ``fn``
path, so it goes the other way: each word of the snake-case name is capitalized, except the acronyms
DALI keeps in capitals (:data:`ACRONYMS`). ``tests/test_dali_names.py`` checks the rule on every operator
of the installed DALI, so ``class_path("readers.coco") == ("readers", "COCO")`` as in DALI.
"""

from __future__ import annotations

from typing import NamedTuple

# Words DALI writes in capitals (or mixed case) in class names; every other word is capitalized.
ACRONYMS = {
    "bbox": "BBox",
    "coco": "COCO",
    "dl": "DL",
    "mfcc": "MFCC",
    "mxnet": "MXNet",
    "rms": "RMS",
    "roi": "ROI",
    "ssd": "SSD",
    "tfrecord": "TFRecord",
}


def class_name(leaf: str) -> str:
    """DALI's class name for an ``fn`` function name: ``"coin_flip"`` -> ``"CoinFlip"``, ``"coco"`` -> ``"COCO"``."""
    return "".join(ACRONYMS.get(word, word[:1].upper() + word[1:]) for word in leaf.split("_"))


def class_path(op_type: str) -> tuple[list[str], str]:
    """The ``ops`` module path and class name of the operator registered as ``op_type`` (its ``fn`` path).

    ``"readers.file"`` -> ``(["readers"], "File")``; ``"crop_mirror_normalize"`` -> ``([], "CropMirrorNormalize")``.
    """
    *path, leaf = op_type.split(".")
    return path, class_name(leaf)


class Alias(NamedTuple):
    """A deprecated name DALI keeps for an operator: the ``ops`` class path, the ``fn`` path, the operator."""

    ops: str
    fn: str
    target: str


# DALI's deprecated names that are the same operator under an older name (DALI 2.4: the schemas marked
# deprecated in favour of another; `tests/test_dali_names.py` checks this table against DALI). Left out:
# DALI's deprecated operators that are distinct implementations (FastResizeCropMirror, SSDRandomCrop,
# Shapes): they get their own class when implemented. An alias appears once its target is registered.
ALIASES = tuple(
    Alias(*row)
    for row in [
        ("AudioDecoder", "audio_decoder", "decoders.audio"),
        ("COCOReader", "coco_reader", "readers.coco"),
        ("Caffe2Reader", "caffe2_reader", "readers.caffe2"),
        ("CaffeReader", "caffe_reader", "readers.caffe"),
        ("CoinFlip", "coin_flip", "random.coin_flip"),
        ("FileReader", "file_reader", "readers.file"),
        ("ImageDecoder", "image_decoder", "decoders.image"),
        ("ImageDecoderCrop", "image_decoder_crop", "decoders.image_crop"),
        ("ImageDecoderRandomCrop", "image_decoder_random_crop", "decoders.image_random_crop"),
        ("ImageDecoderSlice", "image_decoder_slice", "decoders.image_slice"),
        ("MXNetReader", "mxnet_reader", "readers.mxnet"),
        ("NemoAsrReader", "nemo_asr_reader", "readers.nemo_asr"),
        ("NormalDistribution", "normal_distribution", "random.normal"),
        ("NumpyReader", "numpy_reader", "readers.numpy"),
        ("SequenceReader", "sequence_reader", "readers.sequence"),
        ("TFRecordReader", "tfrecord_reader", "readers.tfrecord"),
        ("TransformTranslation", "transform_translation", "transforms.translation"),
        ("Uniform", "uniform", "random.uniform"),
        ("VideoReader", "video_reader", "readers.video"),
        ("VideoReaderResize", "video_reader_resize", "readers.video_resize"),
        ("experimental.AudioResample", "experimental.audio_resample", "audio_resample"),
        ("experimental.Debayer", "experimental.debayer", "debayer"),
        ("experimental.Equalize", "experimental.equalize", "equalize"),
        ("experimental.Filter", "experimental.filter", "filter"),
        ("experimental.Inflate", "experimental.inflate", "decoders.inflate"),
        ("experimental.PeekImageShape", "experimental.peek_image_shape", "peek_image_shape"),
        ("experimental.TensorResize", "experimental.tensor_resize", "tensor_resize"),
        ("experimental.decoders.Image", "experimental.decoders.image", "decoders.image"),
        ("experimental.decoders.ImageCrop", "experimental.decoders.image_crop", "decoders.image_crop"),
        (
            "experimental.decoders.ImageRandomCrop",
            "experimental.decoders.image_random_crop",
            "decoders.image_random_crop",
        ),
        ("experimental.decoders.ImageSlice", "experimental.decoders.image_slice", "decoders.image_slice"),
        ("experimental.decoders.Video", "experimental.decoders.video", "decoders.video"),
    ]
)


def aliases_of(op_type: str) -> list[Alias]:
    """DALI's deprecated aliases of the operator registered as ``op_type``."""
    return [a for a in ALIASES if a.target == op_type]


def deprecation_message(api: str, old: str, op_type: str) -> str:
    """DALI's warning for a deprecated alias (``api``: ``"ops"`` or ``"fn"``), with pipestate's module names."""
    return f"WARNING: `pipestate.{api}.{old}` is now deprecated. Use `pipestate.fn.{op_type}` instead."

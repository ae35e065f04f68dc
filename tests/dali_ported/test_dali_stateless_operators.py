# Port of DALI's dali/test/python/checkpointing/test_dali_stateless_operators.py
# (NVIDIA/DALI commit b2d19acdabb3c7d41f735fc7b9973d5dad81a858; Apache-2.0, Copyright (c) 2023-2024 NVIDIA
# CORPORATION & AFFILIATES): the tests of the operators pipestate has, with DALI's structure, function names,
# parameters and checks. Changed: `nvidia.dali` -> `pipestate` in the imports, and DALI's test utilities
# (test_utils, nose_utils, nose2.tools) come from dali_test_utils.
# Not ported (see tests/dali_ported/README.md): the operators pipestate lacks and GPU-only cases.

import os

import numpy as np

from pipestate import fn, pipeline_def, types
from tests.dali_ported.dali_test_utils import (
    assert_raises,
    attr,
    compare_pipelines,
    create_sign_off_decorator,
    get_dali_extra_path,
    params,
)

# Test configuration
batch_size = 8
test_data_shape = [40, 60, 3]
test_data_layout = "HWC"


stateless_signed_off = create_sign_off_decorator()


def tensor_list_to_array(tensor_list):
    return tensor_list.as_cpu().as_array()


# A pipeline is stateless when a used one and a fresh one produce the same batches
def check_is_pipeline_stateless(pipeline_factory, iterations=10):
    args = {
        "batch_size": batch_size,
        "num_threads": 4,
        "device_id": 0,
        "exec_async": True,
        "exec_pipelined": True,
    }

    pipe = pipeline_factory(**args)
    for _ in range(iterations):
        pipe.run()

    compare_pipelines(pipe, pipeline_factory(**args), batch_size, iterations)


# The same random batch at every call
class RandomBatch:
    def __init__(self, data_shape=test_data_shape, dtype=np.uint8):
        rng = np.random.default_rng(1234)
        self.batch = [rng.integers(255, size=data_shape, dtype=np.uint8).astype(dtype) for _ in range(batch_size)]

    def __call__(self):
        return self.batch


def move_to(tensor, device):
    return tensor.gpu() if device == "gpu" else tensor


def check_single_filepath_input(op, device, **kwargs):
    @pipeline_def(enable_checkpointing=True)
    def pipeline_factory():
        path_str = os.path.join(get_dali_extra_path(), "db/single/jpeg/100/swan-3584559_640.jpg")
        path = np.frombuffer(path_str.encode(), dtype=np.int8)
        return op(move_to(path, device), device=device, **kwargs)

    check_is_pipeline_stateless(pipeline_factory)


def check_single_input(op, device, **kwargs):
    @pipeline_def(enable_checkpointing=True)
    def pipeline_factory():
        data = fn.external_source(source=RandomBatch(), layout=test_data_layout, batch=True)
        return op(move_to(data, device), device=device, **kwargs)

    check_is_pipeline_stateless(pipeline_factory)


def check_single_signal_input(op, device, **kwargs):
    @pipeline_def(enable_checkpointing=True)
    def pipeline_factory():
        data = fn.external_source(source=RandomBatch(data_shape=[30, 40], dtype=np.float32), layout="ft", batch=True)
        return op(move_to(data, device), device=device, **kwargs)

    check_is_pipeline_stateless(pipeline_factory)


def check_single_1d_input(op, device, **kwargs):
    @pipeline_def(enable_checkpointing=True)
    def pipeline_factory():
        data = fn.external_source(source=RandomBatch(data_shape=[100], dtype=np.float32), batch=True)
        return op(move_to(data, device), device=device, **kwargs)

    check_is_pipeline_stateless(pipeline_factory)


def check_single_encoded_audio_input(op, device, **kwargs):
    @pipeline_def(enable_checkpointing=True)
    def pipeline_factory():
        wav = os.path.join(get_dali_extra_path(), "db/audio/wav/237-134500-0000.wav")
        audio, _ = fn.readers.file(files=[wav], pad_last_batch=True)
        return op(move_to(audio, device), device=device, **kwargs)

    check_is_pipeline_stateless(pipeline_factory)


def check_no_input(op, device, **kwargs):
    @pipeline_def(enable_checkpointing=True)
    def pipeline_factory():
        return op(device=device, **kwargs)

    check_is_pipeline_stateless(pipeline_factory)


@params("cpu", "gpu")
def test_stateful(device):
    assert_raises(
        AssertionError,
        check_single_input,
        fn.random.coin_flip,
        device,
        glob="Mean error: *, Min error: *, Max error: *Total error count: *, Tensor size: *Index in batch: 0",
    )


@params("cpu", "gpu")
@stateless_signed_off("constant", "hidden.constant")
def test_constant_stateless(device):
    check_no_input(fn.constant, device, idata=[1, 2, 3])


@params("cpu", "gpu")
@stateless_signed_off("tensor_subscript", "hidden.tensor_subscript")
def test_tensor_subscript_stateless(device):
    check_single_input(lambda x, **kwargs: x[0, :, 2:4:-1], device)


@params("cpu", "gpu")
@stateless_signed_off("subscript_dim_check", "hidden.subscript_dim_check")
def test_subscript_dim_check(device):
    check_single_input(lambda x, **kwargs: x[:], device)


@attr("cupy")
@params("cpu", "gpu")
@stateless_signed_off("python_function")
def test_python_function_stateless(device):
    def wrapper(x, **kwargs):
        return fn.python_function(x, function=lambda x: x * 2, **kwargs)

    check_single_input(wrapper, device)


@params("cpu", "gpu")
@stateless_signed_off("cast_like")
def test_cast_like_stateless(device):
    @pipeline_def(enable_checkpointing=True)
    def pipeline_factory():
        return fn.cast_like(np.array([1, 2, 3], dtype=np.int32), np.array([1.0], dtype=np.float32), device=device)

    check_is_pipeline_stateless(pipeline_factory)


@params("cpu", "gpu")
@stateless_signed_off("cast")
def test_cast_stateless(device):
    @pipeline_def(enable_checkpointing=True)
    def pipeline_factory():
        return fn.cast(np.array([1, 2, 3], dtype=np.int32), dtype=types.DALIDataType.INT16, device=device)

    check_is_pipeline_stateless(pipeline_factory)


def arithm_ops_outputs(data):
    return (
        data * 2,
        data + 2,
        data - 2,
        data / 2,
        data // 2,
        data**2,
        data == 2,
        data != 2,
        data < 2,
        data <= 2,
        data > 2,
        data >= 2,
        data & 2,
        data | 2,
        data ^ 2,
    )


@params("cpu", "gpu")
@stateless_signed_off("preemphasis_filter")
def test_preemphasis_filter_stateless(device):
    check_single_input(fn.preemphasis_filter, device)


@params("cpu", "gpu")
@stateless_signed_off("spectrogram")
def test_spectrogram_stateless(device):
    check_single_1d_input(fn.spectrogram, device)


@stateless_signed_off("power_spectrum")
def test_power_spectrum_stateless():
    check_single_signal_input(fn.power_spectrum, "cpu")


@params("cpu", "gpu")
@stateless_signed_off("mel_filter_bank")
def test_mel_filter_bank_stateless(device):
    check_single_signal_input(fn.mel_filter_bank, device)


@params("cpu", "gpu")
@stateless_signed_off("mfcc")
def test_mfcc_stateless(device):
    check_single_signal_input(fn.mfcc, device)


@params("cpu", "gpu")
@stateless_signed_off("nonsilent_region")
def test_nonsilent_region_stateless(device):
    check_single_1d_input(lambda *args, **kwargs: fn.nonsilent_region(*args, **kwargs)[0], device)


@params("cpu", "gpu")
@stateless_signed_off("audio_resample", "experimental.audio_resample")
def test_audio_resample_stateless(device):
    check_single_signal_input(fn.audio_resample, device, scale=0.5)


@params("cpu", "gpu")
@stateless_signed_off("to_decibels")
def test_to_decibels_stateless(device):
    check_single_signal_input(fn.to_decibels, device)


@stateless_signed_off("decoders.audio", "audio_decoder")
def test_audio_decoder_stateless():
    def audio_decoder_wrapper(*args, **kwargs):
        return fn.decoders.audio(*args, **kwargs)[0]

    check_single_encoded_audio_input(audio_decoder_wrapper, "cpu")


@params("cpu", "gpu")
@stateless_signed_off("hidden.arithmetic_generic_op", "arithmetic_generic_op")
def test_arithm_ops_stateless_cpu(device):
    @pipeline_def(enable_checkpointing=True)
    def pipeline_factory():
        data = fn.external_source(source=RandomBatch(), layout="HWC")
        return arithm_ops_outputs(move_to(data, device))

    check_is_pipeline_stateless(pipeline_factory)


@params("cpu", "gpu")
@stateless_signed_off(
    "_conditional.hidden.not_",
    "_conditional.hidden.validate_logical",
    "_conditional.not_",
    "_conditional.validate_logical",
)
def test_logic_ops(device):
    @pipeline_def(enable_conditionals=True, enable_checkpointing=True)
    def pipeline_factory():
        data = fn.external_source(source=RandomBatch(), layout="HWC")
        if device == "gpu":
            data = data.gpu()
        condition_1 = fn.external_source(source=RandomBatch(data_shape=())) < 125
        condition_2 = fn.external_source(source=RandomBatch(data_shape=())) >= 125
        condition_3 = fn.external_source(source=RandomBatch(data_shape=())) <= 100
        if condition_1 and not condition_2 or not condition_3:
            return data
        else:
            return data + 1

    check_is_pipeline_stateless(pipeline_factory)


@params("cpu", "gpu")
@stateless_signed_off(
    "_conditional.hidden.merge",
    "_conditional.hidden.split",
    "_conditional.merge",
    "_conditional.split",
)
def test_split_and_merge(device):
    @pipeline_def(enable_conditionals=True, enable_checkpointing=True)
    def pipeline_factory():
        data = fn.external_source(source=RandomBatch(), layout="HWC")
        if device == "gpu":
            data = data.gpu()
        condition = fn.external_source(source=RandomBatch(data_shape=())) <= 130
        if condition:
            return data
        else:
            return data + types.Constant(1, dtype=types.DALIDataType.UINT8)

    check_is_pipeline_stateless(pipeline_factory)


@params("cpu")
@stateless_signed_off("io.file.read")
def test_io_file_read(device):
    check_single_filepath_input(fn.io.file.read, device)

"""Pipeline options: the values DALI accepts, pipestate accepts (issue 15, item 4).

Every option of DALI's ``Pipeline`` is probed with the same values in DALI and in pipestate (a pipeline
is defined and built with the option set): both accept, or both refuse. The values are each option's
boundaries and wrong types. Where pipestate deliberately differs, :data:`DELIBERATE` says why (and
``docs/migrating-from-dali.md`` lists it); the test checks that those values still differ, so the list
stays true.
"""

from __future__ import annotations

import gc
import inspect
import warnings
from typing import Any

import numpy as np
import pytest

import pipestate

dali = pytest.importorskip("nvidia.dali", reason="DALI (nvidia-dali-cuda120) is not installed")
# A DALI Pipeline whose constructor raised fails again in __del__ (no _pipe yet): collected in _accepts.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

# option -> values (a value, or lib -> value for what each library names itself: types, enums)
PROBES: dict[str, list[Any]] = {
    "batch_size": [1, 2, 2**31 - 1, 2**31, 0, -1, 2.0, True, "2", None, np.int32(3), np.uint64(3)],
    "num_threads": [1, 4, 256, 1000, 0, -1, -2, None, 2.0, True, np.int64(2), "2"],
    "device_id": [None],  # DALI needs CUDA for a device id; pipestate accepts any int (it runs on the CPU)
    "seed": [None, 0, -1, -2, -(2**63), -(2**63) - 1, 2**63 - 1, 2**63, 1.5, True, "1", np.int64(5), np.uint64(5)],
    "prefetch_queue_depth": [
        1,
        2,
        64,
        65,
        128,
        2**31 - 1,
        2**31,
        0,
        -1,
        True,
        2.0,
        None,
        {"cpu_size": 2, "gpu_size": 2},
        {"cpu_size": 128, "gpu_size": 2},
        {"cpu_size": 2},
        {},
        {"cpu_size": 0, "gpu_size": 2},
        {"cpu_size": 2, "gpu_size": 0},
        {"cpu_size": 2.0, "gpu_size": 2},
        {"cpu_size": 2, "gpu_size": 2, "x": 1},
    ],
    "exec_pipelined": [True, False, 1, 0, -1, 1.5, None, np.bool_(True), "yes", [1]],
    "exec_async": [True, False, 1, 2, None, np.float32(0.0), "x", b"x"],
    "exec_dynamic": [None, True, False, 1, "x"],
    "experimental_exec_dynamic": [None, True, False],
    "bytes_per_sample": [0, 1, -1, 2**63, 2**64 - 1, 2**64, 1.5, None, True],
    "set_affinity": [True, False, 1, None, 2.5, "x"],
    "max_streams": [None, -1, 5, "x", 1.5],
    "default_cuda_stream_priority": [None, 0, -1, "x"],
    "enable_memory_stats": [True, False, 1, None, "x"],
    "enable_checkpointing": [True, False, 1, 0, 2, 0.5, None, "x"],
    "checkpoint": [None],
    "py_num_workers": [0, 1, 4, 256, -1, 1.5, None, True],
    "py_start_method": ["fork", "spawn", "forkserver", "bogus", None, 1],
    "py_callback_pickler": [None, lambda lib: __import__("pickle")],
    "output_dtype": [
        None,
        lambda lib: lib.types.FLOAT,
        lambda lib: [lib.types.FLOAT],
        [None],
        lambda lib: [lib.types.INT32, None][:1],
        "float",
        np.float32,
        5,
        lambda lib: (lib.types.FLOAT,),
        lambda lib: [lib.types.FLOAT, lib.types.FLOAT],
    ],
    "output_ndim": [None, 0, 1, True, -1, [0], [-1], [None], "1", 1.5, (0,), np.int64(0), [0, 0]],
    "output_layout": [None, "", [""], [None], 5, [5], ("",)],
    "stream_policy": [None, lambda lib: lib.StreamPolicy.SINGLE, "x", 1],
    "concurrency": [None, lambda lib: lib.OperatorConcurrency.FULL, "x", 1],
}

# (option, repr of the value) -> why pipestate differs from DALI there
DELIBERATE = {
    ("batch_size", "True"): "a bool is not a number (DALI's rule for operator arguments)",
    ("num_threads", "True"): "a bool is not a number",
    ("seed", "True"): "a bool is not a number",
    ("bytes_per_sample", "True"): "a bool is not a number",
    ("py_num_workers", "True"): "a bool is not a number",
    ("num_threads", "None"): "pipestate's default is 1 (DALI requires num_threads; None fails when it builds)",
    ("prefetch_queue_depth", "{'cpu_size': 2, 'gpu_size': 2, 'x': 1}"): "an unknown key is a typo, not ignored",
    ("set_affinity", "'x'"): "a flag is None, a bool or a number (DALI takes any value's truth here, and "
    "refuses strings for every other flag)",
    ("py_num_workers", "-1"): "checked when the pipeline is created; DALI checks it only with a parallel source",
    ("py_num_workers", "1.5"): "checked when the pipeline is created; DALI checks it only with a parallel source",
    ("py_start_method", "'bogus'"): "checked when the pipeline is created; DALI only when it starts workers",
    ("py_start_method", "1"): "checked when the pipeline is created; DALI only when it starts workers",
}

NOT_DALI_OPTIONS = ["max_batch_size"]  # DALI's Pipeline has no such option: both refuse it


def _value(value: Any, lib: Any) -> Any:
    return value(lib) if callable(value) and not isinstance(value, type) else value


def _accepts(lib: Any, option: str, value: Any) -> tuple[bool, str]:
    """Whether ``lib`` defines and builds a pipeline with ``option=value`` (and what it raised)."""
    options = {"batch_size": 2, "num_threads": 1, "device_id": None, "seed": 1, option: _value(value, lib)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:

            @lib.pipeline_def(**options)
            def pipe():
                return lib.fn.random.uniform(range=[0.0, 1.0])

            built = pipe()
            built.build()
        except Exception as exc:  # noqa: BLE001 - any refusal counts (DALI's come from pybind11 too)
            error = f"{type(exc).__name__}: {exc}"[:200]
            del exc
            if lib is not pipestate:
                gc.collect()
            return False, error
    if hasattr(built, "close"):
        built.close()
    return True, ""


def _cases() -> list[tuple[str, Any]]:
    return [(option, value) for option, values in PROBES.items() for value in values]


def _id(value: Any) -> str:
    return repr(_value(value, pipestate))


def test_every_dali_pipeline_option_is_known_and_probed():
    from nvidia.dali import Pipeline as DaliPipeline

    dali_options = [p for p in inspect.signature(DaliPipeline.__init__).parameters if p != "self"]
    assert sorted(dali_options) == sorted(PROBES)
    missing = sorted(set(dali_options) - set(pipestate.pipeline.PIPELINE_OPTIONS))
    assert not missing, f"DALI options pipestate does not accept: {missing}"


@pytest.mark.parametrize(("option", "value"), _cases(), ids=[f"{o}={_id(v)}" for o, v in _cases()])
def test_an_option_value_is_accepted_exactly_when_dali_accepts_it(option, value):
    theirs, their_error = _accepts(dali, option, value)
    ours, our_error = _accepts(pipestate, option, value)
    reason = DELIBERATE.get((option, repr(value)))
    if reason is None:
        assert ours == theirs, f"DALI {'accepts' if theirs else f'refuses ({their_error})'}, pipestate " + (
            "accepts" if ours else f"refuses ({our_error})"
        )
    else:
        assert ours != theirs, (
            f"listed as a deliberate difference ({reason}), but both {'accept' if ours else 'refuse'}"
        )


@pytest.mark.parametrize("option", NOT_DALI_OPTIONS)
def test_options_dali_does_not_have_are_refused(option):
    assert not _accepts(dali, option, 2)[0]
    with pytest.raises(TypeError, match="unknown pipeline option"):
        pipestate.Pipeline(batch_size=2, **{option: 2})


def test_deliberate_differences_are_probed():
    probed = {(option, repr(value)) for option, value in _cases()}
    assert set(DELIBERATE) <= probed


def test_output_options_are_checked_at_run_time_as_dali():
    """output_dtype / output_ndim / output_layout: a batch that does not match is an error in both."""
    cases = [("output_dtype", lambda lib: lib.types.INT32), ("output_ndim", 2), ("output_layout", "HW")]
    for option, value in cases:
        for lib in (dali, pipestate):
            options = {"batch_size": 2, "num_threads": 1, "device_id": None, "seed": 1, option: _value(value, lib)}

            @lib.pipeline_def(**options)
            def pipe(lib=lib):
                return lib.fn.random.uniform(range=[0.0, 1.0], shape=[3])

            p = pipe()
            p.build()
            with pytest.raises(Exception, match="output|Layout|dimensions|type"):
                p.run()

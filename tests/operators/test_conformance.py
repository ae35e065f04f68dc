"""The registry-wide conformance suite: every registered operator, through its declared example, without
being listed anywhere.

For each operator: restore after every step across an epoch end (checkpoints byte-identical after the
restore), 1 vs 3 threads and prefetch depth 1 vs 3, the vectorized path equal to the per-sample path,
argument fuzzing from the schema (every bad value a clear error, never another exception or a hang), its
golden output and checkpoint (tests/golden/v2/operators/), and a DALI differential. The coverage tests
fail when an operator lacks its example, its golden or its DALI differential.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import os
import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipestate import OperatorError, testing
from pipestate.operators import REGISTRY
from pipestate.operators import schema as sch
from pipestate.operators._kit import SampleOperator
from pipestate.operators.example import Example, Tensor
from tests.golden import make_golden

OPS = sorted(REGISTRY)
ROOT = pathlib.Path(__file__).resolve().parents[2]
SLOW = os.environ.get("PIPESTATE_SLOW") == "1"


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A scratch working directory: examples that read files write their dataset to ``data/`` there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def setup_args(example: Example) -> dict | None:
    return testing.example_setup(example)


# ---- coverage ----------------------------------------------------------------------------------------------
def _marked_differentials() -> dict[str, set[str]]:
    """{test file: operator types named in ``pytest.mark.dali_differential(...)`` there} over tests/."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "dali_differential"
            ):
                names = {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
                found.setdefault(str(path.relative_to(ROOT)), set()).update(names)
    return found


def test_every_operator_has_an_example_a_golden_and_a_dali_differential():
    marked = _marked_differentials()
    problems = []
    for op_type in OPS:
        cls = REGISTRY[op_type]
        example = getattr(cls, "EXAMPLE", None)
        if not isinstance(example, Example):
            problems.append(f"{op_type}: no EXAMPLE (pipestate.operators.example.Example)")
            continue
        if not os.path.exists(make_golden.operator_dir(op_type)):
            problems.append(f"{op_type}: no golden; run `python -m tests.golden.make_golden operators`")
        dali = example.dali
        if dali.startswith("test:"):
            path = dali[len("test:") :].strip()
            if op_type not in marked.get(path, set()):
                problems.append(f"{op_type}: {path} has no test marked pytest.mark.dali_differential({op_type!r})")
        elif dali.startswith("none:"):
            if len(dali[len("none:") :].strip()) < 10:
                problems.append(f"{op_type}: dali='none: ...' needs a reason (what is checked instead)")
        elif dali != "exact" and not dali.startswith("close:"):
            problems.append(f"{op_type}: dali={dali!r} is not exact, close:<atol>, test:<file> or none: <reason>")
    assert not problems, "\n".join(problems)


def test_the_coverage_test_can_fail(monkeypatch):
    cls = REGISTRY["cast"]
    monkeypatch.setattr(cls, "EXAMPLE", dataclasses.replace(cls.EXAMPLE, dali="test:tests/operators/test_nothing.py"))
    with pytest.raises(AssertionError, match="cast: tests/operators/test_nothing.py has no test marked"):
        test_every_operator_has_an_example_a_golden_and_a_dali_differential()


# ---- restore, threads, prefetch -------------------------------------------------------------------------
@pytest.mark.parametrize("op_type", OPS)
def test_restores_at_every_step_and_is_thread_and_prefetch_independent(op_type, scratch):
    example = REGISTRY[op_type].EXAMPLE
    testing.check_operator(op_type, setup_args(example))


@pytest.mark.parametrize("op_type", [t for t in OPS if issubclass(REGISTRY[t], SampleOperator)])
def test_vectorized_path_equals_the_per_sample_path(op_type, scratch, monkeypatch):
    cls = REGISTRY[op_type]
    if cls.dense is SampleOperator.dense:
        pytest.skip(f"{op_type} has no vectorized path")
    example = cls.EXAMPLE
    uniform = dataclasses.replace(
        example,
        inputs=tuple(dataclasses.replace(t, ragged=()) for t in example.inputs),
        arg_inputs={k: dataclasses.replace(t, ragged=()) for k, t in example.arg_inputs.items()},
    )
    args = setup_args(example)
    fast, _ = testing.record(testing.example_pipeline(op_type, uniform, args), 4)
    monkeypatch.setattr(cls, "dense", lambda self, *a: None)
    slow, _ = testing.record(testing.example_pipeline(op_type, uniform, args), 4)
    testing.assert_events_equal(fast, slow, f"{op_type}: dense vs per-sample")


# ---- golden ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op_type", [t for t in OPS if os.path.exists(make_golden.operator_dir(t))])
def test_golden_checkpoint_restores_bit_identically(op_type, scratch):
    example = REGISTRY[op_type].EXAMPLE
    directory = make_golden.operator_dir(op_type)
    blob = pathlib.Path(directory, "checkpoint.cpt").read_bytes()
    saved = np.load(os.path.join(directory, "events.npz"))
    pipe = testing.example_pipeline(op_type, setup_args=setup_args(example), checkpoint=blob)
    events = make_golden.operator_steps(pipe, make_golden.OPERATOR_AFTER)
    pipe.close()
    expected = []
    for j in range(make_golden.OPERATOR_AFTER):
        if f"end{j}" in saved.files:
            expected.append(testing.END_OF_EPOCH)
            continue
        outputs, k = [], 0
        while f"step{j}_out{k}_sample0" in saved.files:
            outputs.append([saved[f"step{j}_out{k}_sample{i}"] for i in range(example.batch_size)])
            k += 1
        expected.append(tuple(outputs))
    testing.assert_events_equal(expected, events, f"{op_type} golden")


# ---- argument fuzzing ------------------------------------------------------------------------------------
_JUNK = st.sampled_from([object(), "x", b"\x00", {"a": 1}, [[1], [2, 3]], float("nan"), -(2**70), True, (), 1.5])


def _bad_values(kind: sch.Kind) -> st.SearchStrategy:
    """Values a kind should refuse, and values it accepts that an operator may still find wrong."""
    options = [_JUNK]
    if isinstance(kind, (sch.Int, sch.Float)):
        options.append(st.sampled_from([-1, 0, 1, 3, 2**31, -(2**31) - 1, 1e30, -1e-30, float("inf")]))
        for bound in (kind.low, kind.high):
            if bound is not None:
                options.append(st.sampled_from([bound - 1, bound + 1, bound]))
    if isinstance(kind, sch.Seq):
        options.append(st.lists(st.one_of(st.integers(-3, 20), st.floats(-2, 5), _JUNK), max_size=5))
    if isinstance(kind, sch.Str):
        options.append(st.sampled_from(["", "nonsense", "HWC", "cpu"]))
    return st.one_of(options)


_CLEAR = (TypeError, ValueError, OSError)  # what a bad argument may raise (wrapped in OperatorError at run time)


def _run_with(op_type: str, example: Example, args: dict | None) -> None:
    """Build and run the example; return quietly on a clear error, re-raise anything else."""
    pipe = None
    try:
        pipe = testing.example_pipeline(op_type, example, args)
        for _ in range(2):
            pipe.run()
    except (*_CLEAR, OperatorError) as exc:
        if isinstance(exc, OperatorError):
            cause = exc
            while isinstance(cause, OperatorError) and cause.__cause__ is not None:
                cause = cause.__cause__
            if not isinstance(cause, (*_CLEAR, OperatorError)) or isinstance(cause, (KeyError, IndexError)):
                raise
        return
    finally:
        if pipe is not None:
            pipe.close()


def _fuzzable(op_type: str) -> list[sch.Arg]:
    cls = REGISTRY[op_type]
    fixed = {"device", *cls.EXAMPLE.fixed}
    return [a for a in cls.SCHEMA if a.name not in fixed and not isinstance(a.kind, (sch.Anything, sch.Function))]


@pytest.mark.parametrize("op_type", [t for t in OPS if _fuzzable(t)])
def test_bad_arguments_are_clear_errors(op_type, scratch):
    cls = REGISTRY[op_type]
    example = cls.EXAMPLE
    args = setup_args(example)
    schema = _fuzzable(op_type)

    @settings(max_examples=60 if SLOW else 12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data):
        arg = data.draw(st.sampled_from(schema))
        value = data.draw(_bad_values(arg.kind))
        bad = dataclasses.replace(example, args={**example.args, arg.name: value})
        extra = {k: v for k, v in (args or {}).items() if k != arg.name}
        try:
            _run_with(op_type, bad, extra)
        except Exception as exc:  # noqa: BLE001 - the failure shows what escaped
            raise AssertionError(f"{op_type}({arg.name}={value!r}) raised {type(exc).__name__}: {exc}") from exc

    check()


def _bad_samples(kind: sch.Kind) -> list[Tensor]:
    """Per-sample values a ``DataNode`` argument of ``kind`` must refuse."""
    if isinstance(kind, sch.Seq):
        length = kind.length or 2
        return [
            Tensor("float32", (length + 1,), values=lambda i: np.zeros(3)),
            Tensor("float32", (length,), values=lambda i, n=length: np.full(n, np.nan)),
            Tensor("float32", (length, 2), values=lambda i, n=length: np.zeros((n, 2))),
        ]
    bad = [Tensor("float32", (3,), values=lambda i: np.zeros(3))]
    if isinstance(kind, sch.Float):
        bad.append(Tensor("float32", (), values=lambda i: np.nan if i == 2 else 0.5))
    for bound, step in ((getattr(kind, "low", None), -1), (getattr(kind, "high", None), 1)):
        if bound is not None and math.isfinite(bound + step):
            bad.append(Tensor("float64", (), values=lambda i, v=bound + step, ok=bound: v if i == 1 else ok))
    return bad


@pytest.mark.parametrize(
    "op_type", [t for t in OPS if any(a.tensor for a in REGISTRY[t].SCHEMA if a.name in REGISTRY[t].EXAMPLE.arg_inputs)]
)
def test_bad_per_sample_argument_values_name_the_argument_and_the_sample(op_type, scratch):
    cls = REGISTRY[op_type]
    example = cls.EXAMPLE
    for arg in [a for a in cls.SCHEMA if a.name in example.arg_inputs]:
        for spec in _bad_samples(arg.kind):
            bad = dataclasses.replace(example, arg_inputs={**example.arg_inputs, arg.name: spec})
            pipe = testing.example_pipeline(op_type, bad, setup_args(example))
            with pytest.raises(OperatorError, match=rf"{arg.name}.*sample \d"):
                for _ in range(2):
                    pipe.run()
            pipe.close()


# ---- DALI ----------------------------------------------------------------------------------------------------
def _to_dali(value):
    from nvidia.dali import types as dali_types

    if isinstance(value, np.dtype):
        return dali_types.to_dali_type(value.type)
    if isinstance(value, dict):
        return {k: _to_dali(v) for k, v in value.items()}
    return value


def dali_outputs(op_type: str, example: Example, args: dict | None, steps: int) -> list:
    """The example run by DALI's operator of the same name (CPU), with the same synthetic inputs."""
    import nvidia.dali.fn as dfn
    from nvidia.dali import pipeline_def as dali_pipeline_def

    limit = example.epoch_batches * example.batch_size

    @dali_pipeline_def(batch_size=example.batch_size, num_threads=1, device_id=None, seed=1234, **example.dali_options)
    def pipe():
        def source(spec, salt):
            return dfn.external_source(
                source=testing.SyntheticSource(spec, salt, limit), batch=False, layout=spec.layout or None
            )

        inputs = [source(spec, k) for k, spec in enumerate(example.inputs)]
        kwargs = {k: _to_dali(v) for k, v in {**example.args, **(args or {})}.items()}
        kwargs.update({n: source(s, 100 + k) for k, (n, s) in enumerate(example.arg_inputs.items())})
        if example.build is not None:
            out = example.build(*inputs, **kwargs)
        else:
            func = dfn
            for part in op_type.split("."):
                func = getattr(func, part)
            out = func(*inputs, **kwargs)
        return tuple(out) if isinstance(out, (list, tuple)) else (out,)

    p = pipe()
    p.build()
    return [tuple([np.array(t) for t in out] for out in p.run()) for _ in range(steps)]


@pytest.mark.parametrize(
    "op_type", [t for t in OPS if REGISTRY[t].EXAMPLE.dali == "exact" or REGISTRY[t].EXAMPLE.dali.startswith("close:")]
)
def test_output_equals_dalis(op_type, scratch):
    pytest.importorskip("nvidia.dali", reason="DALI (nvidia-dali-cuda120) is not installed")
    example = REGISTRY[op_type].EXAMPLE
    args = setup_args(example)
    steps = example.epoch_batches
    ours, _ = testing.record(testing.example_pipeline(op_type, setup_args=args), steps)
    theirs = dali_outputs(op_type, example, args, steps)
    atol = 0.0 if example.dali == "exact" else float(example.dali[len("close:") :])
    for j, (mine, dali) in enumerate(zip(ours, theirs)):
        mine = mine[:-1]  # the epoch clock
        assert len(mine) == len(dali), f"step {j}: {len(mine)} outputs, DALI {len(dali)}"
        for k, (a_out, d_out) in enumerate(zip(mine, dali)):
            for i, (a, d) in enumerate(zip(a_out, d_out)):
                where = f"{op_type} step {j}, output {k}, sample {i}"
                assert a.dtype == d.dtype and a.shape == d.shape, (
                    f"{where}: {a.dtype}{a.shape} vs DALI {d.dtype}{d.shape}"
                )
                if atol:
                    np.testing.assert_allclose(a, d, atol=atol, err_msg=where)
                else:
                    assert a.tobytes() == d.tobytes(), f"{where}: {a!r} vs DALI {d!r}"


def test_the_fuzzer_reports_an_internal_error(scratch):
    """Control: an operator that fails with an internal error on some value is reported, not excused."""
    from pipestate.batch import Batch
    from pipestate.operators import register, unregister
    from pipestate.operators.base import Operator

    @register
    class Fragile(Operator):
        """Fails with an IndexError for count=3."""

        type = "test.fragile"
        ARGS = (sch.Arg("count", sch.Int(0), 1, "How many"),)
        EXAMPLE = Example()

        def run(self, ctx, inputs, arg_inputs):
            if self.args["count"] == 3:
                [][0]  # noqa: B018 - the internal error the fuzzer must report
            return (Batch(np.zeros((ctx.batch_size, 1))),)

    try:
        _run_with("test.fragile", Example(args={"count": 7}), None)  # fine
        _run_with("test.fragile", Example(args={"count": -1}), None)  # refused by the schema: clear
        with pytest.raises(OperatorError, match="IndexError"):
            _run_with("test.fragile", Example(args={"count": 3}), None)
    finally:
        unregister("test.fragile")

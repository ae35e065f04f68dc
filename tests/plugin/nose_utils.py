"""The parts of DALI's test helpers (``nose_utils``, ``nose2.tools``, ``test_utils``) that the ported
checkpointing tests use, on pytest. Ported tests keep DALI's decorators; these turn them into pytest
parametrization."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import inspect
import itertools

import numpy as np
import pytest

SkipTest = pytest.skip.Exception


def _argnames(func):
    return [n for n in inspect.signature(func).parameters if n != "self"]


def _without_defaults(func):
    """``func`` with a signature without defaults (pytest refuses to parametrize defaulted arguments)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    sig = inspect.signature(func)
    wrapper.__signature__ = sig.replace(
        parameters=[p.replace(default=inspect.Parameter.empty) for p in sig.parameters.values()]
    )
    return wrapper


def params(*cases):
    """nose2's ``params``: one test per case; a case shorter than the signature takes the defaults."""

    def decorate(func):
        sig = inspect.signature(func)
        names = _argnames(func)
        rows = []
        for case in cases:
            case = case if isinstance(case, tuple) else (case,)
            rest = [sig.parameters[n].default for n in names[len(case) :]]
            rows.append(tuple(case) + tuple(rest))
        return pytest.mark.parametrize(names, rows)(_without_defaults(func))

    return decorate


def cartesian_params(*lists):
    """nose2's ``cartesian_params``: one test per element of the product of ``lists``."""

    def decorate(func):
        return pytest.mark.parametrize(_argnames(func), list(itertools.product(*lists)))(func)

    return decorate


def attr(*_names):
    """nose's ``attr``: no effect here."""
    return lambda func: func


@contextlib.contextmanager
def assert_raises(exc_type, glob=None):
    """DALI's ``assert_raises``: the block raises ``exc_type`` whose message matches ``glob``."""
    with pytest.raises(exc_type) as info:
        yield
    if glob is not None:
        assert fnmatch.fnmatch(str(info.value), glob), f"{info.value!s} does not match {glob!r}"


@contextlib.contextmanager
def assert_warns(glob=None):
    """DALI's ``assert_warns``: the block warns with a message matching ``glob``."""
    with pytest.warns(Warning) as record:
        yield
    if glob is not None:
        assert any(fnmatch.fnmatch(str(w.message), f"*{glob}*") for w in record), [str(w.message) for w in record]


def compare_pipelines(pipe1, pipe2, batch_size, n_iterations):
    """DALI's ``test_utils.compare_pipelines``: the next ``n_iterations`` batches are equal."""
    for _ in range(n_iterations):
        out1, out2 = pipe1.run(), pipe2.run()
        assert len(out1) == len(out2)
        for a, b in zip(out1, out2):
            assert len(a) == len(b) == batch_size
            for x, y in zip(a, b):
                np.testing.assert_array_equal(np.asarray(x), np.asarray(y))

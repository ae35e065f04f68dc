"""Shared fixtures."""

from __future__ import annotations

import threading

import pytest


@pytest.fixture
def no_thread_leak():
    """Fail if a test leaves pipestate threads running."""
    before = {t.ident for t in threading.enumerate()}
    yield
    leaked = [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("pipestate")]
    for t in leaked:
        t.join(2.0)
    alive = [t.name for t in leaked if t.is_alive()]
    assert not alive, f"threads outlived the test: {alive}"


def pytest_addoption(parser):
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the long versions of stress tests (e.g. 1,000 SIGKILLs per storage backend)",
    )


# Tests of optional integrations skip with a reason where their dependency is missing; in CI (CI=true)
# every one of them must run, so a missing install step fails the run instead of hiding behind skips.
_CI_REQUIRED = (
    "tensorflow",
    "nvidia.dali",
    "torch",
    "jax",
    "fsspec",
    "s3fs",
    "grpc_tools",
    "cv2",
    "scipy",
    "lmdb",
    "soundfile",
)


def pytest_sessionstart(session):
    import importlib.util
    import os

    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    missing = []
    for name in _CI_REQUIRED:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    if missing:
        pytest.exit(
            f"CI=true but optional test dependencies are missing: {missing}; their tests would be skipped", returncode=1
        )

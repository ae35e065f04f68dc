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

"""Plugin tests: exhaustive grids marked ``slow`` run only with ``PIPESTATE_SLOW=1``."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PIPESTATE_SLOW", "") in ("1", "true", "yes"):
        return
    skip = pytest.mark.skip(reason="exhaustive grid: set PIPESTATE_SLOW=1 (a sample runs by default)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)

"""Shared fixtures for the reader tests: small datasets made in temporary directories."""

from __future__ import annotations

import os

import numpy as np
import pytest


def make_files(root: str, n: int, size: int = 0) -> str:
    """Write ``n`` files ``f{i}.bin`` under ``root`` (content: ``i`` as 4 bytes, or ``size`` random bytes)
    and a ``list.txt`` with label ``i``; return the list's path."""
    os.makedirs(root, exist_ok=True)
    lines = []
    for i in range(n):
        data = i.to_bytes(4, "little") if not size else np.random.default_rng(i).bytes(size)
        with open(os.path.join(root, f"f{i}.bin"), "wb") as f:
            f.write(data)
        lines.append(f"f{i}.bin {i}\n")
    path = os.path.join(root, "list.txt")
    with open(path, "w") as f:
        f.writelines(lines)
    return path


@pytest.fixture(scope="session")
def files_20k(tmp_path_factory: pytest.TempPathFactory) -> str:
    """20,000 files of 4 bytes each, listed in ``list.txt`` (made once per session)."""
    return make_files(str(tmp_path_factory.mktemp("files20k")), 20_000)


@pytest.fixture
def small_list(tmp_path) -> str:
    """A file_list of 10 files whose content and label are their index."""
    return make_files(str(tmp_path), 10)

"""DALI's ``webdataset_base`` test helper, recreated: ``generate_temp_index_file(tar_path)`` writes the tar's
index (DALI's wds2idx format) into a temporary file and returns the open file object (its ``.name`` is the
index path; the file is deleted when the object is closed or collected). DALI runs its ``wds2idx`` script;
this runs pipestate's (``pipestate wds2idx``, the command-line entry point ``pipestate.cli.main``) in-process.
"""

from __future__ import annotations

import tempfile

from pipestate.cli import main as pipestate_command


def generate_temp_index_file(tar_file_path: str):
    """Index ``tar_file_path`` into a new temporary file (``pipestate wds2idx``) and return the file object."""
    temp_index_file = tempfile.NamedTemporaryFile(suffix=".idx")
    assert pipestate_command(["wds2idx", tar_file_path, temp_index_file.name]) == 0
    return temp_index_file

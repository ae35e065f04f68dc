"""DALI's ``webdataset_base`` test helper, recreated: ``generate_temp_index_file(tar_path)`` writes the tar's
index (DALI's wds2idx format) into a temporary file and returns the open file object (its ``.name`` is the
index path; the file is deleted when the object is closed or collected)."""

from __future__ import annotations

import tempfile

from pipestate.operators.readers._wds_index import wds2idx


def generate_temp_index_file(tar_file_path: str):
    """Index ``tar_file_path`` into a new temporary file (``pipestate wds2idx``) and return the file object."""
    temp_index_file = tempfile.NamedTemporaryFile(suffix=".idx")
    wds2idx(tar_file_path, temp_index_file.name)
    return temp_index_file

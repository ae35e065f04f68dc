"""The compact path table and the fast ``file_list`` parse: the same paths, labels, digests and errors as the
line-by-line parse, with no Python object per entry."""

from __future__ import annotations

import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipestate.operators.readers import _files
from pipestate.operators.readers._path_table import PathTable

_NAMES = st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=12)


@given(st.lists(_NAMES, max_size=30))
def test_a_table_holds_exactly_its_paths(paths):
    table = PathTable.of(paths)
    assert len(table) == len(paths)
    assert list(table) == paths and [table[i] for i in range(len(paths))] == paths
    assert table.blob == _files.encode_paths(paths)  # the dataset digest's bytes are unchanged
    if paths:
        assert table[-1] == paths[-1] and table[1:3] == paths[1:3]
    with pytest.raises(IndexError):
        table[len(paths)]


def test_a_table_keeps_undecodable_names():
    name = b"caf\xe9.jpg".decode("utf-8", "surrogateescape")  # a Latin-1 file name on a UTF-8 system
    assert PathTable.of(["a", name])[1] == name


@settings(max_examples=300)
@given(st.text(alphabet="ab1 \t\n\r\x0b", max_size=16))
def test_the_vectorized_line_check_agrees_with_the_regular_expression(text):
    assert _files._two_fields_per_line(text) == (_files._TWO_FIELDS_PER_LINE.fullmatch(text) is not None)


_FIELD = st.text(alphabet=string.ascii_letters + string.digits + "._/-", min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(
    lines=st.lists(st.tuples(_FIELD, st.integers(-5, 5), st.sampled_from([" ", "\t", "  "])), min_size=1, max_size=8),
    crlf=st.booleans(),
    final_newline=st.booleans(),
)
def test_the_fast_parse_equals_the_line_by_line_parse(tmp_path_factory, lines, crlf, final_newline):
    end = "\r\n" if crlf else "\n"
    text = end.join(f"{name}{gap}{label}" for name, label, gap in lines) + (end if final_newline else "")
    path = tmp_path_factory.mktemp("list") / "list.txt"
    path.write_text(text, newline="")
    paths, labels, numbers = _files.parse_file_list(str(path), "/root", with_labels=True)
    expected = [name if name.startswith("/") else "/root/" + name for name, _, _ in lines]
    assert list(paths) == expected and list(np.asarray(labels)) == [label for _, label, _ in lines]
    assert list(numbers) == list(range(1, len(lines) + 1))
    assert paths.blob == _files.encode_paths(expected)


def test_a_bad_line_is_still_named(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("a.jpg 1\nb.jpg\nc.jpg 3\n")
    with pytest.raises(ValueError, match=r"list.txt:2: expected 'relative/path label'"):
        _files.parse_file_list(str(path), None, with_labels=True)


@pytest.mark.parametrize("chunk", [1, 5, 13, 1 << 20])
def test_the_fast_parse_in_chunks_of_lines_is_the_same(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(_files, "_CHUNK_CHARS", chunk)
    lines = [(f"d{i % 3}/f{i}.jpg" if i % 4 else f"/abs/f{i}.jpg", i % 7 - 3) for i in range(50)]
    path = tmp_path / "list.txt"
    path.write_text("".join(f"{name}\t{label}\r\n" for name, label in lines), newline="")
    paths, labels, _ = _files.parse_file_list(str(path), "/root", with_labels=True)
    assert list(paths) == [n if n.startswith("/") else "/root/" + n for n, _ in lines]
    assert labels.tolist() == [label for _, label in lines] and labels.dtype == np.int32


def test_a_large_listing_returns_the_memory_its_parse_freed(tmp_path, monkeypatch):
    from pipestate import fn, pipeline_def
    from pipestate.operators.readers import _base

    calls = []
    monkeypatch.setattr(_base, "release_freed_memory", lambda: calls.append(1))
    (tmp_path / "f.bin").write_bytes(b"x")
    (tmp_path / "list.txt").write_text("f.bin 0\n" * _base._LARGE)

    @pipeline_def(batch_size=4, num_threads=1, seed=1)
    def pipe():
        return fn.readers.file(file_list=str(tmp_path / "list.txt"), random_shuffle=True)

    p = pipe()
    p.run()
    p.close()
    assert len(calls) == 2  # after the listing, after the first epoch's order


def test_releasing_memory_is_safe_to_call():
    from pipestate.operators.readers._base import release_freed_memory

    release_freed_memory()


@pytest.mark.parametrize("text", ["", "\n", "  \n\t\n"])
def test_an_empty_list_is_still_refused(tmp_path, text):
    path = tmp_path / "list.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match="lists no files"):
        _files.parse_file_list(str(path), None, with_labels=True)

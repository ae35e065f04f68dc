"""Listing a dataset's files (class sub-directories, trees, ``file_list`` text files) and reading them.

Errors name the directory, file or ``file_list`` line at fault.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
import threading
from collections.abc import Sequence

import numpy as np

from pipestate.operators.readers._path_table import PathTable

_OPEN_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_TWO_FIELDS_PER_LINE = re.compile(r"(?:[ \t]*\S+[ \t]+\S+[ \t]*(?:\r?\n|\Z))+")
_CHUNK_CHARS = 1 << 20  # the fast file_list parse splits about this much text at a time
_BYTE_KIND = np.zeros(256, dtype=np.uint8)  # for _two_fields_per_line: 0 a field's byte
_BYTE_KIND[[9, 32]] = 1
_BYTE_KIND[10] = 2
_BYTE_KIND[13] = 3
_BYTE_KIND[[11, 12, 28, 29, 30, 31]] = 4  # other ASCII whitespace (not allowed by the fast path)

DEFAULT_FILE_FILTERS = (
    "*.jpg",
    "*.jpeg",
    "*.png",
    "*.bmp",
    "*.tif",
    "*.tiff",
    "*.pnm",
    "*.ppm",
    "*.pgm",
    "*.pbm",
    "*.jp2",
    "*.webp",
    "*.flac",
    "*.ogg",
    "*.wav",
)


def matches(name: str, patterns: Sequence[str], case_sensitive: bool) -> bool:
    """True if the file ``name`` matches one of the glob ``patterns``."""
    if not case_sensitive:
        name = name.lower()
        return any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns)
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _scandir_sorted(path: str, argument: str) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except FileNotFoundError:
        raise FileNotFoundError(f"{argument}: directory {path!r} does not exist") from None
    except NotADirectoryError:
        raise NotADirectoryError(f"{argument}: {path!r} is not a directory") from None
    except PermissionError:
        raise PermissionError(f"{argument}: directory {path!r} cannot be read (permission denied)") from None


def _is_listed_file(entry: os.DirEntry, patterns: Sequence[str], case_sensitive: bool) -> bool:
    """True for a regular file matching ``patterns``; a matching FIFO, device or socket is refused."""
    if entry.is_file():
        return matches(entry.name, patterns, case_sensitive)
    if entry.is_dir() or not matches(entry.name, patterns, case_sensitive):
        return False
    try:
        mode = entry.stat().st_mode
    except FileNotFoundError:
        return False  # a dangling symbolic link: nothing to read, as before
    raise ValueError(
        f"file_root: {entry.path!r} is {file_kind(mode)}, not a regular file; readers read regular "
        "files only (a FIFO or a device would block or never end): remove it or change the filters"
    )


def file_kind(mode: int) -> str:
    """Describe a non-regular file type (``"a FIFO"``, ``"a character device"`` ...) from ``st_mode``."""
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def open_regular(path: str, what: str = "") -> int:
    """Open ``path`` for reading without blocking, and return its descriptor if it is a regular file.

    Opening is non-blocking, so a FIFO without a writer cannot hang the caller; reads of a regular file
    are not affected by the flag.

    Args:
        path: The file.
        what: Prefix for the error message (e.g. ``"file_list: "``).

    Returns:
        An open file descriptor (the caller closes it).

    Raises:
        FileNotFoundError / PermissionError: the file cannot be opened.
        IsADirectoryError: ``path`` is a directory.
        ValueError: ``path`` is a FIFO, a device or a socket, naming it.
    """
    fd = os.open(path, _OPEN_READ)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(mode):
            raise ValueError(
                f"{what}{path!r} is {file_kind(mode)}, not a regular file; readers read regular files "
                "only (a FIFO or a device would block or never end)"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def list_class_dirs(root: str, patterns: Sequence[str], case_sensitive: bool) -> tuple[list[str], list[int]]:
    """List ``root/<class>/<file>`` as DALI's file reader does.

    Sub-directories are sorted by name and numbered from 0 (empty ones too); the files directly inside
    each, matching ``patterns``, are sorted by name and get their directory's number as label.

    Raises:
        FileNotFoundError / NotADirectoryError / PermissionError: ``root`` cannot be listed.
        ValueError: no file matches (the message names ``root`` and the filters), or a matching entry is
            not a regular file (a FIFO, a device or a socket, which would block or never end when read).
    """
    paths, labels = [], []
    classes = [e for e in _scandir_sorted(root, "file_root") if e.is_dir()]
    for label, entry in enumerate(classes):
        for f in _scandir_sorted(entry.path, "file_root"):
            if _is_listed_file(f, patterns, case_sensitive):
                paths.append(f.path)
                labels.append(label)
    if not paths:
        raise ValueError(
            f"file_root={root!r}: no files found in its {len(classes)} sub-director"
            f"{'y' if len(classes) == 1 else 'ies'} matching file_filters={list(patterns)} "
            "(file_root holds one sub-directory per class; files directly in file_root are ignored)"
        )
    return paths, labels


def list_tree(root: str, patterns: Sequence[str], case_sensitive: bool) -> list[str]:
    """List the files under ``root`` matching ``patterns``, recursively, as DALI's numpy reader does:
    a directory's own files (sorted) come before its sub-directories (sorted, each recursively).

    Raises:
        FileNotFoundError / NotADirectoryError / PermissionError: ``root`` cannot be listed.
        ValueError: no file matches, or a matching entry is not a regular file.
    """
    out: list[str] = []

    def walk(path: str) -> None:
        entries = _scandir_sorted(path, "file_root")
        out.extend(e.path for e in entries if _is_listed_file(e, patterns, case_sensitive))
        for e in entries:
            if e.is_dir():
                walk(e.path)

    walk(root)
    if not out:
        raise ValueError(f"file_root={root!r}: no files found under it matching {list(patterns)}")
    return out


def parse_file_list(
    list_path: str, root: str | None, with_labels: bool
) -> tuple[PathTable, Sequence[int], Sequence[int]]:
    """Parse a ``file_list`` text file: one ``path label`` (or just ``path``) per line.

    The label is the last whitespace-separated field; the path is the rest of the line. Paths are relative
    to ``root`` if given, else to the directory of the list. Blank lines are skipped.

    Returns:
        (paths as a :class:`PathTable`, labels, line numbers); labels are empty when ``with_labels`` is false.

    Raises:
        FileNotFoundError: the list does not exist.
        ValueError: a malformed line (the message gives ``file:line`` and the line).
    """
    base = root if root is not None else os.path.dirname(os.path.abspath(list_path))
    try:
        text = read_bytes(list_path, what="file_list=").decode("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"file_list={list_path!r} does not exist") from None
    except IsADirectoryError:
        raise IsADirectoryError(
            errno.EISDIR, "file_list= is a directory; give the list's text file", list_path
        ) from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"file_list={list_path!r} is not UTF-8 text: {exc}") from None
    if "\0" in text:
        number = text.count("\n", 0, text.index("\0")) + 1
        raise ValueError(
            f"{list_path}:{number}: the line holds a NUL byte; file_list must be a text file of "
            "'relative/path label' lines"
        )
    prefix = os.path.join(base, "")
    parsed = _parse_pairs(text, prefix) if with_labels else None  # fast path: every line is `path label`
    if parsed is not None:
        return parsed[0], parsed[1], range(1, len(parsed[1]) + 1)
    lines = text.splitlines()
    numbered = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line and not line.isspace()]
    if not numbered:
        raise ValueError(f"file_list={list_path!r} lists no files")
    numbers = [n for n, _ in numbered]
    if not with_labels:
        names = [text for _, text in numbered]
        labels: list[int] = []
    else:
        fields = [text.rsplit(None, 1) for _, text in numbered]
        try:
            names = [f[0] for f in fields if len(f) == 2]
            labels = [int(f[1]) for f in fields]
            if len(names) != len(fields):
                raise ValueError
        except (ValueError, IndexError):
            for (number, text), f in zip(numbered, fields, strict=False):
                if len(f) != 2 or not _is_int(f[1]):
                    raise ValueError(
                        f"{list_path}:{number}: expected 'relative/path label' with an integer label, got {text!r}"
                    ) from None
            raise
        for number, label in zip(numbers, labels):  # Python ints: labels past int64 are caught too
            if not -(2**31) <= label < 2**31:
                raise ValueError(
                    f"{list_path}:{number}: label {label} does not fit in int32 (labels are int32, as in DALI); "
                    "use labels in [-2147483648, 2147483647]"
                )
    return _prefixed(names, prefix), labels, numbers


def _two_fields_per_line(text: str) -> bool:
    """Whether every line of ``text`` is ``field field`` (spaces or tabs around and between, ``\\n`` or
    ``\\r\\n`` line ends, no blank line): vectorized over an ASCII text, a regular expression otherwise."""
    if not text.isascii():
        return _TWO_FIELDS_PER_LINE.fullmatch(text) is not None
    b = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    if not len(b):
        return False
    kind = _BYTE_KIND[b]  # 0 field, 1 space or tab, 2 newline, 3 CR, 4 other whitespace
    if (kind == 4).any():
        return False
    ends = np.flatnonzero(kind == 2)
    if "\r" in text:
        after_cr = np.flatnonzero(kind == 3) + 1  # a CR only ends a line
        if after_cr[-1] >= len(b) or (kind[after_cr] != 2).any():
            return False
    if kind[-1] != 2:
        ends = np.append(ends, len(b))  # the last line has no newline
    word = kind == 0
    starts = np.flatnonzero(word[1:] & ~word[:-1]) + 1  # the first byte of every field
    if word[0]:
        starts = np.concatenate(([0], starts))
    # 2 fields per line, sorted: line i's two fields start after the previous line's end and before its own
    return len(starts) == 2 * len(ends) and bool((starts[1::2] < ends).all() and (starts[2::2] > ends[:-1]).all())


def _parse_pairs(text: str, prefix: str) -> tuple[PathTable, np.ndarray] | None:
    """Paths and int32 labels of a list whose every line is ``path label``; ``None`` when a line is not (or a
    label is not an int32): the line-by-line parse then names the line. Parsed in chunks of lines, so the
    strings and arrays of one chunk at a time exist (memory does not peak with the list's size)."""
    if not text:
        return None
    blobs, starts, labels, pos, offset = [], [], [], 0, 0
    while pos < len(text):
        end = text.find("\n", min(pos + _CHUNK_CHARS, len(text)))
        end = len(text) if end < 0 else end + 1
        chunk = text[pos:end]
        if not _two_fields_per_line(chunk):
            return None
        tokens = chunk.split()
        try:
            values = np.fromiter(map(int, tokens[1::2]), dtype=np.int64, count=len(tokens) // 2)
        except (ValueError, OverflowError):
            return None
        if not ((values >= -(2**31)) & (values < 2**31)).all():
            return None
        blob = _prefixed_text(tokens[0::2], prefix).encode("utf-8", "surrogateescape")
        nuls = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == 0)
        starts.append(np.concatenate(([0], nuls + 1)) + offset)
        blobs.append(blob)
        labels.append(values.astype(np.int32))
        offset += len(blob) + 1
        pos = end
    bounds = np.concatenate([*starts, [offset]])  # one past each path's end, as if a NUL followed the last
    return PathTable(b"\0".join(blobs), len(bounds) - 1, bounds), np.concatenate(labels)


def _prefixed_text(names: Sequence[str], prefix: str) -> str:
    """``names`` joined by NUL, each relative one prefixed with ``prefix`` (absolute ones kept)."""
    joined = "\0".join(names)
    if not names[0].startswith("/") and "\0/" not in joined:  # all relative: one pass over the joined text
        return prefix + joined.replace("\0", "\0" + prefix)
    return "\0".join(name if name.startswith("/") else prefix + name for name in names)


def _prefixed(names: Sequence[str], prefix: str) -> PathTable:
    """The table of ``names``, each relative one prefixed with ``prefix`` (absolute ones kept)."""
    return PathTable(_prefixed_text(names, prefix).encode("utf-8", "surrogateescape"), len(names))


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def encode_paths(paths: Sequence[str]) -> bytes:
    """Return the paths as one byte string (for the dataset digest)."""
    if isinstance(paths, PathTable):
        return paths.blob
    return "\0".join(paths).encode("utf-8", "surrogateescape")


def read_bytes(path: str, what: str = "") -> bytes:
    """Return the whole content of the regular file ``path`` (``os.open``/``os.read``: no file object).

    Raises:
        FileNotFoundError / PermissionError / IsADirectoryError: the file cannot be read.
        ValueError: ``path`` is not a regular file (a FIFO, a device ...), naming it after ``what``.
    """
    fd = open_regular(path, what)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size) if size else b""
        if len(data) == size and size:
            return data
        chunks = [data]  # a short read, or a file whose size stat does not report
        while more := os.read(fd, 1 << 20):
            chunks.append(more)
        return b"".join(chunks)
    finally:
        os.close(fd)


def check_sources(args: dict, where: str) -> None:
    """Check that a file-based reader names its files one way (``file_root`` may accompany the others as
    their base directory).

    Raises:
        ValueError: none or both of ``file_list`` and ``files``.
    """
    if args["files"] is not None and args["file_list"] is not None:
        raise ValueError(f"{where}: give file_list= or files=, not both")
    if args["files"] is None and args["file_list"] is None and args["file_root"] is None:
        raise ValueError(f"{where}: give file_root=, file_list= or files= to say which files to read")


class OpenFiles:
    """A reader's files, each opened on first use (once, whichever worker thread asks first) and closed
    together; ``what`` prefixes the error of a file that cannot be opened."""

    def __init__(self, paths: Sequence[str], what: str) -> None:
        self.paths, self._what = list(paths), what
        self._fds: dict[int, int] = {}
        self._lock = threading.Lock()

    def fd(self, k: int) -> int:
        """The descriptor of file ``k``."""
        fd = self._fds.get(k)
        if fd is None:
            with self._lock:
                fd = self._fds.get(k)
                if fd is None:
                    fd = self._fds[k] = open_regular(self.paths[k], self._what)
        return fd

    def close(self) -> None:
        """Close every file opened."""
        with self._lock:
            while self._fds:
                os.close(self._fds.popitem()[1])

"""Webdataset tar archives: DALI's index format (``v1.1``/``v1.2``), reading it, scanning a tar, ``wds2idx``.

An index file starts with ``v1.2 <samples>`` and has one line per sample, each a list of components
``<ext> <data offset> <size> <file name>`` (``v1.1``: without the file name). A sample is a run of
consecutive regular files sharing the name up to the first dot of the last path element; the text after
that dot is the component's extension. Entries whose name starts with a dot are skipped.
"""

from __future__ import annotations

import os
import sys
import tarfile
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from pipestate.operators.readers import _files

BLOCK = 512
VERSIONS = ("v1.1", "v1.2")


class WebdatasetError(ValueError):
    """A webdataset archive or index file is damaged or does not match (names the file, line or offset)."""


class Components(NamedTuple):
    """An archive's samples as flat arrays: sample ``i`` has components ``starts[i]:starts[i + 1]``."""

    starts: np.ndarray  # int64, samples + 1
    exts: list[str]
    offsets: np.ndarray  # int64
    sizes: np.ndarray  # int64
    lines: np.ndarray  # int64: the index line of each sample (0 when scanned from the tar)


def split_name(path: str) -> tuple[str, str]:
    """Split a member name into (sample key, extension) as DALI does: at the first dot of the last element."""
    dot = path.find(".", path.rfind("/") + 1)
    if dot < 0:
        return path, path  # DALI's npos arithmetic: a name without a dot is its own "extension"
    return path[:dot], path[dot + 1 :]


def scan_tar(path: str) -> list[list[tuple[str, int, int, str]]]:
    """List the samples of a tar archive: for each, its components ``(ext, data offset, size, name)``.

    Raises:
        FileNotFoundError: no such archive. WebdatasetError: not a tar archive, or truncated (naming the
            member and its offset).
    """
    samples: list[list[tuple[str, int, int, str]]] = []
    last = None
    fd = _files.open_regular(path, "paths: archive ")
    with open(fd, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        archive = None
        try:
            archive = tarfile.open(fileobj=f, mode="r:")
            for member in archive:
                if not member.isreg():
                    continue
                if member.offset_data + member.size > file_size:
                    raise WebdatasetError(
                        f"{path}: member {member.name!r} at offset {member.offset} is truncated: its {member.size} "
                        f"bytes would end at {member.offset_data + member.size}, the file has {file_size}"
                    )
                key, ext = split_name(member.name)
                if not key or key.endswith("/"):
                    continue  # hidden files (names starting with a dot), as DALI's wds2idx
                component = (ext, member.offset_data, member.size, member.name)
                if key != last:
                    samples.append([component])
                    last = key
                else:
                    samples[-1].append(component)
        except tarfile.TarError as exc:
            if archive is None:
                raise WebdatasetError(f"{path}: not a valid tar archive ({exc})") from None
            raise WebdatasetError(
                f"{path}: damaged or truncated tar archive at offset {archive.offset} ({exc})"
            ) from None
    return samples


def wds2idx(archive: str | os.PathLike, index: str | os.PathLike) -> int:
    """Write the index of a webdataset archive as DALI's ``wds2idx`` does (format ``v1.2``).

    Returns:
        The number of samples.

    Raises:
        FileNotFoundError: no such archive. WebdatasetError: damaged or empty archive.
    """
    archive = os.fspath(archive)
    samples = scan_tar(archive)
    if not samples:
        raise WebdatasetError(f"{archive}: the archive holds no sample (no regular file)")
    for sample in samples:
        for ext, _, _, name in sample:
            if any(c.isspace() for c in ext + name):
                raise WebdatasetError(
                    f"{archive}: member {name!r} has white space in its name, which the index format cannot hold"
                )
    lines = [f"{VERSIONS[-1]} {len(samples)}\n"]
    lines += [" ".join(f"{e} {o} {s} {n}" for e, o, s, n in sample) + "\n" for sample in samples]
    with open(index, "w") as f:
        f.writelines(lines)
    return len(samples)


def components_from_samples(samples: Sequence[Sequence[tuple[str, int, int, str]]]) -> Components:
    """Flatten scanned samples into :class:`Components`."""
    counts = np.fromiter((len(s) for s in samples), dtype=np.int64, count=len(samples))
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    flat = [c for s in samples for c in s]
    return Components(
        starts,
        [c[0] for c in flat],
        np.fromiter((c[1] for c in flat), dtype=np.int64, count=len(flat)),
        np.fromiter((c[2] for c in flat), dtype=np.int64, count=len(flat)),
        np.zeros(len(samples), dtype=np.int64),
    )


def read_index(index_path: str, archive: str) -> Components:
    """Parse a DALI webdataset index file and check it against the archive's size.

    Raises:
        FileNotFoundError: no index file. WebdatasetError: a malformed line (``file:line``), an unsupported
            version, an offset not on a 512-byte block, or a component past the end of ``archive``.
    """
    try:
        raw = _files.read_bytes(index_path, what="index_paths: ")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"index_paths: {index_path!r} does not exist; create it with `pipestate wds2idx {archive} {index_path}`"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        number = raw.count(b"\n", 0, raw.find(b"\0") if b"\0" in raw else len(raw)) + 1
        raise WebdatasetError(f"{index_path}:{number}: not a webdataset index file (binary data)") from None
    lines = text.split("\n")
    head = lines[0].split()
    rebuild = f"; rebuild it with `pipestate wds2idx {archive} {index_path}`"
    if not head or head[0] not in VERSIONS:
        raise WebdatasetError(
            f"{index_path}:1: expected a version signature {' or '.join(VERSIONS)}, got {lines[0][:40]!r}{rebuild}"
        )
    width = 4 if head[0] == "v1.2" else 3
    try:
        count = int(head[1])
    except (IndexError, ValueError):
        raise WebdatasetError(f"{index_path}:1: no sample count after {head[0]}{rebuild}") from None
    if count <= 0:
        raise WebdatasetError(f"{index_path}:1: the sample count must be positive, got {count}")
    if len(lines) - 1 < count:
        raise WebdatasetError(f"{index_path}: says {count} samples but has {len(lines) - 1} lines after the header")
    starts = [0]
    exts: list[str] = []
    offsets: list[int] = []
    sizes: list[int] = []
    for number in range(2, count + 2):
        fields = lines[number - 1].split()
        if not fields or len(fields) % width:
            raise WebdatasetError(
                f"{index_path}:{number}: expected components '<ext> <offset> <size>"
                f"{' <filename>' if width == 4 else ''}', got {lines[number - 1][:80]!r}{rebuild}"
            )
        for k in range(0, len(fields), width):
            try:
                offset, size = int(fields[k + 1]), int(fields[k + 2])
                if offset < 0 or size < 0:
                    raise ValueError
            except ValueError:
                raise WebdatasetError(
                    f"{index_path}:{number}: component {fields[k]!r}: offset and size must be non-negative integers"
                ) from None
            if offset % BLOCK:
                raise WebdatasetError(
                    f"{index_path}:{number}: offset {offset} is not a multiple of the tar block size ({BLOCK})"
                )
            exts.append(fields[k])
            offsets.append(offset)
            sizes.append(size)
        starts.append(len(exts))
    comps = Components(
        np.asarray(starts, dtype=np.int64),
        exts,
        np.asarray(offsets, dtype=np.int64),
        np.asarray(sizes, dtype=np.int64),
        np.arange(2, count + 2, dtype=np.int64),
    )
    fd = _files.open_regular(archive, "paths: archive ")
    try:
        file_size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    ends = comps.offsets + comps.sizes
    if len(ends) and int(ends.max()) > file_size:
        bad = int(np.argmax(ends > file_size))
        line = int(comps.lines[int(np.searchsorted(comps.starts, bad, side="right")) - 1])
        raise WebdatasetError(
            f"{index_path}:{line}: component {exts[bad]!r} at offset {offsets[bad]} ({sizes[bad]} bytes) ends past "
            f"the end of {archive!r} ({file_size} bytes): the index was made for another file or the archive is "
            f"truncated{rebuild}"
        )
    return comps


def wds2idx_main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``pipestate wds2idx ARCHIVE [INDEX]`` (INDEX defaults to the archive's name with ``.idx``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not 1 <= len(args) <= 2 or args[0] in ("-h", "--help"):
        sys.stderr.write("usage: pipestate wds2idx ARCHIVE [INDEX]\n")
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    archive = args[0]
    index = args[1] if len(args) == 2 else archive[: archive.find(".", archive.rfind("/") + 2)] + ".idx"
    try:
        count = wds2idx(archive, index)
    except (OSError, WebdatasetError) as exc:
        sys.stderr.write(f"wds2idx: {exc}\n")
        return 1
    sys.stdout.write(f"{index}: {count} samples\n")
    return 0

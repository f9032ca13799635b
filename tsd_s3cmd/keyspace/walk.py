"""A local tree walked in S3 key order, a directory at a time, in bounded memory.

s3cmd walks a tree with ``os.walk``'s order (whatever the file system gives)
and keeps the whole list. To merge a tree with a bucket's listing as both go
(order.py), the tree must come in the order S3 lists keys. Within one
directory that is the order of the names' keys, a subdirectory's name
counting with a ``/`` after it (``a.txt`` comes before ``a/x``, which comes
before ``a0``): every key under ``a/`` starts with ``a/``, so a depth-first
walk that visits each directory's entries in that order gives all keys in
order. The caller says how a name becomes a key (``key_of``: s3cmd adds the
source's name and replaces control characters), how names are decoded, and
which directories are left out, so that the walk finds what s3cmd's own
walk finds: the same directories pruned, symbolic links followed the same
way (with ``follow_symlinks``, one level of linked directories, none that
loops back), the same names.

A directory of millions of names must be sorted before its first name can
go. Up to ``RUN`` names are sorted in memory; beyond that, sorted runs of
``RUN`` go to an anonymous temporary file and are merged from there, so the
walk's memory does not grow with a directory's size.
"""

from __future__ import annotations

import heapq
import marshal
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from itertools import islice

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    # What the walk yields for each entry: the directory it is in (as the walk
    # names it: the top as given, then os.path.join of names), its name, and
    # whether it is a directory.
    Found = tuple[str, str, bool]

# Names of one directory sorted in memory at most; more are sorted in runs on disk.
RUN = 50_000


class Walk:
    """How to walk a tree as s3cmd does (see the module docstring)."""

    def __init__(
        self,
        key_of: Callable[[str, str], str],
        decode: Callable[[bytes], str],
        encode: Callable[[str], bytes],
        prune: Callable[[str, str], bool],
        follow_symlinks: bool = False,
        with_dirs: bool = False,
        warn: Callable[[str], None] = lambda message: None,
        run: int = RUN,
    ) -> None:
        """``key_of(directory, name)``: the key of the file ``name`` in ``directory``
        (a directory's own key adds ``/``); ``prune(directory, name)``: whether the
        subdirectory ``name`` is left out, with all it holds; ``with_dirs``:
        directories are entries too, as well as walked."""
        self.key_of = key_of
        self.decode = decode
        self.encode = encode
        self.prune = prune
        self.follow_symlinks = follow_symlinks
        self.with_dirs = with_dirs
        self.warn = warn
        self.run = run

    def __call__(self, top: str) -> Iterator[tuple[str, Found]]:
        """Every file (and, ``with_dirs``, directory) under ``top``: ``(key, found)``."""
        return self._directory(top, linked=False)

    def _directory(self, path: str, linked: bool) -> Iterator[tuple[str, Found]]:
        for key, name, is_dir, descend in self._entries(path, linked):
            if not is_dir:
                yield key, (path, name, False)
                continue
            if self.with_dirs:
                yield key, (path, name, True)
            if descend:
                yield from self._directory(os.path.join(path, name), linked or descend == 2)

    def _entries(self, path: str, linked: bool) -> Iterator[tuple[str, str, bool, int]]:
        """A directory's entries in key order: (key, name, is a directory, descend).

        ``descend``: 0 no, 1 yes, 2 yes into a linked directory (whose own links
        are not followed, as s3cmd walks each linked directory once, on its own).
        """
        try:
            scan = os.scandir(self.encode(path))
        except OSError:
            return  # as s3cmd's walk: a directory it cannot read holds nothing
        with scan:
            entries = (self._entry(path, linked, found) for found in scan)
            yield from _sorted((e for e in entries if e is not None), self.run)

    def _entry(
        self, path: str, linked: bool, found: os.DirEntry[bytes]
    ) -> tuple[str, str, bool, int] | None:
        name = self.decode(found.name)
        exact = self.encode(name) == found.name  # else s3cmd looks up another name
        full = os.path.join(path, name)
        try:
            is_dir = found.is_dir() if exact else os.path.isdir(self.encode(full))
        except OSError:
            is_dir = False
        key = self.key_of(path, name)
        if not is_dir:
            return key, name, False, 0
        if self.prune(path, name):
            return None
        if not (found.is_symlink() if exact else os.path.islink(self.encode(full))):
            return key + "/", name, True, 1
        if not self.follow_symlinks or linked:
            return key + "/", name, True, 0
        here = os.path.realpath(self.encode(path))
        there = os.path.realpath(self.encode(full))
        if here == there or here.startswith(there + os.sep.encode()):
            self.warn(f"Skipping recursively symlinked directory {name}")
            return key + "/", name, True, 0
        return key + "/", name, True, 2


def _sorted(entries: Iterable[tuple], run: int) -> Iterator[tuple]:
    """``entries`` sorted, holding at most ``run`` of them in memory at once (and a
    read buffer for each sorted run on disk)."""
    entries = iter(entries)
    first = sorted(islice(entries, run))
    if len(first) < run:
        yield from first
        return
    with ExitStack() as spills:
        runs = [_spilled(spills, first)]
        del first
        while chunk := sorted(islice(entries, run)):
            runs.append(_spilled(spills, chunk))
        yield from heapq.merge(*runs)


def _spilled(spills: ExitStack, chunk: list[tuple]) -> Iterator[tuple]:
    """A sorted run written to a temporary file of its own, and read back as needed."""
    spill = spills.enter_context(tempfile.TemporaryFile(buffering=256 * 1024))  # noqa: SIM115
    for entry in chunk:
        marshal.dump(entry, spill)
    spill.seek(0)
    return (marshal.load(spill) for _ in range(len(chunk)))

"""The read of a big file for its MD5, before its first byte is sent: shown, and done once.

s3cmd takes every local file's MD5 while it lists them (it stores the MD5
with the object, and ``sync`` compares by it): a 160 GiB file is read whole,
for minutes, with nothing on the screen. The shim puts ``Reads.md5_of`` in
place of s3cmd's ``hash_file_md5`` for the listing, so that for a file of at
least ``LARGE`` bytes

- the read is shown where s3cmd shows its progress (a terminal, or
  ``--progress``): ``reading huge.bin for its MD5: 34%``;
- the MD5 is remembered in a small private file beside sync's MD5 caches, so
  that a resume, a second ``put`` or a later ``sync`` does not read the file
  again. An entry holds only while the file's device, inode, size, mtime and
  ctime are all as they were: ctime moves on every change to the file and
  cannot be set back, so a file changed since is read again;
- a file S3 cannot hold (over 5 TiB) is refused before it is read.

Smaller files take s3cmd's own read: their MD5s are quick to take, and sync's
own cache (md5_cache.py) keeps them.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from ..engine import part_sizes
from .script import write_private

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any, TextIO

LARGE = 1024**3
# The most files remembered; the oldest go first.
KEPT = 1000
_PIECE = 1024 * 1024
_CLEAR = "\r\x1b[K"


def _key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def _held(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class Reads:
    """MD5s of large files for one run; its lock keeps the remembered file whole
    when several workers read at once."""

    def __init__(self, remembered: Path | None, shown_on: Callable[[], TextIO | None]) -> None:
        self._path = remembered
        self._shown_on = shown_on
        self._lock = threading.Lock()

    def md5_of(self, filename: Any, read: Callable[[Any], str]) -> str:
        """The MD5 of ``filename``; ``read`` is s3cmd's own way, for small files."""
        from S3.Exceptions import ParameterError

        path = os.fsdecode(filename)
        st = os.stat(path)
        if st.st_size > part_sizes.MAX_OBJECT:
            raise ParameterError(
                f"{path} is {st.st_size / 1024**4:.2f} TiB, and S3 keeps objects of at most "
                "5 TiB: split it (split -b 4T) and send the pieces"
            )
        if st.st_size < LARGE:
            return read(filename)
        known = self._recalled(st)
        if known is not None:
            return known
        md5 = self._read(path, st.st_size)
        self._remember(os.stat(path), st, md5)
        return md5

    def _read(self, path: str, size: int) -> str:
        import hashlib

        shown = self._shown_on()
        name = os.path.basename(path)
        digest = hashlib.md5()
        done, percent = 0, -1
        with open(path, "rb") as f:
            while piece := f.read(_PIECE):
                digest.update(piece)
                done += len(piece)
                if shown is not None and done * 100 // size != percent:
                    percent = done * 100 // size
                    shown.write(f"{_CLEAR}reading {name} for its MD5: {percent}%")
                    shown.flush()
        if shown is not None:
            shown.write(_CLEAR)
            shown.flush()
        return digest.hexdigest()

    def _load(self) -> dict[str, Any]:
        from ..login.private_files import PrivateDir

        assert self._path is not None
        try:
            data = PrivateDir(self._path.parent).read(self._path.name, "the MD5s of large files")
            entries = json.loads(data or b"{}")
        except Exception:  # exposed or damaged: it is only a cache
            return {}
        return entries if isinstance(entries, dict) else {}

    def _recalled(self, st: os.stat_result) -> str | None:
        if self._path is None:
            return None
        with self._lock:
            entry = self._load().get(_key(st))
        if isinstance(entry, dict) and entry.get("held") == _held(st):
            md5 = entry.get("md5")
            return md5 if isinstance(md5, str) else None
        return None

    def _remember(self, after: os.stat_result, before: os.stat_result, md5: str) -> None:
        if self._path is None or _held(after) != _held(before):
            return  # changed while it was read: that MD5 is of no one state of the file
        with self._lock:
            entries = self._load()
            entries.pop(_key(after), None)
            entries[_key(after)] = {"held": _held(after), "md5": md5}
            kept = dict(list(entries.items())[-KEPT:])
            write_private(self._path, json.dumps(kept).encode())

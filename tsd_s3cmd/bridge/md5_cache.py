"""Where and how the MD5s of a sync's local files are kept, so that a re-run reads none again.

s3cmd's ``sync`` compares files by MD5, and without ``--cache-file`` it reads
every local file to take its MD5 on every run: re-running an interrupted sync
of terabytes means hours of reading before the first byte moves. s3cmd's own
cache (``--cache-file``, S3/HashCache.py) trusts a file's device, inode, mtime
and size: when all four are as they were, the MD5 taken then is used. So
tsd-s3cmd gives every ``sync`` with a local side such a cache by default, in
its cache directory (``file_for``). A ``--cache-file`` the user gives wins,
and ``TSD_S3CMD_MD5_CACHE=0`` turns the default off.

s3cmd's HashCache is a pickle loaded whole: about 650 bytes of memory a file,
and a sync that works through a tree a range at a time (batches.py) would
load and save it once a range. ``Store`` keeps the same entries in SQLite
instead, looked up one at a time: memory does not grow with the tree. A run
reads the last run's file (never changed in place) and writes a new one
beside it with every entry it used, renamed into place at the end; so the
file is always whole, and of many runs at once (a job array) the last one's
stays, as before. A run that did not see every file (stopped, or a share of
a job array) also keeps the old entries it did not use; a run that saw every
file drops them, as s3cmd's purge does.

Only ``sync``: it is the command that compares. ``put`` sends every file
anyway, reading it whole; a cache would spare one of its two reads, and a
stale entry would be stored as the object's MD5 (``s3cmd-attrs``), which
every later download is checked against.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path

from ..errors import UsageError
from ..login.token_choice import is_remote

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    import sqlite3

VARIABLE = "TSD_S3CMD_MD5_CACHE"


def directory(cache_home: Path, environ: Mapping[str, str]) -> Path | None:
    """Where the MD5 caches live; None when ``TSD_S3CMD_MD5_CACHE=0`` turns them off."""
    setting = environ.get(VARIABLE, "").strip()
    if setting not in ("", "0", "1"):
        raise UsageError(f"{VARIABLE} takes 0 (no MD5 cache) or 1 (the default), not {setting!r}")
    return None if setting == "0" else cache_home / "tsd-s3cmd" / "md5-cache"


def file_for(directory: Path, args: Sequence[str], shard: str = "") -> Path | None:
    """The cache file of a command (``args[0]`` is the command), None if it takes none.

    One file per set of local sources and destination, not one per
    destination (or per user): at the end of each listing s3cmd drops from the
    cache every file that is not in it (``_maintain_cache``), so two trees
    synced to one destination, taking turns in one file, would each throw out
    what the other had cached and be read whole every time. The local paths
    count as absolute paths, so the same tree reached from another working
    directory is the same cache; the sources as a set, since their order does
    not change what s3cmd lists. A share of a job array (``--shard``) has a
    file of its own: the tasks of an array run at once, and each keeps only
    what it saw.
    """
    if args[:1] != ["sync"] or len(args) < 3:
        return None
    if all(is_remote(arg) for arg in args[1:]):
        return None  # s3 to s3: no local file to read
    *sources, destination = (arg if is_remote(arg) else os.path.abspath(arg) for arg in args[1:])
    key = "\0".join([*sorted(set(sources)), destination, *([shard] if shard else [])])
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    return directory / f"{digest[:32]}.sqlite"


_SCHEMA = (
    "CREATE TABLE md5s (dev INTEGER, inode INTEGER, mtime REAL, size INTEGER, md5 TEXT,"
    " PRIMARY KEY (dev, inode)) WITHOUT ROWID"
)
# SQLite's page cache, each file: files are listed, and so looked up, about in the order
# of their inodes, so a small one does (its default is 2 MiB).
_CACHE = "PRAGMA cache_size=-512"


class Store:
    """The MD5 cache of one run, in SQLite: the last run's entries, and this run's.

    s3cmd asks ``md5`` before it reads a file and tells ``add`` after; both
    note the entry in the new file. ``complete``: the run saw every file, so
    entries it did not use are dropped (set by whoever knows: the listing).
    """

    def __init__(self, path: Path | Callable[[], Path | None]) -> None:
        """``path``: the cache file, or what says which it is once s3cmd has read its
        command line (None: no cache this run)."""
        self._path = path
        self.complete = False
        self._old: sqlite3.Connection | None = None
        self._new: sqlite3.Connection | None = None
        self._opened = False

    def _open(self) -> sqlite3.Connection | None:
        """The new file, created at the first use; the old one opened beside it."""
        if self._opened:
            return self._new
        self._opened = True
        path = self._path if isinstance(self._path, Path) else self._path()
        if path is None:
            return None
        self.path = path
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        import sqlite3

        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if _private(self.path.parent) and _private(self.path):
                self._old = _connect(self.path)
                self._old.execute("SELECT dev, inode, mtime, size, md5 FROM md5s LIMIT 1")
        except (OSError, sqlite3.Error):
            logging.info("Ignoring the MD5 cache %s: it is damaged", self.path)
            self._close_old()
        try:
            if not _private(self.path.parent):
                return None
            with suppress(FileNotFoundError):
                os.unlink(self._tmp)  # a run before with our number, killed
            os.close(os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self._new = sqlite3.connect(_uri(self._tmp, read_only=False), uri=True)
            self._new.executescript(
                f"PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; {_CACHE}; {_SCHEMA};"
            )
        except (OSError, sqlite3.Error) as err:
            logging.info("Not keeping MD5s this run: %s", err)
            self._discard()
        return self._new

    def md5(self, dev: int, inode: int, mtime: float, size: int) -> str | None:
        """The MD5 kept for this file as it is now, or None."""
        new = self._open()
        found = None
        for db in (new, self._old):
            if db is None:
                continue
            try:
                row = db.execute(
                    "SELECT md5 FROM md5s WHERE dev=? AND inode=? AND mtime=? AND size=?",
                    (dev, inode, mtime, size),
                ).fetchone()
            except Exception:  # sqlite3.Error: a damaged old file is no cache
                row = None
            if row is not None and isinstance(row[0], str):
                found = row[0]
                break
        if found is not None:
            self.add(dev, inode, mtime, size, found)
        return found

    def add(self, dev: int, inode: int, mtime: float, size: int, md5: str) -> None:
        new = self._open()
        if new is None or not dev or not inode:
            return  # no file to keep it in; a file system without inodes
        try:
            new.execute("INSERT OR REPLACE INTO md5s VALUES (?, ?, ?, ?, ?)",
                        (dev, inode, mtime, size, md5))  # fmt: skip
        except Exception as err:  # sqlite3.Error, a full disk: no cache this time
            logging.info("Not keeping MD5s this run: %s", err)
            self._discard()

    def finish(self) -> None:
        """Put the new file in place of the old one (keeping what this run did not see,
        unless it saw every file)."""
        new, self._new = self._new, None
        if new is None:
            self._close_old()
            return
        try:
            if self._old is not None and not self.complete:
                new.execute("ATTACH DATABASE ? AS old", (_uri(self.path),))
                new.execute("INSERT OR IGNORE INTO main.md5s SELECT * FROM old.md5s")
            new.commit()
            new.close()
            self._close_old()
            os.replace(self._tmp, self.path)
        except Exception as err:  # sqlite3.Error, OSError: the old file stays as it was
            logging.info("Not keeping MD5s this run: %s", err)
            new.close()
            self._discard()
            return
        with suppress(OSError):
            os.unlink(self.path.with_suffix(".pickle"))  # an earlier release's file

    def _discard(self) -> None:
        if self._new is not None:
            self._new.close()
            self._new = None
        with suppress(OSError):
            os.unlink(self._tmp)

    def _close_old(self) -> None:
        if self._old is not None:
            self._old.close()
            self._old = None


def _private(path: Path) -> bool:
    """Whether ``path`` (a file or a directory) is ours and no one else can write it;
    False too when it does not exist."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    kind = stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)
    return kind and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _uri(path: Path, read_only: bool = True) -> str:
    """``path`` for SQLite: the last run's file read only (it is never changed in place,
    only replaced), so that the new file can attach it by name."""
    from urllib.parse import quote

    return f"file:{quote(str(path))}" + ("?mode=ro&immutable=1" if read_only else "")


def _connect(path: Path) -> sqlite3.Connection:
    import sqlite3

    db = sqlite3.connect(_uri(path), uri=True)
    db.execute(_CACHE)
    return db


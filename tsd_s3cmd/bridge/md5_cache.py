"""Which file keeps the MD5s of a sync's local files, so that a re-run reads none again.

s3cmd's ``sync`` compares files by MD5, and without ``--cache-file`` it reads
every local file to take its MD5 on every run: re-running an interrupted sync
of terabytes means hours of reading before the first byte moves. s3cmd's own
cache (``--cache-file``, S3/HashCache.py) trusts a file's device, inode, mtime
and size: when all four are as they were, the MD5 taken then is used. So
tsd-s3cmd gives every ``sync`` with a local side such a cache by default, in
its cache directory; shim loads and saves it privately. A
``--cache-file`` the user gives wins, and ``TSD_S3CMD_MD5_CACHE=0`` turns the
default off.

Only ``sync``: it is the command that compares. ``put`` sends every file
anyway, reading it whole; a cache would spare one of its two reads, and a
stale entry would be stored as the object's MD5 (``s3cmd-attrs``), which
every later download is checked against.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import UsageError
from ..login.token_choice import is_remote

VARIABLE = "TSD_S3CMD_MD5_CACHE"


def directory(cache_home: Path, environ: Mapping[str, str]) -> Path | None:
    """Where the MD5 caches live; None when ``TSD_S3CMD_MD5_CACHE=0`` turns them off."""
    setting = environ.get(VARIABLE, "").strip()
    if setting not in ("", "0", "1"):
        raise UsageError(f"{VARIABLE} takes 0 (no MD5 cache) or 1 (the default), not {setting!r}")
    return None if setting == "0" else cache_home / "tsd-s3cmd" / "md5-cache"


def file_for(directory: Path, args: Sequence[str]) -> Path | None:
    """The cache file of a command (``args[0]`` is the command), None if it takes none.

    One file per set of local sources and destination, not one per
    destination (or per user): at the end of each listing s3cmd drops from the
    cache every file that is not in it (``_maintain_cache``), so two trees
    synced to one destination, taking turns in one file, would each throw out
    what the other had cached and be read whole every time. The local paths
    count as absolute paths, so the same tree reached from another working
    directory is the same cache; the sources as a set, since their order does
    not change what s3cmd lists.
    """
    if args[:1] != ["sync"] or len(args) < 3:
        return None
    if all(is_remote(arg) for arg in args[1:]):
        return None  # s3 to s3: no local file to read
    *sources, destination = (arg if is_remote(arg) else os.path.abspath(arg) for arg in args[1:])
    key = "\0".join([*sorted(set(sources)), destination])
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    return directory / f"{digest[:32]}.pickle"


"""The lock that serialises tsd-s3cmd processes around the login cache.

Many processes started together (a Slurm job array) must log in once and
spend each refresh token once: every read-modify-write of the cache runs
under this lock. It is an ``flock`` on a file in the config directory, which
the kernel releases when its holder dies, so a killed process never blocks
the others.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import EX_IOERR, TsdError

LOCK_TIMEOUT = 600.0


@contextmanager
def held(path: Path, warn: Callable[[str], None], timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the lock on ``path`` (created 0600 if missing) until the block ends."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        raise TsdError(f"cannot open {path}: {err.strerror}", EX_IOERR) from err
    try:
        deadline = time.monotonic() + timeout
        told = False
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if now > deadline:
                    raise TsdError(
                        f"another tsd-s3cmd has held {path} for {timeout:.0f}s; "
                        "is one waiting for a login at a terminal?",
                        EX_IOERR,
                    ) from None
                if not told and now > deadline - timeout + 2:
                    warn("waiting for another tsd-s3cmd to finish logging in")
                    told = True
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        yield
    finally:
        os.close(fd)

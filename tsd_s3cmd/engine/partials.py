"""Where a download is kept until it is whole, and how far it got, so that it can resume.

A download goes into a hidden file beside its destination,
``.NAME.tsd-s3cmd.part``, and only a checked, whole file is moved to
``NAME``. A download of several ranges also keeps ``.NAME.tsd-s3cmd.state``:
the object it is of (URI, ETag, size) and, for each range, how far it has
been written. The state is rewritten (atomically) every few MiB, so a
download stopped in any way, SIGKILL and a lost network included, continues
from there when the same ``get`` or ``sync`` runs again, and fetches again at
most what arrived after the last rewrite. Whatever the state claims, the
whole file is checked against its MD5 before it is moved into place.

Two runs for one destination at once do not share a hidden file: the first
holds a lock on it (``flock``), and the second downloads into a file of its
own that it does not keep when stopped. Where the file system has no
``flock``, every run does so.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
from contextlib import suppress

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any

PART_SUFFIX = ".tsd-s3cmd.part"
STATE_SUFFIX = ".tsd-s3cmd.state"
# Room that a file system's longest name (255 bytes) must leave for our suffixes.
_NAME_MAX = 255


def hidden_paths(destination: str) -> tuple[str, str]:
    """The partial file and the state file beside ``destination``."""
    directory, name = os.path.split(os.path.abspath(destination))
    if len(os.fsencode(name)) + 1 + len(STATE_SUFFIX) > _NAME_MAX:
        name = hashlib.sha256(os.fsencode(name)).hexdigest()[:32]
    base = os.path.join(directory, "." + name)
    return base + PART_SUFFIX, base + STATE_SUFFIX


class Partial:
    """An open hidden file of one download, and its state if it keeps one."""

    def __init__(self, fd: int, path: str, state_path: str | None) -> None:
        self.fd = fd
        self.path = path
        self.state_path = state_path  # None: a file of this run alone, not kept when stopped
        self.resumable = False  # whether this run keeps a state a later run can resume from

    @classmethod
    def open(cls, destination: str, run_id: str) -> Partial:
        """The destination's hidden file, locked; or one of this run's own if another holds it."""
        path, state_path = hidden_paths(destination)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return cls(fd, path, state_path)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.ENOLCK, errno.EOPNOTSUPP):
                raise
        return cls.own(destination, run_id)

    @classmethod
    def own(cls, destination: str, run_id: str) -> Partial:
        """A hidden file of this run alone, which a later run will not resume from."""
        path = hidden_paths(destination)[0][: -len(PART_SUFFIX)] + f".{run_id}{PART_SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        return cls(fd, path, None)

    def read_state(self) -> dict[str, Any] | None:
        """The state left by an earlier run, or None (none, unreadable, or not a state)."""
        if self.state_path is None:
            return None
        try:
            with open(self.state_path, "rb") as f:
                state = json.loads(f.read().decode("utf-8"))
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) and state.get("version") == 1 else None

    def write_state(self, state: dict[str, Any]) -> None:
        """Replace the state file atomically (a full disk only costs the next run a refetch)."""
        if self.state_path is None:
            return
        tmp = f"{self.state_path}.{os.getpid()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps({"version": 1, **state}).encode())
            os.replace(tmp, self.state_path)
        except OSError:
            with suppress(OSError):
                os.unlink(tmp)

    def forget(self) -> None:
        """The download is over: no state to resume from any more."""
        if self.state_path is not None:
            with suppress(FileNotFoundError):
                os.unlink(self.state_path)

    def remove(self) -> None:
        """Give the download up: the hidden file and its state go."""
        self.forget()
        with suppress(FileNotFoundError):
            os.unlink(self.path)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # the lock goes with it
            self.fd = -1


def written(state: dict[str, Any]) -> int:
    """How many bytes a state says are in its hidden file."""
    total = 0
    for entry in state.get("ranges", ()):
        with suppress(TypeError, ValueError):
            start, _end, upto = (int(x) for x in entry)
            total += max(upto - start, 0)
    return total


def state_of(path: str) -> str:
    """The state file of the hidden file ``path``."""
    return path[: -len(PART_SUFFIX)] + STATE_SUFFIX


def describe(path: str) -> tuple[int, int] | None:
    """(bytes there, size) of the unfinished download whose hidden file is ``path``."""
    try:
        with open(state_of(path), "rb") as f:
            state = json.loads(f.read().decode("utf-8"))
        return written(state), int(state["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None

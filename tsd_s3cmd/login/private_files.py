"""Private files: a directory of secrets only its owner can read, written atomically.

The mechanism under everything tsd-s3cmd keeps on disk (what is kept is
store.py's concern). The directory is 0700 and every file 0600 whatever the
umask. A file is replaced atomically (temporary file, fsync, rename), so a
crash or a full disk leaves the old one whole. As ssh does with keys, a file
that other users could read, or a directory they could write, is refused until
its owner fixes the mode.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import suppress
from pathlib import Path

from ..errors import EX_IOERR, ConfigError, TsdError


def check_private(path: Path, st: os.stat_result, what: str) -> None:
    """Refuse a secret-holding file or directory that someone else controls or can read."""
    if st.st_uid != os.geteuid():
        raise ConfigError(f"{path} belongs to another user; refusing to use {what} from it")
    if stat.S_ISDIR(st.st_mode):
        if st.st_mode & 0o022:
            raise ConfigError(
                f"{path} can be written by other users; fix it with: chmod 700 '{path}'"
            )
    elif st.st_mode & 0o077:
        raise ConfigError(f"{path} can be read by other users; fix it with: chmod 600 '{path}'")


class PrivateDir:
    """A directory of private files: checked reads, atomic private writes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / name

    def ensure(self) -> None:
        """Create the directory 0700 (and tighten one of ours that is looser)."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = self.directory.stat()
            if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != 0o700:
                os.chmod(self.directory, 0o700)
        except OSError as err:
            raise TsdError(f"cannot create {self.directory}: {err.strerror}", EX_IOERR) from err

    def read(self, name: str, what: str = "secrets") -> bytes | None:
        """A file's bytes, ``None`` if there is none; refused if exposed or not a file."""
        path = self.path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise ConfigError(f"{path} is a symbolic link; refusing to follow it") from err
            raise ConfigError(f"cannot read {path}: {err.strerror}") from err
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise ConfigError(f"{path} is not a regular file; move it away")
        with os.fdopen(fd, "rb") as f:
            check_private(path, st, what)
            check_private(self.directory, self.directory.stat(), what)
            return f.read()

    def write(self, name: str, data: bytes) -> None:
        """Replace a file atomically with mode 0600; on failure the old file is untouched."""
        self.ensure()
        path = self.path(name)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as err:
            with suppress(OSError):
                os.unlink(tmp)
            raise TsdError(f"could not write {path}: {err.strerror}", EX_IOERR) from err
        try:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass  # the rename is done; a directory fsync is best effort

    def remove(self, name: str) -> bool:
        """Delete a file; whether there was one."""
        try:
            os.unlink(self.path(name))
        except FileNotFoundError:
            return False
        except OSError as err:
            raise TsdError(f"could not remove {self.path(name)}: {err.strerror}", EX_IOERR) from err
        return True

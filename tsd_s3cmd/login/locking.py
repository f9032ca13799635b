"""The lock that serialises tsd-s3cmd processes around the login cache.

Many processes started together (a Slurm job array) must log in once and
spend each refresh token once: every read-modify-write of the cache runs
under this lock. It is, in order of preference:

1. an ``flock`` on a file in the config directory, which the kernel releases
   when its holder dies, so a killed process never blocks the others;
2. where the file system has no ``flock`` (Lustre mounted without
   ``-o flock``), a POSIX record lock (``lockf``) on the same file, also
   released by the kernel. Record locks belong to a process, not to an open
   file, so threads of one process are kept apart by a thread lock as well;
3. where it has neither (NFS without a lock daemon), a lock file created with
   ``O_EXCL`` and naming its holder (see ``_LockFile``), which a holder that
   died cannot block for ever.

Which errors mean "this file system cannot lock" rather than "busy" is
``UNSUPPORTED``. The first mechanism that works for a directory is used
from then on in the process, and the fallback is reported once per process.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ..errors import EX_IOERR, TsdError

LOCK_TIMEOUT = 600.0
# How often a lock file's holder touches it, and how long a lock file of a
# holder on another machine may stay untouched before it counts as abandoned.
HEARTBEAT = 5.0
STALE_AFTER = 60.0

# flock or lockf failing with these says the file system (or its mount, or a
# missing lock daemon) does not lock, not that someone else holds the lock:
# ENOSYS: Lustre without -o flock ("Function not implemented");
# ENOLCK: NFS with no lockd/statd to talk to ("No locks available");
# EOPNOTSUPP/ENOTSUP: FUSE and other file systems that refuse lock requests;
# EINVAL: the call is valid, so the file's file system cannot take the lock.
# Busy is EWOULDBLOCK/EAGAIN (flock) or EACCES/EAGAIN (lockf); anything else
# is an error to report.
UNSUPPORTED = frozenset({errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL})

FLOCK, LOCKF, LOCK_FILE = "flock", "lockf", "lock file"
_MECHANISMS = (FLOCK, LOCKF, LOCK_FILE)
_FALLBACK_WARNINGS = {
    LOCKF: "{where} is on a file system without flock ({why}); "
    "using POSIX record locks instead, which are slower",
    LOCK_FILE: "{where} is on a file system without flock or POSIX record locks ({why}); "
    "using a lock file instead, which is slower",
}
_works: dict[Path, str] = {}  # the mechanism found to work, per lock path
_warned = False
_THREAD_LOCK: dict = {}  # "lockf": a threading.Lock, made when first needed


@contextmanager
def held(path: Path, warn: Callable[[str], None], timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the lock on ``path`` (created 0600 if missing) until the block ends."""
    wait = _Wait(path, warn, timeout)
    release = _acquire(path, warn, wait)
    try:
        yield
    finally:
        release()


def _acquire(path: Path, warn: Callable[[str], None], wait: _Wait) -> Callable[[], None]:
    """Take the lock by the best mechanism the file system has; the function releasing it."""
    mechanism = _works.get(path, FLOCK)
    if mechanism != LOCK_FILE:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as err:
            raise TsdError(f"cannot open {path}: {err.strerror}", EX_IOERR) from err
        try:
            mechanism = _kernel_lock(fd, path, mechanism, warn, wait)
        except BaseException:
            os.close(fd)
            raise
        if mechanism != LOCK_FILE:
            return lambda: _release_kernel_lock(fd, mechanism)
        os.close(fd)
    return _LockFile(lock_file_path(path)).acquire(wait)


def _kernel_lock(
    fd: int, path: Path, mechanism: str, warn: Callable[[str], None], wait: _Wait
) -> str:
    """Lock ``fd`` by ``mechanism`` or, if unsupported, the next; the one that worked.

    LOCK_FILE means neither flock nor lockf works here.
    """
    reasons: list[str] = []
    try:
        while mechanism != LOCK_FILE:
            try:
                got = _try_kernel_lock(fd, mechanism)
            except OSError as err:
                if err.errno not in UNSUPPORTED:
                    raise
                reasons.append(err.strerror or errno.errorcode.get(err.errno or 0, "error"))
                mechanism = _MECHANISMS[_MECHANISMS.index(mechanism) + 1]
                continue
            if reasons:
                _fallen_back(path, mechanism, reasons, warn)
            while not got:
                wait.pause()
                got = _try_kernel_lock(fd, mechanism)
            return mechanism
    except OSError as err:
        raise TsdError(f"cannot lock {path}: {err.strerror}", EX_IOERR) from err
    _fallen_back(path, LOCK_FILE, reasons, warn)
    return LOCK_FILE


def _try_kernel_lock(fd: int, mechanism: str) -> bool:
    """Take an flock or lockf lock without blocking: False if busy, OSError if unsupported."""
    import fcntl

    if mechanism == FLOCK:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
    threads = _thread_lock()
    if not threads.acquire(blocking=False):  # another thread of ours holds it
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: busy
        threads.release()
        return False
    except BaseException:
        threads.release()
        raise


def _release_kernel_lock(fd: int, mechanism: str) -> None:
    os.close(fd)  # releases flock and lockf alike
    if mechanism == LOCKF:
        _thread_lock().release()


def _thread_lock():  # type: ignore[no-untyped-def]
    """The lock that keeps threads of this process apart where record locks cannot."""
    import threading

    return _THREAD_LOCK.setdefault("lockf", threading.Lock())  # setdefault: one, even if raced


def _fallen_back(
    path: Path, mechanism: str, reasons: list[str], warn: Callable[[str], None]
) -> None:
    """Remember the mechanism for ``path``; say once per process that a slower one is used."""
    global _warned
    _works[path] = mechanism
    if not _warned:
        _warned = True
        why = "; ".join(dict.fromkeys(reasons))
        warn(_FALLBACK_WARNINGS[mechanism].format(where=path.parent, why=why))


def lock_file_path(path: Path) -> Path:
    """Where the lock file that stands in for ``path``'s lock lives."""
    return path.with_name(path.name + ".owner")


class _Wait:
    """Waiting for a busy lock: a pause between tries, one notice, the time limit."""

    def __init__(self, path: Path, warn: Callable[[str], None], timeout: float) -> None:
        self.path = path
        self.warn = warn
        self.timeout = timeout
        self.started = time.monotonic()
        self.told = False
        self.delay = 0.01

    def pause(self, longest: float = 0.2) -> None:
        now = time.monotonic()
        if now > self.started + self.timeout:
            raise TsdError(
                f"another tsd-s3cmd has held {self.path} for {self.timeout:.0f}s; "
                "is one waiting for a login at a terminal?",
                EX_IOERR,
            )
        if not self.told and now > self.started + 2:
            self.warn("waiting for another tsd-s3cmd to finish logging in")
            self.told = True
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, longest)


class _LockFile:
    """A lock that is a file: whoever creates it (``O_EXCL``) holds the lock.

    The file names its holder: host, boot, PID namespace, PID, the process's
    start time and a random nonce. A holder that died without removing it is
    recognised

    - on the same machine (same host name, boot and PID namespace): at once,
      when its PID is gone or now belongs to a process started at another time;
    - elsewhere: when the file has not changed for ``STALE_AFTER`` seconds by
      the waiter's own clock (so clocks of different machines never compare).
      A holder touches its file every ``HEARTBEAT`` seconds from a thread for
      as long as it holds the lock, so a login waiting at a terminal for
      minutes is never taken for dead; only a stopped process would be.

    An abandoned file is broken by renaming it to a name of the breaker's
    own: of two waiters that judged it abandoned, one rename succeeds and the
    other finds no file. The breaker then checks that what it renamed is the
    file it judged, and puts back a newer holder's file it took by mistake.
    A live holder on the same machine is waited for, as with flock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.me = _owner_record()
        self.seen: tuple[bytes, int] | None = None  # content and mtime of the holder's file
        self.seen_since = 0.0

    def acquire(self, wait: _Wait) -> Callable[[], None]:
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:
                if not self._break_if_abandoned():
                    wait.pause(longest=0.5)
                continue
            except OSError as err:
                raise TsdError(f"cannot create {self.path}: {err.strerror}", EX_IOERR) from err
            try:
                os.write(fd, self.me)
            except OSError as err:
                os.close(fd)
                with suppress(OSError):
                    os.unlink(self.path)
                raise TsdError(f"cannot write {self.path}: {err.strerror}", EX_IOERR) from err
            return self._hold(fd)

    def _hold(self, fd: int) -> Callable[[], None]:
        """Touch the file while the lock is held; the function that releases it."""
        import threading

        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(HEARTBEAT):
                with suppress(OSError):  # the next beat may work; waiters allow many misses
                    os.utime(fd)

        beat = threading.Thread(target=heartbeat, name="tsd-s3cmd lock heartbeat", daemon=True)
        beat.start()

        def release() -> None:
            stop.set()
            beat.join()
            os.close(fd)
            if self._content() == self.me:  # not a file that replaced ours after a break
                with suppress(FileNotFoundError):
                    os.unlink(self.path)

        return release

    def _content(self) -> bytes | None:
        found = _read(self.path)
        return None if found is None else found[0]

    def _break_if_abandoned(self) -> bool:
        """Break the file if its holder is gone; True if the caller should retry at once."""
        found = _read(self.path)
        if found is None:
            return True  # released meanwhile
        if found != self.seen:
            self.seen, self.seen_since = found, time.monotonic()
        if not self._abandoned(found[0]):
            return False
        aside = self.path.with_name(f"{self.path.name}.broken-{os.getpid()}-{os.urandom(4).hex()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True  # another waiter broke it, or its holder left
        except OSError as err:
            raise TsdError(f"cannot break the lock {self.path}: {err.strerror}", EX_IOERR) from err
        taken = _read(aside)
        if taken is not None and taken[0] != found[0]:
            # Between our look and our rename another waiter broke the abandoned
            # file and a third process took the lock: give that one its file back.
            os.replace(aside, self.path)
            return False
        with suppress(FileNotFoundError):
            os.unlink(aside)
        return True

    def _abandoned(self, content: bytes) -> bool:
        holder = _parse_owner(content)
        if holder is not None and holder[0] == _here():
            _, pid, started = holder
            return not _alive(pid, started)
        return time.monotonic() - self.seen_since > STALE_AFTER


def _read(path: Path) -> tuple[bytes, int] | None:
    """A lock file's content and mtime (ns), None if there is none.

    Opening the file (rather than ``stat``) makes an NFS client fetch fresh
    attributes, so a holder's heartbeat on another machine is seen.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise TsdError(f"cannot read the lock {path}: {err.strerror}", EX_IOERR) from err
    try:
        return os.read(fd, 4096), os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)


_HERE: str | None = None


def _here() -> str:
    """This machine, boot and PID namespace: where a PID means the same process as ours."""
    global _HERE
    if _HERE is None:
        import socket

        parts = [socket.gethostname()]
        for read in (
            lambda: Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
            lambda: os.readlink("/proc/self/ns/pid"),
        ):
            try:
                parts.append(read())
            except OSError:
                parts.append("")
        _HERE = " ".join(parts)
    return _HERE


def _process(pid: int) -> tuple[str, str] | None:
    """State and start time (clock ticks since boot) of process ``pid``; None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat.rpartition(b")")[2].split()
    return (fields[0].decode(), fields[19].decode()) if len(fields) > 19 else None


def _owner_record() -> bytes:
    import json

    pid = os.getpid()
    me = _process(pid)
    record = {
        "where": _here(),
        "pid": pid,
        "started": me[1] if me else None,
        "nonce": os.urandom(8).hex(),
    }
    return (json.dumps(record, sort_keys=True) + "\n").encode()


def _parse_owner(content: bytes) -> tuple[str, int, str | None] | None:
    """Where, PID and start time of a lock file's holder; None if the file says no such thing."""
    import json

    try:
        record = json.loads(content)
        where, pid, started = record["where"], record["pid"], record["started"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(where, str) or not isinstance(pid, int) or pid <= 0:
        return None
    return where, pid, started if isinstance(started, str) else None


def _alive(pid: int, started: str | None) -> bool:
    """Whether the process that wrote a lock file on this machine still runs.

    A PID that now belongs to a process started at another time, or to a
    zombie (killed, not yet reaped), is a holder that died.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process has that PID now: the start time tells
    if not os.path.isdir("/proc/self"):
        return True  # no /proc (macOS): the PID is all there is to go by
    process = _process(pid)
    return process is not None and process[0] != "Z" and started in (None, process[1])

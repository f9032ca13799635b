"""The lock's fallbacks: which errors mean "cannot lock here", and the lock file.

The end-to-end tests (tests/e2e/test_lock_fallback.py) take flock and record
locks away from real tsd-s3cmd processes; these pin down the lock file's
rules with holders that are real processes, alive, killed or elsewhere.
"""

from __future__ import annotations

import errno
import fcntl
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tsd_s3cmd.errors import TsdError
from tsd_s3cmd.login import locking

HOLDER = """
import sys
from pathlib import Path
from tsd_s3cmd.login import locking
path, heartbeat, here = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
locking.HEARTBEAT = heartbeat
if here:
    locking._HERE = here
locking._works[path] = locking.LOCK_FILE
with locking.held(path, print):
    print("held", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each test starts as a new process would: nothing learnt, nothing said."""
    monkeypatch.setattr(locking, "_works", {})
    monkeypatch.setattr(locking, "_warned", False)


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    return tmp_path / ".lock"


def use_lock_file(path: Path) -> None:
    locking._works[path] = locking.LOCK_FILE


def start_holder(path: Path, heartbeat: float = 5.0, here: str = "") -> subprocess.Popen:
    """A process holding ``path``'s lock file until a line arrives on its stdin."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(heartbeat), here],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
    return proc


def write_owner(path: Path, **fields: object) -> None:
    record = {"where": locking._here(), "pid": os.getpid(), "started": None, "nonce": "x"}
    locking.lock_file_path(path).write_text(json.dumps({**record, **fields}))


def leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name + "."))


@pytest.mark.parametrize("reaped", [False, True], ids=["zombie", "reaped"])
def test_lock_file_of_a_killed_holder_is_broken(lock: Path, reaped: bool) -> None:
    holder = start_holder(lock)
    holder.send_signal(signal.SIGKILL)
    if reaped:
        holder.wait()
    use_lock_file(lock)
    with locking.held(lock, pytest.fail, timeout=5):
        assert leftovers(lock) == [".lock.owner"]
    assert leftovers(lock) == []
    holder.wait()


def test_lock_file_of_a_live_holder_is_waited_for(lock: Path) -> None:
    holder = start_holder(lock)
    owner = locking.lock_file_path(lock).read_bytes()
    use_lock_file(lock)
    said: list[str] = []
    with pytest.raises(TsdError, match="has held"), locking.held(lock, said.append, timeout=2.5):
        pass
    assert said == ["waiting for another tsd-s3cmd to finish logging in"]
    assert locking.lock_file_path(lock).read_bytes() == owner
    holder.communicate(b"done\n", timeout=10)
    with locking.held(lock, pytest.fail, timeout=5):
        pass
    assert leftovers(lock) == []


def test_a_pid_now_used_by_another_process_is_a_dead_holder(lock: Path) -> None:
    write_owner(lock, pid=os.getpid(), started="1")  # alive, but not started at tick 1
    use_lock_file(lock)
    with locking.held(lock, pytest.fail, timeout=5):
        pass


def test_holder_on_another_machine_is_dead_only_when_its_file_stops_changing(
    lock: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(locking, "STALE_AFTER", 0.5)
    holder = start_holder(lock, heartbeat=0.1, here="another machine")
    use_lock_file(lock)
    with pytest.raises(TsdError, match="has held"), locking.held(lock, lambda _: None, timeout=2):
        pass
    holder.send_signal(signal.SIGKILL)  # its heartbeat stops; its PID means nothing here
    holder.wait()
    with locking.held(lock, pytest.fail, timeout=1.5):
        pass


def test_an_unreadable_lock_file_is_broken_once_it_stops_changing(lock: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(locking, "STALE_AFTER", 0.3)
    locking.lock_file_path(lock).write_bytes(b"")  # a holder that died before writing itself
    use_lock_file(lock)
    with locking.held(lock, lambda _: None, timeout=1.5):
        assert json.loads(locking.lock_file_path(lock).read_bytes())["pid"] == os.getpid()


def _count_in_turn(lock: str, counter: str, overlaps: str) -> None:
    path = Path(lock)
    use_lock_file(path)
    with locking.held(path, lambda _: None, timeout=30):
        inside = Path(overlaps) / "inside"
        try:
            fd = os.open(inside, os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            os._exit(3)
        value = int(Path(counter).read_text())
        threading.Event().wait(0.02)
        Path(counter).write_text(str(value + 1))
        os.close(fd)
        os.unlink(inside)


def test_waiters_breaking_an_abandoned_lock_together_enter_one_at_a_time(
    lock: Path, tmp_path: Path
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_owner(lock, pid=dead.pid)
    counter = tmp_path / "counter"
    counter.write_text("0")
    ctx = multiprocessing.get_context("fork")
    waiters = [
        ctx.Process(target=_count_in_turn, args=(str(lock), str(counter), str(tmp_path)))
        for _ in range(8)
    ]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join(60)
        assert waiter.exitcode == 0
    assert counter.read_text() == "8"
    assert leftovers(lock) == []


def test_release_leaves_a_lock_file_that_is_not_its_own(lock: Path) -> None:
    use_lock_file(lock)
    with locking.held(lock, pytest.fail):
        locking.lock_file_path(lock).write_text("someone who broke ours and took the lock")
    assert locking.lock_file_path(lock).read_text().startswith("someone")


def refuse(monkeypatch, name: str, code: int) -> None:  # type: ignore[no-untyped-def]
    def call(*args: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, name, call)


@pytest.mark.parametrize("code", sorted(locking.UNSUPPORTED), ids=errno.errorcode.get)
def test_flock_unsupported_falls_back_to_record_locks_and_says_so_once(
    lock: Path, monkeypatch, code: int
) -> None:  # type: ignore[no-untyped-def]
    refuse(monkeypatch, "flock", code)
    said: list[str] = []
    for path in (lock, lock.with_name("other")):
        for _ in range(2):
            with locking.held(path, said.append):
                assert not locking.lock_file_path(path).exists()
    assert len(said) == 1 and "without flock" in said[0] and "record locks" in said[0]
    assert locking._works == {lock: locking.LOCKF, lock.with_name("other"): locking.LOCKF}


def test_neither_flock_nor_record_locks_falls_back_to_a_lock_file(lock: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    refuse(monkeypatch, "flock", errno.ENOSYS)
    refuse(monkeypatch, "lockf", errno.ENOLCK)
    said: list[str] = []
    with locking.held(lock, said.append):
        assert locking.lock_file_path(lock).exists()
    assert said == [
        f"{lock.parent} is on a file system without flock or POSIX record locks "
        "(Function not implemented; No locks available); using a lock file instead, "
        "which is slower"
    ]


def test_other_lock_errors_are_reported_not_worked_around(lock: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    refuse(monkeypatch, "flock", errno.EIO)
    refused = pytest.raises(TsdError, match=f"cannot lock {lock}: Input/output error")
    with refused, locking.held(lock, pytest.fail):
        pass
    assert locking._works == {}


def test_record_locks_keep_threads_of_one_process_apart(lock: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    refuse(monkeypatch, "flock", errno.ENOSYS)
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        with locking.held(lock, lambda _: None):
            inside.set()
            leave.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    with pytest.raises(TsdError, match="has held"), locking.held(lock, lambda _: None, timeout=0.5):
        pass
    leave.set()
    holder.join()
    with locking.held(lock, lambda _: None, timeout=5):
        pass

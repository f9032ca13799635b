"""One command's transfers under one budget: the threads, the stop flag, who goes first.

s3cmd sends one request at a time. tsd-s3cmd moves several files at once
(files.py) and the parts of a large file at once (parts.py, downloads.py);
all of them share what one ``Scheduler`` owns:

- the request budget and the bandwidth (limits.py): every request of the
  command, from whichever thread, takes a place in the budget for as long as
  it is in flight, and every byte it moves is paced by the one bandwidth;
- two pools of threads, started as needed and never more than ``--parallel``
  each: file workers, which run one file's transfer each (s3cmd's own
  ``object_put`` and the like, whose requests wait for places like any
  other), and part workers, which run the parts of large files;
- the order of work: a file's priority is its place in s3cmd's list, a
  part's is its file's and then its number, and every wait is served in that
  order (see limits.py for why);
- the stop flag: the first Ctrl-C, SIGTERM or SIGHUP sets it, and every
  worker stops at its next read, write or wait;
- the progress counts (progress.py).

A thread's priority and the file it is working for are thread-local: they
follow the work into s3cmd's code and back out through the shim's hooks.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from .limits import Bandwidth, RequestBudget, Stopped, slow_down_pause
from .progress import FileCount, Progress

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from .limits import Priority

    Job = TypeVar("Job")

# As aws cli: enough for a 128 MiB file in s3cmd's 15 MiB parts to go in one wave.
DEFAULT_WORKERS = 10
MAX_WORKERS = 64
# How often in a row one request may be told to slow down and sent again, unseen by
# s3cmd's count of failures; beyond that it is a failure like any other.
MOST_SLOW_DOWNS = 20
# How long a stop waits for running work to notice, before giving up on it.
STOP_GRACE = 2.0
# The main thread's own requests (what s3cmd does between transfers) go first.
MAIN_PRIORITY: Priority = (-1,)


def workers_from(value: str | None, source: str) -> int:
    """Requests at once from ``--parallel`` or the environment; ValueError if bad."""
    if value is None or not value.strip():
        return DEFAULT_WORKERS
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{source} takes a number of requests at once, not {value!r}") from None
    if not 1 <= number <= MAX_WORKERS:
        raise ValueError(f"{source} must be between 1 and {MAX_WORKERS}, not {number}")
    return number


class _Group:
    """The parts of one file handed to the part workers, and how they went."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.failure: tuple[BaseException, object] | None = None
        self.done = threading.Condition()


class _Pool:
    """Up to ``size`` threads running jobs, the lowest priority first; started as needed."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._ready = threading.Condition()
        self._jobs: list[tuple[Priority, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._threads = 0
        self._idle = 0
        self._closed = False

    def submit(self, priority: Priority, job: Callable[[], None]) -> None:
        """``job`` must not raise: it carries its own outcome to whoever waits for it."""
        with self._ready:
            heapq.heappush(self._jobs, (priority, next(self._order), job))
            if len(self._jobs) > self._idle and self._threads < self._size:
                self._threads += 1
                threading.Thread(
                    target=self._work, name=f"tsd-s3cmd-{self._name}-{self._threads}", daemon=True
                ).start()
            self._ready.notify()

    def _work(self) -> None:
        while True:
            with self._ready:
                self._idle += 1
                while not self._jobs and not self._closed:
                    self._ready.wait()
                self._idle -= 1
                if not self._jobs:
                    return
                _, _, job = heapq.heappop(self._jobs)
            job()

    def close(self) -> None:
        """Let the threads end once the jobs queued are done."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()


class Scheduler:
    """Everything one command moves: see the module docstring."""

    def __init__(
        self,
        workers: int,
        rate: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        most: int | None = None,
    ) -> None:
        """``workers`` requests at once to begin with, and the parts of a file at once;
        ``most``: the ceiling the budget may grow to (None: it stays at ``workers``)."""
        self.workers = workers
        self.stop_flag = threading.Event()
        self.bandwidth = Bandwidth(rate, self.stop_flag, clock) if rate > 0 else None
        self.budget = RequestBudget(workers, self.stop_flag, self.bandwidth, clock, most)
        self.progress = Progress(clock)
        self._local = threading.local()
        # Files go as many at once as the budget has places; the parts of large files,
        # which hold a part in memory each, no more than ``workers``.
        self._files = _Pool(self.budget.most, "file")
        self._parts = _Pool(workers, "part")
        self._order = itertools.count()

    # -- the stop flag ------------------------------------------------------------

    def stop(self) -> None:
        """Stop the command: nothing new starts, and running work stops at its next step."""
        self.stop_flag.set()

    @property
    def stopped(self) -> bool:
        return self.stop_flag.is_set()

    def check(self) -> None:
        """Raise Stopped in a worker whose command is stopping."""
        if self.stop_flag.is_set():
            raise Stopped

    # -- what a thread is working on --------------------------------------------

    def priority(self) -> Priority:
        return getattr(self._local, "priority", MAIN_PRIORITY)

    def place(self) -> int:
        """The place in the command's order of the file this thread works for."""
        return self.priority()[0]

    def file(self) -> FileCount | None:
        return getattr(self._local, "file", None)

    @contextmanager
    def working_on(self, priority: Priority, file: FileCount | None) -> Iterator[None]:
        """Run the block with this thread's priority and file set (and restored after)."""
        local = self._local
        saved = getattr(local, "priority", MAIN_PRIORITY), getattr(local, "file", None)
        local.priority, local.file = priority, file
        try:
            yield
        finally:
            local.priority, local.file = saved

    # -- requests and bytes --------------------------------------------------------

    @contextmanager
    def request(self) -> Iterator[None]:
        """Hold a place in the budget for one request (its retries included).

        Re-entrant: s3cmd's send methods retry by calling themselves, and one
        place is held for all of it.
        """
        local = self._local
        if getattr(local, "holding", False):
            yield
            return
        local.began = self.budget.acquire(self.priority())
        local.slowed = 0
        local.holding = True
        answered = False
        try:
            yield
            answered = not local.slowed
        finally:
            local.holding = False
            self.budget.release(answered)

    def files_at_once(self) -> int:
        """How many files to have under way: twice the budget's places (within its ceiling),
        so that every place is taken and the budget sees that more could go."""
        budget = self.budget
        return min(budget.most, 2 * budget.slots)

    def connection_lost(self) -> None:
        """This thread's request lost its connection: fewer at once, as TCP after a loss."""
        self.budget.slowed(getattr(self._local, "began", float("-inf")), asked=False)

    def slowed_down(self) -> float | None:
        """The gateway told this thread's request to slow down (or its connection failed).

        The budget is cut (limits.py). Returns the pause before the request goes
        again, or None once it has been told too often in a row: then it is a
        failure like any other.
        """
        local = self._local
        self.budget.slowed(getattr(local, "began", float("-inf")))
        local.slowed = getattr(local, "slowed", 0) + 1
        if local.slowed > MOST_SLOW_DOWNS:
            return None
        return slow_down_pause(local.slowed)

    def moved(self, size: int) -> None:
        """``size`` bytes are about to go over the wire from this thread: pace and count them."""
        self.check()
        if self.bandwidth is not None:
            self.bandwidth.take(size, self.priority())
        self.progress.add(self.file(), size)

    # -- files and parts ------------------------------------------------------------

    def next_place(self) -> int:
        """The place of the next file in the command's order."""
        return next(self._order)

    def run_file(self, place: int, job: Callable[[], None]) -> None:
        """Run ``job`` (which must not raise) on a file worker, in the order of ``place``."""
        self._files.submit((place,), job)

    def run_parts(
        self,
        place: int,
        parts: Sequence[Job],
        work: Callable[[Job], object],
        while_waiting: Callable[[], None] | None = None,
    ) -> None:
        """Run ``work(part)`` for every part of the file at ``place`` on the part workers.

        Parts are served earliest first. The first part that fails starts no
        new part of this file; parts already running finish (what they sent
        is kept for a resume), and then the failure is raised here with
        ``failed_part`` set on it. A stopped command raises Stopped; Ctrl-C
        in this thread stops the command. ``while_waiting`` runs in this
        thread between waits (a download's digest is taken there).
        """
        group = _Group(len(parts))
        file = self.file()
        for number, part in enumerate(parts, start=1):
            self._parts.submit(
                (place, number), self._part_job((place, number), group, file, work, part)
            )
        try:
            with group.done:
                while group.left and not self.stopped:
                    group.done.wait(0.05 if while_waiting else 0.5)
                    if while_waiting is not None:
                        group.done.release()
                        try:
                            while_waiting()
                        finally:
                            group.done.acquire()
        except BaseException:
            self.stop()
            self._wait_for(group)
            raise
        if self.stopped:  # parts that wait for an answer cannot be woken: not for long
            self._wait_for(group)
            raise Stopped
        if while_waiting is not None:
            while_waiting()
        if group.failure is not None:
            error, part = group.failure
            error.failed_part = part  # type: ignore[attr-defined]
            raise error
        self.check()

    def _part_job(
        self,
        priority: Priority,
        group: _Group,
        file: FileCount | None,
        work: Callable[[Any], object],
        part: object,
    ) -> Callable[[], None]:
        def run() -> None:
            try:
                if group.failure is None:
                    self.check()
                    with self.working_on(priority, file):
                        work(part)
            except Stopped:
                pass
            except BaseException as err:  # carried to the thread that waits for the group
                with group.done:
                    if group.failure is None:
                        group.failure = (err, part)
            finally:
                with group.done:
                    group.left -= 1
                    group.done.notify_all()

        return run

    @staticmethod
    def _wait_for(group: _Group) -> None:
        deadline = time.monotonic() + STOP_GRACE
        with group.done:
            while group.left and time.monotonic() < deadline:
                group.done.wait(0.05)

    def close(self) -> None:
        """Let the idle workers end: the command is over."""
        self._files.close()
        self._parts.close()

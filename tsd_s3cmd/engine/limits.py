"""The two limits every request of a command shares: how many at once, and how fast.

A command moves many files and parts at once, and they compete for two
things: places among the requests in flight (``--parallel N``) and bytes of
``--limit-rate``. Both are handed out earliest work first. Each waiter names a
priority, a tuple that orders work the way the command would do it alone
(file by file, part by part), and the lowest waiting priority is served
first. That is what makes parts finish one after the other instead of all
together at the end, so that a transfer stopped at any moment has lost only
what was in flight.

Both are work-conserving: a place or a byte that the earliest work does not
ask for goes to the next. Under ``--limit-rate`` the budget also starts a
request only when those in flight leave part of the rate unused: when one
connection carries the whole rate, parts go one at a time, as with s3cmd; over
a long link, where one connection cannot, as many as the rate needs.

Everything waits on one ``threading.Event``, the command's stop flag: a
stopped command wakes every waiter, which raises ``Stopped``.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    Priority = tuple[int, ...]

# How often a waiter looks at the stop flag, and at the rate's use, unwoken.
POLL = 0.1
# The window over which the use of a rate is judged.
RATE_WINDOW = 1.0
# A share of the rate left unused over the window that lets one more request start.
SPARE_SHARE = 0.1


class Stopped(BaseException):
    """Raised in a worker whose command is stopping.

    A BaseException, as KeyboardInterrupt is, so that s3cmd's broad
    ``except Exception`` retry loops let it through instead of retrying.
    """


class _Queue:
    """Waiters in priority order, the earliest first (ties: first come, first served)."""

    def __init__(self) -> None:
        self._heap: list[tuple[Priority, int]] = []
        self._count = itertools.count()

    def join(self, priority: Priority) -> tuple[Priority, int]:
        ticket = (priority, next(self._count))
        heapq.heappush(self._heap, ticket)
        return ticket

    def first(self, ticket: tuple[Priority, int]) -> bool:
        return self._heap[0] == ticket

    def leave(self, ticket: tuple[Priority, int]) -> None:
        if self._heap and self._heap[0] == ticket:
            heapq.heappop(self._heap)
        else:
            self._heap.remove(ticket)
            heapq.heapify(self._heap)

    def take_turn(
        self,
        priority: Priority,
        changed: threading.Condition,
        stop: threading.Event,
        wait_for: Callable[[], float],
    ) -> None:
        """Wait, holding ``changed``, until ``priority`` is first and ``wait_for()`` says 0.

        ``wait_for`` is asked only of the first waiter: how long until its
        turn comes (0 or less: now). Stopped if ``stop`` is set meanwhile.
        """
        ticket = self.join(priority)
        try:
            while True:
                if stop.is_set():
                    raise Stopped
                delay = wait_for() if self.first(ticket) else POLL
                if delay <= 0:
                    return
                changed.wait(min(delay, POLL))
        finally:
            self.leave(ticket)
            changed.notify_all()


class Bandwidth:
    """``--limit-rate`` for the whole command: bytes granted earliest work first, no bursts.

    A grant of ``size`` bytes is given when the schedule is free and the
    asker is the earliest waiting; the schedule is then busy for
    ``size / rate`` seconds. Idle time is not saved up for later.
    """

    def __init__(
        self, rate: float, stop: threading.Event, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self._stop = stop
        self._clock = clock
        self._changed = threading.Condition()
        self._waiting = _Queue()
        self._free_at = clock()
        # (start, end) of the times the schedule stood free; the last RATE_WINDOW only.
        self._idle: list[tuple[float, float]] = []

    def take(self, size: int, priority: Priority) -> None:
        """Wait until ``size`` bytes may go; Stopped if the command stops meanwhile."""
        with self._changed:
            self._waiting.take_turn(priority, self._changed, self._stop, self._until_free)
            now = self._clock()
            if now > self._free_at:
                self._idle.append((self._free_at, now))
            self._free_at = max(self._free_at, now) + size / self.rate

    def _until_free(self) -> float:
        return self._free_at - self._clock()

    def has_spare(self, since: float) -> bool:
        """Whether the rate has gone partly unused since ``since`` (a clock reading).

        Judged over the last RATE_WINDOW at most, and only once that long has
        passed since ``since``: a request just started needs time to show
        what it can carry.
        """
        with self._changed:
            now = self._clock()
            start = now - RATE_WINDOW
            if since > start:
                return False
            self._idle = [(a, b) for a, b in self._idle if b > start]
            idle = sum(min(b, now) - max(a, start) for a, b in self._idle)
            if now > self._free_at:
                idle += now - max(self._free_at, start)
            return idle > SPARE_SHARE * RATE_WINDOW


class RequestBudget:
    """At most ``slots`` requests in flight for the whole command, the earliest work first."""

    def __init__(
        self,
        slots: int,
        stop: threading.Event,
        bandwidth: Bandwidth | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots = slots
        self._stop = stop
        self._bandwidth = bandwidth
        self._clock = clock
        self._changed = threading.Condition()
        self._waiting = _Queue()
        self.in_flight = 0
        self._last_start = clock()

    def acquire(self, priority: Priority) -> None:
        """Wait for a place among the requests in flight; Stopped if the command stops."""
        with self._changed:
            self._waiting.take_turn(priority, self._changed, self._stop, self._until_place)
            self.in_flight += 1
            self._last_start = self._clock()

    def release(self) -> None:
        with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def _until_place(self) -> float:
        return 0.0 if self.in_flight < self.slots and self._rate_admits() else POLL

    def _rate_admits(self) -> bool:
        """Under a rate limit, another request only if those in flight leave it partly unused."""
        if self._bandwidth is None or self.in_flight == 0:
            return True
        return self._bandwidth.has_spare(self._last_start)

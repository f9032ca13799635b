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

The number of places is not fixed: as TCP's congestion window, it grows
while the work uses every place (many small requests over a long link are
round-trip bound: more at once is faster) and halves when the gateway says
slow down (``503 SlowDown``, ``429``) or a connection fails, then grows
again, never beyond its ceiling (``--parallel N``, or MOST_AT_ONCE).

Everything waits on one ``threading.Event``, the command's stop flag: a
stopped command wakes every waiter, which raises ``Stopped``.
"""

from __future__ import annotations

import heapq
import itertools
import random
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
# The ceiling of places when --parallel does not set one: s5cmd sends up to 256, and
# beyond some dozens a long link's round trips no longer dominate a small file's time.
MOST_AT_ONCE = 64
# The pause before a request the gateway told to slow down goes again: doubling from
# the first, up to the last, each a random part of it so that requests do not return
# together.
FIRST_PAUSE = 0.05
LAST_PAUSE = 2.0


def slow_down_pause(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before the ``attempt``-th resend (1, 2, ...) of a slowed request."""
    ceiling = min(LAST_PAUSE, FIRST_PAUSE * 2 ** (attempt - 1))
    return ceiling * (0.5 + rand() / 2)


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
    """At most ``slots`` requests in flight for the whole command, the earliest work first.

    ``slots`` starts where it is given and moves between 1 and ``most``:
    up by one for each request answered while every place was taken, until
    the first slow-down (TCP's slow start, which doubles it each round), then
    by one a round (congestion avoidance); halved by a slow-down of a
    request begun since the last cut (the requests of one burst cut it once).
    """

    def __init__(
        self,
        slots: int,
        stop: threading.Event,
        bandwidth: Bandwidth | None = None,
        clock: Callable[[], float] = time.monotonic,
        most: int | None = None,
    ) -> None:
        self.slots = slots
        self.most = max(slots, most or slots)
        self.least = self.highest = slots  # the range it moved in, for a run's summary
        self.slow_downs = 0
        self._stop = stop
        self._bandwidth = bandwidth
        self._clock = clock
        self._changed = threading.Condition()
        self._waiting = _Queue()
        self.in_flight = 0
        self._last_start = clock()
        self._threshold = self.most  # where slow start ends: the last cut's
        self._answered = 0  # answers counted towards the next place
        self._full = False  # every place was taken since the last change
        self._cut_at = float("-inf")

    def acquire(self, priority: Priority) -> float:
        """Wait for a place among the requests in flight; Stopped if the command stops.

        Returns when the request began, for ``slowed``.
        """
        with self._changed:
            self._waiting.take_turn(priority, self._changed, self._stop, self._until_place)
            self.in_flight += 1
            self._last_start = self._clock()
            if self.in_flight >= self.slots:
                self._full = True
            return self._last_start

    def release(self, answered: bool = True) -> None:
        """A request is over; ``answered``: as asked, so the budget may grow."""
        with self._changed:
            self.in_flight -= 1
            if answered and self._full and self.slots < self.most:
                self._answered += 1
                # one more place per answer in slow start, one per round's answers after
                if self._answered >= (1 if self.slots < self._threshold else self.slots):
                    self._answered = 0
                    self.slots += 1
                    self.highest = max(self.highest, self.slots)
                    self._full = self.in_flight >= self.slots
            self._changed.notify_all()

    def slowed(self, began: float, asked: bool = True) -> None:
        """The gateway told a request begun at ``began`` to slow down (``asked``), or its
        connection failed."""
        with self._changed:
            self.slow_downs += asked
            if began <= self._cut_at:
                return  # of the burst that made the last cut
            self.slots = max(1, self.slots // 2)
            self.least = min(self.least, self.slots)
            self._threshold = self.slots
            self._answered = 0
            self._full = False
            self._cut_at = self._clock()

    def _until_place(self) -> float:
        return 0.0 if self.in_flight < self.slots and self._rate_admits() else POLL

    def _rate_admits(self) -> bool:
        """Under a rate limit, another request only if those in flight leave it partly unused."""
        if self._bandwidth is None or self.in_flight == 0:
            return True
        return self._bandwidth.has_spare(self._last_start)

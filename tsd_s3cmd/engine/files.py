"""Many files at once, while s3cmd's own loop decides what happens to each.

s3cmd moves the files of a command in a loop: for each file, it works out
the arguments, calls ``object_put`` (or ``object_get``, ``object_copy``),
prints the file's line and deals with any error. tsd-s3cmd keeps that loop
as it is, with one change (the shim's doing): the loop takes its files from
``Ahead.order`` instead of from its list. ``order`` works out, for the files
still ahead, the call s3cmd's loop will make for each (a ``Planned``, from
the shim, which knows s3cmd), runs those calls on the scheduler's file
workers, and hands the loop each file as its call finishes. When the loop
then makes its call, the shim finds the finished one (``claim``) and returns
its response, or raises its error, to s3cmd, which goes on exactly as if it
had made the call itself: its messages, its exit statuses, its decisions.

So what is transferred, and what is printed, stays s3cmd's; only when
changes, and lines come in the order files finish. A call that is not found
finished (its arguments came out other than planned) is simply made there
and then, by s3cmd, as without tsd-s3cmd.

Bounded: at most ``Scheduler.files_at_once()`` files (twice the budget's
places, within its ceiling) are planned and not yet handed back, however
long the list; the rest stay in s3cmd's list until their turn.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress

from .scheduler import STOP_GRACE

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any

    from .scheduler import Scheduler

# How often the loop's thread looks up from waiting (so that Ctrl-C is seen at once).
WAKE = 0.2


class Planned:
    """The call s3cmd's loop will make for one file, worked out ahead of it.

    ``match`` is what the shim compares the loop's real call with; ``run``
    makes the call (on a file worker) and returns s3cmd's response;
    ``discard(result)`` undoes what a result no one claimed left behind (a
    finished download's temporary file).
    """

    __slots__ = ("discard", "match", "run", "size")

    def __init__(
        self,
        match: tuple[Any, ...],
        run: Callable[[], Any],
        size: int = 0,
        discard: Callable[[Any], None] | None = None,
    ) -> None:
        self.match = match
        self.run = run
        self.size = size
        self.discard = discard


class _Job:
    __slots__ = ("claimed", "element", "error", "planned", "result")

    def __init__(self, element: Any, planned: Planned) -> None:
        self.element = element
        self.planned = planned
        self.result: Any = None
        self.error: BaseException | None = None
        self.claimed = False

    def discard(self) -> None:
        if not self.claimed and self.error is None and self.planned.discard is not None:
            self.planned.discard(self.result)


class Ahead:
    """The files of s3cmd's transfer loops, run ahead of them on the scheduler."""

    def __init__(self, scheduler: Scheduler, stop_on_error: bool) -> None:
        self.scheduler = scheduler
        self.stop_on_error = stop_on_error
        self._current: _Job | None = None
        self._thread: threading.Thread | None = None

    def order(
        self,
        elements: Iterable[Any],
        plan: Callable[[Any], Planned | None],
        sizes: Callable[[Any], int] | None = None,
    ) -> Iterator[Any]:
        """s3cmd's ``elements``, each as its planned call finishes.

        An element with no plan (``plan`` returned None: stdin, an existing
        file s3cmd will decide about) is handed over at its turn for s3cmd
        to deal with itself. ``sizes`` counts the bytes ahead for the live line.
        """
        scheduler = self.scheduler
        elements = list(elements) if sizes is not None else elements
        if sizes is not None:
            scheduler.progress.expect(len(elements), sum(sizes(e) for e in elements))  # type: ignore[arg-type]
        self._thread = threading.current_thread()
        ahead = iter(elements)
        finished: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        running = 0
        failed = False
        try:
            while True:
                while running < scheduler.files_at_once() and not (failed and self.stop_on_error):
                    element = next(ahead, _END)
                    if element is _END:
                        break
                    planned = plan(element)
                    if planned is None:
                        yield element
                        continue
                    running += 1
                    self._start(_Job(element, planned), finished)
                if not running:
                    return
                job = self._next(finished)
                running -= 1
                failed = failed or job.error is not None
                self._current = job
                yield job.element
                self._current = None
                job.discard()
        except KeyboardInterrupt:  # here, not in s3cmd's loop: stop what runs
            self.scheduler.stop()
            raise
        finally:
            self._current = None
            if running:
                self._drain(finished, running)

    def claim(self, match: tuple[Any, ...]) -> _Job | None:
        """The finished call that s3cmd's loop is making now, if it is the one planned."""
        job = self._current
        if (
            job is None
            or job.claimed
            or threading.current_thread() is not self._thread
            or job.planned.match != match
        ):
            return None
        job.claimed = True
        return job

    def _start(self, job: _Job, finished: queue.SimpleQueue[_Job]) -> None:
        scheduler = self.scheduler
        place = scheduler.next_place()
        count = scheduler.progress.started(job.planned.size)

        def run() -> None:
            try:
                scheduler.check()
                with scheduler.working_on((place, 0), count):
                    job.result = job.planned.run()
            except BaseException as err:  # handed to s3cmd's loop, which deals with it
                job.error = err
            else:
                scheduler.progress.finished(count)
            finished.put(job)

        scheduler.run_file(place, run)

    @staticmethod
    def _next(finished: queue.SimpleQueue[_Job]) -> _Job:
        """The next call to finish (waking now and then, so that Ctrl-C is seen at once)."""
        while True:
            with suppress(queue.Empty):
                return finished.get(timeout=WAKE)

    def _drain(self, finished: queue.SimpleQueue[_Job], running: int) -> None:
        """The loop ended early (an error s3cmd stops at, Ctrl-C): let running calls end.

        Nothing new starts; calls in flight finish, or stop at once if the
        command is stopping; whatever they leave that no one will claim is
        discarded.
        """
        interrupted: BaseException | None = None
        deadline = None
        while running:
            if self.scheduler.stopped:  # a call that waits for an answer cannot be woken
                deadline = deadline or time.monotonic() + STOP_GRACE
                if time.monotonic() > deadline:
                    break
            try:
                job = finished.get(timeout=WAKE)
            except queue.Empty:
                continue
            except BaseException as err:  # Ctrl-C while waiting: stop, wait, then raise it
                self.scheduler.stop()
                interrupted = err
                continue
            running -= 1
            job.discard()
        if interrupted is not None:
            raise interrupted


_END = object()

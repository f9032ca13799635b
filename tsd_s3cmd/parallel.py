"""Several parts of one file at once: the worker pool and the state its workers share.

s3cmd sends one request at a time, so over a long link a large file moves at
what one TCP connection carries (window / round-trip time). The shim hands
the parts of one file (multipart upload parts, ranged downloads) to a
``Transfer``, which runs them on a few threads that share s3cmd's connection
pool. Nothing here knows s3cmd; the shim supplies the work.

What the workers share has one owner and a lock:

- the stop flag (``Transfer``): set by the first part that fails for good, so
  no new part starts, or by Ctrl-C, so running parts stop at their next read;
- the rate limit (``RateLimit``): ``--limit-rate`` caps the file, not each
  connection;
- the progress line (``SharedProgress``): one line per file for all its parts;
- the file position (``PositionalReader``): each worker reads its own range
  with ``pread``, so no worker moves another's position;
- the digest of a download (``OrderedDigest``): parts finish out of order, the
  MD5 is taken in order as the finished prefix grows.

The token is shared too; its owner is ``broker.HeaderSource``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any, TypeVar

    Job = TypeVar("Job")

# As aws cli: enough for a 128 MiB file in s3cmd's 15 MiB parts to go in one wave.
DEFAULT_WORKERS = 10
MAX_WORKERS = 64
# The smallest range a download is cut into (S3's smallest part).
MIN_RANGE = 5 * 1024 * 1024
# How long Ctrl-C waits for running parts to notice, before giving up on them.
STOP_GRACE = 2.0


class Stopped(BaseException):
    """Raised inside a worker whose transfer is stopping.

    A BaseException, as KeyboardInterrupt is, so that s3cmd's broad
    ``except Exception`` retry loops let it through instead of retrying.
    """


def workers_from(value: str | None, source: str) -> int:
    """The number of parts at once from ``--parallel`` or the environment; ValueError if bad."""
    if value is None or not value.strip():
        return DEFAULT_WORKERS
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{source} takes a number of parts at once, not {value!r}") from None
    if not 1 <= number <= MAX_WORKERS:
        raise ValueError(f"{source} must be between 1 and {MAX_WORKERS}, not {number}")
    return number


def split(start: int, end: int, part_size: int, workers: int) -> list[tuple[int, int]]:
    """Byte ranges for a download of ``start`` to ``end``: about the part size, in whole waves.

    Unlike an upload's parts, a download's ranges are ours to choose. A last
    range running alone after the others would leave the link idle, so the
    count is rounded up to whole waves of ``workers``; and a file of fewer
    parts than workers is cut finer, down to S3's smallest part, so that the
    idle workers help.
    """
    length = end - start
    count = -(-length // part_size)
    if count < workers:
        count = min(workers, max(count, length // MIN_RANGE))
    else:
        count = -(-count // workers) * workers
    size = -(-length // count)
    return [(a, min(a + size, end)) for a in range(start, end, size)]


class RateLimit:
    """A byte rate shared by all workers of a file (virtual scheduling, no bursts)."""

    def __init__(self, bytes_per_second: float) -> None:
        self.rate = bytes_per_second
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def take(self, size: int, stop: threading.Event) -> None:
        """Wait until ``size`` more bytes fit in the rate; returns early if ``stop`` is set."""
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + size / self.rate
        stop.wait(max(start - now, 0.0))


class Transfer:
    """One file's parts, run on up to ``workers`` threads."""

    def __init__(self, workers: int, rate: float = 0.0) -> None:
        self.workers = workers
        self._stop = threading.Event()
        self._limit = RateLimit(rate) if rate > 0 else None
        self.failed_job: object = None

    def check(self) -> None:
        """Raise ``Stopped`` in a worker whose transfer is stopping."""
        if self._stop.is_set():
            raise Stopped

    def pace(self, size: int) -> None:
        """Account for ``size`` bytes about to move: honours the stop flag and the rate."""
        self.check()
        if self._limit is not None:
            self._limit.take(size, self._stop)
            self.check()

    def run(
        self,
        jobs: Sequence[Job],
        work: Callable[[Job], object],
        while_waiting: Callable[[], None] | None = None,
    ) -> None:
        """Run ``work(job)`` for every job, starting them in order.

        The first job that fails stops new jobs from starting; jobs already
        running finish (what they sent is kept for a resume), and then the
        failure is raised here, with ``failed_job`` naming its job.
        Ctrl-C in the calling thread stops the running jobs at their next
        read and is raised again. ``while_waiting`` runs in the calling
        thread between waits (the digest of a download is taken there).
        """
        pending = list(jobs)
        pending.reverse()
        lock = threading.Condition()
        failure: list[tuple[BaseException, Job]] = []
        running = 0

        def worker() -> None:
            nonlocal running
            while True:
                with lock:
                    if not pending or failure or self._stop.is_set():
                        running -= 1
                        lock.notify_all()
                        return
                    job = pending.pop()
                try:
                    work(job)
                except Stopped:
                    pass
                except BaseException as err:  # carried to the calling thread
                    with lock:
                        if not failure:
                            failure.append((err, job))
                with lock:
                    lock.notify_all()

        threads = [
            threading.Thread(target=worker, name=f"tsd-s3cmd-part-{i}", daemon=True)
            for i in range(min(self.workers, len(pending)))
        ]
        running = len(threads)
        for thread in threads:
            thread.start()
        try:
            with lock:
                while running:
                    lock.wait(0.05 if while_waiting else 1.0)
                    if while_waiting is not None:
                        lock.release()
                        try:
                            while_waiting()
                        finally:
                            lock.acquire()
        except BaseException:
            self._stop.set()
            deadline = time.monotonic() + STOP_GRACE
            for thread in threads:
                thread.join(max(deadline - time.monotonic(), 0.0))
            raise
        if while_waiting is not None:
            while_waiting()
        if failure:
            err, job = failure[0]
            self.failed_job = job
            raise err


class SharedProgress:
    """One progress line for all the parts of a file.

    ``meter`` is an s3cmd progress object for the whole file; the parts get
    ``part_meter`` objects with the same interface, which report here.
    """

    def __init__(self, meter: Any) -> None:
        self._meter = meter
        self._lock = threading.Lock()

    def add(self, size: int) -> None:
        if size:
            with self._lock:
                self._meter.update(delta_position=size)

    def done(self, message: str) -> None:
        with self._lock:
            self._meter.update()
            self._meter.done(message)

    def part_meter(self, labels: object = None, total_size: int = 0) -> _PartMeter:
        """A meter for one part, called as s3cmd calls its progress class."""
        return _PartMeter(self)


class _PartMeter:
    """What one part has moved; a failed attempt takes its bytes back."""

    def __init__(self, shared: SharedProgress) -> None:
        self._shared = shared
        self._position = 0

    def update(self, current_position: int = -1, delta_position: int = -1) -> None:
        if current_position > -1:
            delta_position = current_position - self._position
        if delta_position > 0:
            self._position += delta_position
            self._shared.add(delta_position)

    def done(self, message: str) -> None:
        if message == "failed":  # s3cmd sends the part again from its start
            self._shared.add(-self._position)
            self._position = 0


class PositionalReader:
    """A file that each worker thread reads at its own position, with ``pread``.

    It stands in for s3cmd's source stream during a parallel upload: s3cmd
    seeks to a part's offset and reads the part; with this, every worker
    does so without moving anyone else's position. Each read first asks the
    transfer whether to go on, which is how Ctrl-C reaches a running part.
    """

    def __init__(self, fd: int, stream_name: str, transfer: Transfer) -> None:
        self._fd = fd
        self.stream_name = stream_name
        self._transfer = transfer
        self._local = threading.local()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET:
            raise ValueError("only absolute positions in a parallel upload")
        self._local.position = offset
        return offset

    def tell(self) -> int:
        return getattr(self._local, "position", 0)

    def read(self, size: int = -1) -> bytes:
        self._transfer.check()
        position = self.tell()
        if size < 0:
            size = max(os.fstat(self._fd).st_size - position, 0)
        data = os.pread(self._fd, size, position)
        self._local.position = position + len(data)
        return data


class OrderedDigest:
    """The MD5 of a file whose ranges are written out of order, taken in order.

    Workers report what they have written (``written``); the calling thread
    (``catch_up``) hashes the file from the start as far as it is whole,
    reading back what the page cache still holds, so that the digest is
    ready almost as soon as the last byte is.
    """

    def __init__(self, fd: int, ranges: Sequence[tuple[int, int]], md5: Any = None) -> None:
        """``md5``: the digest of what comes before the file (``--continue``), if anything."""
        import hashlib

        self._fd = fd
        self._md5 = hashlib.md5() if md5 is None else md5
        self._starts = [start for start, _ in ranges]
        self._done = [start for start, _ in ranges]  # how far each range is written
        self._lock = threading.Lock()
        self._hashed = ranges[0][0] if ranges else 0
        self._range = 0

    def written(self, index: int, upto: int) -> None:
        with self._lock:
            self._done[index] = max(self._done[index], upto)

    def catch_up(self) -> None:
        while self._range < len(self._starts):
            with self._lock:
                upto = self._done[self._range]
                last = self._range + 1 == len(self._starts)
                complete = not last and upto >= self._starts[self._range + 1]
            while self._hashed < upto:
                data = os.pread(self._fd, min(upto - self._hashed, 1 << 20), self._hashed)
                if not data:
                    return
                self._md5.update(data)
                self._hashed += len(data)
            if not complete:
                return
            self._range += 1

    def hexdigest(self) -> str:
        self.catch_up()
        return self._md5.hexdigest()

"""A large object fetched as ranges at once, into a hidden file that survives a stop.

The ranges go to the scheduler's part workers, earliest first, and are
written where they belong in the object's hidden file (partials.py), which
keeps how far each range got. The MD5 is taken in order as the whole prefix
grows (``OrderedDigest``), so it is ready almost as soon as the last byte is.
The caller (the shim) fetches each range the way s3cmd sends a GET, and moves
the finished file into place where s3cmd expects it.

A download resumes from what an earlier run of the same ``get`` or ``sync``
left, unless the object changed since (its ETag or size), and checks the
whole file against the object's MD5 however it was put together: a resumed
file that fails the check is fetched again once, from the start, before the
download is given up. Nothing of a failed download is ever under the
destination's name.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

from .partials import Partial

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any

    from .scheduler import Scheduler

MiB = 1024 * 1024
# The smallest range a download is cut into (S3's smallest part).
MIN_RANGE = 5 * MiB
# The state of a download is rewritten after this many more bytes have arrived.
SAVE_EVERY = 4 * MiB


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


class OrderedDigest:
    """The MD5 of a file whose ranges are written out of order, taken in order.

    Workers report what they have written (``written``); the waiting thread
    (``catch_up``) hashes the file from the start as far as it is whole,
    reading back what the page cache still holds.
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
                data = os.pread(self._fd, min(upto - self._hashed, MiB), self._hashed)
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


class Refetch(Exception):
    """What is in the hidden file cannot be used: fetch the object again from the start."""


class Failed(Exception):
    """The download cannot be completed: ``str()`` says why (the shim makes it s3cmd's error)."""


class Finished:
    """A whole, checked download in its hidden file, waiting to be moved into place."""

    def __init__(
        self, partial: Partial, headers: dict[str, str], md5: str, expected: str | None,
        elapsed: float, fetched: int,
    ) -> None:  # fmt: skip
        self.partial = partial
        self.headers = headers
        self.md5 = md5
        self.expected = expected
        self.elapsed = elapsed
        self.fetched = fetched  # bytes that came over the wire in this run


# How a range is fetched: (start, end, write(position, data)) -> the response's headers.
FetchRange = Callable[[int, int, Callable[[int, bytes], None]], dict]


def fetch(
    scheduler: Scheduler,
    fetch_range: FetchRange,
    *,
    source: str,
    destination: str,
    size: int,
    part_size: int,
    expected_md5: Callable[[dict[str, str]], str | None],
    kept: Callable[[Partial, bool], None] | None = None,
    run_id: str = "",
    start: int = 0,
    before: Any = None,
) -> Finished:
    """Fetch ``source`` (``size`` bytes) into the hidden file beside ``destination``.

    ``kept(partial, True)`` is called when the download keeps a state that a
    later run can resume from, ``kept(partial, False)`` when that is over
    (for ``--status``). Raises ``Failed`` (or s3cmd's own errors, from
    ``fetch_range``) with the hidden file kept for a resume where it can be,
    Stopped when the command stops.

    ``start``: s3cmd's ``--continue``: the destination holds the first
    ``start`` bytes already (``before`` is their MD5 object); only the rest
    is fetched, into a file of this run's own that holds just that rest.
    """
    place = scheduler.place()
    run_id = run_id or f"{os.getpid()}-{id(scheduler):x}"
    partial = Partial.own(destination, run_id) if start else Partial.open(destination, run_id)
    try:
        for fresh in (bool(start), True):
            try:
                return _fetch_into(
                    scheduler, fetch_range, partial, place, source, size, part_size,
                    expected_md5, kept, fresh, start, before,
                )  # fmt: skip
            except Refetch:
                if fresh:
                    raise Failed(f"{source} changed during the download") from None
        raise AssertionError("unreachable")  # pragma: no cover
    except BaseException:
        if not partial.resumable:  # one range: fetched again whole, nothing to keep
            partial.remove()
        partial.close()
        raise


def _fetch_into(
    scheduler: Scheduler,
    fetch_range: FetchRange,
    partial: Partial,
    place: int,
    source: str,
    size: int,
    part_size: int,
    expected_md5: Callable[[dict[str, str]], str | None],
    kept: Callable[[Partial, bool], None] | None,
    fresh: bool,
    base: int,
    before: Any,
) -> Finished:
    state = None if fresh else partial.read_state()
    if state is not None and (state.get("object") != source or state.get("size") != size):
        state = None  # another object, or this one changed size: start afresh
    etag: str | None = state.get("etag") if state else None
    if state is not None:
        ranges = [[int(a), int(b), int(upto)] for a, b, upto in state["ranges"]]
    else:
        os.ftruncate(partial.fd, 0)
        ranges = [[a, b, a] for a, b in split(base, size, part_size, scheduler.workers)]
    resumed = any(upto > a for a, _, upto in ranges)
    keeps_state = partial.resumable = len(ranges) > 1 and partial.state_path is not None
    if not keeps_state:
        partial.forget()
    lock = threading.Lock()
    unsaved = 0

    def save() -> None:
        partial.write_state({"object": source, "size": size, "etag": etag, "ranges": ranges})

    if keeps_state:
        save()
        if kept is not None:
            kept(partial, True)
    digest = OrderedDigest(partial.fd, [(a - base, b - base) for a, b, _ in ranges], before)
    for index, (_, _, upto) in enumerate(ranges):
        digest.written(index, upto - base)
    answers: list[dict[str, str] | None] = [None] * len(ranges)
    fetched = 0

    def fetch_one(index: int) -> None:
        nonlocal unsaved, fetched, etag
        _, end, upto = ranges[index]
        if upto >= end:
            return

        def write(position: int, data: bytes) -> None:
            nonlocal unsaved, fetched
            os.pwrite(partial.fd, data, position - base)
            reached = position + len(data)
            digest.written(index, reached - base)
            with lock:
                ranges[index][2] = reached
                fetched += len(data)
                unsaved += len(data)
                if keeps_state and unsaved >= SAVE_EVERY:
                    unsaved = 0
                    save()

        headers = fetch_range(upto, end, write)
        with lock:
            found = headers.get("etag")
            if etag is None:
                etag = found
            elif found != etag:
                raise Refetch
            answers[index] = headers

    began = time.time()
    try:
        scheduler.run_parts(place, list(range(len(ranges))), fetch_one, digest.catch_up)
    finally:
        if keeps_state:
            save()
    headers = next((h for h in answers if h is not None), None)
    if headers is None:  # everything was there already: nothing came to say what it is
        headers = fetch_range(size - 1, size, lambda position, data: None)
        if headers.get("etag") != etag:
            raise Refetch
    expected = expected_md5(headers)
    computed = digest.hexdigest()
    if expected and computed != expected:
        if resumed:
            raise Refetch
        # Fetched whole and still wrong: it is the stored object that does not match
        # its MD5, so there is nothing a later run could continue.
        partial.resumable = False
        if keeps_state and kept is not None:
            kept(partial, False)
        raise Failed(
            f"{source} as stored does not match the MD5 recorded with it (the data has "
            f"{computed}, the record says {expected}): the object was changed or damaged "
            "after it was stored, and fetching it again gives the same"
        )
    partial.forget()
    if keeps_state and kept is not None:
        kept(partial, False)
    return Finished(partial, headers, computed, expected, time.time() - began, fetched)

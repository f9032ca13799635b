"""The state that workers share: the budget, the bandwidth, the parts, the progress.

Every test here runs several threads at once against the one owner of a
piece of shared state, as the transfer engine does.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from pathlib import Path

import pytest

from tsd_s3cmd.engine import downloads, limits, parts, progress, scheduler
from tsd_s3cmd.login.broker import HeaderSource
from tsd_s3cmd.login.store import CachedToken

from ..workers import run_at_once

MiB = 1024 * 1024


def test_every_part_runs_once_on_several_threads() -> None:
    seen: list[int] = []
    threads: set[str] = set()
    lock = threading.Lock()
    gate = threading.Barrier(4, timeout=10)  # all four workers are busy at the same time

    def work(job: int) -> None:
        if job < 4:
            gate.wait()
        with lock:
            seen.append(job)
            threads.add(threading.current_thread().name)

    run = scheduler.Scheduler(4)
    run.run_parts(0, list(range(20)), work)
    assert sorted(seen) == list(range(20))
    assert len(threads) == 4


def test_a_failed_part_stops_new_parts_and_is_raised_with_its_part() -> None:
    started: list[int] = []
    release = threading.Event()

    def work(job: int) -> None:
        started.append(job)
        if job == 1:
            raise RuntimeError("part 2 failed for good")
        if job == 0:
            release.wait(5)  # still running when job 1 fails: it is allowed to finish

    threading.Timer(0.3, release.set).start()
    with pytest.raises(RuntimeError, match="part 2 failed") as raised:
        scheduler.Scheduler(2).run_parts(0, list(range(10)), work)
    assert sorted(started) == [0, 1]
    assert raised.value.failed_part == 1  # type: ignore[attr-defined]


def test_stopping_reaches_a_running_part_at_its_next_read(tmp_path: Path) -> None:
    path = tmp_path / "source"
    path.write_bytes(b"x" * 1000)
    run = scheduler.Scheduler(2)
    reads: list[int] = []
    stopped: list[int] = []

    def work(job: int) -> None:
        with open(path, "rb") as f:
            reader = parts.PositionalReader(f.fileno(), str(path), run)
            try:
                while True:
                    reads.append(len(reader.read(1)))
                    time.sleep(0.01)
            except limits.Stopped:
                stopped.append(job)
                raise

    began = time.monotonic()

    def ctrl_c() -> None:  # as the signal arrives in the waiting thread
        if time.monotonic() > began + 0.2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.run_parts(0, [0, 1], work, while_waiting=ctrl_c)
    assert time.monotonic() - began < scheduler.STOP_GRACE + 1
    assert reads
    assert sorted(stopped) == [0, 1]  # both running parts stopped at their next read
    assert run.stopped


def test_each_thread_reads_at_its_own_position(tmp_path: Path) -> None:
    data = os.urandom(64 * 1024)
    path = tmp_path / "source"
    path.write_bytes(data)
    run = scheduler.Scheduler(8)
    got: dict[int, bytes] = {}
    with open(path, "rb") as f:
        reader = parts.PositionalReader(f.fileno(), str(path), run)

        def work(job: int) -> None:
            reader.seek(job * 8192)
            pieces = []
            for _ in range(8):
                pieces.append(reader.read(1024))
                time.sleep(0.001)  # let the others move their positions meanwhile
            got[job] = b"".join(pieces)

        run.run_parts(0, list(range(8)), work)
    assert got == {job: data[job * 8192 : (job + 1) * 8192] for job in range(8)}


def test_at_most_n_requests_at_once_from_many_threads() -> None:
    run = scheduler.Scheduler(3)
    in_flight = 0
    most = 0
    lock = threading.Lock()

    def request(_: int) -> None:
        nonlocal in_flight, most
        # A retry inside the same request holds no second place.
        with run.request(), run.request():
            with lock:
                in_flight += 1
                most = max(most, in_flight)
            time.sleep(0.02)
            with lock:
                in_flight -= 1

    run_at_once(request, 12)
    assert most == 3
    assert run.budget.in_flight == 0


def waiting(limit: limits.RequestBudget | limits.Bandwidth, count: int) -> None:
    """Wait until ``count`` threads wait in ``limit``'s queue."""
    deadline = time.monotonic() + 10
    while True:
        with limit._changed:
            if len(limit._waiting._heap) >= count:
                return
        assert time.monotonic() < deadline, "the threads never came to wait"
        time.sleep(0.001)


def test_the_budget_serves_the_earliest_waiting_work_first() -> None:
    stop = threading.Event()
    budget = limits.RequestBudget(1, stop)
    budget.acquire((0,))  # the one place is taken
    served: list[tuple[int, int]] = []

    def wait(priority: tuple[int, int]) -> None:
        budget.acquire(priority)
        served.append(priority)
        time.sleep(0.01)
        budget.release()

    late = [(5, 1), (2, 3), (2, 1), (9, 0)]
    threads = [threading.Thread(target=wait, args=(p,)) for p in late]
    for thread in threads:  # they come in this order; they are served in priority order
        thread.start()
    waiting(budget, len(late))
    budget.release()
    for thread in threads:
        thread.join(10)
    assert served == sorted(late)


def test_the_rate_is_shared_by_all_workers() -> None:
    run = scheduler.Scheduler(4, rate=400_000.0)
    began = time.monotonic()
    run.run_parts(0, list(range(4)), lambda job: [run.moved(25_000) for _ in range(4)])
    # 400 kB in all at 400 kB/s: about a second, not a quarter of one.
    assert time.monotonic() - began > 0.7


@pytest.mark.apart  # who asks for the next bytes first is up to the machine's scheduler
def test_the_rate_goes_to_the_earliest_part_first() -> None:
    """Under --limit-rate the parts finish one after the other, not all at the end."""
    run = scheduler.Scheduler(4, rate=2_000_000.0)
    finished: list[int] = []
    lock = threading.Lock()

    def part(job: int) -> None:
        for _ in range(20):
            run.moved(10_000)
        with lock:
            finished.append(job)

    run.run_parts(0, list(range(4)), part)
    assert finished == [0, 1, 2, 3]


def test_a_stop_wakes_every_waiter() -> None:
    run = scheduler.Scheduler(1, rate=10.0)
    run.budget.acquire((0,))
    outcomes: list[str] = []

    def waiter(kind: str) -> None:
        try:
            if kind == "place":
                run.budget.acquire((1,))
            else:
                run.moved(1000)
                run.moved(1000)  # the second thousand would take 100 s
            outcomes.append("went on")
        except limits.Stopped:
            outcomes.append("stopped")

    threads = [threading.Thread(target=waiter, args=(k,)) for k in ("place", "bytes")]
    for thread in threads:
        thread.start()
    waiting(run.budget, 1)
    assert run.bandwidth is not None
    waiting(run.bandwidth, 1)
    run.stop()
    for thread in threads:
        thread.join(2)
    assert outcomes == ["stopped", "stopped"]


def test_under_a_rate_another_request_starts_only_when_the_rate_is_partly_unused() -> None:
    now = [100.0]
    stop = threading.Event()
    bandwidth = limits.Bandwidth(1000.0, stop, clock=lambda: now[0])
    budget = limits.RequestBudget(4, stop, bandwidth, clock=lambda: now[0])
    budget.acquire((0,))
    for _ in range(20):  # one request uses the whole rate for two seconds
        now[0] = max(now[0], bandwidth._free_at)
        bandwidth.take(100, (0,))
    assert not bandwidth.has_spare(since=100.0)
    now[0] += 1.5  # then nothing moves for a second and a half: the rate goes unused
    assert bandwidth.has_spare(since=100.0)
    budget.acquire((1,))  # so a second request may start
    assert budget.in_flight == 2


def test_one_renewal_for_many_workers_that_find_the_token_stale() -> None:
    class SlowBroker:
        """Renews a token slowly and counts how often: the auth API in miniature."""

        def __init__(self) -> None:
            self.pnum = "p11"
            self.renewals = 0
            self.now = 1000.0
            self.context = type("Context", (), {"clock": lambda _self: self.now})()

        def token(self, token_type: str, may_login: bool = True) -> CachedToken:
            self.renewals += 1
            time.sleep(0.2)  # long enough for every worker to find the token stale
            return CachedToken(token_type, f"token-{self.renewals}", self.now + 100, self.now)

    broker = SlowBroker()
    source = HeaderSource(broker, "s3import")  # type: ignore[arg-type]
    assert source.headers()["token"] == "token-1"
    broker.now += 90  # within the renewal margin: every worker's next request renews
    seen: list[str] = []
    scheduler.Scheduler(16).run_parts(
        0, list(range(16)), lambda job: seen.append(source.headers()["token"])
    )
    assert broker.renewals == 2
    assert seen == ["token-2"] * 16


@pytest.mark.parametrize(
    ("value", "expected"), [(None, scheduler.DEFAULT_WORKERS), ("", 10), ("1", 1), (" 16 ", 16)]
)
def test_the_number_of_requests_at_once(value: str | None, expected: int) -> None:
    assert scheduler.workers_from(value, "--parallel") == expected


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5", "65"])
def test_a_bad_number_of_requests_says_what_is_allowed(value: str) -> None:
    with pytest.raises(ValueError, match="--parallel"):
        scheduler.workers_from(value, "--parallel")


def test_progress_counts_a_retried_request_once_from_many_threads() -> None:
    counts = progress.Progress()
    counts.expect(12, 12 * 1000)

    def file(job: int) -> None:
        count = counts.started(1000)
        for _ in range(10):
            counts.add(count, 50)
        if job % 2:  # the request failed half-way and is sent again from its start
            for _ in range(20):
                counts.add(count, 50)
        else:
            counts.add(count, 500)
        counts.finished(count)

    run_at_once(file, 12)
    assert (counts.moved, counts.files_done) == (12 * 1000, 12)
    assert counts.line().startswith("12 of 12 files, 11.7 KiB of 11.7 KiB")


def test_lines_written_at_a_terminal_never_cut_into_the_live_line() -> None:
    terminal = io.BytesIO()
    counts = progress.Progress()
    counts.expect(2, 2048)
    counts.show_on(terminal)  # type: ignore[arg-type]
    out = progress.LineSafe(terminal, counts)  # type: ignore[arg-type]
    out.write(b"upload: 'a' -> 's3://b/a'\n")
    screen = terminal.getvalue()
    # The live line is taken away, the whole line written, and the live line drawn under it.
    assert screen.startswith(b"\r\x1b[K0 of 2 files")
    assert b"\r\x1b[Kupload: 'a' -> 's3://b/a'\n\r\x1b[K0 of 2 files" in screen
    counts.show_on(None)
    assert terminal.getvalue().endswith(b"\r\x1b[K")


def test_without_a_terminal_nothing_but_the_lines_is_written() -> None:
    log = io.BytesIO()
    counts = progress.Progress()
    out = progress.LineSafe(log, counts)  # type: ignore[arg-type]
    counts.add(None, 10)
    out.write(b"upload: 'a' -> 's3://b/a'\n")
    assert log.getvalue() == b"upload: 'a' -> 's3://b/a'\n"


def test_the_digest_of_ranges_written_out_of_order(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    ranges = [(0, 3000), (3000, 6000), (6000, 9000), (9000, 10_000)]
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT)
    try:
        digest = downloads.OrderedDigest(fd, ranges)
        for index in (2, 0, 3, 1):  # the last to finish is the second
            start, end = ranges[index]
            for at in range(start, end, 700):
                piece = data[at : min(at + 700, end)]
                os.pwrite(fd, piece, at)
                digest.written(index, at + len(piece))
                digest.catch_up()
        assert digest.hexdigest() == hashlib.md5(data).hexdigest()
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("start", "end", "part", "workers", "count"),
    [
        (0, 128 * MiB, 15 * MiB, 8, 16),  # 9 parts: two whole waves of 8, not 8 and then 1
        (0, 128 * MiB, 15 * MiB, 10, 10),  # fewer parts than workers: cut finer
        (0, 15 * MiB, 5 * MiB, 4, 3),  # but never below 5 MiB
        (0, 15 * MiB + 7, 5 * MiB, 4, 4),
        (7 * MiB + 3, 30 * MiB + 1, 5 * MiB, 3, 6),  # --continue: only what is missing
        (0, 1000 * MiB + 1, 200 * MiB, 8, 8),
    ],
)
def test_download_ranges_cover_the_file_in_whole_waves(
    start: int, end: int, part: int, workers: int, count: int
) -> None:
    ranges = downloads.split(start, end, part, workers)
    assert len(ranges) == count
    assert ranges[0][0] == start and ranges[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    sizes = {b - a for a, b in ranges[:-1]}
    assert len(sizes) <= 1 and ranges[-1][1] - ranges[-1][0] <= max(sizes | {end})

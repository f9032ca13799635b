"""The worker pool and the state parallel parts share: several threads at once, every time."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from tsd_s3cmd import parallel
from tsd_s3cmd.broker import HeaderSource
from tsd_s3cmd.store import CachedToken


def test_every_job_runs_once_on_several_threads() -> None:
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

    parallel.Transfer(4).run(range(20), work)
    assert sorted(seen) == list(range(20))
    assert len(threads) == 4


def test_a_failure_stops_new_jobs_and_is_raised_with_its_job() -> None:
    started: list[int] = []
    release = threading.Event()

    def work(job: int) -> None:
        started.append(job)
        if job == 1:
            raise RuntimeError("part 2 failed for good")
        if job == 0:
            release.wait(5)  # still running when job 1 fails: it is allowed to finish

    transfer = parallel.Transfer(2)
    threading.Timer(0.3, release.set).start()
    with pytest.raises(RuntimeError, match="part 2 failed"):
        transfer.run(range(10), work)
    assert sorted(started) == [0, 1]
    assert transfer.failed_job == 1


def test_stopping_reaches_a_running_job_at_its_next_read(tmp_path: Path) -> None:
    path = tmp_path / "source"
    path.write_bytes(b"x" * 1000)
    transfer = parallel.Transfer(2)
    reads: list[int] = []
    stopped: list[int] = []

    def work(job: int) -> None:
        with open(path, "rb") as f:
            reader = parallel.PositionalReader(f.fileno(), str(path), transfer)
            try:
                while True:
                    reads.append(len(reader.read(1)))
                    time.sleep(0.01)
            except parallel.Stopped:
                stopped.append(job)
                raise

    began = time.monotonic()

    def ctrl_c() -> None:  # as the signal arrives in the calling thread, while it waits
        if time.monotonic() > began + 0.2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        transfer.run(range(2), work, while_waiting=ctrl_c)
    assert time.monotonic() - began < parallel.STOP_GRACE + 1
    assert reads
    assert sorted(stopped) == [0, 1]  # both running jobs stopped at their next read


def test_each_thread_reads_at_its_own_position(tmp_path: Path) -> None:
    data = os.urandom(64 * 1024)
    path = tmp_path / "source"
    path.write_bytes(data)
    transfer = parallel.Transfer(8)
    got: dict[int, bytes] = {}
    with open(path, "rb") as f:
        reader = parallel.PositionalReader(f.fileno(), str(path), transfer)

        def work(job: int) -> None:
            reader.seek(job * 8192)
            pieces = []
            for _ in range(8):
                pieces.append(reader.read(1024))
                time.sleep(0.001)  # let the others move their positions meanwhile
            got[job] = b"".join(pieces)

        transfer.run(range(8), work)
    assert got == {job: data[job * 8192 : (job + 1) * 8192] for job in range(8)}


def test_the_digest_of_ranges_written_out_of_order(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    ranges = [(0, 3000), (3000, 6000), (6000, 9000), (9000, 10_000)]
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT)
    try:
        digest = parallel.OrderedDigest(fd, ranges)
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


class _Meter:
    def __init__(self) -> None:
        self.position = 0
        self.finished: list[str] = []

    def update(self, current_position: int = -1, delta_position: int = -1) -> None:
        if delta_position > -1 or delta_position < -1:
            self.position += delta_position

    def done(self, message: str) -> None:
        self.finished.append(message)


def test_one_progress_for_all_parts_counts_a_failed_attempt_once() -> None:
    meter = _Meter()
    shared = parallel.SharedProgress(meter)

    def part(job: int) -> None:
        attempt = shared.part_meter({}, 1000)
        for _ in range(10):
            attempt.update(delta_position=50)
        if job % 2:  # s3cmd says "failed" and sends the part again from its start
            attempt.done("failed")
            attempt = shared.part_meter({}, 1000)
            attempt.update(delta_position=1000)
        else:
            attempt.update(current_position=1000)
        attempt.done("done")

    parallel.Transfer(6).run(range(12), part)
    shared.done("done")
    assert meter.position == 12 * 1000
    assert meter.finished == ["done"]


def test_the_rate_is_shared_by_all_workers() -> None:
    transfer = parallel.Transfer(4, rate=400_000.0)
    began = time.monotonic()
    transfer.run(range(4), lambda job: [transfer.pace(25_000) for _ in range(4)])
    # 400 kB in all at 400 kB/s: about a second, not a quarter of one.
    assert time.monotonic() - began > 0.7


@pytest.mark.parametrize(
    ("value", "expected"), [(None, parallel.DEFAULT_WORKERS), ("", 10), ("1", 1), (" 16 ", 16)]
)
def test_the_number_of_workers(value: str | None, expected: int) -> None:
    assert parallel.workers_from(value, "--parallel") == expected


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5", "65"])
def test_a_bad_number_of_workers_says_what_is_allowed(value: str) -> None:
    with pytest.raises(ValueError, match="--parallel"):
        parallel.workers_from(value, "--parallel")


class _SlowBroker:
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


def test_one_renewal_for_many_workers_that_find_the_token_stale() -> None:
    broker = _SlowBroker()
    source = HeaderSource(broker, "s3import")  # type: ignore[arg-type]
    assert source.headers()["token"] == "token-1"
    broker.now += 90  # within the renewal margin: every worker's next request renews
    seen: list[str] = []
    parallel.Transfer(16).run(range(16), lambda job: seen.append(source.headers()["token"]))
    assert broker.renewals == 2
    assert seen == ["token-2"] * 16


MiB = 1024 * 1024


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
    ranges = parallel.split(start, end, part, workers)
    assert len(ranges) == count
    assert ranges[0][0] == start and ranges[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    sizes = {b - a for a, b in ranges[:-1]}
    assert len(sizes) <= 1 and ranges[-1][1] - ranges[-1][0] <= max(sizes | {end})

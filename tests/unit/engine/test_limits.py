"""The request budget that grows as TCP's window does and halves when told to slow down."""

from __future__ import annotations

import threading
import time

import pytest

from tsd_s3cmd.engine import limits, scheduler

from ..workers import run_at_once


def budget(slots: int, most: int | None, now: list[float]) -> limits.RequestBudget:
    return limits.RequestBudget(slots, threading.Event(), clock=lambda: now[0], most=most)


def round_of(limit: limits.RequestBudget, now: list[float], answered: bool = True) -> float:
    """Take every place, then let each request be answered; returns when they began."""
    began = [limit.acquire((0,)) for _ in range(limit.slots)]
    now[0] += 1.0
    for _ in began:
        limit.release(answered)
    return began[0]


def test_a_budget_whose_places_are_all_taken_grows_to_its_most_and_no_further() -> None:
    now = [0.0]
    limit = budget(10, 64, now)
    sizes = [limit.slots]
    for _ in range(80):
        round_of(limit, now)
        sizes.append(limit.slots)
    assert sizes[1] == 11  # one more for a round in which every place was taken
    assert sizes == sorted(sizes) and sizes[-1] == 64 and limit.highest == 64


def test_a_budget_never_filled_or_not_answered_stays_as_it_is() -> None:
    now = [0.0]
    limit = budget(4, 64, now)
    for _ in range(20):  # one request at a time: round trips are not what holds it back
        limit.acquire((0,))
        limit.release()
    for _ in range(5):
        round_of(limit, now, answered=False)  # all slowed or failed
    assert limit.slots == 4


def test_without_a_most_the_budget_stays_as_given() -> None:
    now = [0.0]
    limit = budget(8, None, now)
    for _ in range(10):
        round_of(limit, now)
    assert limit.slots == limit.most == 8


def test_a_slow_down_halves_the_budget_once_for_the_requests_of_one_burst() -> None:
    now = [0.0]
    limit = budget(16, 64, now)
    began = [limit.acquire((0,)) for _ in range(16)]
    now[0] += 1.0
    for at in began:  # the gateway refuses the whole burst
        limit.slowed(at)
        limit.release(answered=False)
    assert (limit.slots, limit.slow_downs) == (8, 16)
    now[0] += 1.0
    later = limit.acquire((0,))
    now[0] += 1.0
    limit.slowed(later)  # a request begun after the cut cuts again
    limit.release(answered=False)
    assert limit.slots == 4
    for _ in range(5):
        at = limit.acquire((0,))
        now[0] += 1.0
        limit.slowed(at, asked=False)  # a lost connection cuts, but is no slow-down
        limit.release(answered=False)
    assert (limit.slots, limit.least, limit.slow_downs) == (1, 1, 17)


def test_after_a_cut_the_budget_grows_by_one_a_round() -> None:
    now = [0.0]
    limit = budget(20, 64, now)
    limit.slowed(limit.acquire((0,)))
    limit.release(answered=False)
    assert limit.slots == 10
    for expected in (11, 12, 13):
        round_of(limit, now)
        assert limit.slots == expected


def test_the_pause_before_a_resend_doubles_up_to_its_last_and_is_spread() -> None:
    ceilings = [limits.slow_down_pause(n, rand=lambda: 1.0) for n in range(1, 10)]
    assert ceilings[:3] == [0.05, 0.1, 0.2]
    assert ceilings[-1] == limits.LAST_PAUSE and ceilings == sorted(ceilings)
    assert limits.slow_down_pause(1, rand=lambda: 0.0) == 0.025


def test_one_request_slowed_too_often_in_a_row_becomes_a_failure() -> None:
    run = scheduler.Scheduler(4, most=16)
    with run.request():
        pauses = [run.slowed_down() for _ in range(scheduler.MOST_SLOW_DOWNS + 1)]
    assert None not in pauses[:-1] and pauses[-1] is None
    with run.request():  # the next request starts afresh
        assert run.slowed_down() is not None


def test_many_workers_grow_the_budget_and_are_cut_by_slow_downs_without_losing_a_place() -> None:
    """Sixteen threads share a budget that starts at 2: it grows while they keep every
    place taken, slow-downs from several threads cut it, and no place is lost."""
    run = scheduler.Scheduler(2, most=12)
    lock = threading.Lock()
    in_flight = most_seen = 0
    over: list[tuple[int, int]] = []

    def worker(index: int) -> None:
        nonlocal in_flight, most_seen
        for round_number in range(40):
            with run.request():
                with lock:
                    in_flight += 1
                    most_seen = max(most_seen, in_flight)
                    if in_flight > run.budget.most:
                        over.append((in_flight, run.budget.slots))
                time.sleep(0.002)
                if index < 3 and round_number == 20:
                    run.slowed_down()
                with lock:
                    in_flight -= 1

    run_at_once(worker, 16, timeout=30)
    assert over == []
    assert most_seen > 2  # it grew past where it began
    assert run.budget.in_flight == 0
    assert run.budget.slow_downs == 3 and run.budget.least < run.budget.highest


@pytest.mark.parametrize(("slots", "expected"), [(1, 2), (10, 20), (40, 64)])
def test_files_under_way_are_twice_the_places_within_the_most(slots: int, expected: int) -> None:
    run = scheduler.Scheduler(slots, most=64)
    assert run.files_at_once() == expected

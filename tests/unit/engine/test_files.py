"""files.Ahead: s3cmd's loop gets each file as its planned call finishes, and no more ahead."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tsd_s3cmd.engine import files, scheduler


def _plans(durations: dict[str, float | Callable[[], object]], log: list[str],
           fail: set[str] = frozenset()):  # type: ignore[no-untyped-def, assignment]  # fmt: skip
    """Plans whose calls take ``durations[name]`` seconds, or wait for what it names."""
    lock = threading.Lock()
    running = [0]
    most = [0]

    def plan(name: str) -> files.Planned | None:
        if name not in durations:
            return None  # left to s3cmd

        def run() -> str:
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
                log.append(f"start {name}")
            taking = durations[name]
            if callable(taking):
                taking()
            else:
                time.sleep(taking)
            with lock:
                running[0] -= 1
            if name in fail:
                raise RuntimeError(f"{name} failed")
            return f"response of {name}"

        return files.Planned(("put", name), run, size=1)

    return plan, most


def _loop(ahead: files.Ahead, names: list[str], plan, stop_at=None):  # type: ignore[no-untyped-def]
    """s3cmd's loop in miniature: the call, then the file's line (or its error)."""
    lines = []
    for name in ahead.order(names, plan, sizes=lambda n: 1):
        job = ahead.claim(("put", name))
        if job is None:
            lines.append(f"{name}: done by s3cmd")
        elif job.error is not None:
            lines.append(f"{name}: {job.error}")
            if stop_at == "first error":
                break
        else:
            lines.append(f"{name}: {job.result}")
    return lines


def test_files_come_back_as_they_finish_with_at_most_n_at_once() -> None:
    log: list[str] = []
    e_done = threading.Event()
    plan, most = _plans({"a": lambda: e_done.wait(10), "b": 0.01, "c": 0.01, "d": 0.01,
                         "e": e_done.set}, log)  # fmt: skip
    ahead = files.Ahead(scheduler.Scheduler(2), stop_on_error=False)
    lines = _loop(ahead, ["a", "b", "c", "d", "e"], plan)
    assert lines[-1] == "a: response of a"  # the slow one came last, the others meanwhile
    assert sorted(lines) == [f"{n}: response of {n}" for n in "abcde"]
    assert most[0] == 2


def test_a_file_without_a_plan_is_left_to_s3cmd_at_its_turn() -> None:
    log: list[str] = []
    plan, _ = _plans({"a": 0.01, "c": 0.01}, log)
    ahead = files.Ahead(scheduler.Scheduler(1), stop_on_error=False)
    lines = _loop(ahead, ["a", "-", "c"], plan)
    assert "-: done by s3cmd" in lines and len(lines) == 3


def test_a_call_that_differs_from_the_plan_is_not_claimed() -> None:
    ahead = files.Ahead(scheduler.Scheduler(1), stop_on_error=False)
    plan, _ = _plans({"a": 0.01}, [])
    for name in ahead.order(["a"], plan):
        assert ahead.claim(("put", "other")) is None
        assert ahead.claim(("put", name)) is not None
        assert ahead.claim(("put", name)) is None  # once only


def test_only_the_loops_own_thread_claims() -> None:
    ahead = files.Ahead(scheduler.Scheduler(1), stop_on_error=False)
    plan, _ = _plans({"a": 0.01}, [])
    claimed: list[object] = []
    for name in ahead.order(["a"], plan):
        worker = threading.Thread(target=lambda n=name: claimed.append(ahead.claim(("put", n))))
        worker.start()
        worker.join()
    assert claimed == [None]


def test_an_error_goes_to_s3cmds_loop_and_the_others_go_on() -> None:
    plan, _ = _plans({n: 0.01 for n in "abcd"}, [], fail={"b"})
    lines = _loop(files.Ahead(scheduler.Scheduler(2), stop_on_error=False), list("abcd"), plan)
    assert "b: b failed" in lines and len(lines) == 4


def test_with_stop_on_error_nothing_new_starts_after_a_failure() -> None:
    log: list[str] = []
    b_started, a_failed = threading.Event(), threading.Event()

    def a() -> None:  # fails once b is on its way
        b_started.wait(10)
        a_failed.set()

    def b() -> None:  # still on its way when a fails
        b_started.set()
        a_failed.wait(10)

    plan, _ = _plans({"a": a, "b": b, **{n: 0.01 for n in "cdefgh"}}, log, fail={"a"})
    ahead = files.Ahead(scheduler.Scheduler(2), stop_on_error=True)
    lines = _loop(ahead, list("abcdefgh"), plan, stop_at="first error")
    assert lines == ["a: a failed"]
    # a and b were running; nothing took a's place, and b, on its way, was let finish.
    assert sorted(log) == ["start a", "start b"]


def test_a_result_no_one_claims_is_discarded() -> None:
    discarded: list[object] = []
    planned = files.Planned(("put", "a"), lambda: "temporary file", discard=discarded.append)
    ahead = files.Ahead(scheduler.Scheduler(1), stop_on_error=False)
    for _ in ahead.order(["a"], lambda name: planned):
        pass  # s3cmd decided otherwise and made no call
    assert discarded == ["temporary file"]


def test_ctrl_c_while_waiting_stops_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C as the loop waits for a file: what runs stops, and the interrupt goes on.

    The interrupt is raised where the loop waits, once a file runs: a real SIGINT
    from another thread depends on the test runner's main thread and its signal
    handling (a CI run once saw it never acted on); the e2e tests send real ones
    to real processes (test_ctrl_c_during_a_sync_of_many_files_stops_promptly).
    """
    run = scheduler.Scheduler(2)
    ahead = files.Ahead(run, stop_on_error=False)
    began = time.monotonic()
    waiting = threading.Event()

    def slow() -> None:
        waiting.set()
        while not run.stopped and time.monotonic() < began + 30:  # a lost Ctrl-C fails, not hangs
            time.sleep(0.01)
        run.check()

    def ctrl_c_while_waiting(finished: object) -> files._Job:
        assert waiting.wait(10)  # a file is running, and the loop waits for it
        raise KeyboardInterrupt

    monkeypatch.setattr(files.Ahead, "_next", staticmethod(ctrl_c_while_waiting))
    with pytest.raises(KeyboardInterrupt):
        for _ in ahead.order(["a", "b"], lambda n: files.Planned(("put", n), slow)):
            pass
    assert run.stopped
    assert time.monotonic() - began < 3

"""Several workers at once, for the tests of state that threads share."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_at_once(work: Callable[[int], None], count: int, timeout: float = 10) -> None:
    """Run ``work(0)`` … ``work(count - 1)`` on threads of their own and wait for all.

    Fails, rather than hanging the suite, when a worker is still running after
    ``timeout`` seconds: a deadlock in the shared state shows as a failed test.
    """
    threads = [threading.Thread(target=work, args=(index,), daemon=True) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    stuck = sum(thread.is_alive() for thread in threads)
    assert stuck == 0, f"{stuck} of {count} workers still running after {timeout} s"

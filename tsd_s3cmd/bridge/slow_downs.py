"""Where a gateway's "slow down" meets s3cmd: fewer requests at once, a short pause, no failure.

S3 answers ``503 SlowDown`` (other S3 servers ``429``) to a client that
sends more than it will serve at once. s3cmd treats that as any failure: it
waits 3, 6, 9... seconds, counts the attempt against ``max_retries`` and,
after five, gives up on the file. With many requests in flight a slow-down
is no failure but a sign to send fewer: the engine cuts its budget
(engine/limits.py), the request goes again after a short pause, the attempt
is not counted against the file, and none of s3cmd's "Retrying failed
request" lines is printed for it. One line at the end says how often the
gateway asked. A dropped connection cuts the budget too (as TCP treats a
loss), and s3cmd retries it as ever.

The hook points, each in ``incompatibility``:

- ``http.client.HTTPConnection.getresponse``: each of s3cmd's send methods
  reads its answer there, so the status is seen before s3cmd judges it;
- ``S3.S3._fail_wait``: how long s3cmd waits before a retry;
- ``S3.S3.send_request``, ``send_file``, ``recv_file``: a retry is a call
  of the same method with ``retries`` one less; after a slow-down it is
  given back (and ``send_file``'s per-chunk ``throttle`` put back as it was);
- s3cmd's warnings are records of the root logger: those about a slow-down
  are dropped by a filter in the thread that was slowed.
"""

from __future__ import annotations

import http.client
import inspect
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from .script import patched

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any

    from ..engine.scheduler import Scheduler

# The answers that mean "send fewer": S3's SlowDown, and Too Many Requests.
SLOW_DOWN_STATUSES = frozenset({429, 503})
_SEND_METHODS = ("send_request", "send_file", "recv_file")
# The classes of the connections s3cmd's ConnMan makes.
_S3CMD_CONNECTIONS = (http.client.HTTPConnection, http.client.HTTPSConnection)


def incompatibility() -> str | None:
    """Whether s3cmd still reads answers, waits and retries the way the hooks expect."""
    from S3 import S3 as s3_module

    s3_class = s3_module.S3
    if not callable(getattr(s3_class, "_fail_wait", None)):
        return "S3._fail_wait is missing"
    for name in _SEND_METHODS:
        method = getattr(s3_class, name, None)
        if method is None or "retries" not in inspect.signature(method).parameters:
            return f"S3.{name} no longer takes retries"
        names = method.__code__.co_names
        if not {"getresponse", "_fail_wait", name} <= set(names):
            return f"S3.{name} no longer retries through _fail_wait and itself"
    if "throttle" not in inspect.signature(s3_class.send_file).parameters:
        return "S3.send_file no longer takes throttle"
    return None


class SlowDowns:
    """The hooks of one run; ``scheduler()`` is the engine's, once it has started."""

    def __init__(self, scheduler: Callable[[], Scheduler | None]) -> None:
        self._scheduler = scheduler
        self._local = threading.local()  # .pause: the pause of a slow-down not yet resent

    @contextmanager
    def installed(self) -> Iterator[None]:
        from S3 import S3 as s3_module

        s3_class = s3_module.S3
        quiet = _Quiet(self._local)
        with ExitStack() as stack:
            stack.enter_context(
                patched(http.client.HTTPConnection, "getresponse", self._getresponse())
            )
            stack.enter_context(patched(s3_class, "_fail_wait", self._fail_wait(s3_class)))
            for name in _SEND_METHODS:
                stack.enter_context(patched(s3_class, name, self._send(getattr(s3_class, name))))
            logging.getLogger().addFilter(quiet)
            stack.callback(logging.getLogger().removeFilter, quiet)
            yield

    def resending(self) -> bool:
        """Whether the retry this thread is about to make resends a slowed request.

        For the engine's own retry loops: such a retry is not counted.
        """
        pause = getattr(self._local, "pause", None)
        self._local.pause = None
        return pause is not None

    def _getresponse(self) -> Callable[..., Any]:
        original = http.client.HTTPConnection.getresponse
        local = self._local

        def getresponse(conn: Any, *args: Any, **kwargs: Any) -> Any:
            # s3cmd's own connections only (requests, for the auth API, subclasses them)
            scheduler = self._scheduler() if type(conn) in _S3CMD_CONNECTIONS else None
            try:
                answer = original(conn, *args, **kwargs)
            except (OSError, http.client.HTTPException):
                if scheduler is not None:
                    scheduler.connection_lost()
                raise
            if scheduler is not None and answer.status in SLOW_DOWN_STATUSES:
                local.pause = scheduler.slowed_down()
            return answer

        return getresponse

    def _fail_wait(self, s3_class: Any) -> Callable[..., Any]:
        original = s3_class._fail_wait
        local = self._local

        def _fail_wait(s3: Any, retries: int) -> float:
            pause = getattr(local, "pause", None)
            return pause if pause is not None else original(s3, retries)

        return _fail_wait

    def _send(self, original: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(original)
        local = self._local

        def send(s3: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(local, "pause", None) is None:  # a new request, or a retry s3cmd counts
                if not getattr(local, "sending", False):
                    local.throttle = kwargs.get("throttle", 0)
                return _sending(original, s3, *args, **kwargs)
            local.pause = None  # the resend of a slowed request: not counted, not throttled
            bound = signature.bind(s3, *args, **kwargs)
            bound.apply_defaults()
            if bound.arguments["retries"] is not None:
                bound.arguments["retries"] += 1
            if "throttle" in bound.arguments:
                bound.arguments["throttle"] = getattr(local, "throttle", 0)
            return _sending(original, *bound.args, **bound.kwargs)

        def _sending(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            outer = not getattr(local, "sending", False)
            local.sending = True
            try:
                return call(*args, **kwargs)
            finally:
                if outer:
                    local.sending = False
                    local.pause = None

        return send


class _Quiet(logging.Filter):
    """Drop s3cmd's warnings about a slow-down that is being resent (that thread's only)."""

    def __init__(self, local: threading.local) -> None:
        super().__init__()
        self._local = local

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno != logging.WARNING or getattr(self._local, "pause", None) is None


def summary(scheduler: Scheduler) -> str | None:
    """One line for the end of a run the gateway slowed, None for one it did not."""
    budget = scheduler.budget
    if not budget.slow_downs:
        return None
    return (
        f"the gateway asked {budget.slow_downs} time{'s' if budget.slow_downs != 1 else ''} "
        f"to slow down; requests at once ranged from {budget.least} to {budget.highest}, "
        f"{budget.slots} at the end"
    )

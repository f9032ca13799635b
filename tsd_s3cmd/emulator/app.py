"""The emulator's WSGI app: the auth API, the S3 gateway, and the test hooks.

``/v1/...`` is the auth API, ``/_emulator/...`` are the hooks tests use to
look inside (the request log, stored objects, project keys) and to change
things (settings, injected faults), and everything else is S3.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Callable

import jwt

from . import auth_api
from .gateway import S3Call, Storage, chunks, error_body, judge, s3_error
from .identity import Identity, Refused

StartResponse = Callable[..., Callable[[bytes], None]]
_FAULT_CODES = {404: "NoSuchKey", 500: "InternalError", 503: "ServiceUnavailable"}
# The hooks that change the emulator, each with a JSON body.
_POSTED = frozenset({"/_emulator/faults", "/_emulator/settings", "/_emulator/export-group"})
# S3's message with a 503 SlowDown.
SLOW_DOWN = "Please reduce your request rate."
# What TSD's nginx answers when the storage behind it does not answer in time.
GATEWAY_TIMEOUT = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
INTERNAL_ERROR = "We encountered an internal error. Please try again."


@lru_cache(maxsize=64)
def _token_type(token: str | None) -> str | None:
    """The ``name`` claim of a token as presented, unverified (for the log only).

    Read with PyJWT, not with the client's own reading of tokens, so that a
    client that misreads them cannot hide it here. Remembered: a client
    presents the same token on every request of a run.
    """
    if not token:
        return None
    try:
        name = jwt.decode(token, options={"verify_signature": False}).get("name")
    except jwt.PyJWTError:
        return None
    return name if isinstance(name, str) else None


def _decoded_path(environ: dict) -> str:
    return environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")


class Faults:
    """Failures tests ask for: the next N S3 requests answered badly or dropped, or every
    request for some objects (``fail_keys``) answered badly until told otherwise."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fail_next = 0
        self.status = 503
        self.drop_next = 0
        self.fail_keys: list[str] = []

    def set(self, body: dict) -> dict:
        with self._lock:
            if "fail_next" in body or "fail_keys" in body:
                self.status = int(body.get("status", 503))
            if "fail_next" in body:
                self.fail_next = int(body["fail_next"])
            if "fail_keys" in body:
                self.fail_keys = [str(key) for key in body["fail_keys"]]
            if "drop_next" in body:
                self.drop_next = int(body["drop_next"])
            return {"fail_next": self.fail_next, "status": self.status,
                    "drop_next": self.drop_next, "fail_keys": self.fail_keys}  # fmt: skip

    def take(self, key: str) -> tuple[str, int] | None:
        """The fault for a request on ``key``, if one is due: ("drop", 0) or ("fail", status)."""
        with self._lock:
            if key and key in self.fail_keys:
                return "fail", self.status
            if self.drop_next > 0:
                self.drop_next -= 1
                return "drop", 0
            if self.fail_next > 0:
                self.fail_next -= 1
                return "fail", self.status
        return None


class EmulatorApp:
    """One WSGI app for the whole emulator."""

    def __init__(self, identity: Identity, storage: Storage, token_check: bool = True) -> None:
        self.identity = identity
        self.storage = storage
        self.token_check = token_check
        self.faults = Faults()
        self._log: list[dict] = []
        self._log_lock = threading.Lock()
        self._in_flight = 0

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = _decoded_path(environ)
        if path.startswith("/_emulator/"):
            return self._hook(environ, start_response, path)
        entry = {
            "kind": "auth" if path.startswith("/v1/") else "s3",
            "method": environ["REQUEST_METHOD"],
            "path": path,
            "query": environ.get("QUERY_STRING", ""),
            "status": None,
            "time": time.time(),
            "token_type": None,
            "project": None,
        }

        def logged(status: str, headers: list, exc_info=None):  # type: ignore[no-untyped-def]
            entry["status"] = int(status.split()[0])
            entry["answered"] = time.time()  # the answer begins: the client may send the next
            with self._log_lock:
                self._log.append(entry)
            return start_response(status, headers, exc_info)

        if entry["kind"] == "auth":
            return self._auth(environ, logged, entry)
        limit = self.identity.settings.slow_down_above
        with self._log_lock:
            slowed = 0 < limit <= self._in_flight
            self._in_flight += 1
            # How many S3 requests were being served when this one came: tests
            # see parts travelling at once (or one at a time) here.
            entry["in_flight"] = self._in_flight
        if slowed:
            try:
                return self._slow_down(environ, logged, entry)
            finally:
                self._finished(entry)
        entry["bytes_out"] = 0  # of the response body, as it goes out
        rate = self.identity.settings.link_rate
        if rate:
            environ["wsgi.input"] = _Slow(environ["wsgi.input"], rate)
        try:
            body = self._s3(environ, logged, entry)
        except BaseException:
            self._finished(entry)
            raise
        return _Served(body, lambda: self._finished(entry), entry, rate)

    def _finished(self, entry: dict) -> None:
        with self._log_lock:
            self._in_flight -= 1
            entry["ended"] = time.time()

    @staticmethod
    def _slow_down(environ: dict, start_response: StartResponse, entry: dict) -> Iterable[bytes]:
        """S3's answer to a client over the gateway's limit (``slow_down_above``)."""
        _drain(environ)
        body = error_body(Refused(503, SLOW_DOWN, "SlowDown"), entry["path"])
        start_response(
            "503 Slow Down",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]

    # -- the auth API ---------------------------------------------------------

    def _auth(self, environ: dict, start_response: StartResponse, entry: dict) -> Iterable[bytes]:
        from urllib.parse import parse_qsl

        query = dict(parse_qsl(entry["query"], keep_blank_values=True))
        entry["token_type"] = query.get("type")
        parts = entry["path"].split("/")
        entry["project"] = parts[2] if len(parts) > 2 else None
        headers = {
            k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        raw = _body(environ)
        try:
            status, body = auth_api.handle(
                self.identity, environ["REQUEST_METHOD"], entry["path"], query, headers, raw
            )
        except Refused as refusal:
            status, body = refusal.status, {"message": refusal.message}
        return _json(start_response, status, body)

    # -- S3 -------------------------------------------------------------------

    def _s3(self, environ: dict, start_response: StartResponse, entry: dict) -> Iterable[bytes]:
        token = environ.get("HTTP_TOKEN")
        entry["token_type"] = _token_type(token)
        entry["project"] = environ.get("HTTP_X_PROJECT_SELECT") or None
        call = S3Call.parse(environ)
        fault = self.faults.take(call.key)
        try:
            if fault is not None:
                if fault[0] == "drop":
                    _drain(environ)
                    _drop(environ)
                code = _FAULT_CODES.get(fault[1], "InjectedFault")
                raise Refused(fault[1], "injected fault", code)  # drained below
            if self.token_check:
                project = judge(self.identity, environ, call, token).pnum
            else:
                project = entry["project"] or "p11"
        except Refused as refusal:
            _drain(environ)
            body = error_body(refusal, entry["path"])
            start_response(
                f"{refusal.status} {'Forbidden' if refusal.status == 403 else 'Error'}",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return self._store(environ, start_response, call, project, entry)

    def _store(
        self, environ: dict, start_response: StartResponse, call: S3Call, project: str, entry: dict
    ) -> Iterable[bytes]:
        """The store's part of an accepted request, as the gateway under load sees it.

        With ``read_timeout`` the gateway first reads the whole request body, as
        nginx buffers it, so that only the store's own time counts; then the store
        works in a thread of its own, and a store too slow to answer leaves the
        client with nginx's 504 page while it finishes the request regardless (the
        object stored, the upload completed), as TSD's storage does. Such a
        request stays in flight until the store is done, so that a test waiting
        for none in flight finds what the store did. A download's body streams
        after its answer is ready, and only the time to that answer counts.
        """
        settings = self.identity.settings
        if call.completes_upload and settings.take_complete_error():
            _drain(environ)
            body = s3_error("InternalError", INTERNAL_ERROR)
            start_response(
                "200 OK",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        answer: dict = {}

        def capture(status: str, headers: list, exc_info=None):  # type: ignore[no-untyped-def]
            answer["status"], answer["headers"] = status, headers
            return lambda data: None

        def work() -> Iterable[bytes]:
            body = self.storage.forward(environ, capture, call, project)
            completed = answer.get("status", "").startswith("200")
            if call.completes_upload and completed and settings.complete_delay:
                time.sleep(settings.complete_delay)  # completed already; the answer is late
            return body

        timeout = settings.read_timeout
        if not timeout:
            body = work()
        else:
            environ["wsgi.input"] = io.BytesIO(_whole_body(environ))
            future = _in_thread(work)
            try:
                body = future.result(timeout)
            except concurrent.futures.TimeoutError:
                with self._log_lock:
                    self._in_flight += 1  # the store's; the client's answer ends on its own
                future.add_done_callback(lambda done: self._store_finished(done, answer, entry))
                start_response(
                    "504 Gateway Time-out",
                    [("Content-Type", "text/html"), ("Content-Length", str(len(GATEWAY_TIMEOUT)))],
                )
                return [b"" if call.method == "HEAD" else GATEWAY_TIMEOUT]
        entry["store_status"] = int(answer["status"].split()[0])
        start_response(answer["status"], answer["headers"])
        return body

    def _store_finished(self, done: concurrent.futures.Future, answer: dict, entry: dict) -> None:
        """Log what the store answered, after the client got a 504 instead."""
        error = done.exception()
        if error is not None:
            traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
        else:
            body = done.result()
            if hasattr(body, "close"):
                body.close()
        with self._log_lock:
            if error is None:
                entry["store_status"] = int(answer["status"].split()[0])
            self._in_flight -= 1

    # -- the test hooks -------------------------------------------------------

    def _hook(self, environ: dict, start_response: StartResponse, path: str) -> Iterable[bytes]:
        from urllib.parse import parse_qsl

        method = environ["REQUEST_METHOD"]
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        try:
            if path == "/_emulator/requests" and method == "GET":
                with self._log_lock:
                    return _json(start_response, 200, list(self._log))
            if path == "/_emulator/in-flight" and method == "GET":
                # S3 requests begun and not yet answered in full: a test that has
                # stopped a client waits for 0 before it looks at what was stored.
                with self._log_lock:
                    return _json(start_response, 200, {"s3": self._in_flight})
            if path.startswith("/_emulator/objects/") and method == "GET":
                bucket, _, key = path[len("/_emulator/objects/") :].partition("/")
                data = self.storage.object(query.get("project", "p11"), bucket, key)
                if data is None:
                    return _json(start_response, 404, {"message": "no such object"})
                start_response(
                    "200 OK",
                    [
                        ("Content-Type", "application/octet-stream"),
                        ("Content-Length", str(len(data))),
                    ],
                )
                return [data]
            if path.startswith("/_emulator/objects/") and method == "PUT":
                # A file placed in the bucket from inside TSD (export-bucket's folder).
                bucket, _, key = path[len("/_emulator/objects/") :].partition("/")
                self.storage.place(query.get("project", "p11"), bucket, key, _body(environ))
                return _json(start_response, 201, {"bucket": bucket, "key": key})
            if path.startswith("/_emulator/projects/") and method == "GET":
                project = self.identity.project(path.rsplit("/", 1)[1])
                return _json(start_response, 200, {
                    "pnum": project.pnum,
                    "access_key": project.access_key,
                    "secret_key": project.secret_key,
                })
            if method == "POST" and path in _POSTED:
                raw = _body(environ)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    raise Refused(400, "the body is not JSON") from None
                if not isinstance(body, dict):
                    raise Refused(400, "expected a JSON object")
                if path == "/_emulator/faults":
                    return _json(start_response, 200, self.faults.set(body))
                if path == "/_emulator/export-group":
                    # {"user": NAME, "member": true|false}: an administrator's change.
                    if not isinstance(body.get("member"), bool):
                        raise Refused(400, "member takes true or false")
                    pnum = query.get("project", "p11")
                    user = self.identity.set_export(pnum, str(body.get("user")), body["member"])
                    return _json(start_response, 200, {"user": user.name, "groups": user.groups})
                self.identity.settings.update(body)
                return _json(start_response, 200, vars(self.identity.settings))
        except Refused as refusal:
            return _json(start_response, refusal.status, {"message": refusal.message})
        return _json(start_response, 404, {"message": f"no such hook: {method} {path}"})


class _Slow:
    """A request body read at no more than ``rate`` bytes per second."""

    def __init__(self, stream, rate: float) -> None:  # type: ignore[no-untyped-def]
        self._stream = stream
        self._rate = rate

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(min(size, 64 * 1024) if size >= 0 else 64 * 1024)
        time.sleep(len(data) / self._rate)
        return data

    def readinto(self, buffer: bytearray) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._stream, name)


class _Served:
    """A response body that counts what goes out, at the link's rate, and reports when
    the server is done with it (WSGI calls close)."""

    def __init__(
        self, body: Iterable[bytes], finished: Callable[[], None], entry: dict, rate: float
    ) -> None:
        self._body = body
        self._finished: Callable[[], None] | None = finished
        self._entry = entry
        self._rate = rate

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            pieces = (
                [chunk[at : at + 64 * 1024] for at in range(0, len(chunk), 64 * 1024)]
                if self._rate
                else [chunk]
            )
            for piece in pieces:
                if self._rate:
                    time.sleep(len(piece) / self._rate)
                self._entry["bytes_out"] += len(piece)
                yield piece

    def close(self) -> None:
        try:
            if hasattr(self._body, "close"):
                self._body.close()
        finally:
            if self._finished is not None:
                self._finished, finished = None, self._finished
                finished()


def _json(start_response: StartResponse, status: int, body: object) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized",
              403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


def _body_chunks(environ: dict) -> Iterator[bytes]:
    return chunks(environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0))


def _body(environ: dict) -> bytes:
    return b"".join(_body_chunks(environ))


def _whole_body(environ: dict) -> bytes:
    """A request's body, read in full: by its Content-Length, or to its end if chunked."""
    if environ.get("CONTENT_LENGTH") or not environ.get("wsgi.input_terminated"):
        return _body(environ)
    stream = environ["wsgi.input"]
    return b"".join(iter(lambda: stream.read(1 << 20), b""))


def _in_thread(work: Callable[[], Iterable[bytes]]) -> concurrent.futures.Future:
    """Run ``work`` in a thread of its own; its outcome, to wait for or not."""
    future: concurrent.futures.Future = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as error:  # handed to whoever waits, or to the done callback
            future.set_exception(error)

    threading.Thread(target=run, name="store", daemon=True).start()
    return future


def _drain(environ: dict) -> None:
    """Read and drop a refused request's body, so the client reads our answer cleanly."""
    for _ in _body_chunks(environ):
        pass


def _drop(environ: dict) -> None:
    """Close the connection without an answer, as a crashed gateway would."""
    conn = environ.get("werkzeug.socket")
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("fault injected: connection dropped")


def export_files(storage: Storage, identity: Identity, export_dir: Path | None) -> None:
    """Give every project its export-bucket; p11's holds the files of ``export_dir``."""
    for pnum in identity.projects:
        storage.create_export_bucket(pnum, export_dir if pnum == "p11" else None)

"""Where the transfer engine meets s3cmd: the hook points of many files and parts at once.

s3cmd sends one request at a time. With ``--parallel N`` above 1 (the
default is 10), ``installed`` puts these hooks in place for one run, each a
small adapter between s3cmd's code and the engine (scheduler.py, files.py,
parts.py, downloads.py, which know nothing of s3cmd); ``incompatibility``,
part of the shim's start-up check, verifies each against the installed s3cmd.

1. **The transfer loops** (script.py rewrites them) take their files
   from ``files.Ahead``. ``plans`` works out, for each file, the call the
   loop's body will make (from the loop's own variables, the way the body
   does), and ``object_put``, ``object_get``, ``object_copy``, ``object_move``
   and ``object_modify`` hand the body the finished call's outcome when its
   real call matches the planned one, or make the call as s3cmd would.
2. **Every request** (``S3.send_request``, ``send_file``, ``recv_file``, the
   only methods that take a connection) holds a place in the command's budget
   while in flight, and every byte of a request body (``wrapper_send_body``,
   which s3cmd adds to http.client) and of a download is paced by the one
   bandwidth and counted for the live line. s3cmd's own ``--limit-rate``,
   which paces each connection alone, is off meanwhile.
3. **Multipart uploads and copies**: ``MultiPartUpload.upload_all_parts``
   sends its parts with s3cmd's ``upload_part``/``copy_part`` on the part
   workers (parts.py); the completion sorts the parts, since they finish out
   of order.
4. **Downloads** larger than the part size go as ranges at once into a
   hidden file that a later run resumes from (downloads.py); smaller ones take
   s3cmd's own ``recv_file``. Either way the file is moved to where s3cmd's
   loop expects it only when it is whole and checked. The sizes s3cmd's
   listing found (``FileLists.fetch_remote_list``) spare a HEAD per object.
5. **Slow-downs**: a gateway's ``503 SlowDown`` or ``429`` cuts the budget
   and is resent after a short pause, uncounted (slow_downs.py).
6. **Output**: s3cmd prints its plain per-file lines and the live line of
   progress.py is drawn under them at a terminal (s3cmd's per-file meters
   would overwrite each other).

stdin and stdout take s3cmd's own path, one request at a time.
"""

from __future__ import annotations

import functools
import http.client
import inspect
import io
import logging
import os
import stat
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress

from .multipart import retries
from .plans import FILE_CALLS, Plans, call_match
from .script import patched
from .slow_downs import SlowDowns, summary
from .slow_downs import incompatibility as slow_downs_incompatibility

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any, Protocol

    from ..engine.downloads import Finished
    from ..engine.files import Ahead
    from ..engine.partials import Partial
    from ..engine.scheduler import Scheduler

    class Hooks(Protocol):
        parallel: int  # requests at once to begin with, and parts of a file at once
        grows: bool  # whether more may go at once when the link rewards it

        def download_kept(self, partial: str, source: str, destination: str, size: int) -> None:
            """A download keeps a state a later run can resume from (for ``--status``)."""

        def download_done(self, partial: str) -> None: ...


MiB = 1024 * 1024
_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
_SEND_METHODS = ("send_request", "send_file", "recv_file")

# What the hooks call, and the parameters they pass, by name.
_CALLS = {
    "MultiPartUpload.upload_part": ("seq", "offset", "chunk_size", "labels", "remote_status"),
    "MultiPartUpload.copy_part": ("seq", "offset", "chunk_size", "labels", "remote_status"),
    "MultiPartUpload.get_parts_information": ("uri", "upload_id"),
    "MultiPartUpload.upload_all_parts": ("extra_label",),
    "S3.object_get": ("uri", "stream", "dest_name", "start_position", "extra_label"),
    "S3.object_put": ("filename", "uri", "extra_headers", "extra_label"),
    "S3.object_copy": ("src_uri", "dst_uri", "extra_headers", "src_size", "extra_label"),
    "S3.object_move": ("src_uri", "dst_uri", "extra_headers", "src_size", "extra_label"),
    "S3.object_modify": ("src_uri", "dst_uri", "extra_headers", "src_size", "extra_label"),
    "S3.object_info": ("uri",),
    "S3.content_type": ("filename",),
    "S3.create_request": ("operation", "uri", "headers"),
    "S3.get_hostname": ("bucket",),
    "S3.format_uri": ("resource",),
    "S3._fail_wait": ("retries",),
    "S3.send_request": ("request",),
    "S3.send_file": ("request", "stream", "labels"),
    "S3.recv_file": ("request", "stream", "labels", "start_position"),
}
_S3_MODULE_NAMES = (
    "ConnMan",
    "S3Error",
    "S3DownloadError",
    "S3ResponseError",
    "encode_to_s3",
    "convertHeaderTupleListToDict",
    "parse_attrs_header",
)
_CONFIG_NAMES = (
    "multipart_chunk_size_mb",
    "multipart_copy_chunk_size_mb",
    "progress_meter",
    "limitrate",
    "recv_chunk",
    "put_continue",
    "get_continue",
    "force",
    "encrypt",
    "extra_headers",
    "stop_on_error",
)


def incompatibility() -> str | None:
    """Whether the calls and state the hooks rely on are still as they were."""
    from S3 import S3 as s3_module
    from S3 import Config, FileLists, MultiPart

    upload = MultiPart.MultiPartUpload
    owners = {"MultiPartUpload": upload, "S3": s3_module.S3}
    for qualified, expected in _CALLS.items():
        owner, _, name = qualified.partition(".")
        try:
            parameters = inspect.signature(getattr(owners[owner], name)).parameters
        except (AttributeError, TypeError, ValueError):
            return f"{qualified} is missing"
        missing = [p for p in expected if p not in parameters]
        if missing:
            return f"{qualified} no longer takes {', '.join(missing)}"
    # The loop being replaced must still be the one that sends the parts, and
    # the completion must still send what the parts left in ``parts``.
    names = upload.upload_all_parts.__code__.co_names
    if not {"upload_part", "copy_part", "chunk_size", "src_size"} <= set(names):
        return "MultiPartUpload.upload_all_parts no longer sends parts with upload_part"
    if "parts" not in upload.complete_multipart_upload.__code__.co_names:
        return "MultiPartUpload.complete_multipart_upload no longer reads parts"
    if "recv_file" not in s3_module.S3.object_get.__code__.co_names:
        return "S3.object_get no longer downloads with recv_file"
    # Every request takes its connection in one of the send methods: the budget is held there.
    for name, value in vars(s3_module.S3).items():
        names = getattr(getattr(value, "__code__", None), "co_names", ())
        if "ConnMan" in names and name not in _SEND_METHODS:
            return f"S3.{name} takes a connection outside the send methods"
    if "wrapper_send_body" not in s3_module.S3.send_file.__code__.co_names or not callable(
        getattr(http.client.HTTPConnection, "wrapper_send_body", None)
    ):
        return "S3.send_file no longer sends its body with wrapper_send_body"
    for name in _S3_MODULE_NAMES:
        if not hasattr(s3_module, name):
            return f"S3.S3 has no {name}"
    for name in _CONFIG_NAMES:
        if not hasattr(Config.Config, name):
            return f"Config has no {name}"
    if retries(s3_module.S3, Config.Config) is None:
        return "neither Config.max_retries nor S3._max_retries says how often to retry"
    if not callable(getattr(FileLists, "fetch_remote_list", None)):
        return "S3.FileLists has no fetch_remote_list"
    return slow_downs_incompatibility()


def part_size(config: Any) -> int:
    return int(config.multipart_chunk_size_mb) * MiB


def regular_file(stream: Any) -> str | None:
    """The path of the regular file behind ``stream``, else None (stdin, stdout, a pipe)."""
    name = getattr(stream, "name", None)
    if not isinstance(name, (str, bytes)):  # sync's temporary file, opened from a descriptor
        name = getattr(stream, "stream_name", None)
    try:
        held = os.fstat(stream.fileno())
        there = os.stat(name) if isinstance(name, (str, bytes)) else None
    except (AttributeError, OSError, ValueError):
        return None
    if there is None or not stat.S_ISREG(held.st_mode):
        return None
    if (held.st_dev, held.st_ino) != (there.st_dev, there.st_ino):
        return None  # "<stdout>" redirected to a file, say
    return os.fsdecode(name)


def expected_md5(headers: Mapping[str, str]) -> str | None:
    """The MD5 s3cmd's recv_file checks a download against, or None when there is none."""
    from S3 import S3 as s3_module

    expected = headers.get("etag", "").strip("\"'")
    if "x-amz-meta-s3tools-gpgenc" not in headers and "x-amz-meta-s3cmd-attrs" in headers:
        expected = s3_module.parse_attrs_header(headers["x-amz-meta-s3cmd-attrs"]).get(
            "md5", expected
        )
    if "-" in expected or headers.get("x-amz-server-side-encryption") == "aws:kms":
        return None  # a multipart ETag, or an encrypted object's: not an MD5
    return expected or None


class _Paced:
    """A stream s3cmd's ``recv_file`` writes to, whose bytes the scheduler paces and counts."""

    def __init__(self, stream: Any, scheduler: Scheduler) -> None:
        self._stream = stream
        self._scheduler = scheduler
        self.stream_name = getattr(stream, "stream_name", getattr(stream, "name", ""))

    def write(self, data: bytes) -> int:
        self._scheduler.moved(len(data))
        return self._stream.write(data)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, close, ...
        return getattr(self._stream, name)


class _Fetched:
    """A finished download waiting for s3cmd's loop: its hidden file and s3cmd's response."""

    def __init__(self, partial: Partial, response: dict[str, Any]) -> None:
        self.partial = partial
        self.response = response


class Engine:
    """The hooks of one run (see the module docstring); the scheduler starts with the first loop."""

    def __init__(self, hooks: Hooks, namespace: dict[str, Any]) -> None:
        from S3 import S3 as s3_module
        from S3.Config import Config

        self.hooks = hooks
        self.namespace = namespace
        self.s3_module = s3_module
        self.config = Config()
        self.scheduler: Scheduler | None = None
        self.ahead: Ahead | None = None
        self.sizes: dict[str, int] = {}  # what s3cmd's listings said each object's size is
        self._more = False  # a ranged run has more ranges to come
        self.originals: dict[str, Any] = {}
        self._terminal: Any = None
        self.slow_downs = SlowDowns(lambda: self.scheduler)
        self._run_id = f"{os.getpid()}-{id(self):x}"

    # -- the run ------------------------------------------------------------------

    @contextmanager
    def installed(self) -> Iterator[None]:
        from S3 import FileLists, MultiPart

        s3_class = self.s3_module.S3
        upload_class = MultiPart.MultiPartUpload
        self.originals = {
            name: getattr(s3_class, name) for name in (*FILE_CALLS, *_SEND_METHODS, "object_get")
        }
        self.originals["upload_all_parts"] = upload_class.upload_all_parts
        self.originals["complete"] = upload_class.complete_multipart_upload
        self.originals["fetch_remote_list"] = FileLists.fetch_remote_list
        self.originals["wrapper_send_body"] = http.client.HTTPConnection.wrapper_send_body
        self.namespace["__tsd_files__"] = self._files
        with ExitStack() as stack:
            for name in FILE_CALLS:
                stack.enter_context(patched(s3_class, name, self._file_call(name)))
            for name in _SEND_METHODS:
                stack.enter_context(patched(s3_class, name, self._send_method(name)))
            stack.enter_context(patched(s3_class, "object_get", self._object_get()))
            stack.enter_context(patched(upload_class, "upload_all_parts", self._upload_all_parts()))
            stack.enter_context(
                patched(upload_class, "complete_multipart_upload", self._complete())
            )
            stack.enter_context(patched(FileLists, "fetch_remote_list", self._listing()))
            stack.enter_context(
                patched(http.client.HTTPConnection, "wrapper_send_body", self._send_body())
            )
            stack.enter_context(self._line_safe_output())
            stack.enter_context(self.slow_downs.installed())  # around the send methods above
            try:
                yield
            finally:
                self._end()

    def next_range(self, last: bool) -> None:
        """A ranged run (batches.py) has listed its next range: the sizes of the last one
        are not needed any more, and the live line says whether more may follow."""
        self.sizes.clear()
        self._more = not last
        if self.scheduler is not None:
            self.scheduler.progress.more = not last

    def stop(self) -> None:
        """Ctrl-C or a signal: every worker stops at its next step."""
        if self.scheduler is not None:
            self.scheduler.stop()

    def _start(self) -> Scheduler:
        """At the first transfer loop: s3cmd has applied its options by now."""
        if self.scheduler is None:
            from ..engine.files import Ahead
            from ..engine.limits import MOST_AT_ONCE
            from ..engine.scheduler import Scheduler

            config = self.config
            self.scheduler = Scheduler(
                self.hooks.parallel,
                rate=float(config.limitrate or 0),
                most=MOST_AT_ONCE if self.hooks.grows else None,
            )
            self.ahead = Ahead(self.scheduler, bool(config.stop_on_error))
            self.scheduler.progress.more = self._more
            self._saved = {"limitrate": config.limitrate, "progress_meter": config.progress_meter}
            if config.progress_meter and self._terminal is not None:
                self.scheduler.progress.show_on(self._terminal)
            # s3cmd prints its plain lines; the engine paces the whole command.
            config.progress_meter = False
            config.limitrate = 0
        return self.scheduler

    def _end(self) -> None:
        if self.scheduler is not None:
            self.scheduler.progress.show_on(None)
            slowed = summary(self.scheduler)
            if slowed is not None:
                logging.warning(slowed)
            self.scheduler.close()
            for name, value in self._saved.items():
                setattr(self.config, name, value)

    @contextmanager
    def _line_safe_output(self) -> Iterator[None]:
        """s3cmd's stdout and stderr, through progress.LineSafe (see progress.py)."""
        from ..engine.progress import LineSafe, Progress

        saved = sys.stdout, sys.stderr
        raw_out = getattr(sys.stdout, "buffer", None)
        raw_err = getattr(sys.stderr, "buffer", None)
        if raw_out is None or raw_err is None:
            yield
            return
        shared = Progress()  # replaced by the scheduler's once there is one

        class Router:
            """Whichever Progress is current draws around the write."""

            def write_around(_, write: Callable[[bytes], object], data: bytes) -> None:
                current = self.scheduler.progress if self.scheduler is not None else shared
                current.write_around(write, data)

        self._terminal = raw_out  # drawn on if s3cmd would have drawn its meters (_start)
        router = Router()
        try:
            sys.stdout = io.TextIOWrapper(
                LineSafe(raw_out, router),  # type: ignore[arg-type]
                encoding=sys.stdout.encoding, errors="replace", line_buffering=True,
            )  # fmt: skip
            sys.stderr = io.TextIOWrapper(
                LineSafe(raw_err, router),  # type: ignore[arg-type]
                encoding=sys.stderr.encoding, errors="backslashreplace", line_buffering=True,
            )  # fmt: skip
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                with suppress(OSError, ValueError):
                    stream.flush()
            sys.stdout, sys.stderr = saved

    # -- 1. the transfer loops -----------------------------------------------------

    def _files(self, where: str, elements: Any, scope: dict[str, Any]) -> Iterator[Any]:
        self._start()
        assert self.ahead is not None
        plans = Plans(self, scope)
        plan = getattr(plans, "plan_" + where.replace(".", "_"))
        return self.ahead.order(elements, plans.guarded(plan), plans.size_of(where))

    def _file_call(self, name: str) -> Callable[..., Any]:
        original = self.originals[name]
        signature = inspect.signature(original)

        def call(s3: Any, *args: Any, **kwargs: Any) -> Any:
            if self.ahead is not None:
                bound = signature.bind(s3, *args, **kwargs)
                bound.apply_defaults()
                job = self.ahead.claim(call_match(name, bound.arguments))
                if job is not None:
                    if job.error is not None:
                        raise job.error
                    return job.result
            return original(s3, *args, **kwargs)

        call.__name__ = name
        return call

    def run_original(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.originals[name](*args, **kwargs)

    # -- 2. requests and bytes -----------------------------------------------------

    def _send_method(self, name: str) -> Callable[..., Any]:
        original = self.originals[name]

        @functools.wraps(original)  # slow_downs.py reads s3cmd's parameters through it
        def send(s3: Any, *args: Any, **kwargs: Any) -> Any:
            scheduler = self.scheduler
            if scheduler is None:
                return original(s3, *args, **kwargs)
            with scheduler.request():
                return original(s3, *args, **kwargs)

        return send

    def _send_body(self) -> Callable[..., Any]:
        original = self.originals["wrapper_send_body"]

        def wrapper_send_body(conn: Any, message_body: Any, *args: Any, **kwargs: Any) -> Any:
            scheduler = self.scheduler
            if scheduler is not None and isinstance(message_body, (bytes, bytearray, memoryview)):
                scheduler.moved(len(message_body))
            return original(conn, message_body, *args, **kwargs)

        return wrapper_send_body

    # -- 3. multipart uploads and copies --------------------------------------------

    def _upload_all_parts(self) -> Callable[..., Any]:
        original = self.originals["upload_all_parts"]

        def upload_all_parts(upload: Any, extra_label: str = "") -> Any:
            from ..engine import parts

            stream = upload.file_stream
            size, chunk = upload.src_size, upload.chunk_size
            scheduler = self.scheduler
            if (
                scheduler is None
                or not upload.upload_id
                or not size
                or size <= chunk
                or (stream is not None and regular_file(stream) is None)
            ):
                return original(upload, extra_label)  # stdin, one part, or s3cmd's own error
            config = upload.s3.config
            remote = (
                upload.get_parts_information(upload.dst_uri, upload.upload_id)
                if config.put_continue
                else {}
            )
            source = upload.src_uri.uri() if upload.src_uri else stream.stream_name
            labels = {"source": source, "destination": upload.dst_uri.uri(), "extra": extra_label}
            method = upload.upload_part if stream is not None else upload.copy_part

            def send(seq: int, offset: int, length: int) -> None:
                sent = method(seq, offset, length, dict(labels), remote_status=remote.get(seq))
                if sent is None:  # already there: a resumed upload
                    scheduler.progress.add(scheduler.file(), length)

            with ExitStack() as patches:
                if stream is not None:
                    reader = parts.PositionalReader(stream.fileno(), stream.stream_name, scheduler)
                    patches.enter_context(patched(upload, "file_stream", reader))
                parts.send_all(scheduler, parts.cut(size, chunk), send, source)
            logging.debug("MultiPart: Upload finished: %d parts", -(-size // chunk))
            return None

        return upload_all_parts

    def _complete(self) -> Callable[..., Any]:
        original = self.originals["complete"]

        def complete(upload: Any) -> Any:
            upload.parts = dict(sorted(upload.parts.items()))  # parts finish out of order
            return original(upload)

        return complete

    # -- 4. downloads -------------------------------------------------------------

    def _listing(self) -> Callable[..., Any]:
        original = self.originals["fetch_remote_list"]

        def fetch_remote_list(*args: Any, **kwargs: Any) -> Any:
            found = original(*args, **kwargs)
            for item in found[0].values():
                size = item.get("size")
                if isinstance(size, int) and "object_uri_str" in item:
                    self.sizes[item["object_uri_str"]] = size
            return found

        return fetch_remote_list

    def _object_get(self) -> Callable[..., Any]:
        original = self.originals["object_get"]

        def object_get(
            s3: Any, uri: Any, stream: Any, dest_name: str, start_position: int = 0,
            extra_label: str = "",
        ) -> Any:  # fmt: skip
            if self.ahead is not None and not start_position:
                job = self.ahead.claim(("object_get", uri.uri(), dest_name))
                if job is not None:
                    if job.error is not None:
                        raise job.error
                    return self.deliver(job.result, stream)
            scheduler = self.scheduler
            path = regular_file(stream)
            if scheduler is None or path is None:
                return original(s3, uri, stream, dest_name, start_position, extra_label)
            size = self.sizes.get(uri.uri())
            if size is None:
                size = int(s3.object_info(uri)["headers"]["content-length"])
            if size - start_position <= part_size(s3.config):
                paced = _Paced(stream, scheduler)
                return original(s3, uri, paced, dest_name, start_position, extra_label)
            if start_position:  # --continue: the rest in ranges, then appended to what is there
                fetched = self.download(s3, uri, dest_name, size, start=start_position)
                return self.append(fetched, stream)
            # s3cmd's loop made an empty file for the download: nothing is to be under
            # that name until the download is whole. It comes back only for s3cmd's
            # own clean-up after a failure.
            os.unlink(path)
            try:
                fetched = self.download(s3, uri, dest_name, size)
            except BaseException as err:
                if not isinstance(err, KeyboardInterrupt):
                    with suppress(FileExistsError):
                        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                raise
            return self.deliver(fetched, stream, path)

        return object_get

    def download(
        self, s3: Any, uri: Any, destination: str, size: int | None, start: int = 0
    ) -> _Fetched:
        """Fetch ``uri`` into the hidden file beside ``destination`` (on a file worker, or not).

        ``start``: the destination holds that many bytes already (``--continue``).
        """
        import hashlib

        from ..engine import downloads
        from ..engine.partials import Partial

        scheduler = self._start()
        if size is None:
            size = int(s3.object_info(uri)["headers"]["content-length"])
        source = uri.uri()
        before = None
        if start:  # the digest covers what is there, then what arrives
            before = hashlib.md5()
            with open(destination, "rb") as there:
                for piece in iter(lambda: there.read(min(MiB, start - there.tell())), b""):
                    before.update(piece)
        elif size <= part_size(s3.config):
            partial = Partial.open(destination, self._run_id)
            try:
                stream = io.FileIO(partial.fd, "wb", closefd=False)
                stream.stream_name = partial.path  # type: ignore[attr-defined]
                response = self.originals["object_get"](
                    s3, uri, _Paced(stream, scheduler), destination, 0, ""
                )
            except BaseException:
                partial.remove()
                partial.close()
                raise
            return _Fetched(partial, response)

        def kept(partial: Partial, keeps: bool) -> None:
            if keeps:
                self.hooks.download_kept(partial.path, source, destination, size)
            else:
                self.hooks.download_done(partial.path)

        try:
            finished = downloads.fetch(
                scheduler,
                lambda start, end, write: self.fetch_range(s3, uri, start, end, write),
                source=source,
                destination=destination,
                size=size,
                part_size=part_size(s3.config),
                expected_md5=expected_md5,
                kept=kept,
                run_id=self._run_id,
                start=start,
                before=before,
            )
        except downloads.Failed as err:
            raise self.s3_module.S3DownloadError(f"{err}; nothing was written") from None
        return _Fetched(finished.partial, self._response(finished, size, start))

    def _response(self, finished: Finished, size: int, start: int) -> dict[str, Any]:
        """What s3cmd's ``recv_file`` would have answered for the whole download."""
        headers = dict(finished.headers)
        headers["content-length"] = str(size - start)
        elapsed = finished.elapsed
        response: dict[str, Any] = {
            "status": 200,
            "reason": "OK",
            "headers": headers,
            "md5": finished.md5,
            "md5match": not finished.expected or finished.md5 == finished.expected,
            "elapsed": elapsed,
            "size": size,
            "speed": float(finished.fetched) / elapsed if elapsed else -1.0,
        }
        if "x-amz-meta-s3cmd-attrs" in headers:
            response["s3cmd-attrs"] = self.s3_module.parse_attrs_header(
                headers["x-amz-meta-s3cmd-attrs"]
            )
        return response

    def deliver(self, fetched: _Fetched, stream: Any, path: str | None = None) -> dict[str, Any]:
        """Put a finished download where s3cmd's loop wants it: the file behind ``stream``.

        ``path``: where that file was, if it is gone already.
        """
        partial = fetched.partial
        try:
            path = path or regular_file(stream)
            if path is None:  # not a file of its own: copy the bytes into the stream
                with open(partial.fd, "rb", closefd=False) as source:
                    source.seek(0)
                    while piece := source.read(MiB):
                        stream.write(piece)
                stream.flush()
                partial.remove()
            else:
                os.fchmod(partial.fd, stat.S_IMODE(os.fstat(stream.fileno()).st_mode))
                os.replace(partial.path, path)
        except BaseException:
            partial.remove()
            raise
        finally:
            partial.close()
        return fetched.response

    @staticmethod
    def append(fetched: _Fetched, stream: Any) -> dict[str, Any]:
        """``--continue``: add a finished download of what was missing to what is there."""
        partial = fetched.partial
        try:
            position = 0
            while piece := os.pread(partial.fd, MiB, position):
                stream.write(piece)
                position += len(piece)
            stream.flush()
        finally:
            partial.remove()
            partial.close()
        return fetched.response

    def discard(self, fetched: _Fetched) -> None:
        """A finished download that s3cmd's loop did not take after all."""
        fetched.partial.remove()
        fetched.partial.close()

    def fetch_range(
        self, s3: Any, uri: Any, start: int, end: int, write: Callable[[int, bytes], None]
    ) -> dict[str, str]:
        """GET bytes ``start`` to ``end`` (exclusive) of ``uri``; the response's headers.

        Built, signed and sent the way s3cmd's ``recv_file`` does it (so the
        TSD headers are added in ``get_triplet``), on a connection of s3cmd's
        pool, holding a place in the budget. A dropped connection, a 5xx or a
        429 is retried as s3cmd retries, from where the data stopped; any
        other answer is s3cmd's ``S3Error``, and an error writing the file (a
        full disk) is raised as it is.
        """
        s3_module = self.s3_module
        scheduler = self.scheduler
        assert scheduler is not None
        attempts_left = retries(s3, s3.config)
        position = start
        # Read in s3cmd's chunks where they are paced (--limit-rate); else in 256 KiB:
        # with ranges at once, each read hands the GIL over, and s3cmd's 64 KiB cost a
        # 256 MiB get straight to the emulator 1.50 s of CPU against 1.06 s (1 MiB
        # reads cost no less CPU, and 15 MiB more memory with ten ranges).
        piece = (
            s3.config.recv_chunk
            if scheduler.bandwidth is not None
            else max(s3.config.recv_chunk, 256 * 1024)
        )
        with scheduler.request():
            while True:
                scheduler.check()
                request = s3.create_request(
                    "OBJECT_GET", uri=uri, headers={"range": f"bytes={position}-{end - 1}"}
                )
                method, resource, headers = request.get_triplet()
                conn = None
                try:
                    conn = s3_module.ConnMan.get(s3.get_hostname(resource["bucket"]))
                    conn.c.putrequest(method, s3.format_uri(resource, conn.path))
                    for header, value in headers.items():
                        conn.c.putheader(
                            s3_module.encode_to_s3(header), s3_module.encode_to_s3(value)
                        )
                    conn.c.endheaders()
                    answer = conn.c.getresponse()
                except (OSError, http.client.HTTPException) as err:
                    failure = str(err) or type(err).__name__
                else:
                    response = {
                        "status": answer.status,
                        "reason": answer.reason,
                        "headers": s3_module.convertHeaderTupleListToDict(answer.getheaders()),
                    }
                    try:
                        if answer.status == 206:
                            _receive(answer, position, end, write, scheduler, piece)
                            s3_module.ConnMan.put(conn)
                            return response["headers"]
                        response["data"] = answer.read()
                    except _Interrupted as err:
                        position, failure = err.position, str(err)
                    except BaseException:
                        s3_module.ConnMan.close(conn)
                        raise
                    else:
                        s3_module.ConnMan.put(conn)
                        conn = None
                        if answer.status not in _RETRIED_STATUSES:
                            raise s3_module.S3Error(response)
                        failure = str(s3_module.S3Error(response))
                if conn is not None:
                    s3_module.ConnMan.close(conn)
                if not attempts_left:
                    logging.warning("Too many failures. Giving up on '%s'", resource["uri"])
                    raise s3_module.S3DownloadError(f"Download failed for: {resource['uri']}")
                logging.warning("Retrying failed request: %s (%s)", resource["uri"], failure)
                wait = s3._fail_wait(attempts_left)
                logging.warning("Waiting %d sec...", wait)
                if not self.slow_downs.resending():
                    attempts_left -= 1
                _sleep(wait, scheduler)


def _sleep(seconds: float, scheduler: Scheduler) -> None:
    """Wait before a retry, unless the command stops meanwhile."""
    if scheduler.stop_flag.wait(seconds):
        scheduler.check()


class _Interrupted(Exception):
    """A range stopped arriving part-way: where it stopped, and why."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(reason)
        self.position = position


def _receive(
    answer: Any,
    position: int,
    end: int,
    write: Callable[[int, bytes], None],
    scheduler: Scheduler,
    piece: int,
) -> None:
    """Read a range's body into ``write``; _Interrupted if the network lets it down."""
    while position < end:
        size = min(piece, end - position)
        scheduler.moved(size)
        try:
            data = answer.read(size)
        except (OSError, http.client.HTTPException) as err:
            raise _Interrupted(position, str(err) or type(err).__name__) from err
        if not data:
            raise _Interrupted(position, "EOF from S3!")
        write(position, data)  # a full disk is not the network's fault: raised as it is
        position += len(data)

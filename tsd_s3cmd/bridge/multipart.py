"""Multipart uploads of any size S3 holds, and a finish line that loses none.

The shim calls these from its hooks on s3cmd's ``MultiPartUpload`` (hook 3),
with ``--parallel 1`` too; the sizes themselves are engine/part_sizes.py's.

1. **Part size.** ``before_initiate`` sets the upload's ``chunk_size`` to
   one that fits S3's 10,000 parts (``fitted``), and says so when it is not
   the configured one; ``after_initiate`` takes, for an upload that is
   resumed (``--upload-id``, ``--continue-put``), the size its first part was
   sent with. s3cmd's own refusal of more than ``multipart_max_chunks`` parts
   (``S3.object_put``) is lifted meanwhile, as the parts now always fit.
2. **Streams.** ``put -`` has no size: ``GrowingParts`` stands in for stdin
   in s3cmd's stream loop, handing it parts that grow (``stream_part``).
3. **The finish line.** A gateway can time out (nginx's 504) while the store
   completes the upload; s3cmd then retries the complete and meets
   ``NoSuchUpload``, as S3 answers once an upload is complete, and would call
   the upload failed. ``complete`` treats a timeout, a 5xx or
   ``NoSuchUpload`` as "outcome unknown" and looks at the object: when its
   size and ETag are those of what was sent, the upload succeeded. S3's other
   way to fail a complete, a 200 whose body is an ``<Error>``, is retried.
   Nothing here aborts an upload: one whose outcome is unknown stays
   resumable.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..engine import part_sizes
from .script import patched

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any

MiB = part_sizes.MiB


def incompatibility() -> str | None:
    """Whether s3cmd still makes, sizes and completes uploads where these hooks expect."""
    from S3 import S3 as s3_module
    from S3 import BaseUtils, Config, Exceptions, MultiPart

    upload = MultiPart.MultiPartUpload
    names = list(upload.__init__.__code__.co_names)
    # The part size must be set before the upload is initiated, for the hook to change it.
    if not {"chunk_size", "initiate_multipart_upload"} <= set(names) or names.index(
        "chunk_size"
    ) > names.index("initiate_multipart_upload"):
        return "MultiPartUpload no longer sets chunk_size before it initiates the upload"
    loop = upload.upload_all_parts.__code__.co_names
    if not {"file_stream", "read", "chunk_size", "src_size"} <= set(loop):
        return "MultiPartUpload.upload_all_parts no longer reads a stream in chunk_size parts"
    if "multipart_max_chunks" not in s3_module.S3.object_put.__code__.co_names:
        return "S3.object_put no longer limits parts with multipart_max_chunks"
    if not hasattr(Config.Config, "multipart_max_chunks"):
        return "Config has no multipart_max_chunks"
    for name in ("S3Error", "S3RequestError", "S3UploadError", "ParameterError"):
        if not hasattr(Exceptions, name):
            return f"S3.Exceptions has no {name}"
    for name in ("getRootTagName", "getTextFromXml"):
        if not callable(getattr(BaseUtils, name, None)):
            return f"S3.BaseUtils has no {name}"
    for name in ("object_info", "_fail_wait"):
        if not callable(getattr(s3_module.S3, name, None)):
            return f"S3.{name} is missing"
    return None


def retries(s3: Any, config: Any) -> int | None:
    """How often s3cmd retries a request: a setting since 2.4, fixed at 5 in 2.3."""
    setting = getattr(config, "max_retries", None)
    return getattr(s3, "_max_retries", None) if setting is None else int(setting)


@contextmanager
def installed() -> Iterator[None]:
    """For one run: s3cmd's cap on the number of parts is lifted (see point 1)."""
    from S3 import S3 as s3_module
    from S3.Config import Config

    original = s3_module.S3.object_put
    config = Config()
    saved = config.multipart_max_chunks

    @functools.wraps(original)  # the engine binds calls to s3cmd's own signature
    def object_put(s3: Any, *args: Any, **kwargs: Any) -> Any:
        # Set here, after s3cmd has read its config file (which may name its own cap);
        # the same value from every thread, so nothing races.
        s3.config.multipart_max_chunks = part_sizes.MAX_OBJECT
        return original(s3, *args, **kwargs)

    try:
        with patched(s3_module.S3, "object_put", object_put):
            yield
    finally:
        config.multipart_max_chunks = saved


def _name(upload: Any) -> str:
    return upload.src_uri.uri() if upload.src_uri else upload.file_stream.stream_name


def before_initiate(upload: Any) -> None:
    """Point 1 for files and copies, point 2 for streams."""
    from S3.Exceptions import ParameterError

    if upload.file_stream is not None and not upload.src_size:
        upload.file_stream = GrowingParts(upload.file_stream, upload.chunk_size)
        return
    configured = upload.chunk_size
    try:
        upload.chunk_size = part_sizes.fitted(upload.src_size, configured)
    except part_sizes.TooLarge:
        raise ParameterError(
            f"{_name(upload)} is {upload.src_size / 1024**4:.2f} TiB, and S3 keeps objects "
            "of at most 5 TiB: split it (split -b 4T) and send the pieces"
        ) from None
    if upload.chunk_size != configured:
        logging.warning(
            "%s needs more than 10,000 parts of %d MiB: it goes in parts of %d MiB",
            _name(upload), configured // MiB, upload.chunk_size // MiB,
        )  # fmt: skip


def after_initiate(upload: Any) -> None:
    """Point 1 for a resumed upload: the size its first part was sent with."""
    if not (upload.upload_id and upload.s3.config.put_continue and upload.src_size):
        return
    if isinstance(upload.file_stream, GrowingParts):
        return
    first = upload.get_parts_information(upload.dst_uri, upload.upload_id).get(1)
    if first is None:
        return
    size = int(first["size"])
    fits = -(-upload.src_size // size) <= part_sizes.MAX_PARTS
    if size != upload.chunk_size and part_sizes.MIN_PART <= size <= part_sizes.MAX_PART and fits:
        logging.info("Resuming %s in the parts of %d bytes it began with", _name(upload), size)
        upload.chunk_size = size


class GrowingParts:
    """stdin as s3cmd's stream loop reads it: each read is the next part, whatever it asks."""

    def __init__(self, stream: Any, configured: int) -> None:
        self._stream = stream
        self._configured = configured
        self.stream_name = stream.stream_name
        self.sent = 0  # bytes handed out so far: the object's size once the stream ends

    def read(self, size: int = -1) -> bytes:
        from S3.Exceptions import ParameterError

        wanted = part_sizes.stream_part(self.sent, self._configured)
        pieces, got = [], 0
        while got < wanted:
            piece = self._stream.read(wanted - got)
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        if self.sent + got > part_sizes.MAX_OBJECT:
            raise ParameterError("the stream is larger than S3's limit of 5 TiB for one object")
        self.sent += got
        return b"".join(pieces)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def complete(upload: Any, send: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Point 3: ``send(upload)`` (s3cmd's complete), with an unknown outcome looked into."""
    from S3.BaseUtils import getTextFromXml
    from S3.Exceptions import S3Error, S3RequestError, S3UploadError

    s3 = upload.s3
    attempts = (retries(type(s3), s3.config) or 0) + 1
    for attempt in range(1, attempts + 1):
        try:
            response = send(upload)
        except S3Error as err:
            if err.status < 500 and err.code != "NoSuchUpload":
                raise
            return _looked_at(upload, err, f"{err.status} {err.code or err.reason}")
        except (S3RequestError, OSError) as err:  # s3cmd has retried the connection already
            return _looked_at(upload, err, str(err))
        if not _is_error(response.get("data")):
            return response
        if attempt == attempts:  # as s3cmd's send_file_multipart says it, but never finished
            raise S3UploadError(getTextFromXml(response["data"], "Message"))
        logging.warning(
            "The store answered the completion of %s with an error; retrying (%d of %d)",
            upload.dst_uri.uri(), attempt, attempts - 1,
        )  # fmt: skip
        time.sleep(s3._fail_wait(attempts - attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _is_error(data: Any) -> bool:
    """Whether an answer's body is an S3 ``<Error>`` (a complete can fail with a 200)."""
    from S3.BaseUtils import getRootTagName

    try:
        return bool(data) and getRootTagName(data) == "Error"
    except Exception:  # not XML
        return False


def _looked_at(upload: Any, err: Exception, answer: str) -> dict[str, Any]:
    """The object, when it is what was sent: else ``err`` stands and the upload is resumable."""
    from S3.Exceptions import S3Error

    size = upload.src_size or getattr(upload.file_stream, "sent", 0)
    etag = part_sizes.multipart_etag([upload.parts[n] for n in sorted(upload.parts)])
    try:
        found = upload.s3.object_info(upload.dst_uri)["headers"]
    except S3Error:
        raise err from None
    stored = (int(found.get("content-length", -1)), found.get("etag", "").strip("\"'"))
    if stored != (size, etag):
        logging.info("%s holds %s, not %s as sent", upload.dst_uri.uri(), stored, (size, etag))
        raise err
    logging.warning(
        "The answer to the completion of %s was lost (%s), but the object stored there "
        "has the size and ETag of what was sent: the upload is complete",
        upload.dst_uri.uri(), answer,
    )  # fmt: skip
    return {"status": 200, "reason": "OK", "headers": found, "data": b""}

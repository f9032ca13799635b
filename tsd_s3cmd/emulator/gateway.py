"""The S3 gateway: TSD's token rules in front of moto's S3 server.

Each request is judged on its headers alone, before its body is read, the way
a real gateway decides when the request arrives: a token that was valid when
a slow upload began is not refused because it expired while the bytes came
in. An accepted request goes to moto's S3 app in this same process.

Projects do not see each other's buckets: the gateway stores project pNN's
bucket ``b`` in moto as ``pNN-b`` and translates names both ways, so every
project has its own ``export-bucket`` and two projects may both own ``a``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote_to_bytes
from xml.sax.saxutils import escape

from .identity import PNUM, Identity, Project, Refused

EXPORT_BUCKET = "export-bucket"
# The sub-resources a GET on an object may name to read its metadata and not
# its contents, each with the other parameters it may come with. s3cmd 2.3/2.4
# sends ?acl (info, setacl), ?tagging (gettagging, info) and ?uploadId with
# max-parts/part-number-marker (listmp) on objects. moto answers every other
# GET on an object with its contents (?retention, ?torrent, ?x=1 included), so
# anything not named here is a download.
OBJECT_METADATA = {
    "acl": frozenset({"versionId"}),
    "tagging": frozenset({"versionId"}),
    "legal-hold": frozenset({"versionId"}),
    "attributes": frozenset({"versionId"}),
    "uploadId": frozenset({"max-parts", "part-number-marker"}),
}
# A GET on a bucket that lists its multipart uploads in progress (ListMultipartUploads)
# may come with these: S3's own parameters, and the ones s3cmd 2.3/2.4 sends (it
# spells the markers KeyMarker and UploadIdMarker, and may add max-keys and
# allow-unordered). moto answers any other bucket GET with a listing or a bucket
# setting, so anything else with ?uploads is a listing.
UPLOADS_COMPANIONS = frozenset(
    {
        "prefix", "delimiter", "encoding-type", "max-uploads", "key-marker",
        "upload-id-marker", "KeyMarker", "UploadIdMarker", "max-keys", "allow-unordered",
    }
)
# A POST on an object that returns its contents (S3 Select), with its only companion.
_SELECT = frozenset({"select", "select-type"})
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,]+)/(?P<scope>[^,]+),\s*"
    r"SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]+)"
)
_SIMPLE_RANGE = re.compile(r"^bytes=(?P<first>[0-9]+)-(?P<last>[0-9]*)$")
_LISTED_BUCKET = re.compile(rb"<Bucket><Name>(.*?)</Name>.*?</Bucket>", re.S)
NO_SUCH_UPLOAD = (
    "The specified upload does not exist. The upload ID may be invalid, "
    "or the upload may have been aborted or completed."
)


@dataclass(frozen=True)
class S3Call:
    """What an S3 request asks for, in the user's bucket names."""

    method: str
    raw_path: str
    bucket: str
    key: str
    params: dict[str, str]

    @classmethod
    def parse(cls, environ: dict) -> S3Call:
        raw = environ.get("RAW_URI") or quote(environ.get("PATH_INFO", "/"))
        raw_path = raw.split("?", 1)[0] or "/"
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
        bucket, _, key = path.lstrip("/").partition("/")
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        return cls(environ["REQUEST_METHOD"], raw_path, bucket, key, params)

    @property
    def upload_id(self) -> str | None:
        """The multipart upload this request acts on (UploadPart, ListParts, Complete, Abort)."""
        return self.params.get("uploadId") if self.key else None

    @property
    def completes_upload(self) -> bool:
        """A CompleteMultipartUpload: a POST on an object with ``?uploadId``."""
        return self.method == "POST" and self.upload_id is not None

    @property
    def operation(self) -> str:
        """``download``, ``list``, ``read``, ``write``, or ``unclear`` (refused with any token).

        Each one has its rule in ``judge``. Fail closed:

        - A GET on all buckets, or on a bucket, is a listing whatever its
          parameters (a bucket's objects, versions, settings: moto answers
          each with what is in the bucket or how it is kept), except
          ListMultipartUploads (``?uploads`` with only ``UPLOADS_COMPANIONS``).
        - A GET on an object is a download (export rules) unless it reads
          exactly one sub-resource of ``OBJECT_METADATA`` with only that one's
          companions (ListParts is ``?uploadId``).
        - ``read`` is multipart bookkeeping (the uploads in progress in a
          bucket, the parts of one upload), object metadata, and every HEAD:
          s3cmd's ``info``, ``put``'s and ``sync``'s checks for what is there
          already, and a resumed upload (``--upload-id``) read them with an
          import token. A HEAD hands out headers only (size, ETag, type, user
          metadata): ``Storage.forward`` drops any body a HEAD answer might
          have, whatever the parameters.
        - A POST on an object is a write, except S3 Select (``?select``), which
          returns the object's contents and so is a download; ``?select`` with
          anything else (``?select&uploads``) could be either, and is unclear.
        """
        method = self.method
        params = self.params
        if method == "GET":
            if not self.key:
                uploads = bool(self.bucket) and "uploads" in params
                if uploads and params.keys() - {"uploads"} <= UPLOADS_COMPANIONS:
                    return "read"
                return "list"
            if not params:
                return "download"
            for name, companions in OBJECT_METADATA.items():
                if name in params:
                    rest = params.keys() - {name}
                    return "read" if rest <= companions else "download"
            return "download"
        if method == "HEAD":
            return "read"
        if method == "POST" and self.key and "select" in params:
            return "download" if params.keys() <= _SELECT else "unclear"
        return "write"


def judge(identity: Identity, environ: dict, call: S3Call, token: str | None) -> Project:
    """The project this request may act for, or Refused with the S3 error to send.

    Every rule of docs/tsd-api.md's "Emulator policy" is here, and only here:
    writes take an s3import token and spare export-bucket; downloads take an
    s3export token of a member of pNN-export-group, from export-bucket only;
    listings take membership of pNN-export-group with either token type (TSD:
    "listing files is equivalent to exporting data"); reads of metadata and
    multipart bookkeeping take either token type of any project member.
    """
    pnum = environ.get("HTTP_X_PROJECT_SELECT", "")
    if not token:
        raise Refused(403, "every request needs a 'token' header with a TSD access token")
    if not pnum:
        raise Refused(403, "every request needs an 'x-project-select: pNN' header")
    try:
        claims = identity.verify(token, "access token")
    except Refused as refusal:  # the auth API says 401; S3 refuses with 403
        raise Refused(403, refusal.message, refusal.code) from None
    if claims.get("proj") != pnum:
        raise Refused(403, f"the token is for {claims.get('proj')}, not {pnum}")
    project = identity.project(pnum) if PNUM.match(pnum) else None
    if project is None:
        raise Refused(403, f"no project {pnum!r}")
    check_signature(project, environ, call)
    token_type = claims.get("name")
    groups = claims.get("groups") or []
    export_group = f"{pnum}-export-group"
    operation = call.operation
    if operation == "unclear":
        raise Refused(403, "S3 Select (?select) takes no other sub-resource")
    if operation == "write":
        if token_type != "s3import":
            raise Refused(403, f"writing takes an s3import token, not {token_type}")
        if call.bucket == EXPORT_BUCKET:
            raise Refused(403, f"{EXPORT_BUCKET} is read-only: it holds data leaving the project")
    elif operation == "download":
        if token_type != "s3export":
            raise Refused(403, f"downloading takes an s3export token, not {token_type}")
        if call.bucket != EXPORT_BUCKET:
            raise Refused(403, f"downloads come only from {EXPORT_BUCKET}")
        if export_group not in groups:
            raise Refused(403, f"the token's user is not in {export_group}")
    else:  # list or read: either token type
        if token_type not in ("s3import", "s3export"):
            raise Refused(
                403, f"an S3 request takes an s3import or s3export token, not {token_type}"
            )
        if operation == "list" and export_group not in groups:
            raise Refused(
                403,
                f"listing is exporting (it shows what is in TSD), so it takes membership of "
                f"{export_group}, and the token's user {claims.get('user')} is not a member",
            )
    return project


def check_signature(project: Project, environ: dict, call: S3Call) -> None:
    """Verify AWS Signature V4 with the project's secret key."""
    match = _AUTHORIZATION.match(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        raise Refused(403, "sign requests with AWS Signature V4 in the Authorization header")
    if match["key"] != project.access_key:
        raise Refused(
            403, f"that access key is not {project.pnum}'s S3 key", "InvalidAccessKeyId"
        )
    scope = match["scope"]
    date, region, service = [*scope.split("/"), "", "", ""][:3]
    signing_key = ("AWS4" + project.secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signed = match["signed"].split(";")
    headers = "".join(f"{name}:{_header(environ, name).strip()}\n" for name in signed)
    query = "&".join(
        f"{quote(k, safe='~')}={quote(v, safe='~')}"
        for k, v in sorted(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    )
    payload = _header(environ, "x-amz-content-sha256") or "UNSIGNED-PAYLOAD"
    uris = {call.raw_path, quote(unquote_to_bytes(call.raw_path), safe="/~")}
    for uri in uris:
        canonical = "\n".join(
            [call.method, uri, query, headers, match["signed"], payload]
        ).encode("utf-8", "surrogateescape")
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                _header(environ, "x-amz-date"),
                scope,
                hashlib.sha256(canonical).hexdigest(),
            ]
        )
        expected = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, match["signature"]):
            return
    raise Refused(403, "the request signature does not match", "SignatureDoesNotMatch")


def _header(environ: dict, name: str) -> str:
    key = name.upper().replace("-", "_")
    if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        key = "HTTP_" + key
    value = environ.get(key, "")
    # WSGI hands header values over as latin-1 strings; signatures are over UTF-8.
    return value.encode("latin-1", "replace").decode("utf-8", "replace")


def s3_error(code: str, message: str, **more: str) -> bytes:
    """An S3 error document, with a fresh RequestId as S3 gives each answer."""
    more["RequestId"] = os.urandom(8).hex().upper()
    fields = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in more.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{fields}</Error>"
    ).encode()


def error_body(refusal: Refused, resource: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{refusal.code}</Code><Message>{escape(refusal.message)}</Message>"
        f"<Resource>{escape(resource)}</Resource></Error>"
    ).encode()


class Storage:
    """moto's S3 app and backend, with each project's buckets under its own prefix."""

    def __init__(self) -> None:
        from moto import settings
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.moto_server.werkzeug_app import create_backend_app
        from moto.s3.models import s3_backends

        # The gateway reads the bucket from the path only (as s3cmd sends it),
        # so moto must too: a Host of "p12-b.example" must not pick a bucket.
        settings.S3_IGNORE_SUBDOMAIN_BUCKETNAME = True
        self.app = create_backend_app("s3")
        self.backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        # Upload ids that have been completed. S3 answers every later request on one
        # with NoSuchUpload; moto answers a second complete with the first one's
        # result (so a client would never learn that its retry came too late) and an
        # UploadPart with a 500.
        self._completed: set[str] = set()
        # Completes with the store now: a request on the same upload meanwhile (a client's
        # retry after nginx's 504) waits for the outcome, as it would meet it at S3.
        self._completing: dict[str, threading.Event] = {}
        self._completed_lock = threading.Lock()

    def create_export_bucket(self, pnum: str, directory: Path | None = None) -> None:
        """``export-bucket`` for ``pnum``, filled with the files under ``directory``."""
        name = f"{pnum}-{EXPORT_BUCKET}"
        if name not in self.backend.buckets:
            self.backend.create_bucket(name, "us-east-1")
        for path in sorted(directory.rglob("*")) if directory else ():
            if path.is_file():
                key = path.relative_to(directory).as_posix()
                self.backend.put_object(name, key, path.read_bytes())

    def place(self, pnum: str, bucket: str, key: str, data: bytes) -> None:
        """Store an object as TSD does when a file appears in the bucket's folder."""
        try:
            self.backend.put_object(f"{pnum}-{bucket}", key, data)
        except Exception:  # moto's own error for a missing bucket
            raise Refused(404, f"{pnum} has no bucket {bucket}") from None

    def object(self, pnum: str, bucket: str, key: str) -> bytes | None:
        try:
            found = self.backend.get_object(f"{pnum}-{bucket}", key)
        except Exception:  # moto raises its own S3 errors for missing buckets
            return None
        return None if found is None else bytes(found.value)

    def forward(self, environ: dict, start_response, call: S3Call, pnum: str) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
        """Hand the request to moto under the project's names; translate the answer back.

        TSD's own headers stop here, as at TSD's gateway: the storage behind it
        never sees a token (and moto need not walk two more headers per request).
        """
        upload_id = call.upload_id
        if upload_id is not None:
            with self._completed_lock:
                completing = self._completing.get(upload_id)
            if completing is not None:  # a complete of it is with the store: its outcome first
                completing.wait()
            with self._completed_lock:
                completed = upload_id in self._completed
            if completed:
                for _ in chunks(environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0)):
                    pass
                data = s3_error("NoSuchUpload", NO_SUCH_UPLOAD, UploadId=upload_id)
                start_response(
                    "404 Not Found",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(data)))],
                )
                return [data]
        environ.pop("HTTP_TOKEN", None)
        environ.pop("HTTP_X_PROJECT_SELECT", None)
        if call.bucket:
            prefix = f"/{pnum}-"
            environ["PATH_INFO"] = prefix + environ.get("PATH_INFO", "/").lstrip("/")
            for name in ("RAW_URI", "REQUEST_URI"):
                if name in environ:
                    environ[name] = prefix + environ[name].lstrip("/")
        if call.key and call.method == "GET" and "acl" in call.params:
            self._give_default_acl(pnum, call.bucket, call.key)
        source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
        if source:
            environ["HTTP_X_AMZ_COPY_SOURCE"] = f"{pnum}-{source.lstrip('/')}"
        captured: dict = {}

        def capture(status: str, headers: list, exc_info=None):  # type: ignore[no-untyped-def]
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        if call.operation == "download" and environ.get("HTTP_RANGE"):
            ranged = self._range(environ, call, pnum)
            if ranged is not None:
                start_response(*ranged[:2])
                return [ranged[2]]
        if upload_id is not None and call.completes_upload:
            done = threading.Event()
            with self._completed_lock:
                self._completing[upload_id] = done
            try:
                return self._stored(environ, start_response, call, pnum, capture, captured)
            finally:
                with self._completed_lock:
                    self._completing.pop(upload_id, None)
                done.set()
        return self._stored(environ, start_response, call, pnum, capture, captured)

    def _stored(  # type: ignore[no-untyped-def]
        self, environ: dict, start_response, call: S3Call, pnum: str, capture, captured: dict
    ) -> Iterable[bytes]:
        """moto's answer, translated back (and a completed upload remembered)."""
        upload_id = call.upload_id
        body = self.app(environ, capture)
        if call.operation == "download":
            start_response(captured["status"], captured["headers"])
            return body
        try:
            data = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        if (
            upload_id is not None
            and call.completes_upload
            and captured["status"].startswith("200")
            and b"<CompleteMultipartUploadResult" in data
        ):
            with self._completed_lock:
                self._completed.add(upload_id)
        if call.method == "HEAD":
            data = b""  # headers only, whatever moto answered: HEAD is allowed with any token
        data = self._translate(data, pnum, listing_all=not call.bucket)
        # A HEAD keeps moto's Content-Length (the object's size); others get the new body's.
        recount = call.method != "HEAD"
        headers = [
            (k, _unprefix_location(v, pnum) if k.lower() == "location" else v)
            for k, v in captured["headers"]
            if not (recount and k.lower() == "content-length")
        ]
        if recount:
            headers.append(("Content-Length", str(len(data))))
        start_response(captured["status"], headers)
        return [data]

    def _range(
        self, environ: dict, call: S3Call, pnum: str
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """A ranged GET answered from the stored bytes it asks for, or None to let moto answer.

        moto reads a whole object for every GET, ranged or not, so parallel
        downloads (which TSD's storage serves range by range) would cost the
        emulator the object once per range. Here moto answers a HEAD for the
        headers, and only the range is read.
        """
        match = _SIMPLE_RANGE.match(environ["HTTP_RANGE"])
        if match is None or call.params:
            return None
        head: dict = {}
        environ_head = {**environ, "REQUEST_METHOD": "HEAD"}
        environ_head.pop("HTTP_RANGE")
        self.app(environ_head, lambda status, headers, exc_info=None: head.update(
            status=status, headers=headers
        ))
        if not head.get("status", "").startswith("200"):
            return None
        try:
            found = self.backend.get_object(f"{pnum}-{call.bucket}", call.key)
            buffer, lock = found._value_buffer, found.lock
        except Exception:  # moto's own errors, or a moto whose keys look different
            return None
        size = found.size
        first = int(match["first"])
        last = min(int(match["last"]) if match["last"] else size - 1, size - 1)
        if first > last:
            return None  # moto says why (416)
        with lock:
            buffer.seek(first)
            data = buffer.read(last - first + 1)
        headers = [(k, v) for k, v in head["headers"] if k.lower() != "content-length"]
        headers += [
            ("Content-Range", f"bytes {first}-{last}/{size}"),
            ("Content-Length", str(len(data))),
        ]
        return "206 Partial Content", headers, data

    def _give_default_acl(self, pnum: str, bucket: str, key: str) -> None:
        """moto stores the object of a multipart upload begun without ``x-amz-acl``
        with no ACL at all, and then answers a GET of its ``?acl`` with a 500 (``info``,
        ``cp``, ``mv`` and ``sync`` between buckets ask for it). S3 gives every object
        the private ACL; so does the emulator, when it is first asked."""
        from moto.s3.models import get_canned_acl

        try:
            found = self.backend.get_object(f"{pnum}-{bucket}", key)
        except Exception:  # no such bucket: moto answers that itself
            return
        if found is not None and found.acl is None:
            found.set_acl(get_canned_acl("private"))

    @staticmethod
    def _translate(data: bytes, pnum: str, listing_all: bool) -> bytes:
        if not data.lstrip().startswith(b"<"):
            return data
        if listing_all:
            own = f"{pnum}-".encode()
            data = _LISTED_BUCKET.sub(
                lambda m: m.group(0) if m.group(1).startswith(own) else b"", data
            )
        prefix = re.escape(pnum.encode()) + b"-"
        data = re.sub(rb"(<(?:Name|Bucket|BucketName)>)" + prefix, rb"\1", data)
        return re.sub(rb"(<(?:Location|Resource)>(?:https?://[^/<]*)?/)" + prefix, rb"\1", data)


def _unprefix_location(value: str, pnum: str) -> str:
    return re.sub(rf"^((?:https?://[^/]*)?/){re.escape(pnum)}-", r"\1", value)


def chunks(stream, length: int, size: int = 1 << 20) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    """Read ``length`` bytes of a request body in pieces (to drain a refused upload)."""
    while length > 0:
        piece = stream.read(min(size, length))
        if not piece:
            return
        length -= len(piece)
        yield piece

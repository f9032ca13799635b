"""The gateway under load: nginx's 504 on a slow store, slow and failing completes, and
S3's NoSuchUpload for every request on an upload that has been completed."""

from __future__ import annotations

import hashlib
import os
import re
import time
from typing import Callable
from urllib.error import HTTPError

import pytest
import requests

from ..conftest import Emulator
from .test_auth_api import access_token
from .test_gateway import MiB, error_code, s3

NGINX_504 = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
NO_SUCH_UPLOAD = (
    "<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist. The upload "
    "ID may be invalid, or the upload may have been aborted or completed.</Message>"
    "<UploadId>{}</UploadId>"
)
INTERNAL_ERROR = re.compile(
    r'<\?xml version="1\.0" encoding="UTF-8"\?>\n<Error><Code>InternalError</Code>'
    r"<Message>We encountered an internal error\. Please try again\.</Message>"
    r"<RequestId>[^<]+</RequestId></Error>"
)
KEY = "/load/big.bin"
DEFAULTS = {"read_timeout": 0.0, "complete_delay": 0.0, "complete_errors": 0, "slow_down_above": 0}


class Upload:
    """A multipart upload of two 5 MiB parts (moto's smallest but last), not yet completed."""

    def __init__(self, emu: Emulator, token: str, key: str = KEY) -> None:
        self.emu, self.token, self.key = emu, token, key
        made = s3(emu, "PUT", "/" + key.split("/")[1], token=token)
        assert made.status_code == 200, made.text
        init = s3(emu, "POST", key, token=token, query=[("uploads", None)])
        assert init.status_code == 200, init.text
        self.id = re.search(r"<UploadId>([^<]+)</UploadId>", init.text).group(1)
        self.parts = [os.urandom(5 * MiB), os.urandom(5 * MiB)]
        self.etags = [self.put_part(number, part).headers["ETag"] for number, part in self.numbered]
        digests = b"".join(hashlib.md5(part).digest() for part in self.parts)
        self.etag = f'"{hashlib.md5(digests).hexdigest()}-{len(self.parts)}"'

    @property
    def numbered(self) -> list[tuple[int, bytes]]:
        return list(enumerate(self.parts, start=1))

    def put_part(self, number: int, data: bytes) -> requests.Response:
        query = [("partNumber", str(number)), ("uploadId", self.id)]
        return s3(self.emu, "PUT", self.key, token=self.token, query=query, body=data)

    def complete(self) -> requests.Response:
        body = "<CompleteMultipartUpload>{}</CompleteMultipartUpload>".format(
            "".join(
                f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
                for n, e in enumerate(self.etags, start=1)
            )
        )
        query = [("uploadId", self.id)]
        return s3(self.emu, "POST", self.key, token=self.token, query=query, body=body.encode())

    def list_parts(self) -> requests.Response:
        return s3(self.emu, "GET", self.key, token=self.token, query=[("uploadId", self.id)])

    def abort(self) -> requests.Response:
        return s3(self.emu, "DELETE", self.key, token=self.token, query=[("uploadId", self.id)])

    def stored(self) -> bytes | None:
        bucket, name = self.key.lstrip("/").split("/", 1)
        return self.emu.object(bucket, name)


def assert_no_such_upload(resp: requests.Response, upload_id: str) -> None:
    assert resp.status_code == 404, f"{resp.status_code}: {resp.text}"
    assert NO_SUCH_UPLOAD.format(upload_id) in resp.text, resp.text
    assert re.search(r"<RequestId>[^<]+</RequestId>.*</Error>$", resp.text), resp.text


def assert_completed(upload: Upload, resp: requests.Response) -> None:
    assert resp.status_code == 200, resp.text
    assert "<CompleteMultipartUploadResult" in resp.text and "<Error>" not in resp.text
    assert upload.etag in resp.text.replace("&quot;", '"'), resp.text
    assert upload.stored() == b"".join(upload.parts)


def wait_for(condition: Callable[[], object], timeout: float = 30) -> object:
    """Poll until ``condition()`` is true; its value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
    return value


def test_a_slow_complete_gets_nginx_504_and_completes_all_the_same(emulator: Emulator) -> None:
    token = access_token(emulator)
    upload = Upload(emulator, token)  # at full speed: only the complete is slow
    delay = 1.5
    changed = emulator.settings(read_timeout=0.2, complete_delay=delay)
    assert (changed["read_timeout"], changed["complete_delay"]) == (0.2, delay)

    timed_out = upload.complete()
    assert (timed_out.status_code, timed_out.reason) == (504, "Gateway Time-out")
    assert timed_out.headers["Content-Type"] == "text/html"
    assert timed_out.headers["Content-Length"] == str(len(NGINX_504))
    assert timed_out.content == NGINX_504
    emulator.settings(read_timeout=0, complete_delay=0)

    # The store completed the upload before it began to wait: a retry finds it done,
    # whether the store has answered yet or not.
    assert_no_such_upload(upload.complete(), upload.id)

    def the_504() -> dict | None:
        completes = [
            e for e in emulator.s3_log() if e["method"] == "POST" and "uploadId=" in e["query"]
        ]
        return completes[0] if "store_status" in completes[0] else None

    entry = wait_for(the_504)
    assert (entry["status"], entry["store_status"]) == (504, 200)
    assert entry["query"] == f"uploadId={upload.id}"
    assert wait_for(lambda: emulator.in_flight() == 0)
    assert upload.stored() == b"".join(upload.parts)
    head = s3(emulator, "HEAD", KEY, token=token)
    assert head.status_code == 200 and head.headers["ETag"] == upload.etag
    assert_no_such_upload(upload.complete(), upload.id)


def test_read_timeout_spares_fast_requests_and_the_upload_time(emulator: Emulator) -> None:
    """The gateway reads a body whole before the store's time starts, as nginx buffers it."""
    token = access_token(emulator)
    # 3 s: what a busy machine's moto takes for a small request stays well inside it
    # (0.5 s was once too little with six tests at once and another job on the cores).
    emulator.settings(read_timeout=3.0)
    assert s3(emulator, "PUT", "/fast", token=token).status_code == 200
    small = os.urandom(1000)
    put = s3(emulator, "PUT", "/fast/small.bin", token=token, body=small)
    assert put.status_code == 200, put.text
    assert emulator.object("fast", "small.bin") == small
    listing = s3(emulator, "GET", "/", token=token)
    assert listing.status_code == 200 and "<Name>fast</Name>" in listing.text

    # Four seconds on the wire, more than the read timeout: still no 504.
    emulator.settings(link_rate=64 * 1024)
    slow = os.urandom(256 * 1024)
    started = time.monotonic()
    put = s3(emulator, "PUT", "/fast/slow.bin", token=token, body=slow)
    assert time.monotonic() - started >= 3.5  # the link did slow it down
    assert put.status_code == 200, put.text
    assert emulator.object("fast", "slow.bin") == slow
    emulator.settings(link_rate=0)

    # A download's answer, streamed after the store has it ready.
    export = access_token(emulator, "s3export")
    got = s3(emulator, "GET", "/export-bucket/results.csv", token=export)
    assert got.status_code == 200 and got.content == b"id,value\n1,42\n"
    entries = emulator.s3_log()
    assert all(e["status"] == e["store_status"] == 200 for e in entries), entries


def test_every_request_on_a_completed_upload_gets_no_such_upload(emulator: Emulator) -> None:
    """moto alone would answer a second complete with the first one's result and an
    UploadPart with a 500; S3 answers them, ListParts and Abort, with NoSuchUpload."""
    token = access_token(emulator)
    upload = Upload(emulator, token)
    assert_completed(upload, upload.complete())
    assert_no_such_upload(upload.put_part(3, os.urandom(1000)), upload.id)
    assert_no_such_upload(upload.put_part(1, os.urandom(1000)), upload.id)
    assert_no_such_upload(upload.list_parts(), upload.id)
    assert_no_such_upload(upload.complete(), upload.id)
    assert_no_such_upload(upload.abort(), upload.id)
    assert_no_such_upload(upload.complete(), upload.id)
    assert upload.stored() == b"".join(upload.parts)  # none of them touched the object
    statuses = [e["status"] for e in emulator.s3_log() if e["path"] == KEY]
    assert statuses[-6:] == [404] * 6


def test_complete_errors_answer_200_with_an_error_and_leave_the_upload_open(
    emulator: Emulator,
) -> None:
    token = access_token(emulator)
    upload = Upload(emulator, token)
    assert emulator.settings(complete_errors=1)["complete_errors"] == 1

    failed = upload.complete()
    assert failed.status_code == 200
    assert failed.headers["Content-Type"] == "application/xml"
    assert INTERNAL_ERROR.fullmatch(failed.text), failed.text
    assert error_code(failed) == "InternalError"
    assert emulator.settings()["complete_errors"] == 0
    assert upload.stored() is None
    parts = upload.list_parts()
    assert parts.status_code == 200 and parts.text.count("<PartNumber>") == 2, parts.text

    assert_completed(upload, upload.complete())
    assert emulator.settings()["complete_errors"] == 0


def test_the_load_settings_are_off_by_default_and_checked(emulator: Emulator) -> None:
    def load_settings() -> dict:
        return {name: value for name, value in emulator.settings().items() if name in DEFAULTS}

    assert load_settings() == DEFAULTS
    bad_ones = (
        {"read_timeout": -1}, {"complete_delay": "2"}, {"complete_errors": True},
        {"slow_down_above": -3},
    )  # fmt: skip
    for bad in bad_ones:
        with pytest.raises(HTTPError) as refused:
            emulator.settings(**bad)
        assert refused.value.code == 400
    assert load_settings() == DEFAULTS


def test_the_options_set_the_settings(start_emulator: Callable[..., Emulator]) -> None:
    emu = start_emulator(
        "--read-timeout", "2.5", "--complete-delay", "0.75", "--complete-errors", "3",
        "--slow-down-above", "8",
    )  # fmt: skip
    settings = emu.settings()
    assert (settings["read_timeout"], settings["complete_delay"]) == (2.5, 0.75)
    assert settings["complete_errors"] == 3
    assert isinstance(settings["complete_errors"], int)
    assert settings["slow_down_above"] == 8 and isinstance(settings["slow_down_above"], int)


def test_a_request_over_the_gateways_limit_is_told_to_slow_down(emulator: Emulator) -> None:
    """Two uploads in flight (slowed by the link) and a limit of 2: a third request is
    answered S3's 503 SlowDown at once, and served once the two are done."""
    import threading

    token = access_token(emulator, "s3import")
    assert s3(emulator, "PUT", "/limit", token=token).status_code == 200
    emulator.settings(link_rate=100_000, slow_down_above=2)
    answers: list[int] = []

    def upload(name: str) -> None:
        put = s3(emulator, "PUT", f"/limit/{name}", token=token, body=os.urandom(250_000))
        answers.append(put.status_code)

    uploads = [threading.Thread(target=upload, args=(name,)) for name in ("a", "b")]
    for thread in uploads:
        thread.start()
    deadline = time.monotonic() + 30
    while emulator.in_flight() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    refused = s3(emulator, "GET", "/limit", token=token)
    for thread in uploads:
        thread.join(60)
    assert refused.status_code == 503 and error_code(refused) == "SlowDown", refused.text
    assert "Please reduce your request rate." in refused.text
    assert answers == [200, 200]
    listed = s3(emulator, "GET", "/limit", token=token)
    assert listed.status_code == 200 and listed.text.count("<Key>") == 2, listed.text
    statuses = [e["status"] for e in emulator.s3_log() if e["path"].startswith("/limit")]
    assert statuses.count(503) == 1, statuses

"""The emulator's S3 gateway: raw SigV4-signed requests and s3cmd itself.

The signing and s3cmd helpers at the top are shared with the other modules here.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable
from urllib.error import HTTPError
from urllib.parse import quote, urlsplit

import pytest
import requests

from ..conftest import BIN, Emulator
from .test_auth_api import (
    ALICE,
    ALICE_ARG,
    NOEXPORT,
    TIMEOUT,
    access_token,
    api_key,
    assert_refused,
    claims,
    login,
    request_token,
    verify,
)

MiB = 1024 * 1024
# Alice as a member of p12-export-group: these tests list p12's buckets.
ALICE_EXPORT_ARG = ("--user", f"{ALICE_ARG[1]}:export")
RESULTS = b"id,value\n1,42\n"
NOTES_KEY = "sub dir/r\u00e9sum\u00e9 notes.txt"


# --- Signing -------------------------------------------------------------------


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _q(text: str, safe: str = "-_.~") -> str:
    return quote(text, safe=safe)


def sigv4_headers(
    method: str,
    url: str,
    query: list[tuple[str, str | None]],
    body: bytes,
    access_key: str,
    secret_key: str,
    region: str = "us-east-1",
) -> dict[str, str]:
    """The Host, x-amz-* and Authorization headers of an AWS SigV4 request."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    parts = urlsplit(url)
    payload_hash = hashlib.sha256(body).hexdigest()
    headers = {"host": parts.netloc, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    canonical_query = "&".join(
        f"{_q(k)}={_q(v or '')}" for k, v in sorted(query, key=lambda kv: (kv[0], kv[1] or ""))
    )
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            parts.path or "/",
            canonical_query,
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            signed,
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return headers


def s3(
    emu: Emulator,
    method: str,
    path: str,
    *,
    token: str | None = None,
    project: str | None = "p11",
    keys: dict[str, str] | None = None,
    query: list[tuple[str, str | None]] | None = None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    host: str | None = None,
) -> requests.Response:
    """A signed S3 request; ``token``/``project`` become the TSD headers when given.

    ``path`` is unencoded ("/bucket/key with space"); ``query`` values of None
    are sent bare (``?uploads``). ``host``: a Host header other than the URL's.
    """
    keys = keys or emu.keys("p11")
    query = query or []
    url = emu.url + _q(path, safe="/-_.~")
    if query:
        url += "?" + "&".join(_q(k) if v is None else f"{_q(k)}={_q(v)}" for k, v in query)
    signed_url = url.replace(urlsplit(url).netloc, host, 1) if host else url
    all_headers = sigv4_headers(
        method, signed_url, query, body, keys["access_key"], keys["secret_key"]
    )
    if host:
        all_headers["Host"] = all_headers.pop("host")
    else:
        del all_headers["host"]  # requests sends the same one
    if token is not None:
        all_headers["token"] = token
    if project is not None:
        all_headers["x-project-select"] = project
    all_headers.update(headers or {})
    return requests.request(
        method, url, data=body, headers=all_headers, timeout=TIMEOUT, verify=verify(emu)
    )


def error_code(resp: requests.Response) -> str | None:
    match = re.search(r"<Code>([^<]+)</Code>", resp.text)
    return match.group(1) if match else None


def assert_s3_refused(resp: requests.Response, *codes: str) -> None:
    """A 403 with an S3 XML error body whose code is one of ``codes``."""
    assert resp.status_code == 403, f"{resp.status_code}: {resp.text}"
    assert "<Error>" in resp.text, resp.text
    assert error_code(resp) in codes, resp.text


def s3cmd(
    env: dict[str, str],
    cfg: Path,
    *args: str,
    token: str | None = None,
    project: str = "p11",
    timeout: float = 60,
) -> subprocess.CompletedProcess:
    """Stock s3cmd with ``-c cfg``; with ``token``, the two TSD headers via --add-header."""
    extra = [f"--add-header=token:{token}", f"--add-header=x-project-select:{project}"]
    cmd = [str(BIN / "s3cmd"), "-c", str(cfg), *(extra if token else []), *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL
    )


def last_s3(emu: Emulator) -> dict:
    """The last S3 log entry, with the trailing "/" s3cmd puts after bucket names dropped."""
    entry = dict(emu.s3_log()[-1])
    if entry["path"].count("/") == 2 and entry["path"].endswith("/"):
        entry["path"] = entry["path"][:-1]
    return entry


# --- Refusals --------------------------------------------------------------------


def test_request_without_headers_is_refused(emulator: Emulator) -> None:
    assert_s3_refused(s3(emulator, "GET", "/", project=None), "AccessDenied")
    entry = last_s3(emulator)
    assert entry["status"] == 403 and entry["token_type"] is None
    assert entry["method"] == "GET" and entry["path"] == "/"


def test_token_without_project_header_is_refused(emulator: Emulator) -> None:
    token = access_token(emulator)
    assert_s3_refused(s3(emulator, "GET", "/", token=token, project=None), "AccessDenied")


def test_garbage_token_is_refused(emulator: Emulator) -> None:
    assert_s3_refused(s3(emulator, "GET", "/", token="not.a.jwt"), "InvalidToken")


def test_expired_token_is_refused(start_emulator: Callable[..., Emulator]) -> None:
    # Tokens carry whole seconds and iat is rounded down: a "1 s" token may have
    # lived out its life before the first request reaches a busy emulator. 5 s
    # leaves it at least 4; then the test waits for the token's own exp.
    emu = start_emulator("--token-lifetime", "5")
    token = access_token(emu)
    assert s3(emu, "GET", "/", token=token).status_code == 200
    time.sleep(max(claims(token)["exp"] - time.time(), 0) + 0.2)
    assert_s3_refused(s3(emu, "GET", "/", token=token), "ExpiredToken")
    assert last_s3(emu)["token_type"] == "s3import"


def test_token_of_another_emulator_is_invalid(start_emulator: Callable[..., Emulator]) -> None:
    first, second = start_emulator(), start_emulator()
    foreign = access_token(second)
    assert_s3_refused(s3(first, "GET", "/", token=foreign), "InvalidToken")
    assert s3(first, "GET", "/", token=access_token(first)).status_code == 200


def test_other_projects_token_is_refused(start_emulator: Callable[..., Emulator]) -> None:
    emu = start_emulator(*ALICE_EXPORT_ARG)
    p12_token = access_token(emu, "s3import", "p12", ALICE)
    p11_keys, p12_keys = emu.keys("p11"), emu.keys("p12")
    assert p11_keys["access_key"] != p12_keys["access_key"]
    # p12's token presented to p11.
    assert_s3_refused(s3(emu, "GET", "/", token=p12_token, project="p11"), "AccessDenied")
    # p12's token and project header, but p11's keys.
    assert_s3_refused(
        s3(emu, "GET", "/", token=p12_token, project="p12", keys=p11_keys),
        "AccessDenied",
        "InvalidAccessKeyId",
    )
    # p11's token and project header, but p12's keys.
    p11_token = access_token(emu)
    assert_s3_refused(
        s3(emu, "GET", "/", token=p11_token, project="p11", keys=p12_keys),
        "AccessDenied",
        "InvalidAccessKeyId",
    )
    # Everything of p12's together is fine.
    assert s3(emu, "GET", "/", token=p12_token, project="p12", keys=p12_keys).status_code == 200


def test_unknown_access_key_is_refused(emulator: Emulator) -> None:
    keys = {"access_key": "AKIANOBODYATALL00000", "secret_key": "x" * 40}
    token = access_token(emulator)
    assert_s3_refused(s3(emulator, "GET", "/", token=token, keys=keys), "InvalidAccessKeyId")


def test_wrong_secret_key_is_refused(emulator: Emulator) -> None:
    keys = {**emulator.keys("p11"), "secret_key": "wrong-secret-key-0000000000000000000000"}
    token = access_token(emulator)
    assert_s3_refused(s3(emulator, "GET", "/", token=token, keys=keys), "SignatureDoesNotMatch")


def test_import_token_may_not_download(emulator: Emulator) -> None:
    token = access_token(emulator, "s3import")
    assert s3(emulator, "PUT", "/imp", token=token).status_code == 200
    assert s3(emulator, "PUT", "/imp/f.txt", token=token, body=b"data").status_code == 200
    assert_s3_refused(s3(emulator, "GET", "/imp/f.txt", token=token), "AccessDenied")
    assert_s3_refused(
        s3(emulator, "GET", "/export-bucket/results.csv", token=token), "AccessDenied"
    )
    # HEAD and listings are allowed with either type.
    assert s3(emulator, "HEAD", "/imp/f.txt", token=token).status_code == 200
    listing = s3(emulator, "GET", "/imp", token=token)
    assert listing.status_code == 200 and "f.txt" in listing.text


def test_import_token_may_not_write_into_export_bucket(emulator: Emulator) -> None:
    token = access_token(emulator, "s3import")
    resp = s3(emulator, "PUT", "/export-bucket/sneaky.txt", token=token, body=b"x")
    assert_s3_refused(resp, "AccessDenied")
    assert emulator.object("export-bucket", "sneaky.txt") is None
    assert_s3_refused(
        s3(emulator, "DELETE", "/export-bucket/results.csv", token=token), "AccessDenied"
    )
    assert emulator.object("export-bucket", "results.csv") == RESULTS


def test_export_token_may_not_write(emulator: Emulator) -> None:
    token = access_token(emulator, "s3export")
    assert_s3_refused(s3(emulator, "PUT", "/newbucket", token=token), "AccessDenied")
    resp = s3(emulator, "PUT", "/export-bucket/x.txt", token=token, body=b"x")
    assert_s3_refused(resp, "AccessDenied")
    assert emulator.object("export-bucket", "x.txt") is None
    assert_s3_refused(
        s3(emulator, "DELETE", "/export-bucket/results.csv", token=token), "AccessDenied"
    )
    entry = last_s3(emulator)
    assert entry["token_type"] == "s3export" and entry["status"] == 403


def test_export_token_downloads_from_export_bucket(emulator: Emulator) -> None:
    token = access_token(emulator, "s3export")
    resp = s3(emulator, "GET", "/export-bucket/results.csv", token=token)
    assert resp.status_code == 200, resp.text
    assert resp.content == RESULTS
    notes = s3(emulator, "GET", f"/export-bucket/{NOTES_KEY}", token=token)
    assert notes.status_code == 200, notes.text
    assert notes.content == b"export me\n"
    entry = last_s3(emulator)
    assert entry["path"] == f"/export-bucket/{NOTES_KEY}"  # percent-decoded
    assert (entry["token_type"], entry["project"], entry["status"]) == ("s3export", "p11", 200)
    listing = s3(emulator, "GET", "/export-bucket", token=token)
    assert listing.status_code == 200
    assert "<Key>results.csv</Key>" in listing.text
    assert NOTES_KEY in listing.text


def test_a_file_placed_from_inside_tsd_is_in_that_projects_bucket_only(
    start_emulator: Callable[..., Emulator],
) -> None:
    emu = start_emulator(*ALICE_ARG)
    emu.place("p12", "export-bucket", "sub/out.txt", b"p12's\n")
    assert emu.object("export-bucket", "sub/out.txt", "p12") == b"p12's\n"
    assert emu.object("export-bucket", "sub/out.txt", "p11") is None
    missing = requests.put(
        f"{emu.url}/_emulator/objects/no-such-bucket/x?project=p12", data=b"x", timeout=TIMEOUT
    )
    assert missing.status_code == 404 and "p12 has no bucket no-such-bucket" in missing.text


def test_export_token_may_not_download_elsewhere(emulator: Emulator) -> None:
    imp = access_token(emulator, "s3import")
    assert s3(emulator, "PUT", "/elsewhere", token=imp).status_code == 200
    assert s3(emulator, "PUT", "/elsewhere/f", token=imp, body=b"abc").status_code == 200
    exp = access_token(emulator, "s3export")
    assert_s3_refused(s3(emulator, "GET", "/elsewhere/f", token=exp), "AccessDenied")
    assert s3(emulator, "GET", "/elsewhere", token=exp).status_code == 200  # listing is fine


# --- Object bytes never reach an import token, however the request is dressed ----------

SECRET = b"object bytes that must stay inside TSD: " + os.urandom(16).hex().encode()

# A GET on an object with these parameters; None is a bare ?name. Each one that
# reads no metadata sub-resource makes moto hand out the object.
DRESSED_GETS: list[list[tuple[str, str | None]]] = [
    [],
    [("x", "1")],
    [("list-type", "2")],
    [("prefix", "")],
    [("delimiter", "/")],
    [("max-keys", "1")],
    [("encoding-type", "url")],
    [("versions", None)],
    [("location", None)],
    [("uploads", None)],
    [("uploadId", "")],
    [("uploadId", "no-such-upload"), ("partNumber", "1")],
    [("ACL", None)],
    [("acl", None), ("x", "1")],
    [("acl", None), ("tagging", None)],
    [("tagging", None), ("partNumber", "1")],
    [("torrent", None)],
    [("retention", None)],
    [("select", None), ("select-type", "2")],
    [("response-content-type", "text/plain")],
    [("response-content-disposition", "attachment")],
    [("partNumber", "1")],
    [("versionId", "null")],
]
# What moto answers with the object itself unless the gateway refuses.
SERVED_BY_MOTO = [
    q for q in DRESSED_GETS if not ({k for k, _ in q} & {"acl", "tagging", "uploadId"})
]


@pytest.fixture
def secret(emulator: Emulator) -> tuple[str, str]:
    """An import token and an unfinished multipart upload of imp/secret.txt (holding SECRET)."""
    token = access_token(emulator, "s3import")
    assert s3(emulator, "PUT", "/imp", token=token).status_code == 200
    for key in ("/imp/secret.txt", "/imp/p11-secret.txt"):
        assert s3(emulator, "PUT", key, token=token, body=SECRET).status_code == 200
    init = s3(emulator, "POST", "/imp/secret.txt", token=token, query=[("uploads", None)])
    upload_id = re.search(r"<UploadId>([^<]+)</UploadId>", init.text).group(1)
    return token, upload_id


@pytest.mark.parametrize("query", DRESSED_GETS, ids=lambda q: "&".join(k for k, _ in q) or "plain")
def test_import_token_gets_no_object_bytes_however_the_get_is_dressed(
    emulator: Emulator, secret: tuple[str, str], query: list[tuple[str, str | None]]
) -> None:
    token, _ = secret
    resp = s3(emulator, "GET", "/imp/secret.txt", token=token, query=query)
    assert SECRET not in resp.content
    if query in SERVED_BY_MOTO:
        assert_s3_refused(resp, "AccessDenied")
    export = access_token(emulator, "s3export")
    allowed = s3(emulator, "GET", "/export-bucket/results.csv", token=export, query=query)
    assert allowed.status_code != 403, allowed.text  # export rules: allowed on export-bucket
    if query in SERVED_BY_MOTO and ("partNumber", "1") not in query:
        assert allowed.content == RESULTS  # so the import token's refusal above is what counts


def test_import_token_reads_object_metadata(emulator: Emulator, secret: tuple[str, str]) -> None:
    """What s3cmd's info, setacl, gettagging and listmp GET on objects with an import token."""
    token, upload_id = secret
    for query in (
        [("acl", None)],
        [("tagging", None)],
        [("attributes", None)],
        [("uploadId", upload_id), ("max-parts", "1000"), ("part-number-marker", "0")],
    ):
        headers = {"x-amz-object-attributes": "ETag,ObjectSize"}
        resp = s3(emulator, "GET", "/imp/secret.txt", token=token, query=query, headers=headers)
        assert resp.status_code == 200, (query, resp.text)
        assert SECRET not in resp.content


def test_a_bucket_in_the_host_header_does_not_turn_a_listing_into_a_download(
    emulator: Emulator, secret: tuple[str, str]
) -> None:
    token, _ = secret
    port = urlsplit(emulator.url).port
    resp = s3(emulator, "GET", "/secret.txt", token=token, host=f"p11-imp.example.com:{port}")
    assert SECRET not in resp.content


def test_head_hands_out_headers_only(emulator: Emulator, secret: tuple[str, str]) -> None:
    """HEAD is allowed with an import token (s3cmd info, put, sync); its answer has no body."""
    token, _ = secret
    for query in ([], [("partNumber", "1")], [("x", "1")], [("response-content-type", "a/b")]):
        url = emulator.url + "/imp/secret.txt"
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query)
        keys = emulator.keys("p11")
        headers = sigv4_headers("HEAD", url, query, b"", keys["access_key"], keys["secret_key"])
        headers.update({"token": token, "x-project-select": "p11", "Connection": "close"})
        target = url.split(urlsplit(url).netloc, 1)[1]
        lines = [f"HEAD {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        parts = urlsplit(emulator.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as conn:
            conn.sendall("\r\n".join(lines).encode())
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith((b"HTTP/1.1 200", b"HTTP/1.1 206")), answer
        assert f"Content-Length: {len(SECRET)}".encode() in answer
        assert SECRET not in answer


def test_select_together_with_a_write_is_refused_with_either_token(
    emulator: Emulator, secret: tuple[str, str]
) -> None:
    """moto would start an upload into export-bucket for an export token's ?select&uploads."""
    token, _ = secret
    export = access_token(emulator, "s3export")
    for who, path in ((token, "/imp/secret.txt"), (export, "/export-bucket/results.csv")):
        resp = s3(emulator, "POST", path, token=who, query=[("select", None), ("uploads", None)])
        assert_s3_refused(resp, "AccessDenied")
    uploads = s3(emulator, "GET", "/export-bucket", token=export, query=[("uploads", None)])
    assert uploads.status_code == 200 and "<Upload>" not in uploads.text, uploads.text


def boto3_client(emu: Emulator, token: str) -> tuple[object, list[bytes]]:
    """A boto3 S3 client that adds the TSD headers, and the bodies of its answers."""
    import boto3
    from botocore.config import Config

    keys = emu.keys("p11")
    client = boto3.client(
        "s3",
        endpoint_url=emu.url,
        aws_access_key_id=keys["access_key"],
        aws_secret_access_key=keys["secret_key"],
        region_name="us-east-1",
        verify=verify(emu),
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    bodies: list[bytes] = []

    def tsd_headers(request, **_) -> None:  # type: ignore[no-untyped-def]
        request.headers["token"] = token
        request.headers["x-project-select"] = "p11"

    def keep_body(http_response, **_) -> None:  # type: ignore[no-untyped-def]
        bodies.append(http_response.content)

    client.meta.events.register("before-sign.s3.*", tsd_headers)
    client.meta.events.register("after-call.s3.*", keep_body)
    return client, bodies


def boto3_reads(upload_id: str) -> dict[str, tuple[str, dict]]:
    """Every way boto3 reads an object; name: (method, arguments besides Bucket and Key)."""
    select = {
        "Expression": "SELECT * FROM S3Object",
        "ExpressionType": "SQL",
        "InputSerialization": {"CSV": {"FileHeaderInfo": "NONE"}},
        "OutputSerialization": {"CSV": {}},
    }
    return {
        "get": ("get_object", {}),
        "get range": ("get_object", {"Range": "bytes=0-20"}),
        "get part": ("get_object", {"PartNumber": 1}),
        "get version": ("get_object", {"VersionId": "null"}),
        "get as": ("get_object", {"ResponseContentType": "text/plain", "ResponseExpires": "0"}),
        "torrent": ("get_object_torrent", {}),
        "retention": ("get_object_retention", {}),
        "select": ("select_object_content", select),
        "acl": ("get_object_acl", {}),
        "tagging": ("get_object_tagging", {}),
        "legal hold": ("get_object_legal_hold", {}),
        "attributes": ("get_object_attributes", {"ObjectAttributes": ["ETag", "ObjectSize"]}),
        "parts": ("list_parts", {"UploadId": upload_id}),
        "head": ("head_object", {}),
        "head part": ("head_object", {"PartNumber": 1}),
    }


DOWNLOADS = {"get", "get range", "get part", "get version", "get as", "torrent", "retention"}
DOWNLOADS |= {"select"}


def call_boto3(client, bodies: list[bytes], method: str, **kwargs) -> tuple[str | None, bytes]:  # type: ignore[no-untyped-def]
    """The error code (None on success) and the raw body of one boto3 call."""
    from botocore.exceptions import ClientError

    before = len(bodies)
    try:
        answer = getattr(client, method)(**kwargs)
        if "Payload" in answer:
            for _ in answer["Payload"]:
                pass
        code = None
    except ClientError as err:
        code = err.response["Error"]["Code"]
    assert len(bodies) == before + 1
    return code, bodies[-1]


def test_boto3_with_an_import_token_reads_metadata_but_never_contents(
    emulator: Emulator, secret: tuple[str, str]
) -> None:
    token, upload_id = secret
    client, bodies = boto3_client(emulator, token)
    for name, (method, kwargs) in boto3_reads(upload_id).items():
        code, body = call_boto3(client, bodies, method, Bucket="imp", Key="secret.txt", **kwargs)
        assert SECRET not in body, name
        assert SECRET[:20] not in body, name  # not even a range of it
        if name in DOWNLOADS:
            assert code == "AccessDenied", name
        elif name != "legal hold":  # moto has no object lock here; it says so, not 403
            assert code is None, (name, code)


def test_boto3_with_an_export_token_downloads_from_export_bucket(emulator: Emulator) -> None:
    client, bodies = boto3_client(emulator, access_token(emulator, "s3export"))
    reads = boto3_reads("no-such-upload")
    for name in sorted(DOWNLOADS):
        method, kwargs = reads[name]
        code, body = call_boto3(
            client, bodies, method, Bucket="export-bucket", Key="results.csv", **kwargs
        )
        # moto answers ?retention with the object, which boto3 then cannot parse (a 500).
        assert code is None or name == "retention", (name, code)
        assert (b"1,42" if name == "select" else RESULTS) in body, name


# --- Listing takes export rights (docs/tsd-api.md, "Emulator policy") ------------------

# Every token the auth API issues to a project member: (who, type). A member of
# p11-export-group gets both types; p11-noexport gets s3import only (checked below).
ISSUED = [("member", "s3import"), ("member", "s3export"), ("non-member", "s3import")]
CREDENTIALS = {"member": None, "non-member": NOEXPORT}  # None: the helpers' p11-demo
# Listing calls: boto3 method and arguments.
LISTINGS = {
    "ListObjects": ("list_objects", {"Bucket": "imp"}),
    "ListObjectsV2": ("list_objects_v2", {"Bucket": "imp"}),
    "ListObjectsV2 of export-bucket": ("list_objects_v2", {"Bucket": "export-bucket"}),
    "ListBuckets": ("list_buckets", {}),
    "ListObjectVersions": ("list_object_versions", {"Bucket": "imp"}),
}
# Bucket GETs moto answers with what is in a bucket or how it is kept, s3cmd's and
# unknown ones; each is a listing (None is a bare ?name).
LISTING_GETS: list[list[tuple[str, str | None]]] = [
    [("x-unknown", "1")],
    [("location", None)],
    [("acl", None)],
    [("policy", None)],
    [("uploads", None), ("list-type", "2")],  # not only multipart bookkeeping
]


@pytest.fixture(params=ISSUED, ids=lambda issued: "-".join(issued))
def issued(request: pytest.FixtureRequest, emulator: Emulator) -> tuple[str, str]:
    """(who, token) for each of ``ISSUED``; the non-member gets no s3export token at all."""
    who, kind = request.param
    if who == "non-member":
        key = api_key(emulator, creds=NOEXPORT)
        assert_refused(request_token(emulator, key, "s3export", creds=NOEXPORT), 403)
    return who, access_token(emulator, kind, creds=CREDENTIALS[who])


def test_listing_is_allowed_exactly_to_members_of_the_export_group(
    emulator: Emulator, secret: tuple[str, str], issued: tuple[str, str]
) -> None:
    who, token = issued
    client, bodies = boto3_client(emulator, token)
    for name, (method, kwargs) in LISTINGS.items():
        code, body = call_boto3(client, bodies, method, **kwargs)
        if who == "member":
            assert code is None, (name, code, body)
            assert re.search(rb"secret\.txt|results\.csv|<Name>imp</Name>", body), (name, body)
        else:
            assert code == "AccessDenied", (name, code)
            assert b"p11-export-group" in body and b"p11-noexport" in body, body
            assert b"secret.txt" not in body and b"results.csv" not in body, body
    for query in LISTING_GETS:
        resp = s3(emulator, "GET", "/imp", token=token, query=query)
        if who == "member":  # moto's answer (a bucket without a policy: 404)
            assert resp.status_code in (200, 404) and error_code(resp) != "AccessDenied", resp.text
        else:
            assert_s3_refused(resp, "AccessDenied")
            assert "listing" in resp.text and "p11-export-group" in resp.text, resp.text
    plain = s3(emulator, "GET", "/imp", token=token, query=[("x-unknown", "1")])
    assert ("secret.txt" in plain.text) is (who == "member"), plain.text
    refused = [e for e in emulator.s3_log() if e["status"] == 403]
    assert len(refused) == (0 if who == "member" else len(LISTINGS) + len(LISTING_GETS) + 1)


def test_multipart_bookkeeping_and_head_are_open_to_every_member(
    emulator: Emulator, secret: tuple[str, str], issued: tuple[str, str]
) -> None:
    """What a resumed upload (--upload-id) reads, and put's and sync's HEADs."""
    _, upload_id = secret
    _, token = issued
    client, bodies = boto3_client(emulator, token)
    calls = {
        "ListMultipartUploads": ("list_multipart_uploads", {"Bucket": "imp"}),
        "ListMultipartUploads with a prefix": (
            "list_multipart_uploads",
            {"Bucket": "imp", "Prefix": "secret", "MaxUploads": 10},
        ),
        "ListParts": ("list_parts", {"Bucket": "imp", "Key": "secret.txt", "UploadId": upload_id}),
        "HeadObject": ("head_object", {"Bucket": "imp", "Key": "secret.txt"}),
    }
    for name, (method, kwargs) in calls.items():
        code, body = call_boto3(client, bodies, method, **kwargs)
        assert code is None, (name, code, body)
        assert SECRET not in body, name
    uploads = s3(emulator, "GET", "/imp", token=token, query=[("uploads", None)])
    assert uploads.status_code == 200 and upload_id in uploads.text, uploads.text
    assert all(e["status"] == 200 for e in emulator.s3_log()[-len(calls) - 1 :])


def test_a_membership_granted_later_reaches_only_the_tokens_issued_after(
    emulator: Emulator, secret: tuple[str, str]
) -> None:
    before = access_token(emulator, "s3import", creds=NOEXPORT)
    assert emulator.export_group("p11-noexport") == {
        "user": "p11-noexport",
        "groups": ["p11-member-group", "p11-export-group"],
    }
    assert_s3_refused(s3(emulator, "GET", "/imp", token=before), "AccessDenied")
    for kind in ("s3import", "s3export"):
        after = access_token(emulator, kind, creds=NOEXPORT)
        listing = s3(emulator, "GET", "/imp", token=after)
        assert listing.status_code == 200 and "secret.txt" in listing.text, listing.text
    emulator.export_group("p11-noexport", member=False)
    again = access_token(emulator, "s3import", creds=NOEXPORT)
    assert_s3_refused(s3(emulator, "GET", "/imp", token=again), "AccessDenied")
    key = api_key(emulator, creds=NOEXPORT)
    assert_refused(request_token(emulator, key, "s3export", creds=NOEXPORT), 403)
    with pytest.raises(HTTPError) as nobody:
        emulator.export_group("p11-nobody")
    assert nobody.value.code == 404


# --- Passing through to moto -------------------------------------------------------


def test_import_put_is_stored_and_logged(emulator: Emulator) -> None:
    token = access_token(emulator)
    assert s3(emulator, "PUT", "/bkt", token=token).status_code == 200
    entry = last_s3(emulator)
    assert entry == {
        **entry,
        "kind": "s3",
        "method": "PUT",
        "path": "/bkt",
        "query": "",
        "status": 200,
        "token_type": "s3import",
        "project": "p11",
    }
    data = os.urandom(1000)
    assert s3(emulator, "PUT", "/bkt/dir/a b.bin", token=token, body=data).status_code == 200
    assert emulator.object("bkt", "dir/a b.bin") == data
    assert last_s3(emulator)["path"] == "/bkt/dir/a b.bin"


def test_multipart_upload_is_byte_identical(emulator: Emulator) -> None:
    token = access_token(emulator)
    assert s3(emulator, "PUT", "/mp", token=token).status_code == 200
    chunks = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1234)]
    key = "/mp/big file.bin"
    init = s3(emulator, "POST", key, token=token, query=[("uploads", None)])
    assert init.status_code == 200, init.text
    upload_id = re.search(r"<UploadId>([^<]+)</UploadId>", init.text).group(1)
    etags = []
    for number, chunk in enumerate(chunks, start=1):
        query = [("partNumber", str(number)), ("uploadId", upload_id)]
        part = s3(emulator, "PUT", key, token=token, query=query, body=chunk)
        assert part.status_code == 200, part.text
        etags.append(part.headers["ETag"])
    listing = s3(emulator, "GET", key, token=token, query=[("uploadId", upload_id)])
    assert listing.status_code == 200 and listing.text.count("<PartNumber>") == 3
    complete = "<CompleteMultipartUpload>{}</CompleteMultipartUpload>".format(
        "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
            for n, e in enumerate(etags, start=1)
        )
    )
    done = s3(
        emulator, "POST", key, token=token, query=[("uploadId", upload_id)], body=complete.encode()
    )
    assert done.status_code == 200, done.text
    assert "<Error>" not in done.text
    assert emulator.object("mp", "big file.bin") == b"".join(chunks)
    entries = [e for e in emulator.s3_log() if e["path"] == "/mp/big file.bin"]
    assert len(entries) == 6
    assert all(e["token_type"] == "s3import" and e["status"] == 200 for e in entries), entries
    assert sum("partNumber=" in e["query"] for e in entries) == 3


def test_projects_have_separate_buckets(start_emulator: Callable[..., Emulator]) -> None:
    emu = start_emulator(*ALICE_EXPORT_ARG)
    t11 = access_token(emu)
    t12 = access_token(emu, "s3import", "p12", ALICE)
    k12 = emu.keys("p12")
    assert s3(emu, "PUT", "/a", token=t11).status_code == 200
    assert s3(emu, "PUT", "/a", token=t12, project="p12", keys=k12).status_code == 200
    assert s3(emu, "PUT", "/a/only-p11.txt", token=t11, body=b"p11 data").status_code == 200
    p12_put = s3(emu, "PUT", "/a/only-p12.txt", token=t12, project="p12", keys=k12, body=b"p12")
    assert p12_put.status_code == 200
    p11_list = s3(emu, "GET", "/a", token=t11)
    p12_list = s3(emu, "GET", "/a", token=t12, project="p12", keys=k12)
    assert p11_list.status_code == p12_list.status_code == 200
    assert "only-p11.txt" in p11_list.text and "only-p12.txt" not in p11_list.text
    assert "only-p12.txt" in p12_list.text and "only-p11.txt" not in p12_list.text
    # p12 has an export-bucket of its own, without p11's --export-dir files.
    p12_export = s3(emu, "GET", "/export-bucket", token=t12, project="p12", keys=k12)
    assert "results.csv" not in p12_export.text
    # Inspection by project.
    base = f"{emu.url}/_emulator/objects/a"
    assert requests.get(f"{base}/only-p11.txt?project=p12", timeout=TIMEOUT).status_code == 404
    got = requests.get(f"{base}/only-p12.txt?project=p12", timeout=TIMEOUT)
    assert got.status_code == 200 and got.content == b"p12"
    assert emu.object("a", "only-p11.txt") == b"p11 data"
    assert s3(emu, "PUT", "/a", token=t11).status_code == 200  # still p11's own, still there
    projects = {e["project"] for e in emu.s3_log()}
    assert projects == {"p11", "p12"}


# --- s3cmd ---------------------------------------------------------------------------


@pytest.mark.s3cmd
def test_s3cmd_mb_and_put_with_headers(emulator: Emulator, clean_env: dict, tmp_path: Path) -> None:
    token = access_token(emulator)
    made = s3cmd(clean_env, emulator.s3cfg, "mb", "s3://withheaders", token=token)
    assert made.returncode == 0, made.stderr
    entry = last_s3(emulator)
    assert (entry["method"], entry["path"], entry["status"]) == ("PUT", "/withheaders", 200)
    assert entry["token_type"] == "s3import"
    src = tmp_path / "hello world.txt"
    src.write_bytes(b"hello TSD\n")
    put = s3cmd(clean_env, emulator.s3cfg, "put", str(src), "s3://withheaders/x/", token=token)
    assert put.returncode == 0, put.stderr
    assert emulator.object("withheaders", "x/hello world.txt") == b"hello TSD\n"


@pytest.mark.s3cmd
def test_s3cmd_mb_without_headers_is_refused(emulator: Emulator, clean_env: dict) -> None:
    made = s3cmd(clean_env, emulator.s3cfg, "mb", "s3://noheaders")
    assert made.returncode != 0
    entry = last_s3(emulator)
    assert (entry["method"], entry["path"], entry["status"]) == ("PUT", "/noheaders", 403)
    assert "AccessDenied" in made.stderr or "denied" in made.stderr.lower(), made.stderr


@pytest.mark.s3cmd
def test_no_token_check(start_emulator: Callable[..., Emulator], clean_env: dict) -> None:
    emu = start_emulator("--no-token-check")
    made = s3cmd(clean_env, emu.s3cfg, "mb", "s3://free")
    assert made.returncode == 0, made.stderr
    listed = s3cmd(clean_env, emu.s3cfg, "ls")
    assert listed.returncode == 0, listed.stderr
    assert "s3://free" in listed.stdout
    assert all(e["status"] == 200 for e in emu.s3_log())
    emu.process.send_signal(signal.SIGTERM)
    _, err = emu.process.communicate(timeout=10)
    assert "token" in err.decode().lower()
    assert re.search(r"warn", err.decode(), re.IGNORECASE), err


def test_token_check_is_on_by_default(emulator: Emulator) -> None:
    emulator.process.send_signal(signal.SIGTERM)
    _, err = emulator.process.communicate(timeout=10)
    assert "no-token-check" not in err.decode()


# --- Faults -----------------------------------------------------------------------------


def test_fail_next(emulator: Emulator) -> None:
    token = access_token(emulator)
    emulator.faults(fail_next=2, status=503)
    statuses = [s3(emulator, "GET", "/", token=token).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_drop_next(emulator: Emulator) -> None:
    token = access_token(emulator)
    emulator.faults(drop_next=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        s3(emulator, "GET", "/", token=token)
    assert s3(emulator, "GET", "/", token=token).status_code == 200


def test_faults_do_not_touch_the_auth_api(emulator: Emulator) -> None:
    emulator.faults(fail_next=1, status=500)
    token = access_token(emulator)  # the auth API is not an S3 request
    assert s3(emulator, "GET", "/", token=token).status_code == 500
    assert s3(emulator, "GET", "/", token=token).status_code == 200


def test_other_kinds_of_token_are_not_access_tokens(emulator: Emulator) -> None:
    tokens = login(emulator)
    for not_access in (tokens["refresh_token"], tokens["api_key"]):
        assert_s3_refused(s3(emulator, "GET", "/", token=not_access), "InvalidToken")

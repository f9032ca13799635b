"""Every s3cmd command a TSD user runs, through the real CLI, on cached logins only.

One emulator and one home serve the table: registered for p11, logged in once
for an s3import and once for an s3export token. Each case prepares what it
needs in its own buckets, runs one command, and checks that it exits 0, that
it did what it says (the stored objects, through the emulator's object hook,
or a listing), that every S3 request it sent carried the token type the table
says and none was refused, and that no one logged in again. The same command
line given to ``--print-token-for`` must print a token of that same type.

Then the commands that cannot work with TSD, and downloads from a bucket
other than export-bucket: one line saying why, before any login or request.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tsd_s3cmd.login import tokens

from .conftest import DEMO, Result, Tsd, member_home
from .test_errors import one_line

# Every test here runs s3cmd's code and covers what differs between its releases.
pytestmark = [pytest.mark.s3cmd, pytest.mark.versions]

IMPORT, EXPORT = "s3import", "s3export"
MiB = 1024 * 1024
EXPORTED = {"results.csv": b"id,value\n1,42\n", "sub dir/notes.txt": b"export me\n"}
FOLDER = "/tsd/p11/data/durable/s3-api/export-bucket"


@dataclass
class Work:
    """One case's bucket names and working directory, and the emulator behind them."""

    tsd: Tsd
    dir: Path
    bucket: str
    found: dict[str, str] = field(default_factory=dict)  # more placeholders, from setup

    def file(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def upload(self, key: str, data: bytes, bucket: str | None = None) -> None:
        """An object in place before the command runs, put there with tsd-s3cmd."""
        local = self.file(f"setup/{key}", data)
        self.tsd.ok(
            "--multipart-chunk-size-mb=5", "put", str(local), f"s3://{bucket or self.bucket}/{key}"
        )

    def object(self, key: str, bucket: str | None = None) -> bytes | None:
        return self.tsd.emulator.object(bucket or self.bucket, key)

    def listing(self, *args: str) -> str:
        return self.tsd.ok("ls", *args).stdout


def make_bucket(w: Work, *suffixes: str) -> None:
    for suffix in ("", *suffixes):
        w.tsd.ok("mb", f"s3://{w.bucket}{suffix}")


def with_object(key: str = "f.txt", data: bytes = b"an object\n") -> Callable[[Work], None]:
    def setup(w: Work) -> None:
        make_bucket(w)
        w.upload(key, data)

    return setup


def unfinished_upload(w: Work) -> None:
    """A multipart upload begun and left open with one part stored, as after a killed put.

    boto3 (which moto brings) starts it, signed with the project's S3 key and
    carrying the cached import token, the way tsd-s3cmd would send it.
    """
    import boto3
    from botocore.config import Config

    make_bucket(w)
    token = w.tsd.ok("--print-token-for", "s3import").stdout.strip()
    keys = w.tsd.emulator.keys("p11")
    s3 = boto3.client(
        "s3",
        endpoint_url=w.tsd.emulator.url,
        aws_access_key_id=keys["access_key"],
        aws_secret_access_key=keys["secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )

    def add_tsd_headers(request, **_: object) -> None:  # type: ignore[no-untyped-def]
        request.headers["token"] = token
        request.headers["x-project-select"] = "p11"

    s3.meta.events.register("before-sign.s3.*", add_tsd_headers)
    upload = s3.create_multipart_upload(Bucket=w.bucket, Key="half.bin")["UploadId"]
    s3.upload_part(
        Bucket=w.bucket, Key="half.bin", UploadId=upload, PartNumber=1, Body=b"p" * (5 * MiB)
    )
    w.found["id"] = upload


def check_objects(expected: dict[str, bytes | None], bucket_suffix: str = "") -> Callable:
    def check(w: Work, result: Result) -> None:
        for key, data in expected.items():
            assert w.object(key, w.bucket + bucket_suffix) == data, key

    return check


def check_files(expected: dict[str, bytes]) -> Callable:
    def check(w: Work, result: Result) -> None:
        for name, data in expected.items():
            assert (w.dir / name).read_bytes() == data, name

    return check


def check_out(*needles: str) -> Callable:
    def check(w: Work, result: Result) -> None:
        for needle in needles:
            assert needle.format(b=w.bucket, **w.found) in result.stdout, (needle, result.stdout)

    return check


def check_bucket(exists: bool) -> Callable:
    def check(w: Work, result: Result) -> None:
        listing = w.listing()
        listed = any(line.endswith(f" s3://{w.bucket}") for line in listing.splitlines())
        assert listed == exists, listing

    return check


def check_aborted(w: Work, result: Result) -> None:
    assert w.found["id"] not in w.tsd.ok("multipart", f"s3://{w.bucket}").stdout


BIG = os.urandom(6 * MiB + 5)
LOCAL = {"local/a.txt": b"a\n", "local/deeper/b \u00e6.txt": b"b" * 1000, "local/c.bin": BIG}


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]  # {b}: the case's bucket; other names: what setup found
    token: str  # the token type every request must carry
    check: Callable[[Work, Result], None]
    setup: Callable[[Work], object] = lambda w: None
    stdin: str = ""


CASES = [
    Case("mb", ("mb", "s3://{b}"), IMPORT, check_bucket(exists=True)),
    Case("put", ("put", "local/a.txt", "s3://{b}/"), IMPORT,
         check_objects({"a.txt": b"a\n"}),
         lambda w: (make_bucket(w), w.file("local/a.txt", b"a\n"))),
    Case("put-multipart", ("--multipart-chunk-size-mb=5", "put", "local/c.bin", "s3://{b}/big"),
         IMPORT, check_objects({"big": BIG}),
         lambda w: (make_bucket(w), w.file("local/c.bin", BIG))),
    Case("put-stdin", ("put", "-", "s3://{b}/from stdin.txt"), IMPORT,
         check_objects({"from stdin.txt": b"piped in\n" * 1000}), make_bucket,
         stdin="piped in\n" * 1000),
    Case("ls-buckets", ("ls",), EXPORT, check_out("s3://export-bucket", "s3://{b}"), make_bucket),
    Case("ls", ("ls", "s3://{b}"), EXPORT, check_out("s3://{b}/f.txt"), with_object()),
    Case("ls-recursive", ("ls", "-r", "s3://export-bucket"), EXPORT,
         check_out("s3://export-bucket/results.csv", "s3://export-bucket/sub dir/notes.txt")),
    Case("la", ("la",), EXPORT,
         check_out("s3://{b}/f.txt", "s3://export-bucket/results.csv"), with_object()),
    Case("du", ("du", "s3://{b}"), EXPORT, check_out("1234 ", "1 objects"),
         with_object(data=b"d" * 1234)),
    Case("info-object", ("info", "s3://{b}/f.txt"), EXPORT, check_out("File size: 10"),
         with_object()),
    Case("info-multipart-object", ("info", "s3://{b}/big"), EXPORT,
         check_out(f"File size: {len(BIG)}"), with_object("big", BIG)),
    Case("info-bucket", ("info", "s3://{b}"), EXPORT, check_out("s3://{b}/ (bucket)"),
         make_bucket),
    Case("info-export", ("info", "s3://export-bucket/results.csv"), EXPORT,
         check_out("File size: 14")),
    Case("get", ("get", "s3://export-bucket/results.csv", "out.csv"), EXPORT,
         check_files({"out.csv": EXPORTED["results.csv"]})),
    Case("get-several", ("get", "s3://export-bucket/results.csv",
                         "s3://export-bucket/sub dir/notes.txt", "./"), EXPORT,
         check_files({"results.csv": EXPORTED["results.csv"], "notes.txt": b"export me\n"})),
    Case("get-recursive", ("get", "-r", "s3://export-bucket/sub dir/", "down/"), EXPORT,
         check_files({"down/notes.txt": b"export me\n"}), lambda w: (w.dir / "down").mkdir()),
    Case("sync-up", ("--multipart-chunk-size-mb=5", "sync", "local/", "s3://{b}/up/"), IMPORT,
         check_objects({f"up/{k[6:]}": v for k, v in LOCAL.items()}),
         lambda w: (make_bucket(w), [w.file(k, v) for k, v in LOCAL.items()])),
    Case("sync-down", ("sync", "s3://export-bucket/", "down/"), EXPORT,
         check_files({f"down/{k}": v for k, v in EXPORTED.items()})),
    Case("sync-between-buckets", ("sync", "s3://{b}/", "s3://{b}-copy/"), IMPORT,
         check_objects({"f.txt": b"an object\n", "big": BIG}, "-copy"),
         lambda w: (make_bucket(w, "-copy"), w.upload("f.txt", b"an object\n"),
                    w.upload("big", BIG))),
    Case("cp", ("cp", "s3://{b}/f.txt", "s3://{b}/g.txt"), IMPORT,
         check_objects({"f.txt": b"an object\n", "g.txt": b"an object\n"}), with_object()),
    Case("cp-multipart-object", ("cp", "s3://{b}/big", "s3://{b}/big2"), IMPORT,
         check_objects({"big2": BIG}), with_object("big", BIG)),
    Case("cp-from-export", ("cp", "s3://export-bucket/results.csv", "s3://{b}/r.csv"), IMPORT,
         check_objects({"r.csv": EXPORTED["results.csv"]}), make_bucket),
    Case("mv", ("mv", "s3://{b}/f.txt", "s3://{b}/moved.txt"), IMPORT,
         check_objects({"f.txt": None, "moved.txt": b"an object\n"}), with_object()),
    Case("del", ("del", "s3://{b}/f.txt"), IMPORT, check_objects({"f.txt": None}), with_object()),
    Case("rm", ("rm", "s3://{b}/f.txt"), IMPORT, check_objects({"f.txt": None}), with_object()),
    Case("rm-recursive", ("rm", "-r", "--force", "s3://{b}/"), IMPORT,
         check_objects({"f.txt": None, "big": None}),
         lambda w: (with_object()(w), w.upload("big", BIG))),
    Case("rb", ("rb", "s3://{b}"), IMPORT, check_bucket(exists=False), make_bucket),
    Case("multipart", ("multipart", "s3://{b}"), IMPORT, check_out("{id}"), unfinished_upload),
    Case("listmp", ("listmp", "s3://{b}/half.bin", "{id}"), IMPORT, check_out(str(5 * MiB)),
         unfinished_upload),
    Case("abortmp", ("abortmp", "s3://{b}/half.bin", "{id}"), IMPORT, check_aborted,
         unfinished_upload),
]  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tsd]:
    """A home registered for p11 with both tokens cached, and its emulator."""
    with member_home(tmp_path_factory.mktemp("commands"), EXPORTED) as tsd:
        yield tsd


def auth_requests(tsd: Tsd) -> int:
    return sum(1 for e in tsd.emulator.log() if e["kind"] == "auth")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_command(case: Case, home: Tsd, tmp_path: Path) -> None:
    work = Work(tsd=home, dir=tmp_path, bucket=f"c-{case.id}")
    case.setup(work)
    args = [a.format(b=work.bucket, **work.found) for a in case.args]
    logins = auth_requests(home)
    since = len(home.emulator.s3_log())

    result = home.ok(*args, input=case.stdin, cwd=tmp_path)

    sent = home.emulator.s3_log()[since:]
    assert sent, "the command sent no request"
    assert all(e["token_type"] == case.token for e in sent), sent
    assert all(e["status"] != 403 and e["status"] < 500 for e in sent), sent
    assert "ERROR" not in result.stderr, result.stderr
    case.check(work, result)

    printed = home.ok("--print-token-for", *args, cwd=tmp_path).stdout.strip()
    assert tokens.claims(printed)["name"] == case.token
    assert auth_requests(home) == logins, "a command logged in again"


def test_sign_needs_no_token_and_sends_nothing(home: Tsd) -> None:
    since, logins = len(home.emulator.s3_log()), auth_requests(home)
    result = home.ok("sign", "a string")
    assert result.stdout.startswith("Signature: ")
    assert len(home.emulator.s3_log()) == since and auth_requests(home) == logins
    one_line(home.run("--print-token-for", "sign", "a string"), 64, "sends no request to TSD")


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("signurl", "s3://export-bucket/results.csv", "+3600"), "cannot carry TSD's token"),
        (("cflist",), "CloudFront is an Amazon service"),
        (("cfinval", "s3://export-bucket/results.csv"), "CloudFront"),
        (("--print-token-for", "signurl", "s3://export-bucket/results.csv", "+60"), "signed URL"),
    ],
)
def test_commands_that_cannot_work_with_tsd(home: Tsd, args: tuple[str, ...], why: str) -> None:
    since, logins = len(home.emulator.log()), auth_requests(home)
    result = home.run(*args)
    one_line(result, 64, "cannot work with TSD", why)
    assert not result.stdout
    assert len(home.emulator.log()) == since and auth_requests(home) == logins


DOWNLOADS_ELSEWHERE = [
    (("get", "s3://mybucket/file"), "'mybucket'"),
    (("sync", "s3://mybucket/", "dir/"), "'mybucket'"),
    (("get", "s3://export-bucket/results.csv", "s3://other/x", "s3://third/y", "./"),
     "not 'other', 'third'"),
    (("get", "s3://Export-Bucket/results.csv"), "case-sensitive"),
    (("--print-token-for", "get", "s3://other/x"), "'other'"),
    (("--print-token-for", "sync", "s3://other/", "here/"), "'other'"),
]  # fmt: skip


def test_downloads_only_from_export_bucket_said_before_any_login(make_tsd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tsd = make_tsd()
    tsd.register()
    tsd.ok("mb", "s3://mybucket", input=DEMO)  # an import token only: a get would log in
    work = tmp_path / "work"
    work.mkdir()
    since = len(tsd.emulator.log())
    for args, needle in DOWNLOADS_ELSEWHERE:
        result = tsd.run(*args, input=DEMO, cwd=work)
        one_line(result, 77, "only through export-bucket", needle, FOLDER)
        assert not result.stdout
    assert tsd.emulator.log()[since:] == []  # no login, no S3 request
    assert not list(work.iterdir())  # nothing downloaded, not even a part

    # With a token handed in, and with no registration at all (the folder says pNN).
    token = tsd.ok("--print-token-for", "put").stdout.strip()
    given = tsd.run("get", "s3://mybucket/file", extra_env={"TSD_S3CMD_TOKEN": token})
    one_line(given, 77, "only through export-bucket", FOLDER)
    (tsd.config_dir / "credentials.json").unlink()
    unregistered = tsd.run("sync", "s3://mybucket/", "dir/")
    one_line(unregistered, 77, "/tsd/pNN/data/durable/s3-api/export-bucket")
    assert tsd.emulator.s3_log()[-1]["method"] == "PUT"  # the mb: nothing since

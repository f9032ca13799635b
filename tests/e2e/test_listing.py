"""Listing takes export rights: a non-member is stopped first, members list as before.

TSD lets only members of pNN-export-group list ("listing files is equivalent
to exporting data"), and the emulator refuses every other user's listing. A
command that must list, run by a user whom a token shows outside the group,
stops with one line before any S3 request: what lists, the group, what to do.

The table at the end runs s3cmd's command lines as a member and compares, line
by line, what token_choice.listing says with what the emulator's request log
shows (a GET on a bucket or on all buckets, as the gateway reads it); each
line that lists is then stopped for a non-member, with nothing sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from tsd_s3cmd.bridge import shim
from tsd_s3cmd.emulator.gateway import S3Call
from tsd_s3cmd.login import token_choice

from ..conftest import private_env
from .conftest import DEMO, NOEXPORT, Result, Tsd, member_home
from .test_errors import one_line

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code

LOCAL = {"dir/a.txt": b"a\n", "dir/sub/b \u00e6.txt": b"b" * 100, "f.txt": b"f\n"}


def local_files(root: Path) -> None:
    for name, data in LOCAL.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def listings(entries: list[dict]) -> list[dict]:
    """The requests the gateway takes for listings."""
    found = []
    for entry in entries:
        bucket, _, key = entry["path"].lstrip("/").partition("/")
        params = dict(parse_qsl(entry["query"], keep_blank_values=True))
        if S3Call(entry["method"], entry["path"], bucket, key, params).operation == "list":
            found.append(entry)
    return found


def stopped(result: Result, *needles: str) -> str:
    """The one line that stops a command that lists, for a user outside p11-export-group."""
    return one_line(
        result,
        77,
        "TSD lets only members of p11-export-group list",
        "p11-noexport is not one",
        "ask p11's administrator for export rights",
        "'tsd-s3cmd --logout' so that the next login picks them up",
        *needles,
    )


def test_a_non_member_is_stopped_before_any_request_and_a_member_lists(
    tsd: Tsd, tmp_path: Path
) -> None:
    local_files(tmp_path)
    tsd.register(NOEXPORT)
    tsd.ok("mb", "s3://mine", input=NOEXPORT)
    tsd.ok("put", "f.txt", "s3://mine/", cwd=tmp_path)
    since, logins = len(tsd.emulator.log()), len(tsd.auth_calls())

    stopped(tsd.run("ls"), "'ls' lists buckets and objects", "your s3import token")
    stopped(tsd.run("ls", "s3://mine"), "'ls' lists")
    stopped(tsd.run("du"), "'du' lists")
    stopped(
        tsd.run("sync", "dir", "s3://mine/up/", cwd=tmp_path),
        "'sync' lists what is in the bucket first",
        "'put --recursive' with the same arguments stores the same files",
    )
    assert tsd.emulator.log()[since:] == []  # no S3 request, no login
    assert len(tsd.auth_calls()) == logins

    # What the line proposes instead: put --recursive with the same arguments.
    tsd.ok("put", "--recursive", "dir", "s3://mine/up/", cwd=tmp_path)
    assert all(e["status"] == 200 for e in tsd.emulator.s3_log()[-2:])

    # A member lists with either token, and sync up lists with s3import.
    tsd.ok("--logout")
    tsd.register(DEMO)
    tsd.ok("sync", "dir", "s3://mine/synced/", input=DEMO, cwd=tmp_path)
    sync_lists = listings(tsd.emulator.s3_log())
    assert [(e["token_type"], e["status"]) for e in sync_lists] == [("s3import", 200)]
    listed = tsd.ok("ls", "-r", "s3://mine", input=DEMO).stdout
    keys = sorted(line.split("s3://mine/", 1)[1] for line in listed.splitlines())
    put = [k[len("up/") :] for k in keys if k.startswith("up/")]
    synced = [k[len("synced/") :] for k in keys if k.startswith("synced/")]
    assert put == synced == ["dir/a.txt", "dir/sub/b \u00e6.txt"], keys
    for key in put:
        assert tsd.emulator.object("mine", f"up/{key}") == LOCAL[key]
    assert [e["token_type"] for e in listings(tsd.emulator.s3_log())[-1:]] == ["s3export"]


def test_with_no_token_held_the_login_decides(tsd: Tsd, tmp_path: Path) -> None:
    local_files(tmp_path)
    tsd.register(NOEXPORT)
    stopped(tsd.run("sync", "dir", "s3://mine/", input=NOEXPORT, cwd=tmp_path), "'sync'")
    assert [e["token_type"] for e in tsd.auth_calls()] == ["s3import"]  # the login it took
    tsd.ok("--logout")
    refused = tsd.run("ls", input=NOEXPORT)  # an s3export token: TSD's answer is no
    one_line(refused, 77, "may not export data from p11", "p11-export-group")
    assert [e["token_type"] for e in tsd.auth_calls()] == ["s3import", "s3export"]
    assert tsd.emulator.s3_log() == []


def test_a_membership_granted_later_is_picked_up_after_logout(tsd: Tsd, tmp_path: Path) -> None:
    local_files(tmp_path)
    tsd.register(NOEXPORT)
    tsd.ok("mb", "s3://mine", input=NOEXPORT)
    stopped(tsd.run("ls", "s3://mine"))
    tsd.emulator.export_group("p11-noexport")  # the administrator adds the user
    stopped(tsd.run("ls", "s3://mine"))  # the cached token still says what it said
    assert listings(tsd.emulator.s3_log()) == []
    tsd.ok("--logout")
    tsd.ok("sync", "dir", "s3://mine/up/", input=NOEXPORT, cwd=tmp_path)
    listed = tsd.ok("ls", "-r", "s3://mine", input=NOEXPORT).stdout
    assert "s3://mine/up/dir/a.txt" in listed, listed
    assert all(e["status"] == 200 for e in listings(tsd.emulator.s3_log()))


def test_a_token_handed_in_and_print_token_for_get_the_same_check(
    tsd: Tsd, tmp_path: Path
) -> None:
    local_files(tmp_path)
    tsd.register(NOEXPORT)
    token = tsd.ok("--print-token-for", "put", input=NOEXPORT).stdout.strip()
    since = len(tsd.emulator.log())
    given = tsd.run("sync", "dir", "s3://mine/", extra_env={"TSD_S3CMD_TOKEN": token}, cwd=tmp_path)
    one_line(given, 77, "'sync' lists", "as TSD_S3CMD_TOKEN shows", "get a new token")
    # --print-token-for a command that would be stopped is stopped alike: no token printed.
    printed = tsd.run("--print-token-for", "du", "s3://mine")
    stopped(printed, "'du' lists")
    assert printed.stdout == ""
    assert tsd.emulator.log()[since:] == []
    assert tsd.ok("--print-token-for", "put", "f.txt", "s3://mine/", cwd=tmp_path).stdout


# -- every command line, by the request log --------------------------------------------


@dataclass(frozen=True)
class Line:
    args: str  # {b}: the line's own bucket, holding OBJECTS (empty: nothing in it)
    stdin: str = ""
    empty: bool = False


OBJECTS = {"f.txt": b"f\n", "g.txt": b"g\n", "dir/a.txt": b"a\n", "dir/sub/b.txt": b"b\n"}
CONFIGURE = "\n" * 16 + "n\nn\n"  # every default, test the keys, save nothing, no retry
LINES = [
    Line("ls"), Line("ls s3://{b}"), Line("ls s3://{b}/f.txt"), Line("la"), Line("du"),
    Line("du s3://{b}"), Line("sync dir s3://{b}/up/"), Line("sync dir/ s3://{b}/up/"),
    Line("sync --dry-run dir s3://{b}/up/"), Line("sync s3://export-bucket/ down/"),
    Line("sync s3://{b}/dir/ s3://{b}/copy/"), Line("info s3://{b}"), Line("info s3://{b}/f.txt"),
    Line("fixbucket s3://{b}"), Line("ws-info s3://{b}"), Line("getlifecycle s3://{b}"),
    Line("getnotification s3://{b}"), Line("--configure", CONFIGURE),
    Line("get s3://export-bucket/results.csv out.csv"),
    Line("get --skip-existing s3://export-bucket/results.csv f.txt"),
    Line("get -r s3://export-bucket/ down/"), Line("get s3://export-bucket/*.csv down/"),
    Line("get s3://export-bucket/result?.csv down/"), Line("get s3://export-bucket/results.csv -"),
    Line("put f.txt s3://{b}/"), Line("put -r dir s3://{b}/put/"),
    Line("put --skip-existing -r dir s3://{b}/"), Line("put --continue-put f.txt s3://{b}/f.txt"),
    Line("put - s3://{b}/stdin.txt", "piped\n"), Line("del s3://{b}/f.txt"),
    Line("rm s3://{b}/g.txt"), Line("del s3://{b}/*.txt"), Line("del -r --force s3://{b}/dir/"),
    Line("restore s3://{b}/f.txt"), Line("restore -r s3://{b}/dir/"),
    Line("cp s3://{b}/f.txt s3://{b}/copy.txt"), Line("cp -r s3://{b}/dir/ s3://{b}/copy/"),
    Line("cp s3://{b}/*.txt s3://{b}/copy/"), Line("mv s3://{b}/f.txt s3://{b}/moved.txt"),
    Line("mv -r s3://{b}/dir/ s3://{b}/moved/"), Line("modify s3://{b}/f.txt"),
    Line("modify -r s3://{b}/dir/"), Line("setacl --acl-private s3://{b}/f.txt"),
    Line("setacl --acl-private s3://{b}"), Line("setacl --acl-private -r s3://{b}/dir/"),
    Line("setacl --acl-private s3://{b}/*.txt"), Line("gettagging s3://{b}"),
    Line("gettagging s3://{b}/f.txt"), Line("settagging s3://{b} a=b"),
    Line("accesslog s3://{b}"), Line("accesslog --no-access-logging s3://{b}"),
    Line("setversioning s3://{b} enable"), Line("payer s3://{b}"),
    Line("expire --expiry-days=3 s3://{b}"), Line("dellifecycle s3://{b}"),
    Line("ws-create s3://{b}"), Line("ws-delete s3://{b}"), Line("delpolicy s3://{b}"),
    Line("delcors s3://{b}"), Line("multipart s3://{b}"), Line("rb s3://{b}", empty=True),
    Line("rb -r s3://{b}"), Line("mb s3://{b}-new"),
]  # fmt: skip


@dataclass
class Homes:
    member: Tsd
    outsider: Tsd  # p11-noexport, holding an s3import token


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homes]:
    """A member's and a non-member's home on one emulator, each line's bucket made."""
    exported = {"results.csv": b"id,value\n1,42\n"}
    with member_home(tmp_path_factory.mktemp("listing"), exported) as member:
        emulator = member.emulator
        member.ok("mb", *(f"s3://l-{i}" for i in range(len(LINES))))
        for i, line in enumerate(LINES):
            for key, data in {} if line.empty else OBJECTS.items():
                emulator.place("p11", f"l-{i}", key, data)
        other_env = private_env(tmp_path_factory.mktemp("outsider"))
        other_home = Path(other_env["HOME"])
        emulator.s3cfg_for("p11", other_home / ".s3cfg")
        outsider = Tsd(
            env={**other_env, "TSD_API_URL": emulator.url}, home=other_home, emulator=emulator
        )
        outsider.register(NOEXPORT)
        outsider.ok("--print-token-for", "put", input=NOEXPORT)
        yield Homes(member, outsider)


@pytest.mark.parametrize("index", range(len(LINES)), ids=[line.args for line in LINES])
def test_listing_is_said_exactly_for_the_lines_that_list(
    homes: Homes, index: int, tmp_path: Path, code_cache: Path
) -> None:
    line = LINES[index]
    commands, _ = shim.vocabulary(code_cache)
    args = line.args.format(b=f"l-{index}").split()
    command = next(a for a in args if not a.startswith("-") or a == "--configure")
    if command != "--configure" and command not in commands:
        pytest.skip(f"s3cmd {shim.version()} has no {command}")
    parsed = shim.parse(args, cache_dir=code_cache)
    assert parsed is not None
    said = token_choice.listing(parsed[1], parsed[0])
    local_files(tmp_path)
    (tmp_path / "down").mkdir()
    log = homes.member.emulator.s3_log

    since = len(log())
    homes.member.run(*args, input=line.stdin, cwd=tmp_path)
    listed = listings(log()[since:])
    assert bool(listed) == (said is not None), (said, listed)
    assert all(e["status"] != 403 for e in listed), listed  # a member lists

    if said is not None:
        everything = len(homes.member.emulator.log())
        result = homes.outsider.run(*args, input=line.stdin, cwd=tmp_path)
        stopped(result, said.what, "your s3import token")
        assert len(homes.member.emulator.log()) == everything  # no request, no login

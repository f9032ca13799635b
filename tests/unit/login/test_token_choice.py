"""The token type follows what a command does, not the letters in its arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsd_s3cmd.bridge import shim
from tsd_s3cmd.errors import AuthError, UsageError
from tsd_s3cmd.login.token_choice import (
    LISTING_COMMANDS,
    READ_COMMANDS,
    UNUSABLE_COMMANDS,
    Listing,
    check_export_only,
    download_buckets,
    listing,
    token_for,
    token_type_for,
)
from tsd_s3cmd.login.tokens import EXPORT, IMPORT

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code

FOLDER = "data/durable/s3-api/export-bucket"
# The token table: every command a TSD user runs, and the token it takes.
TABLE = [
        ("ls", [], EXPORT),
        ("ls", ["s3://export-bucket"], EXPORT),
        ("la", [], EXPORT),
        ("du", ["s3://b"], EXPORT),
        ("get", ["s3://export-bucket/f", "f"], EXPORT),
        ("info", ["s3://export-bucket/f"], EXPORT),
        ("sync", ["s3://export-bucket/", "local/"], EXPORT),
        ("sync", ["s3://export-bucket/a", "s3://export-bucket/b", "local/"], EXPORT),
        ("sync", ["local/", "s3://b"], IMPORT),
        ("sync", ["s3://a/", "s3://b/"], IMPORT),
        ("sync", [], IMPORT),
        ("put", ["ls.txt", "s3://b"], IMPORT),  # the original tool asked for export here
        ("put", ["get-results.tsv", "s3://b"], IMPORT),
        ("mb", ["s3://b"], IMPORT),
        ("rb", ["s3://b"], IMPORT),
        ("del", ["s3://b/f"], IMPORT),
        ("rm", ["s3://b/f"], IMPORT),
        ("cp", ["s3://b/f", "s3://b/g"], IMPORT),
        ("mv", ["s3://b/f", "s3://b/g"], IMPORT),
        ("modify", ["s3://b/f"], IMPORT),
        ("setacl", ["s3://b/f"], IMPORT),
        ("multipart", ["s3://b"], IMPORT),
        ("abortmp", ["s3://b/f", "id"], IMPORT),
        ("listmp", ["s3://b/f", "id"], IMPORT),
        ("LS", [], EXPORT),
]


@pytest.mark.parametrize(("command", "args", "expected"), TABLE)
def test_table(command: str, args: list[str], expected: str) -> None:
    assert token_type_for(command, args) == expected
    assert token_for([command, *args]) == expected


@pytest.mark.parametrize(("command", "args", "expected"), TABLE)
@pytest.mark.parametrize("options", [[], ["-r", "--exclude", "*.tmp"], ["--no-progress"]])
def test_a_run_and_print_token_for_read_a_command_line_alike(
    command: str, args: list[str], expected: str, options: list[str], code_cache: Path
) -> None:
    """``--print-token-for CMD ARGS`` reads CMD ARGS with s3cmd's own parser, as a run does."""
    parsed = shim.parse([command, *options, *args], cache_dir=code_cache)
    assert parsed is not None
    options_read, positional = parsed
    assert positional == [command, *args]
    assert token_for(positional, options_read.run_configure) == expected


def test_parse_says_none_when_s3cmd_cannot_read_the_line(code_cache: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert shim.parse(["ls", "--no-such-option"], cache_dir=code_cache) is None
    assert "no such option: --no-such-option" in capsys.readouterr().err


def test_configure_lists_all_buckets_so_takes_import() -> None:
    assert token_for([], configure=True) == IMPORT


@pytest.mark.parametrize("args", [[], ["sign", "string to sign"]])
def test_commands_without_requests_need_no_token(args: list[str]) -> None:
    assert token_for(args) is None


@pytest.mark.parametrize("command", sorted(UNUSABLE_COMMANDS))
def test_commands_that_cannot_work_with_tsd_are_refused(command: str) -> None:
    with pytest.raises(UsageError, match=f"'{command}' cannot work with TSD: "):
        token_for([command, "s3://export-bucket/f", "+60"])


@pytest.mark.parametrize(
    ("args", "buckets"),
    [
        (["get", "s3://export-bucket/f"], ["export-bucket"]),
        (
            ["get", "s3://export-bucket/f", "s3://b/g", "S3://c/h", "dir/"],
            ["export-bucket", "b", "c"],
        ),
        (["get", "s3:///export-bucket/f", "out"], ["export-bucket"]),  # s3cmd drops extra slashes
        (["sync", "s3://b/", "s3://export-bucket/x", "out/"], ["b", "export-bucket"]),
        (["sync", "s3://b/", "s3://c/"], []),  # a copy inside TSD, not a download
        (["sync", "local/", "s3://b/"], []),
        (["get", "s3://"], []),  # no bucket: s3cmd says what is wrong with it
        (["ls", "s3://b"], []),
        (["put", "s3://b/x", "s3://c/"], []),
        ([], []),
    ],
)
def test_download_buckets(args: list[str], buckets: list[str]) -> None:
    assert download_buckets(args) == buckets


@pytest.mark.parametrize(
    ("args", "pnum", "needles"),
    [
        (["get", "s3://mybucket/file"], "p11", ["not 'mybucket'", f"/tsd/p11/{FOLDER}"]),
        (["sync", "s3://mybucket/", "dir/"], None, ["not 'mybucket'", f"/tsd/pNN/{FOLDER}"]),
        (["get", "s3://Export-Bucket/f"], "p12", ["'Export-Bucket'", "case-sensitive", "/p12/"]),
        (["get", "s3://export-bucket/f", "s3://a/x", "s3://b/y", "d/"], "p11", ["not 'a', 'b'"]),
    ],
)
def test_downloads_come_only_from_export_bucket(
    args: list[str], pnum: str | None, needles: list[str]
) -> None:
    with pytest.raises(AuthError) as refused:
        check_export_only(args, pnum)
    message = str(refused.value)
    assert "\n" not in message and refused.value.exit_code == 77
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(
    "args",
    [["get", "s3://export-bucket/f", "out"], ["sync", "s3://export-bucket/", "d/"], ["put", "f", "s3://b"]],
)
def test_export_bucket_and_uploads_pass(args: list[str]) -> None:
    check_export_only(args, "p11")


local_path = st.text(min_size=1, max_size=10).filter(lambda s: not s.lower().startswith("s3://"))
remote = st.text(max_size=10).map(lambda s: f"s3://{s}")


@given(st.text(max_size=12), st.lists(st.one_of(local_path, remote), max_size=5))
def test_reads_only_for_read_commands_and_downward_syncs(command: str, args: list[str]) -> None:
    chosen = token_type_for(command, args)
    assert chosen in (IMPORT, EXPORT)
    if chosen == EXPORT:
        downward_sync = (
            command.lower() == "sync"
            and len(args) >= 2
            and not args[-1].lower().startswith("s3://")
            and all(a.lower().startswith("s3://") for a in args[:-1])
        )
        assert command.lower() in READ_COMMANDS or downward_sync


@given(st.lists(local_path, min_size=1, max_size=4), remote)
def test_every_upload_sync_takes_import(sources: list[str], destination: str) -> None:
    assert token_type_for("sync", [*sources, destination]) == IMPORT


# What lists, as s3cmd 2.3 and 2.4 run these command lines (tests/e2e/test_listing.py
# checks each one against the emulator's request log): the command line, and a
# piece of what the refusal says, or None for one that lists nothing.
LISTINGS = [
    ("ls", "'ls' lists"),
    ("ls s3://b/f.txt", "'ls' lists"),
    ("la", "'la' lists"),
    ("du", "'du' lists"),
    ("du s3://b", "'du' lists"),
    ("sync dir s3://b/", "'sync' lists what is in the bucket first"),
    ("sync a b s3://b/", "'sync' lists what is in the bucket first"),
    ("sync s3://export-bucket/ dir/", "'sync' lists the objects in TSD"),
    ("sync s3://b/ s3://c/", "'sync' lists the objects in TSD"),
    ("sync dir", None),  # s3cmd refuses it first
    ("sync dir other", None),
    ("info s3://b", "'info' reads the bucket's settings"),
    ("info s3://b/f", "'info' reads the bucket's settings"),  # ?policy and ?cors on the bucket
    ("fixbucket s3://b", "'fixbucket' lists"),
    ("ws-info s3://b", "website settings"),
    ("getlifecycle s3://b", "lifecycle"),
    ("getnotification s3://b", "notification"),
    ("--configure", "tests the keys by listing"),
    ("get s3://export-bucket/f out", None),
    ("get --skip-existing s3://export-bucket/f out", None),
    ("get -r s3://export-bucket/ out/", "'get --recursive' lists"),
    ("get --recursive s3://export-bucket/d/", "'get --recursive' lists"),
    ("get s3://export-bucket/*.csv out/", "'get' with a wildcard"),
    ("get s3://export-bucket/result?.csv", "'get' with a wildcard"),
    ("put f s3://b/", None),
    ("put -r dir s3://b/", None),
    ("put --skip-existing -r dir s3://b/", None),  # --skip-existing is for get and sync
    ("put * s3://b/", None),  # the shell's wildcard: local names
    ("del s3://b/f", None),
    ("rm s3://b/f", None),
    ("del s3://b/*.txt", "'del' with a wildcard"),
    ("rm -r --force s3://b/", "'rm --recursive' lists"),
    ("restore s3://b/f", None),
    ("restore -r s3://b/d/", "'restore --recursive' lists"),
    ("cp s3://b/f s3://c/f", None),
    ("cp s3://b/f s3://c/*", None),  # the destination's name, not a pattern
    ("cp -r s3://b/d/ s3://c/", "'cp --recursive' lists"),
    ("cp s3://b/*.txt s3://c/", "'cp' with a wildcard"),
    ("mv s3://b/f s3://b/g", None),
    ("mv -r s3://b/d/ s3://b/e/", "'mv --recursive' lists"),
    ("modify s3://b/f", None),
    ("modify -r s3://b/d/", "'modify --recursive' lists"),
    ("setacl --acl-private s3://b/f", None),
    ("setacl --acl-private s3://b", "'setacl' of a bucket reads the bucket's ACL"),
    ("setacl --acl-private s3://b/", "'setacl' of a bucket"),
    ("setacl --acl-private -r s3://b/d/", "'setacl --recursive' lists"),
    ("setacl --acl-private s3://b/*", "'setacl' with a wildcard"),
    ("gettagging s3://b", "'gettagging' of a bucket reads the bucket's tags"),
    ("gettagging s3://b/f", None),
    ("settagging s3://b a=b", None),
    ("accesslog s3://b", "'accesslog' reads the bucket's logging setting"),
    ("accesslog --no-access-logging s3://b", None),
    ("accesslog --access-logging-target-prefix=s3://c/log/ s3://b", None),
    ("rb s3://b", None),
    ("rb --force s3://b", None),  # s3cmd needs --recursive to empty it
    ("rb -r s3://b", "'rb --recursive' lists the objects to delete"),
    ("mb s3://b", None),
    ("multipart s3://b", None),  # ?uploads: multipart bookkeeping
    ("listmp s3://b/f id", None),
    ("abortmp s3://b/f id", None),
    ("setpolicy p.json s3://b", None),
    ("setversioning s3://b enable", None),
    ("expire --expiry-days=3 s3://b", None),
    ("sign text", None),
]


@pytest.mark.parametrize(("line", "says"), LISTINGS)
def test_listing_follows_s3cmds_requests(line: str, says: str | None, code_cache: Path) -> None:
    parsed = shim.parse(line.split(), cache_dir=code_cache)
    assert parsed is not None
    found = listing(parsed[1], parsed[0])
    if says is None:
        assert found is None, found
    else:
        assert found is not None and says in found.what, found


def test_only_a_sync_up_says_how_to_upload_without_listing() -> None:
    up = listing(["sync", "dir", "s3://b/x/"])
    assert up is not None and "'put --recursive' with the same arguments" in up.instead
    for other in (["sync", "s3://b/", "d/"], ["sync", "s3://b/", "s3://c/"], ["ls"], ["du"]):
        found = listing(other)
        assert found is not None and found.instead == "", other


def test_listing_reads_the_command_in_any_case_and_without_options() -> None:
    assert listing(["LS"]) == Listing("'LS' lists buckets and objects")
    assert listing([]) is None and listing(["get", "s3://b/*"], None) is not None


def test_the_refusal_is_one_line_with_the_group_and_what_to_do() -> None:
    up = listing(["sync", "dir", "s3://b/x/"])
    assert up is not None
    refused = up.refused("p11", "p11-noexport", "your s3import token", "run 'tsd-s3cmd --logout'")
    message = str(refused)
    assert isinstance(refused, AuthError) and refused.exit_code == 77
    assert "\n" not in message
    for needle in (
        "'sync' lists what is in the bucket first",
        "only members of p11-export-group list",
        "p11-noexport is not one, as your s3import token shows",
        "ask p11's administrator for export rights",
        "then run 'tsd-s3cmd --logout'",
        "'put --recursive'",
    ):
        assert needle in message, needle


@given(st.text(max_size=12), st.lists(local_path, max_size=5))
def test_local_paths_alone_make_only_listing_commands_list(command: str, args: list[str]) -> None:
    """Local names, wildcards in them too, name nothing in TSD to list."""
    if listing([command, *args]) is not None:
        assert command.lower() in (*LISTING_COMMANDS, "accesslog"), command
    assert listing(["sync", *args]) is None  # s3cmd refuses a sync with nothing in TSD

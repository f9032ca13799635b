"""The token type follows what a command does, not the letters in its arguments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsd_s3cmd import s3cmd_shim
from tsd_s3cmd.errors import AuthError, UsageError
from tsd_s3cmd.token_choice import (
    READ_COMMANDS,
    UNUSABLE_COMMANDS,
    check_export_only,
    download_buckets,
    token_for,
    token_type_for,
)
from tsd_s3cmd.tokens import EXPORT, IMPORT

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
    command: str, args: list[str], expected: str, options: list[str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """``--print-token-for CMD ARGS`` reads CMD ARGS with s3cmd's own parser, as a run does."""
    parsed = s3cmd_shim.parse([command, *options, *args], cache_dir=tmp_path)
    assert parsed is not None
    options_read, positional = parsed
    assert positional == [command, *args]
    assert token_for(positional, options_read.run_configure) == expected


def test_parse_says_none_when_s3cmd_cannot_read_the_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert s3cmd_shim.parse(["ls", "--no-such-option"], cache_dir=tmp_path) is None
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

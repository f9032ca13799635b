"""The token type follows what a command does, not the letters in its arguments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsd_s3cmd.token_choice import READ_COMMANDS, needs_token, token_type_for
from tsd_s3cmd.tokens import EXPORT, IMPORT


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
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
    ],
)
def test_table(command: str, args: list[str], expected: str) -> None:
    assert token_type_for(command, args) == expected


def test_offline_commands_need_no_token() -> None:
    assert not needs_token("signurl")
    assert needs_token("put")


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

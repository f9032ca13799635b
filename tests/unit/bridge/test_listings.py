"""A ranged run's listings give a tree's entries s3cmd's keys, and its checks hold."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from S3 import FileLists
from S3.Config import Config

from tsd_s3cmd.bridge import listings, script, shim
from tsd_s3cmd.errors import ConfigError

# Every test here runs s3cmd's code and covers what differs between its releases.
pytestmark = [pytest.mark.s3cmd, pytest.mark.versions]

# Names s3cmd changes (control characters become ^J, ^?), and names whose order
# depends on the "/" after a directory's name.
ODD = ["a", "a-b", "a.txt", "a0", "é", "new\nline", "tab\there", "del\x7f", "sp ace", "Z"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    top = tmp_path / "tree"
    dirs = ["", *ODD[:4], "x/y"]
    for sub in dirs:
        (top / sub).mkdir(parents=True, exist_ok=True)
    for sub in dirs:
        for name in ODD:
            if not (top / sub / name).is_dir():
                (top / sub / name).write_text(name)
    return top


@pytest.mark.parametrize("written", ["{top}", "{top}/", "."])
def test_the_walk_gives_the_keys_s3cmd_gives_in_key_order(
    tree: Path, written: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree)
    source = written.format(top=tree)
    cfg = Config()
    monkeypatch.setattr(cfg, "cache_file", "")
    monkeypatch.setattr(cfg, "sync_checks", [])  # no MD5s: the keys are what counts
    theirs = FileLists.fetch_local_list([source], is_src=True, recursive=True)[0]
    listing = listings.local(("call",), None, [source], is_src=True)
    ours = [key for key, _ in listing.pairs()]
    assert ours == sorted(theirs)  # the same keys, in S3's order
    assert any("^J" in key for key in ours)


def test_a_remote_key_is_s3cmds() -> None:
    assert listings.remote_key("dir/", "dir/a/b") == "a/b"
    assert listings.remote_key("dir/sub", "dir/sub/a") == "sub/a"  # as s3cmd: from the last /
    assert listings.remote_key("", "a/b") == "a/b"


def test_the_command_call_of_s3cmds_main_is_hooked() -> None:
    assert script.load(None).command_problem is None


def test_an_s3cmd_that_runs_its_command_otherwise_is_refused() -> None:
    source = script.script_path().read_bytes()
    changed = source.replace(b"rc = cmd_func(args)", b"rc = run_command(cmd_func, args)")
    code, problem, command_problem = script._compile(changed, "s3cmd")
    assert command_problem is not None and "cmd_func(args)" in command_problem
    s3cmd = script.Script(script.script_path(), code, problem, command_problem)
    with pytest.raises(ConfigError, match="runs its command 0 times"):
        shim.check_compatible(s3cmd, parallel=False)  # whatever the number at once


def test_an_s3cmd_that_walks_a_tree_otherwise_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def fetch_local_list(args, is_src=False, recursive=None, with_dirs=False):  # type: ignore[no-untyped-def]
        cache = FileLists.HashCache()  # as s3cmd's, but it walks with os.walk
        cache.load(Config().cache_file)
        return list(os.walk(args[0]))

    monkeypatch.setattr(FileLists, "fetch_local_list", fetch_local_list)
    with pytest.raises(ConfigError, match="no longer walks a tree with _fswalk"):
        shim.check_compatible()


@pytest.mark.parametrize(
    ("ours", "theirs", "beyond", "end", "kept", "left"),
    [
        # d/ has objects under it: s3cmd keeps it, whichever range they are in.
        (["d/", "d/a"], ["d/a"], None, None, ["d/a"], []),
        (["d/"], [], "d/a", "d/a", [], []),
        # the other side has d/ itself: the two are compared.
        (["d/", "d/a"], ["d/"], None, None, ["d/", "d/a"], []),
        # nothing of d/ on the other side: it waits for the range where its contents end.
        (["d/", "d/a"], ["e"], None, "d/b", ["d/a"], ["d/"]),
        (["d/", "d/a"], ["e"], None, "e", ["d/a", "d/"], []),
    ],
)
def test_a_sync_downs_directories_go_where_s3cmds_decision_is_the_whole_runs(
    ours: list[str],
    theirs: list[str],
    beyond: str | None,
    end: str | None,
    kept: list[str],
    left: list[str],
) -> None:
    """``beyond``: the other side's first key after this range."""
    pending: list = []
    arranged = listings.arrange_directories(
        [(k, None) for k in ours], [([(k, None) for k in theirs], beyond)], end, pending
    )
    assert [k for k, _ in arranged] == kept
    assert [k for k, _ in pending] == left

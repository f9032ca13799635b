"""A command over a tree, a range of keys at a time: the same result as one run over it all.

``TSD_S3CMD_BATCH`` makes the ranges small, so that a tree of a few dozen
files takes several; each test compares with plain s3cmd, or with one range
(a batch larger than the tree), in the same emulator. Memory itself is the
benchmark's to measure (benchmarks/), not a test's.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from ..conftest import BIN
from .conftest import Tsd
from .test_long_running import start, wait_for
from .test_many_files import lines, log_in, loggedin, requests_since, tree_of
from .test_setup import converse

__all__ = ["loggedin"]  # a fixture of the tests here too

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code

SMALL = {"TSD_S3CMD_BATCH": "7"}
ONE_RANGE = {"TSD_S3CMD_BATCH": "100000"}
# Names whose S3 order depends on the "/" after a directory's name ("a.txt" before
# "a/x", which comes before "a0"), with spaces and beyond ASCII.
NAMES = [
    "a", "a.txt", "a-b/x", "a0", "d/a/x", "d/a.txt", "d/a0/y", "d/b c.txt", "d/é/z",
    *(f"many/{i:02d}.txt" for i in range(30)), "z/deep/er/f.txt", "z.txt",
]  # fmt: skip


def make(root: Path, names: list[str] = NAMES) -> dict[str, bytes]:
    files = {name: f"{name} {len(name)}\n".encode() * 3 for name in names}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def ranges(result: object) -> int:
    return len(re.findall(r"tsd-s3cmd: range \d+", result.stderr))  # type: ignore[attr-defined]


def stored(tsd: Tsd, bucket: str, prefix: str) -> list[str]:
    listing = tsd.ok("ls", "--recursive", f"s3://{bucket}/{prefix}").stdout
    return sorted(line.split(f"s3://{bucket}/{prefix}", 1)[1] for line in listing.splitlines())


@pytest.mark.slow
@pytest.mark.versions  # the hooks of a ranged run: main's command call, the walks, bucket_list
def test_a_sync_up_in_ranges_does_what_plain_s3cmd_does(make_tsd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Excludes, --delete-removed, objects to keep and to replace, several ranges."""
    tsd = log_in(make_tsd("--no-token-check"), "cmp")
    make(tmp_path / "src")
    (tmp_path / "src" / "skip.log").write_text("excluded\n")
    (tmp_path / "src" / "many" / "skip.log").write_text("excluded\n")
    for prefix in ("plain/", "ours/"):
        for name in ("many/00.txt", "gone.txt", "d/gone/x", "zz/gone.txt", "skip.log"):
            tsd.emulator.place("p11", "cmp", prefix + name, b"old " + name.encode())
        same = (tmp_path / "src" / "a.txt").read_bytes()  # there already: not sent
        tsd.emulator.place("p11", "cmp", prefix + "a.txt", same)
    options = ["--exclude", "*.log", "--delete-removed"]
    s3cmd = [str(BIN / "s3cmd"), "-c", str(tsd.home / ".s3cfg")]
    plain = subprocess.run(
        [*s3cmd, *options, "sync", f"{tmp_path / 'src'}/", "s3://cmp/plain/"],
        capture_output=True, env=tsd.env, cwd=tsd.home, text=True,
    )  # fmt: skip
    ours = tsd.run("-d", *options, "sync", f"{tmp_path / 'src'}/", "s3://cmp/ours/",
                   extra_env=SMALL)  # fmt: skip
    assert ours.returncode == plain.returncode == 0, ours.stderr[-3000:]
    assert ranges(ours) >= 5
    assert lines(ours.stdout) == lines(plain.stdout.replace("/plain/", "/ours/"))
    assert stored(tsd, "cmp", "ours/") == stored(tsd, "cmp", "plain/")
    assert "skip.log" in stored(tsd, "cmp", "ours/")  # excluded: neither sent nor deleted
    assert len(re.findall(r"^Done\. Uploaded \d+ bytes", ours.stdout, re.M)) == 1


@pytest.mark.slow
def test_a_sync_down_in_ranges_does_what_one_range_does(loggedin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Downloads, and with --delete-removed local files and directories that are gone
    remotely, however the ranges fall (a directory is removed after what it held)."""
    tsd = loggedin
    files = {name: f"{name}\n".encode() for name in NAMES}
    for name, data in files.items():
        tsd.emulator.place("p11", "export-bucket", f"t/{name}", data)
    results = {}
    for way, env in (("ranges", SMALL), ("one", ONE_RANGE)):
        down = tmp_path / way
        make(down, ["old/gone/x", "old/gone/y", "d/gone.txt", "many/zz/extra.txt", "z/deep/x"])
        (down / "empty" / "dir").mkdir(parents=True)
        results[way] = tsd.ok("--stats", "--delete-removed", "sync", "s3://export-bucket/t/",
                              f"{down}/", extra_env=env)  # fmt: skip
        assert tree_of(down) == files
    assert not (tmp_path / "ranges" / "old").exists()
    assert sorted(p.relative_to(tmp_path / "ranges") for p in (tmp_path / "ranges").rglob("*")) == (
        sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*"))
    )
    assert lines(results["ranges"].stdout.replace("/ranges/", "/one/")) == lines(
        results["one"].stdout
    )
    # One closing line, its stats the whole run's.
    stats = re.findall(r"Stats: Number of files transferred: (\d+)", results["ranges"].stdout)
    assert stats == [str(len(files))]


@pytest.mark.slow
def test_a_single_directory_is_cut_into_ranges_of_names(loggedin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tsd = loggedin
    files = make(tmp_path / "flat", [f"f{i:03d}.txt" for i in range(60)])
    done = tsd.ok("-d", "sync", f"{tmp_path / 'flat'}/", "s3://tree/flat/", extra_env=SMALL)
    assert ranges(done) == 9  # 60 files, 7 a range
    assert stored(tsd, "tree", "flat/") == sorted(files)
    again = tsd.ok("-d", "sync", f"{tmp_path / 'flat'}/", "s3://tree/flat/", extra_env=SMALL)
    # Both sides listed now, each key on both: 120 entries, 8 a range (a key is not split).
    assert ranges(again) == 15
    assert "upload:" not in again.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["put", "--recursive", "SRC/", "s3://tree/put/"],
        ["get", "--recursive", "s3://export-bucket/t/", "DEST/"],
        ["cp", "--recursive", "s3://tree/from/", "s3://tree/cp/"],
        ["sync", "s3://tree/from/", "s3://tree/across/"],
    ],
)
def test_put_get_cp_and_a_sync_across_in_ranges_move_every_file_once(  # type: ignore[no-untyped-def]
    loggedin, tmp_path: Path, command: list[str]
) -> None:
    tsd = loggedin
    files = make(tmp_path / "src")
    tsd.ok("sync", f"{tmp_path / 'src'}/", "s3://tree/from/", extra_env=ONE_RANGE)
    for name, data in files.items():
        tsd.emulator.place("p11", "export-bucket", f"t/{name}", data)
    (tmp_path / "dest").mkdir()
    argv = [a.replace("SRC", str(tmp_path / "src")).replace("DEST", str(tmp_path / "dest"))
            for a in command]  # fmt: skip
    since = len(tsd.emulator.s3_log())
    done = tsd.ok("-d", *argv, extra_env=SMALL)
    assert ranges(done) >= 5
    if command[0] == "get":
        assert tree_of(tmp_path / "dest") == files
        gets = [e["path"] for e in requests_since(tsd, since) if e["method"] == "GET"
                and e["path"].startswith("/export-bucket/t/")]  # fmt: skip
        assert sorted(gets) == sorted(f"/export-bucket/t/{n}" for n in files)
    else:
        prefix = command[-1].split("s3://tree/", 1)[1]
        assert stored(tsd, "tree", prefix) == sorted(files)
        puts = [e["path"] for e in requests_since(tsd, since)
                if e["method"] == "PUT" and e["path"].startswith(f"/tree/{prefix}")
                and not e["query"]]  # a copy's ACL is set after it: that is not a move  # fmt: skip
        assert sorted(puts) == sorted(f"/tree/{prefix}{n}" for n in files)  # each once


@pytest.mark.slow
def test_del_with_an_exclude_in_ranges_deletes_what_it_would_at_once(  # type: ignore[no-untyped-def]
    loggedin, tmp_path: Path
) -> None:
    tsd = loggedin
    files = make(tmp_path / "src")
    for prefix in ("ranges/", "one/"):
        tsd.ok("sync", f"{tmp_path / 'src'}/", f"s3://tree/{prefix}")
    for prefix, env in (("ranges/", SMALL), ("one/", ONE_RANGE)):
        tsd.ok("del", "--recursive", "--exclude", "many/*", f"s3://tree/{prefix}", extra_env=env)
    kept = sorted(n for n in files if n.startswith("many/"))
    assert stored(tsd, "tree", "ranges/") == stored(tsd, "tree", "one/") == kept


@pytest.mark.slow
def test_parallel_1_in_ranges_sends_what_plain_s3cmd_sends(make_tsd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One request at a time, the files in s3cmd's order, and nothing more: the
    listing, then each file; the ranges change only what is held in memory."""
    tsd = log_in(make_tsd("--no-token-check"), "same")
    make(tmp_path / "src")
    s3cmd = [str(BIN / "s3cmd"), "-c", str(tsd.home / ".s3cfg")]

    def sent(since: int, prefix: str) -> list[tuple[str, str, str]]:
        return [(e["method"], e["path"].replace(prefix, "P/"), e["query"].replace(prefix[:-1], "P"))
                for e in requests_since(tsd, since)]  # fmt: skip

    since = len(tsd.emulator.s3_log())
    subprocess.run([*s3cmd, "sync", f"{tmp_path / 'src'}/", "s3://same/plain/"],
                   check=True, capture_output=True, env=tsd.env)  # fmt: skip
    plain = sent(since, "plain/")
    since = len(tsd.emulator.s3_log())
    tsd.ok("--parallel", "1", "-d", "sync", f"{tmp_path / 'src'}/", "s3://same/ours/",
           extra_env=SMALL)  # fmt: skip
    assert sent(since, "ours/") == plain
    assert len(plain) == 1 + len(NAMES)  # the listing, then one PUT a file


@pytest.mark.slow
def test_files_that_appear_or_vanish_in_a_later_range_are_seen_as_the_walk_finds_them(  # type: ignore[no-untyped-def]
    loggedin, tmp_path: Path
) -> None:
    """A range is listed when its turn comes: a file made before then is sent, a file
    gone by then is not, and neither is an error."""
    tsd = loggedin
    files = make(tmp_path / "src")
    tsd.emulator.settings(link_rate=20_000)  # each file's request takes a while
    proc = start(tsd, "sync", f"{tmp_path / 'src'}/", "s3://tree/live/", extra_env=SMALL)
    wait_for(lambda: any(e["path"] == "/tree/live/a.txt" and e["method"] == "PUT"
                         for e in tsd.emulator.s3_log()))  # fmt: skip
    (tmp_path / "src" / "z.txt").unlink()  # in the last range: not walked yet
    (tmp_path / "src" / "z" / "new.txt").write_text("new\n")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert stored(tsd, "tree", "live/") == sorted({*files, "z/new.txt"} - {"z.txt"})


@pytest.mark.slow
def test_at_a_terminal_the_live_line_counts_the_files_known_so_far(  # type: ignore[no-untyped-def]
    loggedin, tmp_path: Path
) -> None:
    tsd = loggedin
    files = make(tmp_path / "src")
    tsd.emulator.settings(link_rate=200_000)
    ranged = dataclasses.replace(tsd, env={**tsd.env, **SMALL})
    code, screen = converse(ranged, ["sync", f"{tmp_path / 'src'}/", "s3://tree/shown/"], [])
    assert code == 0, screen
    shown = re.findall(r"\r\x1b\[K(\d+) of (\d+)(\+?) files, ", screen)
    assert any(more for _, _, more in shown), screen  # more to come while ranges remain
    assert shown[-1] == (str(len(files)), str(len(files)), ""), shown[-3:]


@pytest.mark.slow
def test_the_parts_of_a_buckets_tree_are_listed_at_once(loggedin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Over a slow link a listing page takes a while: past its first page, a tree is
    listed in parts of its key space of several pages each, from a subdirectory on,
    two at once and ahead of the run (and, with --parallel 1, as s3cmd lists: page
    after page)."""
    tsd = loggedin
    names = [f"d{d}/f{i:02d}.txt" for d in range(8) for i in range(30)]
    for name in names:
        tsd.emulator.place("p11", "export-bucket", f"t/{name}", name.encode())
    # Pages of 20 keys (S3's are of 1,000), each about a third of a second on the link.
    tsd.emulator.settings(list_page_size=20, link_rate=20_000)
    since = len(tsd.emulator.s3_log())
    tsd.ok("sync", "s3://export-bucket/t/", f"{tmp_path / 'at-once'}/", extra_env=SMALL)
    listed = [e for e in requests_since(tsd, since)
              if e["method"] == "GET" and "prefix=t%2F" in e["query"]]  # fmt: skip
    assert [e["query"] for e in listed[:2]] == ["prefix=t%2F", "delimiter=%2F&prefix=t%2F"]
    # Each part's first page starts after a key; its next pages after moto's own marker.
    starts = sorted(re.findall(r"^marker=(t%2F.*?)&", e["query"])[0] for e in listed[2:]
                    if e["query"].startswith("marker=t%2F"))  # fmt: skip
    # The first part goes on from where the first page ended, the second from d4: the
    # first page (all of d0) says 20 keys a subdirectory, so the 7 after it hold about
    # 140 keys, in parts of 4 pages (80 keys) that is 2 parts.
    assert starts == ["t%2Fd0%2Ff19.txt", "t%2Fd4"], starts
    parts = listed[2:]
    overlapping = max(sum(1 for o in parts if o["time"] < e["ended"] and e["time"] < o["ended"])
                      for e in parts)  # fmt: skip
    assert overlapping >= 2, parts  # itself and another
    assert tree_of(tmp_path / "at-once") == {n: n.encode() for n in names}

    since = len(tsd.emulator.s3_log())
    tsd.emulator.settings(link_rate=0)
    tsd.ok("--parallel", "1", "sync", "s3://export-bucket/t/", f"{tmp_path / 'one'}/")
    queries = [e["query"] for e in requests_since(tsd, since) if e["method"] == "GET"
               and "prefix=" in e["query"]]  # fmt: skip
    assert len(queries) == 12 and not any("delimiter" in q for q in queries)  # s3cmd's pages
    assert tree_of(tmp_path / "one") == tree_of(tmp_path / "at-once")

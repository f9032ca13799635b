"""Which MD5 cache a command uses, and how a cache file is read and written."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from tsd_s3cmd.bridge import md5_cache, shim
from tsd_s3cmd.errors import ConfigError, UsageError

pytestmark = pytest.mark.s3cmd  # the module imports the shim, which runs s3cmd's code

CACHES = Path("/caches")


def test_the_directory_is_in_tsd_s3cmds_cache_unless_turned_off() -> None:
    home = Path("/home/u/.cache")
    assert md5_cache.directory(home, {}) == home / "tsd-s3cmd" / "md5-cache"
    assert md5_cache.directory(home, {"TSD_S3CMD_MD5_CACHE": "1"}) == (
        home / "tsd-s3cmd" / "md5-cache"
    )
    assert md5_cache.directory(home, {"TSD_S3CMD_MD5_CACHE": "0"}) is None
    with pytest.raises(UsageError, match=r"TSD_S3CMD_MD5_CACHE takes 0 .* not 'off'"):
        md5_cache.directory(home, {"TSD_S3CMD_MD5_CACHE": "off"})


def test_only_a_sync_with_a_local_side_has_a_cache() -> None:
    for args in (
        ["put", "-r", "d", "s3://b/"],
        ["get", "s3://b/k", "k"],
        ["ls"],
        ["sync"],
        ["sync", "d"],
        ["sync", "s3://a/", "s3://b/"],
    ):
        assert md5_cache.file_for(CACHES, args) is None, args
    up = md5_cache.file_for(CACHES, ["sync", "d/", "s3://b/"])
    down = md5_cache.file_for(CACHES, ["sync", "s3://b/", "d/"])
    assert up and down and up != down
    assert up.parent == CACHES and up.suffix == ".sqlite"


def test_the_same_tree_from_anywhere_is_the_same_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "d").mkdir()
    monkeypatch.chdir(tmp_path)
    relative = md5_cache.file_for(CACHES, ["sync", "d/", "s3://b/x/"])
    monkeypatch.chdir("/")
    assert md5_cache.file_for(CACHES, ["sync", f"{tmp_path}/d", "s3://b/x/"]) == relative
    assert md5_cache.file_for(CACHES, ["sync", f"{tmp_path}/./d/", "s3://b/x/"]) == relative


def test_each_set_of_sources_and_destination_has_its_own_cache() -> None:
    def cache(*args: str) -> Path | None:
        return md5_cache.file_for(CACHES, ["sync", *args])

    assert cache("/a", "/b", "s3://x/") == cache("/b", "/a", "s3://x/")  # a set: order
    assert cache("/a", "/a", "s3://x/") == cache("/a", "s3://x/")
    distinct = {
        cache("/a", "s3://x/"),
        cache("/b", "s3://x/"),  # another tree, the same destination
        cache("/a", "/b", "s3://x/"),
        cache("/a", "s3://y/"),  # the same tree, another destination
        cache("s3://x/", "/a"),  # down into it
    }
    assert len(distinct) == 5


def test_a_share_of_a_job_array_has_a_cache_of_its_own() -> None:
    args = ["sync", "/a/", "s3://x/"]
    shares = {md5_cache.file_for(CACHES, args, shard) for shard in ("", "0/4", "1/4", "1/2")}
    assert len(shares) == 4


def _store(path: Path) -> md5_cache.Store:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    return md5_cache.Store(path)


def _rows(path: Path) -> set[tuple]:
    with sqlite3.connect(path) as db:
        return set(db.execute("SELECT dev, inode, mtime, size, md5 FROM md5s"))


A, B = (64, 1, 1700000000, 5, "a" * 32), (64, 2, 1700000001, 7, "b" * 32)


def test_what_a_run_adds_the_next_one_finds(tmp_path: Path) -> None:
    path = tmp_path / "c" / "x.sqlite"
    first = _store(path)
    assert first.md5(*A[:4]) is None
    first.add(*A)
    first.finish()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["x.sqlite"]  # no temporary file left
    second = _store(path)
    assert second.md5(*A[:4]) == A[4]
    assert second.md5(A[0], A[1], A[2], 6) is None  # another size: another file
    assert second.md5(A[0], A[1], A[2] + 1, A[3]) is None  # another mtime


def test_a_run_that_saw_every_file_drops_the_others_one_that_did_not_keeps_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c" / "x.sqlite"
    first = _store(path)
    first.add(*A)
    first.add(*B)
    first.finish()
    partial = _store(path)  # a share, or stopped: saw A only
    assert partial.md5(*A[:4]) == A[4]
    partial.finish()
    assert _rows(path) == {A, B}
    whole = _store(path)
    assert whole.md5(*A[:4]) == A[4]
    whole.complete = True
    whole.finish()
    assert _rows(path) == {A}


@pytest.mark.parametrize("data", [b"", b"garbage" * 100, b"SQLite format 3\x00" + b"\x01" * 200])
def test_a_damaged_cache_is_empty_and_replaced_by_a_whole_one(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "c" / "x.sqlite"
    path.parent.mkdir(mode=0o700)
    path.write_bytes(data)
    path.chmod(0o600)
    store = _store(path)
    assert store.md5(*A[:4]) is None
    store.add(*A)
    store.complete = True
    store.finish()
    assert _rows(path) == {A}


def test_a_cache_of_another_shape_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "c" / "x.sqlite"
    path.parent.mkdir(mode=0o700)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE md5s (name TEXT)")
    path.chmod(0o600)
    store = _store(path)
    assert store.md5(*A[:4]) is None
    store.finish()  # and keeps nothing of it
    assert _rows(path) == set()


def _forged(path: Path, mode: int = 0o600) -> Path:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(md5_cache._SCHEMA)
        db.execute("INSERT INTO md5s VALUES (?, ?, ?, ?, ?)", A)
    path.chmod(mode)
    return path


def test_a_cache_others_could_write_is_not_read(tmp_path: Path) -> None:
    assert _store(_forged(tmp_path / "c" / "x.sqlite")).md5(*A[:4]) == A[4]  # as the user's own
    exposed = _forged(tmp_path / "c" / "y.sqlite", 0o620)
    assert _store(exposed).md5(*A[:4]) is None
    loose = _forged(tmp_path / "d" / "x.sqlite")
    loose.parent.chmod(0o777)
    assert md5_cache.Store(loose).md5(*A[:4]) is None
    link = tmp_path / "c" / "link.sqlite"
    link.symlink_to(tmp_path / "c" / "x.sqlite")
    assert _store(link).md5(*A[:4]) is None


def test_a_local_listing_that_no_longer_uses_hashcache_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from S3 import FileLists

    def fetch_local_list(args, is_src=False, recursive=None, with_dirs=False):  # type: ignore[no-untyped-def]
        return FileLists.Md5Store().walk(args)  # a new cache the hook would not supply

    monkeypatch.setattr(FileLists, "fetch_local_list", fetch_local_list)
    with pytest.raises(ConfigError, match="fetch_local_list no longer keeps its MD5s"):
        shim.check_compatible()

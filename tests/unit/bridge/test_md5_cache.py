"""Which MD5 cache a command uses, and how a cache file is read."""

from __future__ import annotations

import os
import pickle
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
    assert up.parent == CACHES and up.suffix == ".pickle"


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


def _saved(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


GOOD = {"inodes": {64: {1234: {1700000000: {"md5": "a" * 32, "size": 5}}}}, "version": 1}


def test_a_sound_cache_of_the_users_own_is_loaded(tmp_path: Path) -> None:
    path = _saved(tmp_path / "c" / "x.pickle", pickle.dumps(GOOD))
    assert shim._load_md5s(path) == GOOD["inodes"]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        pickle.dumps(GOOD)[:-3],  # cut short by a full disk
        pickle.dumps({"inodes": GOOD["inodes"], "version": 2}),
        pickle.dumps({"inodes": {64: {1234: {1: {"md5": None, "size": 5}}}}, "version": 1}),
        pickle.dumps({"inodes": {64: ["not", "a", "dict"]}, "version": 1}),
        pickle.dumps(["a", "list"]),
        pickle.dumps({"inodes": {64: {1: {1: {"md5": os.getcwd, "size": 1}}}}, "version": 1}),
    ],
)
def test_a_damaged_cache_is_empty(tmp_path: Path, data: bytes) -> None:
    assert shim._load_md5s(_saved(tmp_path / "c" / "x.pickle", data)) == {}


def test_a_cache_others_could_write_is_empty(tmp_path: Path) -> None:
    exposed = _saved(tmp_path / "c" / "x.pickle", pickle.dumps(GOOD), 0o660)
    assert shim._load_md5s(exposed) == {}
    loose = _saved(tmp_path / "d" / "x.pickle", pickle.dumps(GOOD))
    loose.parent.chmod(0o777)
    assert shim._load_md5s(loose) == {}
    link = tmp_path / "c" / "link.pickle"
    link.symlink_to(loose)
    assert shim._load_md5s(link) == {}


def test_a_local_listing_that_no_longer_uses_hashcache_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from S3 import FileLists

    def fetch_local_list(args, is_src=False, recursive=None, with_dirs=False):  # type: ignore[no-untyped-def]
        return FileLists.Md5Store().walk(args)  # a new cache the hook would not supply

    monkeypatch.setattr(FileLists, "fetch_local_list", fetch_local_list)
    with pytest.raises(ConfigError, match="fetch_local_list no longer keeps its MD5s"):
        shim.check_compatible()

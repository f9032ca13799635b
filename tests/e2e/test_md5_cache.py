"""sync's MD5 cache: a re-run reads no file it has read, and the cache stays private.

s3cmd keys its cache on a file's device, inode, size and mtime in whole
seconds (it rebuilds each stat result from its tuple, which drops the
fraction): the tests look entries up the same way.

How a test sees that a file was not read: its bytes are changed in place while
its size, mtime and inode stay as they were. A sync that trusts the cache does
not see the change (the stored object keeps the old bytes); a sync that reads
the file sees it and uploads it.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from .conftest import DEMO, Tsd
from .test_long_running import start

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code


def caches(tsd: Tsd) -> list[Path]:
    return sorted((Path(tsd.env["HOME"]) / ".cache" / "tsd-s3cmd" / "md5-cache").glob("*"))


def cached(cache: Path) -> dict[tuple[int, int], tuple[float, int, str]]:
    """What a cache file holds: (mtime, size, MD5) by (device, inode)."""
    with sqlite3.connect(cache) as db:
        rows = db.execute("SELECT dev, inode, mtime, size, md5 FROM md5s").fetchall()
    return {(dev, inode): (mtime, size, md5) for dev, inode, mtime, size, md5 in rows}


def tree(tsd: Tsd, tmp_path: Path, bucket: str, files: int = 3) -> Path:
    """A logged-in user with ``bucket`` and a directory of ``files`` small files."""
    tsd.register()
    tsd.ok("mb", f"s3://{bucket}", input=DEMO)
    top = tmp_path / "tree"
    (top / "sub").mkdir(parents=True)
    for i in range(files):
        (top / ("sub" if i % 2 else "") / f"f{i}.txt").write_bytes(os.urandom(1000))
    return top


def change_unseen(path: Path) -> bytes:
    """Rewrite the start of ``path`` in place, keeping its size, mtime and inode."""
    before = path.stat()
    with open(path, "r+b") as f:
        f.write(b"changed!")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns,
    )  # fmt: skip
    return path.read_bytes()


def test_a_second_sync_trusts_the_cache_and_reads_no_file(tsd: Tsd, tmp_path: Path) -> None:
    top = tree(tsd, tmp_path, "cached")
    tsd.ok("sync", f"{top}/", "s3://cached/t/")
    first = tsd.emulator.object("cached", "t/f0.txt")
    assert first == (top / "f0.txt").read_bytes()
    changed = change_unseen(top / "f0.txt")

    again = tsd.ok("sync", f"{top}/", "s3://cached/t/")
    assert "upload:" not in again.stdout + again.stderr
    assert tsd.emulator.object("cached", "t/f0.txt") == first  # the change was not seen

    off = tsd.ok("sync", f"{top}/", "s3://cached/t/", extra_env={"TSD_S3CMD_MD5_CACHE": "0"})
    assert "f0.txt" in off.stdout
    assert tsd.emulator.object("cached", "t/f0.txt") == changed


def test_cache_file_dev_null_is_no_cache(tsd: Tsd, tmp_path: Path) -> None:
    top = tree(tsd, tmp_path, "devnull")
    tsd.ok("sync", f"{top}/", "s3://devnull/")
    changed = change_unseen(top / "sub" / "f1.txt")
    tsd.ok("--cache-file=/dev/null", "sync", f"{top}/", "s3://devnull/")
    assert tsd.emulator.object("devnull", "sub/f1.txt") == changed
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_the_cache_is_0600_in_a_0700_directory_whatever_the_umask(
    tsd: Tsd, tmp_path: Path
) -> None:
    top = tree(tsd, tmp_path, "private")
    tsd.ok("sync", f"{top}/", "s3://private/", preexec_fn=lambda: os.umask(0))
    [cache] = caches(tsd)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    st = (top / "f0.txt").stat()
    assert cached(cache)[st.st_dev, st.st_ino][:2] == (int(st.st_mtime), 1000)


def test_one_cache_per_sources_and_destination(tsd: Tsd, tmp_path: Path) -> None:
    top = tree(tsd, tmp_path, "keyed")
    other = tmp_path / "other"
    other.mkdir()
    (other / "o.txt").write_text("other\n")
    tsd.ok("sync", f"{top}/", "s3://keyed/")
    tsd.ok("sync", "tree/", "s3://keyed/", cwd=tmp_path)  # the same tree, written otherwise
    assert len(caches(tsd)) == 1
    tsd.ok("sync", f"{other}/", "s3://keyed/")  # another tree to the same destination
    tsd.ok("sync", f"{top}/", "s3://keyed/again/")
    assert len(caches(tsd)) == 3
    tsd.ok("sync", "s3://keyed/", "s3://keyed/copy/")  # no local file: no cache
    assert len(caches(tsd)) == 3


def test_a_damaged_cache_is_rebuilt_without_a_word(tsd: Tsd, tmp_path: Path) -> None:
    top = tree(tsd, tmp_path, "damaged")
    tsd.ok("sync", f"{top}/", "s3://damaged/")
    [cache] = caches(tsd)
    cache.write_bytes(b"\x80\x04not a database at all")
    (top / "new.txt").write_text("new\n")
    result = tsd.ok("sync", f"{top}/", "s3://damaged/")
    assert "Traceback" not in result.stderr and "MD5 cache" not in result.stderr
    assert tsd.emulator.object("damaged", "new.txt") == b"new\n"
    assert len(cached(cache)) == 4  # whole again: every file


def _forge(cache: Path, top: Path, mode: int) -> None:
    """Make the cache say f0.txt's MD5 is all zeros (so a sync that reads it uploads f0.txt)."""
    st = (top / "f0.txt").stat()
    with sqlite3.connect(cache) as db:
        forged = ("0" * 32, st.st_dev, st.st_ino)
        db.execute("UPDATE md5s SET md5=? WHERE dev=? AND inode=?", forged)
    cache.chmod(mode)


def test_only_a_cache_no_one_else_can_write_is_loaded(tsd: Tsd, tmp_path: Path) -> None:
    top = tree(tsd, tmp_path, "forged")
    tsd.ok("sync", f"{top}/", "s3://forged/")
    [cache] = caches(tsd)

    _forge(cache, top, 0o620)  # writable by the group: not loaded, every file is read
    assert "f0.txt" not in tsd.ok("sync", f"{top}/", "s3://forged/").stdout

    _forge(cache, top, 0o600)  # the user's own: trusted (that is what shows it was loaded)
    assert "f0.txt" in tsd.ok("sync", f"{top}/", "s3://forged/").stdout


def test_a_cache_file_the_user_gives_is_s3cmds_alone(tsd: Tsd, tmp_path: Path) -> None:
    top = tree(tsd, tmp_path, "theirs")
    tsd.ok(
        "--cache-file=my.cache", "sync", f"{top}/", "s3://theirs/", cwd=tmp_path,
        preexec_fn=lambda: os.umask(0o022),
    )  # fmt: skip
    mine = tmp_path / "my.cache"
    assert not caches(tsd)
    assert stat.S_IMODE(mine.stat().st_mode) == 0o644  # s3cmd's open() under umask 022
    from S3.HashCache import HashCache

    loaded = HashCache()
    loaded.load(str(mine))
    st = (top / "f0.txt").stat()
    assert loaded.md5(st.st_dev, st.st_ino, int(st.st_mtime), st.st_size) is not None
    # and it is trusted as s3cmd trusts it
    first = tsd.emulator.object("theirs", "f0.txt")
    change_unseen(top / "f0.txt")
    tsd.ok("--cache-file=my.cache", "sync", f"{top}/", "s3://theirs/", cwd=tmp_path)
    assert tsd.emulator.object("theirs", "f0.txt") == first


def test_syncs_at_once_all_succeed_and_leave_a_whole_cache(tsd: Tsd, tmp_path: Path) -> None:
    top = tree(tsd, tmp_path, "array", files=40)
    procs = [start(tsd, "sync", f"{top}/", "s3://array/") for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()
    [cache] = caches(tsd)  # no temporary file left beside it
    assert {inode for _, inode in cached(cache)} == {p.stat().st_ino for p in top.rglob("*.txt")}
    for path in top.rglob("*.txt"):
        assert tsd.emulator.object("array", str(path.relative_to(top))) == path.read_bytes()

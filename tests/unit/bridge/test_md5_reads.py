"""A large file's MD5: read once with its progress shown, remembered while the file is unchanged."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from tsd_s3cmd.bridge import md5_reads
from tsd_s3cmd.engine.part_sizes import MAX_OBJECT


@pytest.fixture
def large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(md5_reads, "LARGE", 3 * 1024 * 1024)  # "large" at 3 MiB here
    path = tmp_path / "data" / "huge.bin"
    path.parent.mkdir()
    path.write_bytes(os.urandom(4 * 1024 * 1024 + 5))
    return path


def small_read(name: object) -> str:
    raise AssertionError("s3cmd's own read is for small files only")


def private_dir(tmp_path: Path) -> Path:
    caches = tmp_path / "caches"
    caches.mkdir(mode=0o700)
    return caches / "large-files.json"


def test_the_read_is_shown_and_remembered(large: Path, tmp_path: Path) -> None:
    screen = io.StringIO()
    remembered = private_dir(tmp_path)
    reads = md5_reads.Reads(remembered, lambda: screen)
    expected = hashlib.md5(large.read_bytes()).hexdigest()
    assert reads.md5_of(str(large), small_read) == expected
    assert "reading huge.bin for its MD5: 24%" in screen.getvalue()
    assert screen.getvalue().endswith("\r\x1b[K")  # the line is taken away at the end
    assert remembered.stat().st_mode & 0o777 == 0o600

    # A second run takes the remembered MD5 (made recognisable here) and reads nothing.
    entries = json.loads(remembered.read_text())
    assert [entry["md5"] for entry in entries.values()] == [expected]
    remember(remembered, "f" * 32)
    again = md5_reads.Reads(remembered, lambda: None)
    assert again.md5_of(str(large), small_read) == "f" * 32


def remember(remembered: Path, md5: str) -> None:
    """Put ``md5`` in place of every remembered MD5."""
    entries = json.loads(remembered.read_text())
    remembered.write_text(json.dumps({k: {**v, "md5": md5} for k, v in entries.items()}))


def test_a_changed_file_is_read_again(large: Path, tmp_path: Path) -> None:
    remembered = private_dir(tmp_path)
    reads = md5_reads.Reads(remembered, lambda: None)
    reads.md5_of(str(large), small_read)
    remember(remembered, "f" * 32)
    st = large.stat()
    with large.open("r+b") as f:  # same size, and the mtime put back: only ctime moves
        f.write(b"changed")
    os.utime(large, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert reads.md5_of(str(large), small_read) == hashlib.md5(large.read_bytes()).hexdigest()


def test_small_files_take_s3cmds_read(tmp_path: Path) -> None:
    small = tmp_path / "small.bin"
    small.write_bytes(b"x")
    reads = md5_reads.Reads(private_dir(tmp_path), lambda: None)
    assert reads.md5_of(str(small), lambda name: f"s3cmd's md5 of {name}") == (
        f"s3cmd's md5 of {small}"
    )


def test_a_damaged_or_exposed_memory_is_no_memory(large: Path, tmp_path: Path) -> None:
    remembered = private_dir(tmp_path)
    remembered.write_text("{not json")
    remembered.chmod(0o600)
    expected = hashlib.md5(large.read_bytes()).hexdigest()
    assert md5_reads.Reads(remembered, lambda: None).md5_of(str(large), small_read) == expected
    remember(remembered, "f" * 32)
    remembered.chmod(0o666)  # others could have written it: not trusted, not used
    assert md5_reads.Reads(remembered, lambda: None).md5_of(str(large), small_read) == expected


def test_a_file_over_5_tib_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from S3.Exceptions import ParameterError

    too_big = tmp_path / "too big.img"
    with too_big.open("wb") as f:
        try:
            f.truncate(MAX_OBJECT + 1)
        except OSError:
            pytest.skip("this file system takes no sparse file of 5 TiB")
    with pytest.raises(ParameterError, match=r"too big\.img is 5\.00 TiB, and S3 keeps objects"):
        md5_reads.Reads(None, lambda: None).md5_of(str(too_big), small_read)

"""downloads.fetch and partials: ranges at once into a hidden file that a later run resumes.

The object is served from memory by a stand-in for the shim's range request
(the end-to-end tests do it over HTTP against the emulator); everything else
is the real code on real files.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from tsd_s3cmd.engine import downloads, partials, scheduler
from tsd_s3cmd.engine.limits import Stopped

MiB = 1024 * 1024


class Object:
    """An object in a bucket, and every range of it asked for."""

    def __init__(self, data: bytes, etag: str = '"v1"') -> None:
        self.data = data
        self.etag = etag
        self.asked: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.stop_after: int | None = None  # bytes, then the command is stopped
        self.run: scheduler.Scheduler | None = None

    def fetch_range(self, start: int, end: int, write):  # type: ignore[no-untyped-def]
        with self.lock:
            self.asked.append((start, end))
        for at in range(start, end, 256 * 1024):
            piece = self.data[at : min(at + 256 * 1024, end)]
            assert self.run is not None
            self.run.moved(len(piece))
            with self.lock:
                if self.stop_after is not None:
                    self.stop_after -= len(piece)
                    if self.stop_after < 0:
                        self.run.stop()
                        self.run.check()
            write(at, piece)
        return {"etag": self.etag}

    def fetched(self) -> int:
        return sum(b - a for a, b in self.asked)


def _fetch(obj: Object, destination: Path, workers: int = 4):  # type: ignore[no-untyped-def]
    obj.run = scheduler.Scheduler(workers)
    kept: list[tuple[str, bool]] = []
    finished = downloads.fetch(
        obj.run,
        obj.fetch_range,
        source="s3://export-bucket/big.bin",
        destination=str(destination),
        size=len(obj.data),
        part_size=5 * MiB,
        expected_md5=lambda headers: hashlib.md5(obj.data).hexdigest(),
        kept=lambda partial, keeps: kept.append((os.path.basename(partial.path), keeps)),
    )
    return finished, kept


def test_a_download_lands_whole_in_its_hidden_file_and_leaves_no_state(tmp_path: Path) -> None:
    obj = Object(os.urandom(20 * MiB + 3))
    finished, kept = _fetch(obj, tmp_path / "big.bin")
    part, state = partials.hidden_paths(str(tmp_path / "big.bin"))
    assert finished.partial.path == part
    assert Path(part).read_bytes() == obj.data
    assert not os.path.exists(state)
    assert kept == [(".big.bin.tsd-s3cmd.part", True), (".big.bin.tsd-s3cmd.part", False)]
    assert obj.fetched() == len(obj.data)
    finished.partial.close()


def test_a_stopped_download_resumes_from_what_was_written(tmp_path: Path) -> None:
    obj = Object(os.urandom(40 * MiB + 5))
    obj.stop_after = 17 * MiB
    with pytest.raises(Stopped):
        _fetch(obj, tmp_path / "big.bin")
    part, state = partials.hidden_paths(str(tmp_path / "big.bin"))
    there = partials.describe(part)
    assert there is not None and there[1] == len(obj.data)
    assert 12 * MiB <= there[0] <= 17 * MiB + 1  # every saved byte is counted
    obj.asked.clear()
    obj.stop_after = None
    finished, _ = _fetch(obj, tmp_path / "big.bin")
    assert Path(finished.partial.path).read_bytes() == obj.data
    # Only what the state did not hold came again (it is saved every few MiB).
    assert obj.fetched() <= len(obj.data) - there[0]
    assert not os.path.exists(state)
    finished.partial.close()


def _stopped(size: int, after: int, destination: Path) -> Object:
    """An object whose download into ``destination`` was stopped ``after`` bytes in."""
    obj = Object(os.urandom(size))
    obj.stop_after = after
    with pytest.raises(Stopped):
        _fetch(obj, destination)
    obj.asked.clear()
    obj.stop_after = None
    return obj


def test_a_changed_object_starts_afresh(tmp_path: Path) -> None:
    _stopped(20 * MiB, 8 * MiB, tmp_path / "big.bin")
    changed = Object(os.urandom(20 * MiB), etag='"v2"')  # same size, new contents
    finished, _ = _fetch(changed, tmp_path / "big.bin")
    assert Path(finished.partial.path).read_bytes() == changed.data
    finished.partial.close()


def test_a_corrupt_resumed_file_is_fetched_again_from_the_start(tmp_path: Path) -> None:
    obj = _stopped(20 * MiB, 12 * MiB, tmp_path / "big.bin")
    part, _ = partials.hidden_paths(str(tmp_path / "big.bin"))
    with open(part, "r+b") as f:  # a byte of what was written goes bad
        f.seek(1000)
        f.write(bytes([f.read(1)[0] ^ 0xFF]))
    finished, _ = _fetch(obj, tmp_path / "big.bin")
    assert Path(finished.partial.path).read_bytes() == obj.data
    assert obj.fetched() > len(obj.data)  # what was missing, then all of it once more
    finished.partial.close()


def test_a_second_run_for_the_same_destination_uses_a_file_of_its_own(tmp_path: Path) -> None:
    first = partials.Partial.open(str(tmp_path / "out"), "run-1")
    second = partials.Partial.open(str(tmp_path / "out"), "run-2")
    try:
        assert first.path != second.path and first.state_path is not None
        assert second.state_path is None  # nothing of it is kept for a resume
        assert ".run-2." in second.path
    finally:
        first.close()
        second.remove()
        second.close()
    third = partials.Partial.open(str(tmp_path / "out"), "run-3")  # the lock went with close
    assert third.path == first.path
    third.close()


def test_hidden_names_fit_a_file_system_with_a_long_name(tmp_path: Path) -> None:
    long = "x" * 250
    part, state = partials.hidden_paths(str(tmp_path / long))
    assert all(len(os.path.basename(p)) <= 255 for p in (part, state))
    assert os.path.dirname(part) == str(tmp_path)

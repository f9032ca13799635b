"""Nothing lost when a transfer is stopped: parts in order, signals, downloads that resume.

Uploads: whatever limits a transfer, the earliest part is served first, so a
stop loses at most what was in flight. Plain s3cmd runs beside tsd-s3cmd in
the same emulator, under the same ``--limit-rate``, and both get the same
signal at the same moment: tsd-s3cmd must have kept at least what s3cmd kept,
less one part. Downloads: a stopped download keeps its hidden file and its
state, and the same command continues it, fetching only what was missing.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import BIN
from .conftest import DEMO, Tsd
from .test_long_running import MiB, printed_resume, resume_command_from_status, start, wait_for

# Every test here runs s3cmd's code and covers what differs between its releases.
pytestmark = [pytest.mark.s3cmd, pytest.mark.versions]

PART = ["--multipart-chunk-size-mb=5"]
BLOCK = 64 * 1024


def parts_stored(tsd: Tsd, key: str, sent_after: float = 0.0) -> set[int]:
    """The part numbers of ``key`` stored by requests that came after ``sent_after``.

    By when a request came, not by its place in the log: a request of a
    stopped command may still be read (at the emulator's link rate) and logged
    while the next command runs.
    """
    return {
        int(dict(p.split("=", 1) for p in e["query"].split("&"))["partNumber"])
        for e in tsd.emulator.s3_log()
        if e["method"] == "PUT" and "partNumber=" in e["query"] and e["status"] == 200
        and e["path"].endswith("/" + key) and e["time"] >= sent_after
    }


def settled(tsd: Tsd) -> None:
    """Wait until the emulator's log stops growing (its in-flight count can stay above 0
    after a client dies mid-request: not yet understood, so not relied on)."""
    last = -1
    while last != (last := len(tsd.emulator.log())):
        time.sleep(1)


@pytest.fixture
def side_by_side(make_tsd, tmp_path: Path):  # type: ignore[no-untyped-def]
    """An emulator that serves plain s3cmd too (no token check), and a 4-part file."""
    tsd = make_tsd("--no-token-check")
    tsd.register()
    tsd.ok("mb", "s3://order", input=DEMO)
    data = tmp_path / "big.bin"
    data.write_bytes(os.urandom(20 * MiB))
    return tsd, data


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"])
def test_a_stopped_parallel_put_keeps_what_plain_s3cmd_keeps_and_resumes(  # type: ignore[no-untyped-def]
    side_by_side, stop: str
) -> None:
    tsd, data = side_by_side
    number = getattr(signal, stop)
    rate = ["--limit-rate=2m"]  # 2 MiB/s: a 5 MiB part every 2.5 s
    plain = subprocess.Popen(
        [str(BIN / "s3cmd"), "-c", str(tsd.home / ".s3cfg"), *PART, *rate, "put", str(data),
         "s3://order/plain.bin"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=tsd.env,
        start_new_session=True,
    )  # fmt: skip
    ours = start(tsd, *PART, *rate, "put", str(data), "s3://order/ours.bin")
    # Both have parts stored (2.5 s a part); ours starts later (it logs in first).
    wait_for(lambda: len(parts_stored(tsd, "plain.bin")) >= 2)
    wait_for(lambda: len(parts_stored(tsd, "ours.bin")) >= 2)
    plain_had, had = parts_stored(tsd, "plain.bin"), parts_stored(tsd, "ours.bin")
    plain.send_signal(number)
    ours.send_signal(number)
    plain.wait(timeout=30)
    _, err = ours.communicate(timeout=30)
    settled(tsd)
    kept_plain = parts_stored(tsd, "plain.bin")
    kept = parts_stored(tsd, "ours.bin")
    # What was stored when the signal came stays, for plain s3cmd and for us alike.
    assert kept_plain >= plain_had, (kept_plain, plain_had)
    assert kept >= had, (kept, had)
    assert kept == set(range(1, len(kept) + 1))  # in order: the earliest parts first
    assert tsd.emulator.object("order", "ours.bin") is None

    stderr = err.decode()
    if stop == "SIGKILL":
        command = resume_command_from_status(tsd)[1:]
    else:
        assert ours.returncode == {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}[stop], stderr
        assert "Traceback" not in stderr
        command = printed_resume(stderr)
    since = time.time()
    tsd.ok(*command)
    resent = parts_stored(tsd, "ours.bin", since)
    assert not resent & kept  # none of the stored parts went again
    assert resent | kept == {1, 2, 3, 4}
    assert tsd.emulator.object("order", "ours.bin") == data.read_bytes()


@pytest.fixture
def exported(make_tsd, tmp_path: Path):  # type: ignore[no-untyped-def]
    """An emulator whose export-bucket holds a 40 MiB object, with the export login cached.

    (make_tsd puts a big.bin of its own there.)
    """
    export = tmp_path / "export"
    export.mkdir()
    data = os.urandom(40 * MiB + 5)
    (export / "large.bin").write_bytes(data)
    tsd = make_tsd()
    tsd.register()
    tsd.ok("ls", "s3://export-bucket", input=DEMO)
    return tsd, data


def served(tsd: Tsd, key: str, since: int) -> int:
    """The bytes the emulator sent of ``key`` since ``since``."""
    return sum(
        e.get("bytes_out", 0)
        for e in tsd.emulator.s3_log()[since:]
        if e["method"] == "GET" and e["path"].endswith("/" + key)
    )


def written(partial: Path, data: bytes) -> int:
    """How much of ``data`` the hidden file holds, in whole blocks (unwritten ones are zeros)."""
    held = partial.read_bytes()
    return sum(
        len(data[at : at + BLOCK])
        for at in range(0, len(held), BLOCK)
        if held[at : at + BLOCK] == data[at : at + BLOCK]
    )


def killed_get(tsd: Tsd, out: Path, after: int) -> Path:
    """A get of large.bin to ``out`` killed with SIGKILL once ``after`` bytes are there."""
    proc = start(tsd, *PART, "--limit-rate=8m", "get", "s3://export-bucket/large.bin", str(out))
    partial = out.parent / f".{out.name}.tsd-s3cmd.part"
    wait_for(lambda: partial.exists() and partial.stat().st_size > after)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not out.exists()
    return partial


@pytest.mark.slow
def test_a_killed_download_continues_where_it_stopped(exported, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tsd, data = exported
    out = tmp_path / "out" / "large.bin"
    out.parent.mkdir()
    partial = killed_get(tsd, out, after=16 * MiB)
    there = written(partial, data)
    assert there >= 8 * MiB

    status = tsd.ok("--status").stdout
    assert "Unfinished downloads:" in status and "s3://export-bucket/large.bin" in status
    assert str(out) in status and "of 40.0 MiB there" in status

    since = len(tsd.emulator.s3_log())
    tsd.ok(*PART, "get", "s3://export-bucket/large.bin", str(out))
    assert out.read_bytes() == data
    assert served(tsd, "large.bin", since) <= len(data) - there + 16 * MiB
    assert [p.name for p in out.parent.iterdir()] == ["large.bin"]  # no hidden file left
    assert "Unfinished downloads:" not in tsd.ok("--status").stdout


@pytest.mark.slow
def test_a_changed_object_is_fetched_afresh(exported, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tsd, data = exported
    out = tmp_path / "large.bin"
    killed_get(tsd, out, after=12 * MiB)
    changed = os.urandom(len(data))  # same size, other bytes: another ETag
    tsd.emulator.place("p11", "export-bucket", "large.bin", changed)
    tsd.ok(*PART, "get", "s3://export-bucket/large.bin", str(out))
    assert out.read_bytes() == changed


@pytest.mark.slow
def test_a_corrupt_partial_file_is_never_moved_into_place(exported, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tsd, data = exported
    out = tmp_path / "large.bin"
    partial = killed_get(tsd, out, after=12 * MiB)
    with open(partial, "r+b") as f:  # one byte of what was written goes bad
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    since = len(tsd.emulator.s3_log())
    tsd.ok(*PART, "get", "s3://export-bucket/large.bin", str(out))
    assert out.read_bytes() == data
    assert served(tsd, "large.bin", since) >= len(data)  # fetched again from the start
    assert not partial.exists()


@pytest.mark.slow
@pytest.mark.parametrize(("stop", "status"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stopped_download_leaves_nothing_under_its_name_and_resumes_from_elsewhere(  # type: ignore[no-untyped-def]
    exported, tmp_path: Path, stop: str, status: int
) -> None:
    tsd, data = exported
    target = tsd.home / "target"  # named relative to where the command runs
    target.mkdir()
    proc = start(tsd, *PART, "--limit-rate=8m", "get", "s3://export-bucket/large.bin",
                 "target/large.bin")  # fmt: skip
    partial = target / ".large.bin.tsd-s3cmd.part"
    wait_for(lambda: partial.exists() and partial.stat().st_size > 8 * MiB)
    proc.send_signal(getattr(signal, stop))
    _, err = proc.communicate(timeout=15)
    stderr = err.decode()
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr and "is unfinished" in stderr
    assert not (target / "large.bin").exists()
    assert partial.exists()  # kept, to continue from

    line = next(line for line in tsd.ok("--status").stdout.splitlines()
                if line.strip().startswith("continue:"))  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tsd.ok(*shlex.split(line.split("continue:", 1)[1])[1:], cwd=elsewhere)
    assert (target / "large.bin").read_bytes() == data
    assert not list(elsewhere.iterdir())
    assert sorted(p.name for p in target.iterdir()) == ["large.bin"]


@pytest.mark.slow
def test_two_downloads_to_one_destination_at_once_do_not_corrupt_each_other(  # type: ignore[no-untyped-def]
    exported, tmp_path: Path
) -> None:
    tsd, data = exported
    out = tmp_path / "large.bin"
    both = [
        start(tsd, *PART, "--limit-rate=20m", "get", "--force", "s3://export-bucket/large.bin",
              str(out))
        for _ in range(2)
    ]  # fmt: skip
    for proc in both:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert out.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".large")] == []


@pytest.mark.slow
def test_sigterm_during_a_sync_down_stops_it_with_143_and_nothing_half_written(  # type: ignore[no-untyped-def]
    exported, tmp_path: Path
) -> None:
    tsd, _ = exported
    for i in range(30):
        tsd.emulator.place("p11", "export-bucket", f"many/{i:02d}.bin", os.urandom(300_000))
    tsd.emulator.settings(link_rate=300_000)
    proc = start(tsd, "sync", "s3://export-bucket/many/", f"{tmp_path / 'down'}/")
    down = tmp_path / "down"
    # Stopped once a file is whole and others are on their way (1 s a file, ten at once).
    wait_for(lambda: down.exists() and any(not p.name.startswith(".") for p in down.iterdir()))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 143, err.decode()
    for path in (tmp_path / "down").iterdir():
        if not path.name.startswith("."):  # whatever is under a name of its own is whole
            assert path.stat().st_size == 300_000, path
    tsd.emulator.settings(link_rate=0)
    tsd.ok("sync", "s3://export-bucket/many/", f"{tmp_path / 'down'}/")
    assert len([p for p in (tmp_path / "down").iterdir() if not p.name.startswith(".")]) == 30


@pytest.mark.slow
def test_each_unfinished_upload_of_a_sync_resumes_on_its_own(tsd: Tsd, tmp_path: Path) -> None:
    """s3cmd takes an --upload-id for every large file of a command: so one put each."""
    tsd.register()
    tsd.ok("mb", "s3://several", input=DEMO)
    source = tsd.home / "data"  # named relative to where the command runs
    source.mkdir()
    # Two uploads held open at once, whatever the machine's load: four requests at a time,
    # each part 10 s on the emulator's slow link. a.bin's six parts come first (earliest
    # work first), so its parts 1-4 go at once and are stored after 10 s; b.bin's initiate
    # goes before them or, at the latest, beside a.bin's parts 5 and 6, which cannot be
    # stored before 20 s. Stopped in between: both uploads begun, neither complete.
    # (Under --limit-rate, as this test once ran, the budget may move one file at a time,
    # and whether b.bin had begun when the signal came was a matter of timing.)
    files = {"a.bin": os.urandom(30 * MiB), "b.bin": os.urandom(15 * MiB)}
    for name, data in files.items():
        (source / name).write_bytes(data)
    tsd.emulator.settings(link_rate=MiB // 2)
    proc = start(tsd, *PART, "--parallel=4", "sync", "data/", "s3://several/d/")

    def begun() -> int:
        """Uploads the run has recorded as begun: what it has to print resume commands for.

        (Not the emulator's answer to the initiate: the run may be stopped
        after that answer and before it has read and recorded the upload.)
        """
        journal = tsd.config_dir / "uploads.json"
        return len(json.loads(journal.read_text())) if journal.exists() else 0

    def seen(since: float) -> str:
        """What the emulator saw of both uploads, timed from ``since``."""
        return "".join(f"\n  {e['time'] - since:+.3f} s {e['method']} {e['path']}?{e['query']}"
                       f" {e['status']}" for e in tsd.emulator.s3_log()
                       if "/several/d/" in e["path"])  # fmt: skip

    waiting = time.time()
    try:
        wait_for(lambda: len(parts_stored(tsd, "a.bin")) >= 1 and begun() == 2)
    except AssertionError as err:
        raise AssertionError(f"{err}; uploads begun: {begun()}{seen(waiting)}") from None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    stderr = err.decode()
    assert proc.returncode == 143, stderr
    commands = [shlex.split(line)[1:] for line in stderr.splitlines()
                if line.startswith("  tsd-s3cmd ") and "--upload-id" in line]  # fmt: skip
    assert len(commands) == 2 and all(c[-3] == "put" and c[-1].startswith("s3://several/d/")
                                      for c in commands), stderr + seen(waiting)  # fmt: skip
    tsd.emulator.settings(link_rate=0)  # the resumes as printed, at full speed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = {name: parts_stored(tsd, name) for name in files}
    since = time.time()
    for command in commands:
        tsd.ok(*command, cwd=elsewhere)
    for name in files:
        assert not parts_stored(tsd, name, since) & before[name]
    since = time.time()
    tsd.ok(*PART, "sync", "data/", "s3://several/d/")  # and the sync has nothing left to do
    # (By when each request came: a part that the stopped run had sent may be read and
    # logged only now, as the emulator reads what was sent at its slow link's rate.)
    assert not [e for e in tsd.emulator.s3_log() if e["method"] == "PUT" and e["time"] >= since]
    for name, data in files.items():
        assert tsd.emulator.object("several", f"d/{name}") == data

"""Files of any size S3 holds, streams, and uploads whose completion's answer is lost."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from ..conftest import BIN
from .conftest import DEMO, Tsd
from .test_long_running import (
    bucket_and_file,
    printed_resume,
    start,
    stored_parts,
    wait_for,
)

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code

MiB = 1024 * 1024
GiB = 1024 * MiB


def listed_parts(tsd: Tsd, uri: str, upload_id: str) -> dict[int, int]:
    """Part number -> size, as ``tsd-s3cmd listmp`` shows the parts of an upload."""
    out = tsd.ok("listmp", uri, upload_id).stdout
    parts = {}
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) == 4 and fields[1].isdigit():  # modified, number, ETag, size
            parts[int(fields[1])] = int(fields[3])
    return parts


@pytest.mark.slow
def test_a_file_of_more_than_10000_parts_goes_in_larger_parts(tsd: Tsd, tmp_path: Path) -> None:
    """A sparse 50 GiB file at 5 MiB parts: parts of 6 MiB from the first, and a SIGTERM
    then stops with the resume command (--no-check-md5 spares reading 50 GiB first)."""
    huge = bucket_and_file(tsd, "huge", tmp_path / "huge.bin", 0)
    size = 50 * GiB + 1
    with huge.open("wb") as f:
        f.truncate(size)
    proc = start(
        tsd, "--multipart-chunk-size-mb=5", "--limit-rate=10m", "--no-check-md5",
        "put", str(huge), "s3://huge/huge.bin",
    )  # fmt: skip
    wait_for(lambda: stored_parts(tsd), timeout=120)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    stderr = err.decode()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert re.search(r"needs more than 10,000 parts of 5 MiB: it goes in parts of 6 MiB", stderr)
    resume = printed_resume(stderr)
    upload_id = resume[resume.index("--upload-id") + 1]
    parts = listed_parts(tsd, "s3://huge/huge.bin", upload_id)
    assert parts and set(parts.values()) == {6 * MiB}, parts
    assert 6 * MiB >= size / 10_000
    tsd.ok("abortmp", "s3://huge/huge.bin", upload_id)


@pytest.mark.slow
def test_a_resumed_upload_keeps_the_part_size_it_began_with(tsd: Tsd, tmp_path: Path) -> None:
    data = bucket_and_file(tsd, "keep", tmp_path / "keep.bin", 40 * MiB + 5)
    proc = start(
        tsd, "--parallel", "1", "--multipart-chunk-size-mb=5", "--limit-rate=5m", "put",
        str(data), "s3://keep",
    )  # fmt: skip
    wait_for(lambda: len(stored_parts(tsd)) >= 2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err.decode()
    before = set(stored_parts(tsd))
    resume = printed_resume(err.decode())
    since = len(tsd.emulator.s3_log())
    # Another part size now: the upload still goes on in the 5 MiB parts it began with.
    size_at = resume.index("--multipart-chunk-size-mb=5")
    resume[size_at] = "--multipart-chunk-size-mb=7"
    tsd.ok(*resume)
    resent = set(stored_parts(tsd, since))
    assert not resent & before
    assert resent | before == set(range(1, 10))
    assert tsd.emulator.object("keep", "keep.bin") == data.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["10", "1"])
def test_a_stream_from_stdin_round_trips(tsd: Tsd, tmp_path: Path, parallel: str) -> None:
    data = bucket_and_file(tsd, "stream", tmp_path / "stream.bin", 23 * MiB + 17)
    with data.open("rb") as stdin:
        sent = subprocess.run(
            [str(BIN / "tsd-s3cmd"), "--parallel", parallel, "--multipart-chunk-size-mb=5",
             "put", "-", "s3://stream/piped.bin"],
            stdin=stdin, capture_output=True, env=tsd.env, cwd=tsd.home, timeout=180,
            start_new_session=True,
        )  # fmt: skip
    assert sent.returncode == 0, sent.stderr.decode()
    assert sorted(stored_parts(tsd)) == [1, 2, 3, 4, 5]
    assert tsd.emulator.object("stream", "piped.bin") == data.read_bytes()


@pytest.mark.slow
@pytest.mark.versions  # s3cmd 2.3 reads MD5s through S3.Utils, 2.4 through S3.FileDict
def test_the_md5_read_of_a_large_file_is_shown_and_done_once(tsd: Tsd, tmp_path: Path) -> None:
    """--dry-run: s3cmd lists (and reads) the files, then stops before sending."""
    tree = tmp_path / "tree"
    tree.mkdir()
    big = bucket_and_file(tsd, "md5s", tree / "big.img", 0)
    with big.open("wb") as f:
        f.truncate(GiB + 1)
    first = tsd.ok("--progress", "--dry-run", "put", str(big), "s3://md5s/")
    assert "reading big.img for its MD5: 50%" in first.stdout, first.stdout
    assert "reading big.img for its MD5: 100%\r\x1b[K" in first.stdout
    # Another put of the same file, and a sync of its tree, read it no more.
    again = tsd.ok("--progress", "--dry-run", "put", str(big), "s3://md5s/")
    synced = tsd.ok("--progress", "--dry-run", "sync", f"{tree}/", "s3://md5s/tree/")
    assert "upload:" in synced.stdout
    assert "for its MD5" not in again.stdout + synced.stdout
    # Changed, it is read again.
    with big.open("r+b") as f:
        f.write(b"new")
    assert "reading big.img" in tsd.ok("--progress", "--dry-run", "put", str(big), "s3://md5s/").stdout


@pytest.mark.slow
def test_a_stored_object_unlike_its_md5_is_refused_with_what_is_wrong(  # type: ignore[no-untyped-def]
    make_tsd, tmp_path: Path
) -> None:
    tsd = make_tsd("--no-token-check")  # lets the test write into export-bucket
    data = bucket_and_file(tsd, "unused", tmp_path / "odd.bin", 16 * MiB)
    tsd.ok("put", str(data), "s3://export-bucket/odd.bin")
    # The data stays, the record of its MD5 is made wrong (as by a tool that changed one).
    tsd.ok("modify", "--add-header=x-amz-meta-s3cmd-attrs:md5:" + "0" * 32,
           "s3://export-bucket/odd.bin")  # fmt: skip
    got = tsd.run("--multipart-chunk-size-mb=5", "get", "s3://export-bucket/odd.bin",
                  str(tmp_path / "got.bin"), input=DEMO)  # an s3export login  # fmt: skip
    assert got.returncode != 0, tsd.ok("info", "s3://export-bucket/odd.bin", input=DEMO).stdout
    assert "does not match the MD5 recorded with it" in got.stderr, got.stderr
    assert "run again continues" not in got.stderr
    assert "Unfinished downloads" not in tsd.ok("--status").stdout
    assert not (tmp_path / "got.bin").exists()
    assert not list(tmp_path.glob(".got.bin*"))


def completes(tsd: Tsd) -> list[int]:
    """The statuses of the completions the emulator answered, in order."""
    return [
        e["status"] for e in tsd.emulator.s3_log()
        if e["method"] == "POST" and "uploadId=" in e["query"]
    ]  # fmt: skip


def open_uploads(tsd: Tsd, bucket: str) -> list[str]:
    """The ids of the multipart uploads still open in ``bucket``."""
    out = tsd.ok("multipart", f"s3://{bucket}").stdout
    return [line.split("\t")[-1] for line in out.splitlines() if "\ts3://" in line]


GATEWAY_FAULTS = {
    # nginx gives up at 3 s while the store completes (and answers at 5 s); the retry
    # meets NoSuchUpload.
    "504 then NoSuchUpload": ({"read_timeout": 3, "complete_delay": 5}, [504, 404]),
    "200 with an Error": ({"complete_errors": 1}, [200, 200]),
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", GATEWAY_FAULTS)
@pytest.mark.parametrize("parallel", ["10", "1"])
@pytest.mark.parametrize("command", ["put", "sync"])
def test_a_lost_answer_at_the_finish_line_is_an_upload_done(  # type: ignore[no-untyped-def]
    tsd: Tsd, tmp_path: Path, command: str, parallel: str, fault: str
) -> None:
    settings, answered = GATEWAY_FAULTS[fault]
    (tmp_path / "tree").mkdir()
    data = bucket_and_file(tsd, "finish", tmp_path / "tree" / "big.bin", 12 * MiB + 3)
    tsd.emulator.settings(**settings)
    options = ["--parallel", parallel, "--multipart-chunk-size-mb=5"]
    if command == "put":
        result = tsd.run(*options, "put", str(data), "s3://finish/big.bin")
    else:
        result = tsd.run(*options, "sync", f"{tmp_path / 'tree'}/", "s3://finish/")
    assert result.returncode == 0, result.stderr
    assert "unfinished" not in result.stderr and "--upload-id" not in result.stderr
    assert tsd.emulator.object("finish", "big.bin") == data.read_bytes()
    assert completes(tsd) == answered
    assert sorted(stored_parts(tsd)) == [1, 2, 3]  # no part sent twice
    assert open_uploads(tsd, "finish") == []
    assert "Unfinished uploads" not in tsd.ok("--status").stdout


@pytest.mark.slow
def test_a_completion_that_truly_failed_leaves_a_resume_that_works(
    tsd: Tsd, tmp_path: Path
) -> None:
    data = bucket_and_file(tsd, "failing", tmp_path / "big.bin", 12 * MiB + 3)
    cfg = tsd.home / "few-retries.s3cfg"  # one retry, not five (45 s of waiting)
    cfg.write_text((tsd.home / ".s3cfg").read_text() + "max_retries = 1\n")
    cfg.chmod(0o600)
    tsd.emulator.settings(complete_errors=2)
    failed = tsd.run("-c", str(cfg), "--multipart-chunk-size-mb=5", "put", str(data),
                     "s3://failing/big.bin")  # fmt: skip
    assert failed.returncode != 0, failed.stderr
    assert completes(tsd) == [200, 200]
    assert tsd.emulator.object("failing", "big.bin") is None
    resume = printed_resume(failed.stderr)
    since = len(tsd.emulator.s3_log())
    tsd.ok(*resume)
    assert stored_parts(tsd, since) == []  # the parts were all there
    assert tsd.emulator.object("failing", "big.bin") == data.read_bytes()
    assert open_uploads(tsd, "failing") == []


@pytest.mark.slow
def test_a_copy_in_parts_whose_answer_is_lost_is_a_copy_done(tsd: Tsd, tmp_path: Path) -> None:
    data = bucket_and_file(tsd, "copies", tmp_path / "big.bin", 12 * MiB + 3)
    cfg = tsd.home / "copy.s3cfg"  # s3cmd copies in parts above this size (1 GiB by default)
    cfg.write_text((tsd.home / ".s3cfg").read_text() + "multipart_copy_chunk_size_mb = 5\n")
    cfg.chmod(0o600)
    tsd.ok("--multipart-chunk-size-mb=5", "put", str(data), "s3://copies/a.bin")
    since = len(completes(tsd))
    tsd.emulator.settings(**GATEWAY_FAULTS["504 then NoSuchUpload"][0])
    copied = tsd.run("-c", str(cfg), "cp", "s3://copies/a.bin", "s3://copies/b.bin")
    assert copied.returncode == 0, copied.stderr
    assert completes(tsd)[since:] == [504, 404]
    assert tsd.emulator.object("copies", "b.bin") == data.read_bytes()
    assert open_uploads(tsd, "copies") == []

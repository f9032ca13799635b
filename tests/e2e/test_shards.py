"""One sync spread over the tasks of a job array (``--shard``), with one login for them all.

The tests with ``slurm`` submit real job arrays to the local cluster that
.ci/slurm starts (tests/slurm.py), and skip, saying why, where there is
none. Every task runs the test venv's tsd-s3cmd with the test's own HOME,
against the test's token-checking emulator.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

from tsd_s3cmd.keyspace.shards import share_of

from ..slurm import Slurm
from .conftest import Tsd
from .test_long_running import MiB, start, wait_for
from .test_many_files import log_in, loggedin, requests_since

__all__ = ["loggedin"]  # a fixture of the tests here too

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code

SMALL_RANGES = {"TSD_S3CMD_BATCH": "20"}
TALLY = re.compile(r"tsd-s3cmd: share (\d+)/(\d+): (\d+) files, (\d+) moved, (\d+) skipped, "
                   r"(\d+) failed(?:, (\d+) deleted)?")  # fmt: skip


def make(root: Path, small: int, large: int = 0) -> list[str]:
    """``small`` files of a few bytes, 100 a directory, and ``large`` of two 5 MiB parts."""
    names = [f"d{i // 100:02d}/f{i:04d}.txt" for i in range(small)]
    names += [f"big/{i}.bin" for i in range(large)]
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(6 * MiB) if name.startswith("big/") else name.encode())
    return sorted(names)


def stored(tsd: Tsd, bucket: str, prefix: str) -> list[str]:
    listing = tsd.ok("ls", "--recursive", f"s3://{bucket}/{prefix}").stdout
    return sorted(line.split(f"s3://{bucket}/{prefix}", 1)[1] for line in listing.splitlines())


def sent(log: list[dict], bucket: str, prefix: str) -> list[str]:
    """The files the requests in ``log`` sent: a PUT of the whole, or a multipart start."""
    return sorted(
        e["path"].split(f"/{bucket}/{prefix}", 1)[1]
        for e in log
        if e["path"].startswith(f"/{bucket}/{prefix}") and e["status"] == 200
        and ((e["method"] == "PUT" and not e["query"]) or e["query"] in ("uploads", "uploads="))
    )  # fmt: skip


def tally(stderr: str) -> dict[str, int]:
    [found] = TALLY.findall(stderr)
    keys = ("share", "of", "files", "moved", "skipped", "failed", "deleted")
    return {k: int(v or 0) for k, v in zip(keys, found)}


@pytest.mark.slow
def test_four_shares_outside_slurm_do_what_one_sync_does(loggedin: Tsd, tmp_path: Path) -> None:
    """Each share sends exactly its own files (by the stable hash of the path), says so
    in one line, and the four together leave nothing for one unsharded sync to do."""
    tsd = loggedin
    names = make(tmp_path / "src", 60)
    seen: list[str] = []
    for k in range(4):
        since = len(tsd.emulator.s3_log())
        done = tsd.ok("--shard", f"{k}/4", "sync", f"{tmp_path / 'src'}/", "s3://tree/s/",
                      extra_env=SMALL_RANGES)  # fmt: skip
        mine = sent(requests_since(tsd, since), "tree", "s/")
        assert mine == [n for n in names if share_of(n, 4) == k]
        said = tally(done.stderr)
        assert (said["share"], said["of"], said["files"], said["moved"]) == (
            k, 4, len(mine), len(mine)
        )
        seen += mine
    assert sorted(seen) == names  # each exactly once
    again = tsd.ok("sync", f"{tmp_path / 'src'}/", "s3://tree/s/")
    assert "upload:" not in again.stdout
    for k in range(4):  # and run again, each share finds its files there
        said = tally(tsd.ok("--shard", f"{k}/4", "sync", f"{tmp_path / 'src'}/",
                            "s3://tree/s/").stderr)  # fmt: skip
        assert said["moved"] == 0 and said["skipped"] == said["files"]


@pytest.mark.slow
def test_shares_with_delete_removed_delete_exactly_what_was_deleted(
    loggedin: Tsd, tmp_path: Path
) -> None:
    """Each share deletes the objects of its own keys; one share may have no file left at
    all and still deletes, as the unsharded sync would."""
    tsd = loggedin
    names = make(tmp_path / "src", 40)
    tsd.ok("sync", f"{tmp_path / 'src'}/", "s3://tree/del/")
    gone = [n for n in names if share_of(n, 4) == 2] + names[:3]  # share 2 loses every file
    for name in gone:
        (tmp_path / "src" / name).unlink()
    deleted = 0
    for k in range(4):
        done = tsd.ok("--shard", f"{k}/4", "--delete-removed", "sync", f"{tmp_path / 'src'}/",
                      "s3://tree/del/", extra_env=SMALL_RANGES)  # fmt: skip
        deleted += tally(done.stderr)["deleted"]
        assert all(share_of(n, 4) == k for n in re.findall(r"delete: 's3://tree/del/(.*)'",
                                                           done.stdout))  # fmt: skip
    assert deleted == len(set(gone))
    assert stored(tsd, "tree", "del/") == sorted(set(names) - set(gone))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--shard", "4/4", "sync", "SRC/", "s3://tree/x/"], "must be 0 to 3"),
        (["--shard", "0/0", "sync", "SRC/", "s3://tree/x/"], "at least one share"),
        (["--shard", "x/3", "sync", "SRC/", "s3://tree/x/"], "takes K/N"),
        (["--shard", "slurm", "sync", "SRC/", "s3://tree/x/"], "SLURM_ARRAY_TASK_ID is not set"),
        (["--shard", "0/2", "get", "s3://export-bucket/a", "SRC/"], "--shard applies to sync"),
        (["--shard", "0/2", "--status"], "--shard is for a command that moves files"),
    ],
)
def test_a_share_that_cannot_be_is_one_line_and_nothing_is_sent(
    loggedin: Tsd, tmp_path: Path, args: list[str], says: str
) -> None:
    tsd = loggedin
    (tmp_path / "src").mkdir()
    before = len(tsd.emulator.log())
    result = tsd.run(*(a.replace("SRC", str(tmp_path / "src")) for a in args))
    assert result.returncode == 64, result.stderr
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(tsd.emulator.log()) == before


@pytest.mark.slow
def test_what_a_stopped_share_leaves_says_its_share(loggedin: Tsd, tmp_path: Path) -> None:
    """A share's upload resumes alone (a put of one file has no share); the command run
    again is the share as K/N, which works at a terminal too; --status names the share."""
    tsd = loggedin
    make(tmp_path / "src", 0, large=8)
    task = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3"}
    mine = [n for n in (f"big/{i}.bin" for i in range(8)) if share_of(n, 4) == 1]
    assert mine  # the tree has files of share 1
    proc = start(tsd, "--shard", "slurm", "--multipart-chunk-size-mb=5", "--limit-rate=4m",
                 "sync", f"{tmp_path / 'src'}/", "s3://tree/stop/",
                 extra_env=task)  # fmt: skip
    journal = tsd.config_dir / "uploads.json"
    wait_for(lambda: journal.exists() and json.loads(journal.read_text()))
    proc.send_signal(15)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err.decode()
    resume = [line for line in err.decode().splitlines() if "--upload-id" in line]
    assert resume and all("--shard" not in line for line in resume)
    status = tsd.ok("--status").stdout
    assert re.search(r"-> s3://tree/stop/big/\d\.bin  \(share 1/4\)", status), status


# -- real job arrays ---------------------------------------------------------------------


def _sync_script(src: Path, remote: str, *options: str) -> str:
    return (
        f"tsd-s3cmd --shard slurm {' '.join(options)} sync '{src}/' '{remote}'\n"
    )


@pytest.mark.slow
def test_an_array_of_four_stores_every_file_once_after_one_login(
    slurm: Slurm, loggedin: Tsd, tmp_path: Path
) -> None:
    """400 files, 10 of them in parts: each stored exactly once between the four tasks,
    each task a fair share, no login during the array; --shard 1/4 at the terminal picks
    task 1's files; a second array with --delete-removed removes the 12 files deleted."""
    tsd = loggedin
    names = make(tmp_path / "src", 390, large=10)
    logins = len(tsd.auth_calls()) + len(tsd.auth_calls("refresh"))
    since = len(tsd.emulator.s3_log())
    env = {**tsd.env, "TSD_S3CMD_PARALLEL": "4"}  # four tasks share two cores
    result = slurm.run_array(
        _sync_script(tmp_path / "src", "s3://tree/array/", "--multipart-chunk-size-mb=5"),
        tasks=range(4), env=env, cwd=tsd.home, timeout=300,
    ).check()  # fmt: skip
    assert len(tsd.auth_calls()) + len(tsd.auth_calls("refresh")) == logins
    assert sent(requests_since(tsd, since), "tree", "array/") == names  # each exactly once
    assert stored(tsd, "tree", "array/") == names
    shares = {task.task_id: tally(task.stderr) for task in result.tasks}
    assert all(50 <= s["moved"] <= 150 and s["failed"] == 0 for s in shares.values()), shares
    assert sum(s["moved"] for s in shares.values()) == 400

    task1 = sorted(re.findall(r"upload: '[^']*/src/([^']*)'", result.task(1).stdout))
    picked = tsd.ok("--shard", "1/4", "--dry-run", "sync", f"{tmp_path / 'src'}/",
                    "s3://tree/elsewhere/").stdout  # fmt: skip
    assert sorted(re.findall(r"upload: '[^']*/src/([^']*)'", picked)) == task1

    gone = names[5:395:33]  # 12 files, small and large
    assert len(gone) == 12
    for name in gone:
        (tmp_path / "src" / name).unlink()
    second = slurm.run_array(
        _sync_script(tmp_path / "src", "s3://tree/array/", "--delete-removed"),
        tasks=range(4), env=env, cwd=tsd.home, timeout=300,
    ).check()  # fmt: skip
    deleted = [d for task in second.tasks
               for d in re.findall(r"delete: 's3://tree/array/(.*)'", task.stdout)]  # fmt: skip
    assert sorted(deleted) == sorted(gone)
    assert stored(tsd, "tree", "array/") == sorted(set(names) - set(gone))


@pytest.mark.slow
def test_a_token_that_runs_out_while_the_array_runs_is_refreshed_once_for_all(
    slurm: Slurm, make_tsd, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """The tasks start with a fresh token and wait; the token runs out; then all four go
    at once: one of them refreshes it (one refresh token spent), the others use that."""
    tsd = log_in(make_tsd("--token-lifetime", "8"), "tree")
    make(tmp_path / "src", 40)
    go = tmp_path / "go"
    waiting = tmp_path / "waiting"
    waiting.mkdir()
    script = (
        f"touch {waiting}/$SLURM_ARRAY_TASK_ID\n"
        f"while [ ! -e {go} ]; do sleep 0.1; done\n"
        + _sync_script(tmp_path / "src", "s3://tree/late/")
    )
    refreshes = len(tsd.auth_calls("refresh"))
    tokens = tsd.config_dir / "tokens.json"
    expires = json.loads(tokens.read_text())["prod"]["p11"]["s3import"]["expires"]
    def release() -> None:
        wait_for(lambda: len(list(waiting.iterdir())) == 4, timeout=120)
        wait_for(lambda: time.time() > expires - 1, timeout=60)  # no longer fresh
        go.touch()

    releaser = threading.Thread(target=release)
    releaser.start()
    result = slurm.run_array(script, tasks=range(4), env=tsd.env, cwd=tsd.home, timeout=300)
    releaser.join()
    result.check()
    assert len(tsd.auth_calls("refresh")) == refreshes + 1
    assert len(tsd.auth_calls()) == 2  # the two logins of log_in, none in the array
    assert stored(tsd, "tree", "late/") == sorted(p.relative_to(tmp_path / "src").as_posix()
                                                  for p in (tmp_path / "src").rglob("*.txt"))


@pytest.mark.slow
def test_a_task_without_a_usable_token_fails_at_once_in_one_line(
    slurm: Slurm, tsd: Tsd, tmp_path: Path
) -> None:
    tsd.register()
    make(tmp_path / "src", 5)
    result = slurm.run_array(
        _sync_script(tmp_path / "src", "s3://tree/none/"), tasks=range(2), env=tsd.env,
        cwd=tsd.home, timeout=120,
    )  # fmt: skip
    for task in result.tasks:
        assert task.returncode == 77, task.describe()
        errors = [line for line in task.stderr.splitlines() if line.startswith("tsd-s3cmd:")]
        assert len(errors) == 1 and "no terminal to log in at" in errors[0], task.stderr
        assert "tsd-s3cmd --login --project p11 sync" in errors[0]
    assert not tsd.auth_calls()  # nobody was asked, nothing was tried

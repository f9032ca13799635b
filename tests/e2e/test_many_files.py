"""Many files at once: put, get, cp, mv and sync of a tree, all under one budget of requests.

What moves, what is printed and what the exit status is stay s3cmd's
decisions; only when files move changes. So most tests here run plain s3cmd
or ``--parallel 1`` beside the default in the same emulator and compare. The
emulator's ``link_rate`` setting holds each request to a long link's
per-connection speed, so that requests overlap for long enough to be seen.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from ..conftest import BIN
from .conftest import DEMO, Tsd
from .test_faults import patient_s3cfg
from .test_long_running import MiB, start, wait_for
from .test_setup import converse

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code

PART = ["--multipart-chunk-size-mb=5"]
# Names of every kind a directory may hold: nested, spaces, unicode.
NAMES = ["a.txt", "sub/b.txt", "sub/deeper/c d.txt", "sub/r\u00e9sum\u00e9.txt"]


def make_tree(root: Path, small: int = 24, large: int = 2) -> dict[str, bytes]:
    """Small files of a few KiB beside files of several 5 MiB parts; their bytes by path."""
    files: dict[str, bytes] = {}
    for i in range(small):
        files[f"small/{i:03d}.txt"] = os.urandom(1024 + i * 97)
    for name in NAMES:
        files[name] = os.urandom(3000)
    for i in range(large):
        files[f"large/{i}.bin"] = os.urandom(12 * MiB + 7 * (i + 1))
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def tree_of(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def objects(tsd: Tsd, bucket: str, prefix: str, names: list[str], project: str = "p11") -> dict:
    return {n: tsd.emulator.object(bucket, prefix + n, project) for n in names}


def requests_since(tsd: Tsd, since: int) -> list[dict]:
    return tsd.emulator.s3_log()[since:]


def most_at_once(entries: list[dict]) -> int:
    """The most of ``entries`` that had arrived and were not yet answered at one moment.

    A client with N requests on their way never has more than N so: it sends
    the next only once an answer has come, and the answer began before. (The
    emulator's ``in_flight`` counts a request until its server has closed the
    answer, which on a busy machine can be a while after the client sent the next.)
    """
    return max(
        (sum(1 for o in entries if o["time"] <= e["time"] < o["answered"]) for e in entries),
        default=0,
    )


def lines(output: str) -> list[str]:
    """s3cmd's per-file lines without what differs from run to run (times, speeds, [k of n])."""
    cleaned = []
    for line in output.splitlines():
        line = re.sub(r" \(\d+ bytes in .*?\)", "", line)
        line = re.sub(r"\s*\[\d+ of \d+\]$", "", line)
        cleaned.append(line.rstrip())
    return sorted(line for line in cleaned if line and not line.startswith("Done."))


def log_in(tsd: Tsd, bucket: str) -> Tsd:
    """Register, make ``bucket`` (the import login) and list export-bucket (the export one)."""
    tsd.register()
    tsd.ok("mb", f"s3://{bucket}", input=DEMO)
    tsd.ok("ls", "s3://export-bucket", input=DEMO)
    return tsd


@pytest.fixture
def loggedin(tsd: Tsd) -> Tsd:
    """A registered user with both tokens cached and a bucket to write to."""
    return log_in(tsd, "tree")


@pytest.mark.slow
@pytest.mark.versions  # s3cmd's transfer loops but remote_copy, each rewritten
@pytest.mark.parametrize("workers", ["1", "10"])
def test_a_tree_goes_up_down_and_across_byte_for_byte(
    loggedin: Tsd, tmp_path: Path, workers: str
) -> None:
    tsd = loggedin
    files = make_tree(tmp_path / "up")
    names = sorted(files)
    run = ["--parallel", workers, *PART]

    since = len(tsd.emulator.s3_log())
    tsd.ok(*run, "sync", f"{tmp_path / 'up'}/", "s3://tree/synced/")
    assert objects(tsd, "tree", "synced/", names) == files
    puts = [e for e in requests_since(tsd, since) if e["method"] == "PUT"]
    # Every file went once (two files of three parts each): nothing sent twice.
    assert len(puts) == len(files) - 2 + 2 * 3, [e["path"] for e in puts]
    if workers != "1":
        assert max(e["in_flight"] for e in requests_since(tsd, since)) > 1

    tsd.ok(*run, "put", "--recursive", f"{tmp_path / 'up'}/", "s3://tree/put/")
    assert objects(tsd, "tree", "put/", names) == files

    tsd.ok(*run, "cp", "--recursive", "s3://tree/put/", "s3://tree/copied/")
    tsd.ok(*run, "mv", "--recursive", "s3://tree/copied/", "s3://tree/moved/")
    tsd.ok(*run, "sync", "s3://tree/moved/", "s3://tree/across/")
    assert objects(tsd, "tree", "moved/", names) == files
    assert objects(tsd, "tree", "across/", names) == files
    assert not any(objects(tsd, "tree", "copied/", names).values())

    # Down from export-bucket: place the tree there as from inside TSD.
    for name, data in files.items():
        tsd.emulator.place("p11", "export-bucket", f"tree/{name}", data)
    since = len(tsd.emulator.s3_log())
    tsd.ok(*run, "sync", "s3://export-bucket/tree/", f"{tmp_path / 'down'}/")
    assert tree_of(tmp_path / "down") == files
    assert not [e for e in requests_since(tsd, since) if e["method"] == "HEAD"]
    (tmp_path / "got").mkdir()  # s3cmd's get wants the directory there
    tsd.ok(*run, "get", "--recursive", "s3://export-bucket/tree/", f"{tmp_path / 'got'}/")
    assert tree_of(tmp_path / "got") == files
    assert all(e["status"] < 400 for e in tsd.emulator.s3_log())


@pytest.mark.slow
def test_several_files_named_on_the_command_line(loggedin: Tsd, tmp_path: Path) -> None:
    tsd = loggedin
    files = make_tree(tmp_path / "up", small=6, large=0)
    paths = [str(tmp_path / "up" / "small" / f"{i:03d}.txt") for i in range(6)]
    out = tsd.ok("put", *paths, "s3://tree/named/").stdout
    assert len(out.splitlines()) == 6
    assert sorted(re.findall(r"\[(\d+) of 6\]", out)) == [str(i) for i in range(1, 7)]
    for i in range(6):
        tsd.emulator.place("p11", "export-bucket", f"n/{i}.txt", files[f"small/{i:03d}.txt"])
    target = tmp_path / "got"
    target.mkdir()
    tsd.ok("get", *[f"s3://export-bucket/n/{i}.txt" for i in range(6)], f"{target}/")
    assert {p.name: p.read_bytes() for p in target.iterdir()} == {
        f"{i}.txt": files[f"small/{i:03d}.txt"] for i in range(6)
    }


@pytest.mark.slow
def test_a_sync_with_excludes_and_delete_removed_does_what_plain_s3cmd_does(  # type: ignore[no-untyped-def]
    make_tsd, tmp_path: Path
) -> None:
    tsd = log_in(make_tsd("--no-token-check"), "cmp")
    make_tree(tmp_path / "src", small=20, large=1)
    s3cmd = [str(BIN / "s3cmd"), "-c", str(tsd.home / ".s3cfg")]
    # Both destinations hold the same things already: some to keep, some to delete.
    for prefix in ("plain/", "ours/"):
        for name in ("small/000.txt", "gone.txt", "old/x.txt", "skip-me.log"):
            tsd.emulator.place("p11", "cmp", prefix + name, b"old " + name.encode())
    (tmp_path / "src" / "skip-me.log").write_bytes(b"excluded\n")
    options = [*PART, "--exclude", "*.log", "--exclude", "large/*", "--delete-removed"]
    plain = subprocess.run(
        [*s3cmd, *options, "sync", f"{tmp_path / 'src'}/", "s3://cmp/plain/"],
        capture_output=True, env=tsd.env, cwd=tsd.home,
    )  # fmt: skip
    ours = tsd.run(*options, "sync", f"{tmp_path / 'src'}/", "s3://cmp/ours/")
    assert ours.returncode == plain.returncode == 0, ours.stderr
    assert lines(ours.stdout) == lines(plain.stdout.decode().replace("/plain/", "/ours/"))
    listing = tsd.ok("ls", "--recursive", "s3://cmp/").stdout
    stored = [line.split("s3://cmp/", 1)[1] for line in listing.splitlines()]
    assert sorted(k[len("ours/"):] for k in stored if k.startswith("ours/")) == sorted(
        k[len("plain/"):] for k in stored if k.startswith("plain/")
    )
    assert "ours/skip-me.log" in stored and "ours/gone.txt" not in stored  # excluded, deleted


@pytest.mark.slow
@pytest.mark.versions  # remote_copy, the seventh of s3cmd's transfer loops
def test_a_sync_copies_remotely_what_is_already_there_as_plain_s3cmd_does(  # type: ignore[no-untyped-def]
    make_tsd, tmp_path: Path
) -> None:
    """A new local file whose MD5 an object at the destination has is copied there, not sent.

    That is s3cmd's ``remote_copy`` loop, which tsd-s3cmd runs several at once.
    """
    tsd = log_in(make_tsd("--no-token-check"), "dup")
    files = make_tree(tmp_path / "src", small=6, large=0)
    s3cmd = [str(BIN / "s3cmd"), "-c", str(tsd.home / ".s3cfg")]
    for prefix in ("plain/", "ours/"):
        tsd.ok("sync", f"{tmp_path / 'src'}/", f"s3://dup/{prefix}")
    copies = {f"again/{i}.txt": files[f"small/{i:03d}.txt"] for i in range(4)}
    for rel, data in copies.items():
        (tmp_path / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / rel).write_bytes(data)
    plain = subprocess.run(
        [*s3cmd, "sync", f"{tmp_path / 'src'}/", "s3://dup/plain/"],
        capture_output=True, env=tsd.env, cwd=tsd.home,
    )  # fmt: skip
    since = len(tsd.emulator.s3_log())
    ours = tsd.run("sync", f"{tmp_path / 'src'}/", "s3://dup/ours/")
    assert ours.returncode == plain.returncode == 0, ours.stderr
    said = lines(ours.stdout)
    assert said == lines(plain.stdout.decode().replace("/plain/", "/ours/"))
    assert len([line for line in said if line.startswith("remote copy: ")]) == 4, said
    assert objects(tsd, "dup", "ours/", sorted(copies)) == copies
    # One copy each (and, as s3cmd does after a copy, the source's ACL set on it): nothing sent.
    sent = [e for e in requests_since(tsd, since) if e["method"] == "PUT" and not e["query"]]
    assert len(sent) == 4, sent


@pytest.mark.slow
def test_parallel_1_sends_what_plain_s3cmd_sends_for_many_files(  # type: ignore[no-untyped-def]
    make_tsd, tmp_path: Path
) -> None:
    tsd = log_in(make_tsd("--no-token-check"), "same")
    files = make_tree(tmp_path / "src", small=5, large=1)
    for name, data in files.items():
        tsd.emulator.place("p11", "export-bucket", f"t/{name}", data)
    s3cmd = [str(BIN / "s3cmd"), "-c", str(tsd.home / ".s3cfg")]
    paths = [str(tmp_path / "src" / "small" / f"{i:03d}.txt") for i in range(3)]
    commands = [
        [*PART, "put", *paths, "s3://same/named/"],
        [*PART, "put", "--recursive", f"{tmp_path / 'src'}/", "s3://same/tree/"],
        [*PART, "get", "--recursive", "--force", "s3://export-bucket/t/", "DEST/"],
        [*PART, "sync", f"{tmp_path / 'src'}/", "s3://same/synced/"],
        [*PART, "sync", "s3://export-bucket/t/", "DEST/"],
    ]

    def normalised(since: int) -> list[tuple[str, str, str]]:
        return [
            (e["method"], e["path"], re.sub(r"uploadId=[^&]*", "uploadId=ID", e["query"]))
            for e in tsd.emulator.s3_log()[since:]
        ]

    for n, args in enumerate(commands):
        plain_dest, our_dest = tmp_path / f"plain{n}", tmp_path / f"ours{n}"
        plain_dest.mkdir()
        our_dest.mkdir()
        since = len(tsd.emulator.s3_log())
        argv = [a.replace("DEST", str(plain_dest)) for a in args]
        subprocess.run([*s3cmd, *argv], check=True, capture_output=True, env=tsd.env)
        plain = normalised(since)
        subprocess.run([*s3cmd, "del", "--recursive", "--force", "s3://same/"],
                       check=True, capture_output=True, env=tsd.env)  # fmt: skip
        since = len(tsd.emulator.s3_log())
        tsd.ok("--parallel", "1", *[a.replace("DEST", str(our_dest)) for a in args])
        assert normalised(since) == plain, args
        subprocess.run([*s3cmd, "del", "--recursive", "--force", "s3://same/"],
                       check=True, capture_output=True, env=tsd.env)  # fmt: skip


@pytest.mark.slow
def test_files_that_fail_for_good_give_ex_partial_and_the_others_are_stored(
    loggedin: Tsd, tmp_path: Path
) -> None:
    tsd = loggedin
    files = make_tree(tmp_path / "up", small=16, large=0)
    bad = ["up/small/003.txt", "up/small/011.txt"]
    tsd.emulator.faults(fail_keys=bad, status=503)
    sync = ["-c", patient_s3cfg(tsd), "sync", f"{tmp_path / 'up'}/", "s3://tree/up/"]
    first = tsd.run(*sync)
    assert first.returncode == 2, first.stderr  # s3cmd's EX_PARTIAL
    assert "Traceback" not in first.stderr
    for key in bad:
        assert re.search(rf"Upload of '.*{key[3:]}' failed too many times", first.stderr)
    stored = objects(tsd, "tree", "up/", sorted(files))
    assert {n for n, data in stored.items() if data is None} == {k[3:] for k in bad}
    assert all(data == files[n] for n, data in stored.items() if data is not None)
    tsd.emulator.faults(fail_keys=[])
    tsd.ok(*sync)
    assert objects(tsd, "tree", "up/", sorted(files)) == files


@pytest.mark.slow
def test_a_download_that_fails_leaves_the_others_and_stop_on_error_stops_as_s3cmd_does(  # type: ignore[no-untyped-def]
    make_tsd, tmp_path: Path
) -> None:
    tsd = log_in(make_tsd("--no-token-check"), "unused")
    for i in range(40):
        tsd.emulator.place("p11", "export-bucket", f"many/{i:02d}.txt", b"x" * 2000 + bytes([i]))
    tsd.emulator.faults(fail_keys=["many/02.txt"], status=404)  # gone since it was listed
    got = tsd.run("sync", "s3://export-bucket/many/", f"{tmp_path / 'all'}/")
    assert got.returncode == 2, got.stderr
    assert "many/02.txt" in got.stderr
    assert len(list((tmp_path / "all").iterdir())) == 39

    # --stop-on-error: the same exit status as plain s3cmd, and nothing new started after.
    s3cmd = [str(BIN / "s3cmd"), "-c", str(tsd.home / ".s3cfg")]
    plain = subprocess.run(
        [*s3cmd, "--stop-on-error", "sync", "s3://export-bucket/many/", f"{tmp_path / 'p'}/"],
        capture_output=True, env=tsd.env,
    )  # fmt: skip
    tsd.emulator.settings(link_rate=20_000)  # 0.1 s a file: the others are still to start
    since = len(tsd.emulator.s3_log())
    ours = tsd.run("--parallel", "4", "--stop-on-error", "sync", "s3://export-bucket/many/",
                   f"{tmp_path / 'ours'}/")  # fmt: skip
    assert ours.returncode == plain.returncode != 0, (ours.stderr, plain.stderr)
    gets = [e for e in requests_since(tsd, since) if e["method"] == "GET" and "/many/" in e["path"]
            and e["query"] == ""]  # fmt: skip
    # 02 failed at once; at most the four in flight then (and the three before it) went.
    assert len(gets) <= 3 + 4 + 1, [e["path"] for e in gets]
    assert not list((tmp_path / "ours").glob("*.tsd-s3cmd*"))


@pytest.mark.slow
def test_many_small_files_move_several_at_once_under_one_budget(
    loggedin: Tsd, tmp_path: Path
) -> None:
    tsd = loggedin
    make_tree(tmp_path / "up", small=60, large=0)
    tsd.emulator.settings(link_rate=100_000)  # a long link: each file takes a while
    since = len(tsd.emulator.s3_log())
    proc = start(tsd, "--parallel", "6", "sync", f"{tmp_path / 'up'}/", "s3://tree/budget/")
    threads = [0]

    def count_threads() -> bool:
        try:
            threads[0] = max(threads[0], len(os.listdir(f"/proc/{proc.pid}/task")))
        except FileNotFoundError:
            return True
        return proc.poll() is not None

    wait_for(count_threads, timeout=120, interval=0.05)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    log = requests_since(tsd, since)
    puts = [e for e in log if e["method"] == "PUT"]
    assert len(puts) == 64
    # The budget, all of it, and not one per file.
    assert 5 <= most_at_once(puts) <= 6
    assert threads[0] <= 2 * 6 + 2, threads  # file and part workers, not a thread per file


@pytest.mark.slow
def test_one_renewal_per_token_lifetime_during_a_sync_of_many_files(  # type: ignore[no-untyped-def]
    make_tsd, tmp_path: Path
) -> None:
    tsd = make_tsd("--token-lifetime", "4", "--refresh-count", "100", export=False)
    tsd.register()
    tsd.ok("mb", "s3://renew", input=DEMO)
    make_tree(tmp_path / "up", small=120, large=0)
    tsd.emulator.settings(link_rate=8_000)  # about 0.3 s a file, 4 at once: 9 s in all
    tsd.ok("--parallel", "4", "sync", f"{tmp_path / 'up'}/", "s3://renew/")
    refreshes = [e["time"] for e in tsd.auth_calls("refresh")]
    assert refreshes
    assert all(b - a > 2 for a, b in zip(refreshes, refreshes[1:])), refreshes
    assert all(e["status"] < 400 for e in tsd.emulator.s3_log())


@pytest.mark.slow
def test_at_a_terminal_one_live_line_under_the_files_lines(loggedin: Tsd, tmp_path: Path) -> None:
    tsd = loggedin
    make_tree(tmp_path / "up", small=30, large=1)
    tsd.emulator.settings(link_rate=2_000_000)
    code, screen = converse(tsd, [*PART, "sync", f"{tmp_path / 'up'}/", "s3://tree/shown/"], [])
    assert code == 0, screen
    assert re.search(r"\r\x1b\[K\d+ of 35 files, [\d.]+ \w+ of 12\.\d MiB, ", screen), screen
    # Each file's line whole, as s3cmd prints it; the live line is taken away at the end.
    for line in screen.replace("\r\x1b[K", "\n").splitlines():
        assert not line or line.startswith(("upload: '", "Done.")) or " of 35 files, " in line
    assert screen.count("upload: '") == 35
    assert screen.rstrip("\r\n").endswith(("Done.", "\x1b[K")) or "Done." in screen

    logged = tsd.ok("sync", f"{tmp_path / 'up'}/", "s3://tree/logged/")  # a batch log
    assert "\r" not in logged.stdout and logged.stdout.count("upload: '") == 35


@pytest.mark.slow
def test_ctrl_c_during_a_sync_of_many_files_stops_promptly(loggedin: Tsd, tmp_path: Path) -> None:
    tsd = loggedin
    make_tree(tmp_path / "up", small=80, large=1)
    tsd.emulator.settings(link_rate=200_000)
    proc = start(tsd, *PART, "sync", f"{tmp_path / 'up'}/", "s3://tree/halt/")
    wait_for(lambda: tsd.emulator.in_flight() >= 3)  # in full swing
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()


@pytest.mark.slow
def test_a_file_that_vanishes_meanwhile_gets_s3cmds_message_and_the_others_go(
    loggedin: Tsd, tmp_path: Path
) -> None:
    tsd = loggedin
    files = make_tree(tmp_path / "up", small=40, large=0)
    tsd.emulator.settings(link_rate=20_000)  # the last files are a few seconds away
    since = len(tsd.emulator.s3_log())
    proc = start(tsd, "--parallel", "2", "sync", f"{tmp_path / 'up'}/", "s3://tree/gone/")
    wait_for(lambda: any(e["method"] == "PUT" for e in requests_since(tsd, since)))
    (tmp_path / "up" / "small" / "039.txt").unlink()  # listed, and gone before its turn
    _, err = proc.communicate(timeout=120)
    stderr = err.decode()
    assert proc.returncode == 2, stderr  # EX_PARTIAL
    assert re.search(r"Upload of '.*small/039.txt' is not possible", stderr), stderr
    assert "Traceback" not in stderr
    stored = objects(tsd, "tree", "gone/", sorted(files))
    assert stored.pop("small/039.txt") is None
    assert stored == {n: d for n, d in files.items() if n != "small/039.txt"}

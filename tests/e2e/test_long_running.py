"""Long uploads and batch jobs: refresh in flight, shared logins, resume, renewal."""

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

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code

MiB = 1024 * 1024


def wait_for(predicate, timeout: float = 60, interval: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def stored_parts(tsd: Tsd, since: int = 0) -> list[int]:
    return [
        int(dict(p.split("=", 1) for p in e["query"].split("&"))["partNumber"])
        for e in tsd.emulator.s3_log()[since:]
        if e["method"] == "PUT" and "partNumber=" in e["query"] and e["status"] == 200
    ]


def bucket_and_file(tsd: Tsd, bucket: str, path: Path, size: int) -> Path:
    """Register, log in by making ``bucket``, and write ``size`` random bytes to ``path``."""
    tsd.register()
    tsd.ok("mb", f"s3://{bucket}", input=DEMO)
    path.write_bytes(os.urandom(size))
    return path


def start(
    tsd: Tsd, *args: str, cwd: Path | None = None, extra_env: dict[str, str] | None = None
) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "tsd-s3cmd"), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**tsd.env, **(extra_env or {})},
        cwd=cwd or tsd.home,
        start_new_session=True,
    )


@pytest.mark.slow
def test_upload_ten_token_lifetimes_long_needs_no_prompt(make_tsd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tsd = make_tsd("--token-lifetime", "4", "--refresh-count", "100", export=False)
    data = bucket_and_file(tsd, "long", tmp_path / "long.bin", 24 * MiB)
    began = time.monotonic()
    # One part at a time, so that parts start all along the upload and each needs
    # a fresh token (test_parallel.py renews for parts in flight together).
    tsd.ok(
        "--parallel", "1", "--multipart-chunk-size-mb=5", "--limit-rate=1m", "put", str(data),
        "s3://long",
    )
    elapsed = time.monotonic() - began
    assert elapsed >= 20, elapsed
    assert tsd.emulator.object("long", "long.bin") == data.read_bytes()
    assert len(tsd.auth_calls("token")) == 1  # the login before the transfer, no other
    assert len(tsd.auth_calls("refresh")) >= 3
    assert all(e["status"] < 400 for e in tsd.emulator.s3_log())


@pytest.mark.slow
@pytest.mark.apart  # sixteen processes that must contend for one refresh
def test_sixteen_processes_share_one_refresh(make_tsd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tsd = make_tsd("--token-lifetime", "2", export=False)
    tsd.register()
    tsd.ok("mb", "s3://array", input=DEMO)
    time.sleep(2.5)  # the cached access token has expired; its refresh token has not
    tsd.emulator.settings(token_lifetime=600)
    before = len(tsd.emulator.log())
    for i in range(16):
        (tmp_path / f"task-{i}.txt").write_text(f"task {i}\n")
    procs = [start(tsd, "put", str(tmp_path / f"task-{i}.txt"), "s3://array/") for i in range(16)]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()
    after = tsd.emulator.log()[before:]
    refreshes = [e for e in after if e["kind"] == "auth"]
    assert [e["path"] for e in refreshes] == ["/v1/p11/auth/refresh/token"]
    for i in range(16):
        assert tsd.emulator.object("array", f"task-{i}.txt") == f"task {i}\n".encode()
    json.loads((tsd.config_dir / "tokens.json").read_text())


def printed_resume_line(stderr: str) -> str:
    """The resume command a failed upload printed, as a line for the shell."""
    return next(
        line.strip() for line in stderr.splitlines() if line.startswith("  tsd-s3cmd --upload-id")
    )


def printed_resume(stderr: str) -> list[str]:
    """The arguments of the resume command a failed upload printed (without the program)."""
    return shlex.split(printed_resume_line(stderr))[1:]


def status_resume_line(tsd: Tsd) -> str:
    """The resume command ``--status`` lists, as a line for the shell."""
    status = tsd.ok("--status").stdout
    line = next(line for line in status.splitlines() if line.strip().startswith("resume:"))
    return line.split("resume:", 1)[1].strip()


def resume_command_from_status(tsd: Tsd) -> list[str]:
    return shlex.split(status_resume_line(tsd))


@pytest.mark.slow
@pytest.mark.versions  # interrupt and resume
def test_sigkill_mid_upload_then_resume_sends_only_missing_parts(tsd: Tsd, tmp_path: Path) -> None:
    data = bucket_and_file(tsd, "resume", tmp_path / "resume.bin", 40 * MiB + 5)
    proc = start(  # one part at a time: test_parallel.py kills a parallel upload
        tsd, "--parallel", "1", "--multipart-chunk-size-mb=5", "--limit-rate=5m", "put", str(data),
        "s3://resume",
    )
    wait_for(lambda: len(stored_parts(tsd)) >= 4)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    before_kill = set(stored_parts(tsd))
    assert 4 <= len(before_kill) < 9
    assert tsd.emulator.object("resume", "resume.bin") is None

    command = resume_command_from_status(tsd)
    assert command[:2] == ["tsd-s3cmd", "--upload-id"]
    since = len(tsd.emulator.s3_log())
    tsd.ok(*command[1:])
    resent = set(stored_parts(tsd, since))
    assert not resent & before_kill, (resent, before_kill)
    assert resent | before_kill == set(range(1, 10))
    assert tsd.emulator.object("resume", "resume.bin") == data.read_bytes()
    assert "Unfinished uploads" not in tsd.ok("--status").stdout


@pytest.mark.slow
@pytest.mark.versions  # interrupt and resume
def test_ctrl_c_prints_the_resume_command(tsd: Tsd, tmp_path: Path) -> None:
    data = bucket_and_file(tsd, "ctrlc", tmp_path / "ctrl c.bin", 30 * MiB)
    proc = start(  # one part at a time: test_parallel.py interrupts a parallel upload
        tsd, "--parallel", "1", "--multipart-chunk-size-mb=5", "--limit-rate=5m", "put", str(data),
        "s3://ctrlc",
    )
    wait_for(lambda: len(stored_parts(tsd)) >= 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    stderr = err.decode()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    resume = printed_resume(stderr)
    since = len(tsd.emulator.s3_log())
    before = set(stored_parts(tsd))
    tsd.ok(*resume)
    assert not set(stored_parts(tsd, since)) & before
    assert tsd.emulator.object("ctrlc", "ctrl c.bin") == data.read_bytes()


@pytest.mark.slow
@pytest.mark.versions  # interrupt and resume
def test_resume_commands_work_from_another_directory(tsd: Tsd, tmp_path: Path) -> None:
    """Started with relative paths, resumed from elsewhere through a shell: printed and listed."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (work / "data dir").mkdir(parents=True)
    elsewhere.mkdir()
    (work / "my s3cfg").write_bytes((tsd.home / ".s3cfg").read_bytes())
    tsd.register()
    tsd.ok("mb", "s3://anywhere", input=DEMO)

    def interrupted(name: str, signum: int) -> tuple[bytes, str]:
        """Put ``data dir/NAME`` with relative paths, stopped after two parts: (data, stderr)."""
        data = os.urandom(20 * MiB)
        (work / "data dir" / name).write_bytes(data)
        since = len(tsd.emulator.s3_log())
        proc = start(
            tsd, "-c", "my s3cfg", "--parallel", "1", "--limit-rate=5m",
            "--multipart-chunk-size-mb=5", "put", f"data dir/{name}", "s3://anywhere/", cwd=work,
        )  # fmt: skip
        wait_for(lambda: len(stored_parts(tsd, since)) >= 2)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        return data, err.decode()

    def run_in_shell(line: str) -> None:
        done = subprocess.run(
            ["bash", "-c", line], env=tsd.env, cwd=elsewhere, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    data, stderr = interrupted("printed.bin", signal.SIGINT)
    printed = printed_resume_line(stderr)
    assert shlex.split(printed)[3:] == [
        "-c", f"{work}/my s3cfg", "--parallel", "1", "--limit-rate=5m",
        "--multipart-chunk-size-mb=5", "put", f"{work}/data dir/printed.bin", "s3://anywhere/",
    ]  # fmt: skip
    run_in_shell(printed)
    assert tsd.emulator.object("anywhere", "printed.bin") == data

    data, _ = interrupted("listed.bin", signal.SIGKILL)
    listed = status_resume_line(tsd)
    assert f"{work}/data dir/listed.bin" in shlex.split(listed)
    run_in_shell(listed)
    assert tsd.emulator.object("anywhere", "listed.bin") == data
    assert "Unfinished uploads" not in tsd.ok("--status").stdout


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_no_refresh_left_stops_cleanly_with_the_resume_command(  # type: ignore[no-untyped-def]
    make_tsd, tmp_path: Path, workers: str
) -> None:
    tsd = make_tsd("--token-lifetime", "3", "--refresh-count", "1", export=False)
    data = bucket_and_file(tsd, "spent", tmp_path / "spent.bin", 30 * MiB)
    result = tsd.run(
        "--parallel", workers, "--multipart-chunk-size-mb=5", "--limit-rate=2m", "put", str(data),
        "s3://spent",
    )
    assert result.returncode == 77, result.stderr
    assert "Traceback" not in result.stderr
    assert "ran out and it cannot be refreshed any more" in result.stderr
    resume = printed_resume(result.stderr)
    assert len(tsd.auth_calls("refresh")) == 1
    tsd.emulator.settings(token_lifetime=600)
    tsd.ok(*resume, input=DEMO)  # a new login, then the rest of the parts
    assert tsd.emulator.object("spent", "spent.bin") == data.read_bytes()


def test_basic_uploads_with_stdin_closed(make_tsd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tsd = make_tsd("--token-lifetime", "2", "--refresh-count", "0")
    tsd.register()
    tsd.ok("--basic", "mb", "s3://batch")
    (tmp_path / "one.txt").write_text("1\n")
    time.sleep(2.2)  # expired, and no refresh token: a new basic token, still no prompt
    tsd.ok("--basic", "put", str(tmp_path / "one.txt"), "s3://batch/")
    assert tsd.emulator.object("batch", "one.txt") == b"1\n"
    assert len(tsd.auth_calls("basic")) == 2 and not tsd.auth_calls("token")
    refused = tsd.run("--basic", "get", "s3://export-bucket/results.csv", "x")
    assert refused.returncode == 77 and "--basic gets import tokens only" in refused.stderr


def test_expired_api_key_is_renewed(make_tsd) -> None:  # type: ignore[no-untyped-def]
    tsd = make_tsd("--api-key-lifetime", "2", export=False)
    tsd.register()
    old = json.loads((tsd.config_dir / "credentials.json").read_text())["prod"]["p11"]
    time.sleep(2.5)
    result = tsd.ok("mb", "s3://renewed", input=DEMO)
    assert "renewed the expired API key for p11 (prod)" in result.stderr
    new = json.loads((tsd.config_dir / "credentials.json").read_text())["prod"]["p11"]
    assert new["api_key"] != old["api_key"] and new["user"] == "p11-demo"
    assert len(tsd.auth_calls("secret")) == 1


def test_logout_of_one_project_only(make_tsd) -> None:  # type: ignore[no-untyped-def]
    tsd = make_tsd("--user", "p12-alice:alice-pw:654321", export=False)
    alice = "p12-alice\nalice-pw\n654321\n"
    tsd.register()
    tsd.register(alice)
    tsd.ok("--project", "p11", "mb", "s3://alpha", input=DEMO)
    p12_cfg = tsd.emulator.s3cfg_for("p12", tsd.home / "p12.s3cfg")
    tsd.ok("--project", "p12", "-c", str(p12_cfg), "mb", "s3://alpha", input=alice)
    assert "forgot 1 cached token (p12)" in tsd.ok("--logout", "--project", "p12").stderr
    status = tsd.ok("--status").stdout
    assert "s3import token for p11-demo" in status and "p12-alice:" not in status
    assert "forgot 1 cached token (prod)" in tsd.ok("--logout", "--env", "prod").stderr


def test_a_tacl_registration_is_reused(tsd: Tsd) -> None:
    import requests

    answer = requests.get(
        f"{tsd.emulator.url}/v1/p11/auth/tsd/api_key",
        json={"user_name": "p11-demo", "password": "demo-password", "otp": "123456"},
        timeout=30,
    )
    tacl = Path(tsd.env["XDG_CONFIG_HOME"]) / "tacl" / "config"
    tacl.parent.mkdir(parents=True)
    tacl.write_text(f"prod:\n  p11: {answer.json()['api_key']}\n")
    tacl.chmod(0o600)
    result = tsd.ok("mb", "s3://from-tacl", input=DEMO)
    assert "using the API key that tsd-api-client (tacl) registered for p11 (prod)" in result.stderr
    assert "registered (tsd-api-client's key)" in tsd.ok("--status").stdout

"""--setup, --forget and per-project s3cmd configs: several projects from one shell."""

from __future__ import annotations

import os
import pty
import select
import stat
import time
from pathlib import Path
from typing import Callable

import pytest

from ..conftest import BIN
from .conftest import ALICE, DEMO, Tsd

LOGINS = {"p11": DEMO, "p22": ALICE}


def key_lines(tsd: Tsd, pnum: str) -> str:
    keys = tsd.emulator.keys(pnum)
    return f"{keys['access_key']}\n{keys['secret_key']}\n"


def set_up(tsd: Tsd, *pnums: str) -> None:
    for pnum in pnums:
        out = tsd.ok("--setup", "--project", pnum, input=key_lines(tsd, pnum) + LOGINS[pnum])
        assert f"registered {pnum} (prod) as {LOGINS[pnum].split()[0]}" in out.stderr


def stored(tsd: Tsd, pnum: str) -> Path:
    return tsd.config_dir / f"prod.{pnum}.s3cfg"


def snapshot(tsd: Tsd) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in tsd.config_dir.iterdir() if p.is_file()}


@pytest.mark.s3cmd
def test_two_projects_set_up_from_stdin_each_works_with_project_alone(
    two_projects: Tsd, tmp_path: Path
) -> None:
    tsd = two_projects
    set_up(tsd, "p11", "p22")
    for pnum in ("p11", "p22"):
        assert stat.S_IMODE(stored(tsd, pnum).stat().st_mode) == 0o600
        text = stored(tsd, pnum).read_text()
        host = tsd.emulator.url.split("://")[1]
        for line in (f"host_base = {host}", "use_https = False", "signature_v2 = False",
                     "bucket_location = us-east-1"):  # fmt: skip
            assert line in text.splitlines(), line
    assert stat.S_IMODE(tsd.config_dir.stat().st_mode) == 0o700

    for pnum in ("p11", "p22"):
        local = tmp_path / f"{pnum}.txt"
        local.write_text(f"{pnum}'s results\n")
        # The same bucket name in both: each project has its own buckets.
        tsd.ok("--project", pnum, "mb", "s3://shared", input=LOGINS[pnum])
        tsd.ok("--project", pnum, "put", str(local), "s3://shared/results.txt")
        listing = tsd.ok("--project", pnum, "ls", "s3://shared", input=LOGINS[pnum])
        assert "s3://shared/results.txt" in listing.stdout
        tsd.emulator.place(pnum, "export-bucket", "report.txt", f"{pnum}'s report\n".encode())
        tsd.ok("--project", pnum, "get", "s3://export-bucket/report.txt", str(tmp_path / pnum))
        assert (tmp_path / pnum).read_text() == f"{pnum}'s report\n"

    for pnum in ("p11", "p22"):
        assert tsd.emulator.object("shared", "results.txt", pnum) == f"{pnum}'s results\n".encode()
    s3 = tsd.emulator.s3_log()
    assert {e["project"] for e in s3} == {"p11", "p22"}
    assert all(e["status"] == 200 for e in s3), [e for e in s3 if e["status"] != 200]
    assert not (tsd.home / ".s3cfg").exists()

    status = tsd.ok("--status").stdout
    for pnum in ("p11", "p22"):
        assert f"s3cmd config: {stored(tsd, pnum)} (stored by --setup)" in status


@pytest.mark.s3cmd
def test_setup_again_replaces_the_keys_and_does_not_register_twice(two_projects: Tsd) -> None:
    tsd = two_projects
    tsd.ok("--setup", "--project", "p11", input="WRONGKEY\nwrong-secret\n" + DEMO)
    refused = tsd.run("--project", "p11", "mb", "s3://nope", input=DEMO)
    assert refused.returncode != 0 and "InvalidAccessKeyId" in refused.stderr
    # Registered already: the two key lines are all it reads.
    again = tsd.ok("--setup", "--project", "p11", input=key_lines(tsd, "p11"))
    assert "p11 (prod) is registered already (as p11-demo)" in again.stderr
    assert len(tsd.auth_calls("api_key")) == 1
    tsd.ok("mb", "s3://yes")  # the only project: --project is not even needed
    assert tsd.emulator.s3_log()[-1]["status"] == 200


@pytest.mark.s3cmd
def test_a_user_s3cfg_is_left_alone_and_used_where_nothing_is_stored(two_projects: Tsd) -> None:
    tsd = two_projects
    own = tsd.home / ".s3cfg"
    tsd.emulator.s3cfg_for("p11", own)  # the user's own file, as written before --setup
    before = own.read_bytes(), own.stat().st_mtime_ns
    set_up(tsd, "p22")
    tsd.ok("--register", "--env", "prod", input=DEMO)
    tsd.ok("--project", "p11", "mb", "s3://from-s3cfg", input=DEMO)  # no stored config: ~/.s3cfg
    tsd.ok("--project", "p22", "mb", "s3://from-stored", input=ALICE)
    assert (own.read_bytes(), own.stat().st_mtime_ns) == before
    assert [e["project"] for e in tsd.emulator.s3_log()] == ["p11", "p22"]
    status = tsd.ok("--status").stdout
    assert f"s3cmd config: {own} (none stored;" in status
    # -c FILE wins over the stored config, which then need not even be intact.
    stored(tsd, "p22").write_text("[default]\n")
    p22_own = tsd.emulator.s3cfg_for("p22", tsd.home / "p22.s3cfg")
    tsd.ok("--project", "p22", "-c", str(p22_own), "ls", "s3://from-stored", input=ALICE)


@pytest.mark.s3cmd
@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: p.chmod(0o644), "can be read by other users; fix it with: chmod 600"),
        (lambda p: p.write_text(p.read_text().replace("secret_key", "#")),
         "is damaged (no secret_key); store it again with: "
         "tsd-s3cmd --setup --env prod --project p22"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00junk"), "is damaged (not text)"),
        (lambda p: p.write_text(p.read_text().replace("127.0.0.1", "s3.example.org")),
         "sends requests to s3.example.org:"),
    ],
    ids=["world-readable", "no-secret-key", "binary", "other-host"],
)  # fmt: skip
def test_a_bad_stored_config_is_refused_in_one_line_and_nothing_moves(
    two_projects: Tsd, damage: Callable[[Path], None], expected: str
) -> None:
    tsd = two_projects
    set_up(tsd, "p11", "p22")
    damage(stored(tsd, "p22"))
    before, requests = snapshot(tsd), len(tsd.emulator.log())
    refused = tsd.run("--project", "p22", "ls", input=ALICE)
    assert refused.returncode == 78
    assert refused.lines == [refused.lines[0]] and refused.lines[0].startswith(
        f"tsd-s3cmd: {stored(tsd, 'p22')}"
    ), refused.stderr
    assert expected in refused.stderr
    assert snapshot(tsd) == before and len(tsd.emulator.log()) == requests
    tsd.ok("--project", "p11", "ls", input=DEMO)  # the other project is not affected


@pytest.mark.s3cmd
def test_forget_removes_a_projects_keys_registration_and_tokens(two_projects: Tsd) -> None:
    tsd = two_projects
    set_up(tsd, "p11", "p22")
    tsd.ok("--project", "p22", "mb", "s3://alices", input=ALICE)
    assert tsd.run("--forget").returncode == 64  # which project: never all of them
    out = tsd.ok("--forget", "--project", "p22")
    assert "forgot p22 (prod): its s3cmd config, its API key, 1 cached token" in out.stderr
    assert not stored(tsd, "p22").exists() and stored(tsd, "p11").exists()
    status = tsd.ok("--status").stdout
    assert "p22" not in status and "prod p11: registered" in status
    gone = tsd.run("--project", "p22", "ls")
    assert gone.returncode == 78 and "--setup" in gone.stderr  # nothing stored, no ~/.s3cfg
    assert "nothing was stored for p22" in tsd.ok("--forget", "--project", "p22").stderr
    tsd.ok("mb", "s3://still-p11", input=DEMO)  # p11 is now the only project


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (("--project", "p11"), "", "cannot ask for the project's S3 keys: there is no terminal"),
        (("--project", "p11"), "AKEY\n\n", "no secret key given"),
        (("--project", "p11"), "A KEY\nsecret\n", "S3 keys are printable ASCII without spaces"),
        ((), "AKEY\nsecret\n", "--setup needs --project PNUM here"),
        (("--project", "x1"), "", "'x1' is not a project name of prod"),
        (("--project", "p11", "ls"), "", "--setup takes no s3cmd arguments"),
    ],
    ids=["no-stdin", "empty-secret", "blank-in-key", "no-project", "bad-project", "s3cmd-args"],
)
def test_setup_bad_input_one_line_nothing_written(
    two_projects: Tsd, args: tuple[str, ...], stdin: str, expected: str
) -> None:
    result = two_projects.run("--setup", *args, input=stdin)
    assert result.returncode == 64 and len(result.lines) == 1, result.stderr
    assert expected in result.stderr
    assert not two_projects.config_dir.exists() or not list(two_projects.config_dir.glob("*.s3cfg"))


def converse(tsd: Tsd, args: list[str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Run tsd-s3cmd at a pseudo-terminal, answering each prompt as it appears."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session whose terminal is the pty
        os.chdir(tsd.home)
        os.execve(str(BIN / "tsd-s3cmd"), ["tsd-s3cmd", *args], tsd.env)
    transcript = b""
    deadline = time.monotonic() + 120
    pending = list(answers)
    while time.monotonic() < deadline:
        if pending and pending[0][0].encode() in transcript.rsplit(b"\n", 1)[-1]:
            os.write(fd, pending.pop(0)[1].encode() + b"\n")
        if not select.select([fd], [], [], 1)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child has gone
            break
        if not chunk:
            break
        transcript += chunk
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), transcript.decode("utf-8", "replace")


@pytest.mark.s3cmd
def test_setup_at_a_terminal_does_not_show_the_secret_key(two_projects: Tsd) -> None:
    tsd = two_projects
    keys = tsd.emulator.keys("p22")
    code, transcript = converse(tsd, ["--setup", "--project", "p22"], [
        ("S3 access key:", keys["access_key"]), ("S3 secret key:", keys["secret_key"]),
        ("User name:", "p22-alice"), ("Password:", "alice-pw"), ("One-time code:", "654321"),
    ])  # fmt: skip
    assert code == 0, transcript
    assert "/tsd/p22/data/durable/s3-api-access-keys" in transcript
    assert keys["access_key"] in transcript  # typed visibly, as a user name is
    for hidden in (keys["secret_key"], "alice-pw", "654321"):
        assert hidden not in transcript
    assert "registered p22 (prod) as p22-alice" in transcript
    tsd.ok("--project", "p22", "mb", "s3://typed-at-a-terminal", input=ALICE)

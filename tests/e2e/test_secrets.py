"""Secrets stay with their owner: not in argv, not in debug output, not in status."""

from __future__ import annotations

import contextlib
import json
import stat
import subprocess
from pathlib import Path

import pytest

from ..conftest import BIN
from .conftest import ALICE, DEMO, Tsd
from .test_long_running import MiB, bucket_and_file, start, stored_parts
from .test_setup import key_lines

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code


def secrets_of(tsd: Tsd) -> list[str]:
    """Every secret tsd-s3cmd holds for the user: API key, tokens, password, OTP."""
    creds = json.loads((tsd.config_dir / "credentials.json").read_text())
    cached = (tsd.config_dir / "tokens.json").read_text()
    found = [creds["prod"]["p11"]["api_key"], "demo-password"]
    found += [word for word in cached.replace('"', " ").split() if word.startswith("eyJ")]
    assert len(found) >= 4, found  # the key, the password, a token and its refresh token
    return found


def command_lines(session: int) -> list[bytes]:
    """The command lines of every process in ``session``: the run started with
    ``start`` (a session of its own) and whatever it starts. Not the machine's:
    other tests running at once put the shared demo password on curl's."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):  # ended meanwhile
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3]) == session:
                    lines.append((entry / "cmdline").read_bytes())
    return lines


def test_no_secret_on_any_command_line_during_a_put(tsd: Tsd, tmp_path: Path) -> None:
    data = bucket_and_file(tsd, "argv", tmp_path / "argv.bin", 12 * MiB)
    secrets = [s.encode() for s in secrets_of(tsd)]
    proc = start(tsd, "--multipart-chunk-size-mb=5", "--limit-rate=4m", "put", str(data), "s3://argv")
    seen = 0
    while proc.poll() is None:
        lines = command_lines(proc.pid)
        for line in lines:
            assert not any(secret in line for secret in secrets), line[:200]
        seen += any(b"tsd-s3cmd" in line for line in lines)
    assert proc.returncode == 0 and seen > 3
    assert stored_parts(tsd) and tsd.emulator.object("argv", "argv.bin") == data.read_bytes()


def test_debug_output_and_status_hold_no_secret(tsd: Tsd, tmp_path: Path) -> None:
    tsd.register()
    tsd.ok("mb", "s3://debugged", input=DEMO)
    (tmp_path / "f.txt").write_text("x\n")
    debug = tsd.ok("--debug", "put", str(tmp_path / "f.txt"), "s3://debugged")
    verbose = tsd.ok("-v", "ls", "s3://debugged", input=DEMO)
    status = tsd.ok("--status")
    text = "".join(r.stdout + r.stderr for r in (debug, verbose, status))
    assert "redacted token" in debug.stderr  # s3cmd did print the headers, cleaned
    assert "'status': 200" in debug.stderr  # and its answers, formatted as ever
    for secret in secrets_of(tsd):
        assert secret not in text




def test_private_modes_under_umask_000_and_readable_files_refused(tsd: Tsd) -> None:
    umask0 = ["sh", "-c", 'umask 000; exec "$0" "$@"', str(BIN / "tsd-s3cmd")]
    for args in (["--register", "--env", "prod"], ["mb", "s3://umask-zero"]):
        done = subprocess.run(
            [*umask0, *args], input=DEMO.encode(), capture_output=True, env=tsd.env,
            cwd=tsd.home, timeout=120, start_new_session=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(tsd.config_dir.stat().st_mode) == 0o700
    for name in ("credentials.json", "tokens.json"):
        assert stat.S_IMODE((tsd.config_dir / name).stat().st_mode) == 0o600, name

    tokens = tsd.config_dir / "tokens.json"
    before = tokens.read_bytes()
    tokens.chmod(0o644)
    refused = tsd.run("ls", "s3://umask-zero")
    assert refused.returncode != 0 and "chmod 600" in refused.stderr
    assert "Traceback" not in refused.stderr and tokens.read_bytes() == before
    tokens.chmod(0o600)
    tsd.ok("ls", "s3://umask-zero", input=DEMO)


def test_s3_keys_from_setup_stay_off_command_lines_status_and_debug_output(
    two_projects: Tsd, tmp_path: Path
) -> None:
    tsd = two_projects
    setup = tsd.ok("--setup", "--project", "p22", input=key_lines(tsd, "p22") + ALICE)
    keys = list(tsd.emulator.keys("p22").values())[1:]  # access key, secret key
    assert len(keys) == 2 and all(len(k) > 8 for k in keys)
    tsd.ok("--project", "p22", "mb", "s3://keys-kept", input=ALICE)
    data = tmp_path / "keys.bin"
    data.write_bytes(b"k" * (12 * MiB))
    proc = start(tsd, "--project", "p22", "--multipart-chunk-size-mb=5", "--limit-rate=4m",
                 "put", str(data), "s3://keys-kept")  # fmt: skip
    seen = 0
    while proc.poll() is None:
        lines = command_lines(proc.pid)
        for line in lines:
            assert not any(key.encode() in line for key in keys), line[:200]
        seen += any(b"tsd-s3cmd" in line for line in lines)
    assert proc.returncode == 0 and seen > 3
    debug = tsd.ok("--project", "p22", "--debug", "ls", "s3://keys-kept", input=ALICE)
    status = tsd.ok("--status")
    assert "Credential=<access key>/" in debug.stderr  # s3cmd did print the header, cleaned
    text = "".join(r.stdout + r.stderr for r in (setup, debug, status))
    for secret in [*keys, "alice-pw"]:
        assert secret not in text

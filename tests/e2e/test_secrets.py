"""Secrets stay with their owner: not in argv, not in debug output, not in status."""

from __future__ import annotations

import contextlib
import json
import stat
import subprocess
from pathlib import Path

from ..conftest import BIN
from .conftest import DEMO, Tsd
from .test_long_running import MiB, bucket_and_file, start, stored_parts


def secrets_of(tsd: Tsd) -> list[str]:
    """Every secret tsd-s3cmd holds for the user: API key, tokens, password, OTP."""
    creds = json.loads((tsd.config_dir / "credentials.json").read_text())
    cached = (tsd.config_dir / "tokens.json").read_text()
    found = [creds["prod"]["p11"]["api_key"], "demo-password"]
    found += [word for word in cached.replace('"', " ").split() if word.startswith("eyJ")]
    assert len(found) >= 4, found  # the key, the password, a token and its refresh token
    return found


def command_lines() -> list[bytes]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):  # the process ended meanwhile
                lines.append((entry / "cmdline").read_bytes())
    return lines


def test_no_secret_on_any_command_line_during_a_put(tsd: Tsd, tmp_path: Path) -> None:
    data = bucket_and_file(tsd, "argv", tmp_path / "argv.bin", 12 * MiB)
    secrets = [s.encode() for s in secrets_of(tsd)]
    proc = start(tsd, "--multipart-chunk-size-mb=5", "--limit-rate=4m", "put", str(data), "s3://argv")
    seen = 0
    while proc.poll() is None:
        for line in command_lines():
            assert not any(secret in line for secret in secrets), line[:200]
        seen += 1
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

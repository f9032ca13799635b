"""The command-line surface: help, versions, environments and projects."""

from __future__ import annotations

import json
import platform
import stat
import subprocess
from pathlib import Path

import pytest

from ..conftest import BIN
from .conftest import DEMO, Tsd


def test_no_arguments_prints_usage_and_a_pointer(tsd: Tsd) -> None:
    result = tsd.run()
    assert result.returncode == 64
    assert result.stderr.startswith("Usage: tsd-s3cmd [TSD OPTIONS]")
    assert "--guide" in result.stderr


def test_guide_and_help_are_ours(tsd: Tsd) -> None:
    guide = tsd.ok("--guide").stdout
    for flag in ("-h",):
        assert tsd.ok(flag).stdout == guide
    assert tsd.ok("--help").stdout == guide
    for needle in (
        "--setup",
        "--forget",
        "--completion",
        "--register",
        "export-bucket",
        "--upload-id",
        "--usetest",
        "--print-token-for",
        "--s3cmd-help",
        "sync",
        "s3-api-access-keys",
        "may list",
        "put --recursive",
    ):
        assert needle in guide, needle


@pytest.mark.s3cmd
def test_s3cmd_help_is_s3cmds(tsd: Tsd) -> None:
    result = tsd.ok("--s3cmd-help")
    assert "--multipart-chunk-size-mb" in result.stdout
    assert "Usage: tsd-s3cmd" in result.stdout


@pytest.mark.s3cmd
def test_the_first_run_compiles_s3cmds_script_once_and_privately(tmp_path: Path) -> None:
    from ..conftest import private_env

    env = private_env(tmp_path, compiled=False)  # a HOME that has never run tsd-s3cmd
    cache = Path(env["HOME"]) / ".cache" / "tsd-s3cmd"

    def run() -> str:
        done = subprocess.run([str(BIN / "tsd-s3cmd"), "--s3cmd-help"], env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        return done.stdout

    assert "--multipart-chunk-size-mb" in run()
    [code] = cache.glob("s3cmd-*.code")
    assert stat.S_IMODE(code.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    made = code.stat().st_ino, code.stat().st_mtime_ns
    run()
    assert (code.stat().st_ino, code.stat().st_mtime_ns) == made  # used, not made again
    code.chmod(0o666)  # anyone could have put code there: it is not loaded, but made anew
    assert "--multipart-chunk-size-mb" in run()
    assert stat.S_IMODE(code.stat().st_mode) == 0o600 and code.stat().st_ino != made[0]


@pytest.mark.s3cmd
def test_version_names_everything(tsd: Tsd) -> None:
    out = tsd.ok("--version").stdout
    assert out.startswith("tsd-s3cmd ")
    assert "s3cmd 2." in out and f"Python {platform.python_version()}" in out
    assert platform.system() in out


@pytest.mark.s3cmd
def test_usetest_picks_the_test_registration(tsd: Tsd) -> None:
    tsd.ok("--usetest", "--register", input=DEMO)
    creds = json.loads((tsd.config_dir / "credentials.json").read_text())
    assert list(creds) == ["test"]
    refused = tsd.run("ls")
    assert refused.returncode == 78
    assert "no project is registered for prod" in refused.stderr
    assert "--register --env prod" in refused.stderr
    tsd.ok("--usetest", "mb", "s3://testbucket", input=DEMO)


@pytest.mark.s3cmd
def test_usealt_and_env_flags_agree(tsd: Tsd) -> None:
    tsd.ok("--register", "--usealt", input=DEMO)
    tsd.ok("mb", "s3://altbucket", "--env=alt", input=DEMO)
    conflict = tsd.run("--usealt", "--env", "test", "ls")
    assert conflict.returncode == 64 and "choose one environment" in conflict.stderr


@pytest.mark.s3cmd
def test_project_chooses_among_several(make_tsd) -> None:  # type: ignore[no-untyped-def]
    tsd = make_tsd("--user", "p12-alice:alice-pw:654321")
    tsd.register()
    tsd.register("p12-alice\nalice-pw\n654321\n")
    ambiguous = tsd.run("ls")
    assert ambiguous.returncode == 64
    assert "p11, p12" in ambiguous.stderr and "--project" in ambiguous.stderr
    # Each project has its own S3 keys, so its own s3cmd config.
    p12_cfg = tsd.emulator.s3cfg_for("p12", tsd.home / "p12.s3cfg")
    alice = "p12-alice\nalice-pw\n654321\n"
    tsd.ok("--project", "p12", "-c", str(p12_cfg), "mb", "s3://shared-name", input=alice)
    tsd.ok("mb", "s3://shared-name", "--project=p11", input=DEMO)
    made = [e for e in tsd.emulator.s3_log() if e["method"] == "PUT"]
    assert [e.get("project") for e in made] == ["p12", "p11"]
    assert all(e["status"] == 200 for e in made)


@pytest.mark.s3cmd
def test_status_and_logout(tsd: Tsd) -> None:
    tsd.register()
    tsd.ok("mb", "s3://bucket-one", input=DEMO)
    status = tsd.ok("--status").stdout
    assert "prod p11: registered as p11-demo" in status
    assert "s3import token for p11-demo: valid until" in status
    assert "eyJ" not in status
    out = tsd.ok("--logout")
    assert "forgot 1 cached token" in out.stderr
    assert "s3import" not in tsd.ok("--status").stdout
    refused = tsd.run("ls", "s3://bucket-one")
    assert refused.returncode == 77 and "no terminal" in refused.stderr

"""Every error of the wrapper: one clear line, a non-zero exit, no traceback."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ..conftest import closed_port
from .conftest import DEMO, NOEXPORT, Result, Tsd


def one_line(result: Result, code: int, *needles: str) -> str:
    """The single error line, after checking status, tracebacks and content."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [
        line
        for line in result.lines
        if line.startswith("tsd-s3cmd: ") and not line.startswith("tsd-s3cmd: warning:")
    ]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def forged_jwt(claims: dict) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(b'{"alg":"HS256"}')
    return f"{header}.{b64(json.dumps(claims).encode())}.Zm9yZ2Vk"


def test_wrong_password_at_registration(tsd: Tsd) -> None:
    result = tsd.run("--register", "--env", "prod", input="p11-demo\nwrong\n123456\n")
    one_line(result, 77, "TSD refused the registration for p11", "401")
    assert not (tsd.config_dir / "credentials.json").exists()


@pytest.mark.s3cmd
def test_wrong_one_time_code_at_login(tsd: Tsd) -> None:
    tsd.register()
    result = tsd.run("mb", "s3://bucket-b", input="p11-demo\ndemo-password\n000000\n")
    one_line(result, 77, "TSD refused the login for p11")
    assert not tsd.emulator.s3_log()


def test_user_of_another_project(tsd: Tsd) -> None:
    result = tsd.run(
        "--register", "--env", "prod", "--project", "p11", input="p12-alice\npw\n123\n"
    )
    one_line(result, 64, "belongs to p12, not p11")


@pytest.mark.s3cmd
def test_project_not_registered(tsd: Tsd) -> None:
    tsd.register()
    result = tsd.run("--project", "p99", "ls", input=DEMO)
    one_line(
        result, 78, "p99 (prod) is not registered", "tsd-s3cmd --register --env prod --project p99"
    )


def test_malformed_project_and_unknown_environment(tsd: Tsd) -> None:
    one_line(tsd.run("--project", "11", "ls"), 64, "'11' is not a project name")
    one_line(tsd.run("--env", "staging", "ls"), 64, "'staging' is not one of")


@pytest.mark.s3cmd
def test_api_unreachable_names_the_host(tsd: Tsd) -> None:
    tsd.register()
    port = closed_port()
    result = tsd.run("ls", input=DEMO, extra_env={"TSD_API_URL": f"http://127.0.0.1:{port}"})
    one_line(result, 75, f"cannot reach the TSD API at 127.0.0.1:{port}")


@pytest.mark.s3cmd
def test_export_refused_outside_the_export_group(tsd: Tsd) -> None:
    tsd.register(NOEXPORT)
    result = tsd.run("get", "s3://export-bucket/results.csv", "out.csv", input=NOEXPORT)
    one_line(result, 77, "may not export data from p11", "p11-export-group")


@pytest.mark.s3cmd
def test_token_type_refused_by_the_s3_api(tsd: Tsd) -> None:
    tsd.register()
    token = tsd.ok("--print-token-for", "put", input=DEMO).stdout.strip()
    result = tsd.run(
        "get", "s3://export-bucket/results.csv", "out.csv", extra_env={"TSD_S3CMD_TOKEN": token}
    )
    assert result.returncode == 77, result.stderr
    assert "403" in result.stderr and "AccessDenied" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.s3cmd
def test_expired_api_key_that_cannot_be_renewed(tsd: Tsd) -> None:
    tsd.register()
    creds_path = tsd.config_dir / "credentials.json"
    creds = json.loads(creds_path.read_text())
    creds["prod"]["p11"]["api_key"] = forged_jwt({"exp": 1000, "aud": "nobody", "proj": "p11"})
    creds_path.write_text(json.dumps(creds))
    result = tsd.run("ls", input=DEMO)
    one_line(result, 77, "API key for p11 (prod) has expired", "register again")


@pytest.mark.s3cmd
def test_missing_s3cfg_shows_what_it_must_contain(tsd: Tsd) -> None:
    tsd.register()
    (tsd.home / ".s3cfg").unlink()
    result = tsd.run("ls", input=DEMO)
    assert result.returncode == 78
    first, *template = result.lines
    assert first.startswith(f"tsd-s3cmd: no s3cmd config at {tsd.home / '.s3cfg'}")
    assert any("access_key" in line for line in template)
    assert any("host_base = 127.0.0.1:" in line for line in template)
    assert not tsd.auth_calls("token")  # no login for a run that cannot work


@pytest.mark.s3cmd
def test_host_mismatch_warns(tsd: Tsd) -> None:
    tsd.register()
    token = tsd.ok("--print-token-for", "put", input=DEMO).stdout.strip()
    env = {k: v for k, v in tsd.env.items() if k != "TSD_API_URL"}
    tsd.env = env
    result = tsd.ok("mb", "s3://warned", extra_env={"TSD_S3CMD_TOKEN": token})
    assert "warning:" in result.stderr and "api.tsd.usit.no" in result.stderr


@pytest.mark.s3cmd
def test_corrupt_token_cache_means_a_new_login(tsd: Tsd) -> None:
    tsd.register()
    tsd.ok("mb", "s3://bucket-two", input=DEMO)
    (tsd.config_dir / "tokens.json").write_bytes(b"\x00garbage{")
    result = tsd.ok("ls", "s3://bucket-two", input=DEMO)
    assert "tokens.json is corrupt" in result.stderr
    assert len(tsd.auth_calls("token")) == 2
    json.loads((tsd.config_dir / "tokens.json").read_text())


@pytest.mark.s3cmd
def test_corrupt_credentials_say_register_again(tsd: Tsd) -> None:
    tsd.register()
    (tsd.config_dir / "credentials.json").write_text("{not json")
    one_line(tsd.run("ls", input=DEMO), 78, "credentials.json is corrupt", "--register")
    tsd.register()
    assert (tsd.config_dir / "credentials.json.corrupt").read_text() == "{not json"


@pytest.mark.s3cmd
def test_no_credentials_and_no_terminal_fails_at_once(tsd: Tsd, tmp_path: Path) -> None:
    """With the command that logs in for it at a terminal, ready to paste."""
    tsd.register()
    result = tsd.run("ls", "s3://some bucket", timeout=20)
    one_line(result, 77, "no terminal to log in at",
             "tsd-s3cmd --login --project p11 ls 's3://some bucket'")  # fmt: skip
    login = tsd.ok("--login", "--project", "p11", "ls", "s3://some bucket", input=DEMO)
    assert "logged in: an s3export token for p11 (prod)" in login.stderr
    assert tsd.run("ls", "s3://some bucket").returncode != 77  # no login needed now

"""The emulator as a process: its first line, signals, the s3cfg it writes, curl, TLS."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest
import requests

from ..conftest import Emulator
from .test_auth_api import DEMO, OK, TIMEOUT, access_token, api_key, claims
from .test_gateway import assert_s3_refused, last_s3, s3, s3cmd

CA_VARS = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE")


@pytest.fixture
def start_emulator(
    start_emulator_process: Callable[..., Emulator],
) -> Callable[..., Emulator]:
    """This module tests the emulator as a command: processes of its console script."""
    return start_emulator_process


def read_s3cfg(path: Path) -> dict[str, str]:
    """The ``key = value`` lines of an s3cmd config."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def port_of(emu: Emulator) -> int:
    match = re.fullmatch(r"https?://127\.0\.0\.1:(\d+)", emu.url)
    assert match, emu.url
    return int(match.group(1))


def test_listening_line(start_emulator: Callable[..., Emulator]) -> None:
    emu = start_emulator()
    assert re.fullmatch(r"http://127\.0\.0\.1:[1-9]\d*", emu.url), emu.url
    # It is printed once the port accepts connections: the first request succeeds at once.
    assert emu.log() == []


def test_host_option(start_emulator: Callable[..., Emulator]) -> None:
    emu = start_emulator("--host", "127.0.0.1")
    assert port_of(emu) > 0
    assert requests.get(emu.url + "/_emulator/requests", timeout=TIMEOUT).json() == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly(start_emulator: Callable[..., Emulator], signum: int) -> None:
    emu = start_emulator()
    access_token(emu)  # it has done some work
    started = time.monotonic()
    emu.process.send_signal(signum)
    assert emu.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(emu.url + "/_emulator/requests", timeout=5)


def test_written_s3cfg(start_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    cfg_path = tmp_path / "sub" / "my.s3cfg"
    cfg_path.parent.mkdir()
    emu = start_emulator(s3cfg=cfg_path)
    cfg = read_s3cfg(cfg_path)
    host = f"127.0.0.1:{port_of(emu)}"
    keys = emu.keys("p11")
    assert keys["pnum"] == "p11"
    assert cfg["host_base"] == host
    assert cfg["host_bucket"] == host
    assert cfg["access_key"] == keys["access_key"] and keys["access_key"]
    assert cfg["secret_key"] == keys["secret_key"] and keys["secret_key"]
    assert cfg["use_https"] == "False"
    assert cfg["signature_v2"] == "False"
    assert cfg["bucket_location"] == "us-east-1"
    assert "ca_certs_file" not in cfg or cfg["ca_certs_file"] == ""


# --- A scripted curl session --------------------------------------------------------


def curl(env: dict[str, str], *args: str) -> tuple[int, dict]:
    """Run curl; its HTTP status and JSON body."""
    proc = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    body, _, status = proc.stdout.rpartition("\n")
    return int(status), json.loads(body) if body.strip() else {}


@pytest.mark.s3cmd
@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_scripted_curl_session(emulator: Emulator, clean_env: dict[str, str]) -> None:
    base = f"{emulator.url}/v1/p11/auth"
    json_type = ["-H", "Content-Type: application/json"]
    creds = json.dumps(DEMO)

    status, body = curl(clean_env, "-X", "GET", *json_type, "--data", creds, f"{base}/tsd/api_key")
    assert status in OK, body
    key = body["api_key"]
    auth = ["-H", f"Authorization: Bearer {key}"]

    status, body = curl(
        clean_env, "-X", "POST", *json_type, *auth, "--data", creds,
        f"{base}/tsd/token?type=s3import",
    )  # fmt: skip
    assert status in OK, body
    assert claims(body["token"])["name"] == "s3import"

    refresh = json.dumps({"refresh_token": body["refresh_token"]})
    status, body = curl(
        clean_env, "-X", "POST", *json_type, *auth, "--data", refresh, f"{base}/refresh/token"
    )
    assert status in OK, body
    token = body["token"]
    assert claims(token)["name"] == "s3import"

    served = s3cmd(clean_env, emulator.s3cfg, "mb", "s3://curl-bucket", token=token)
    assert served.returncode == 0, served.stderr
    assert last_s3(emulator)["status"] == 200

    refused = s3cmd(clean_env, emulator.s3cfg, "mb", "s3://curl-bucket-2")
    assert refused.returncode != 0
    entry = last_s3(emulator)
    assert (entry["path"], entry["status"]) == ("/curl-bucket-2", 403)

    kinds = [(e["kind"], e["path"].rsplit("/", 1)[-1]) for e in emulator.log()]
    assert kinds[:3] == [("auth", "api_key"), ("auth", "token"), ("auth", "token")]


# --- TLS ------------------------------------------------------------------------------


@pytest.fixture
def no_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test process must not trust anything the machine's environment points at."""
    for var in CA_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.mark.s3cmd
def test_tls(
    start_emulator: Callable[..., Emulator],
    tmp_path: Path,
    clean_env: dict[str, str],
    no_ca_env: None,
) -> None:
    ca = tmp_path / "ca.pem"
    emu = start_emulator(ca=ca)
    assert emu.url.startswith("https://127.0.0.1:"), emu.url
    assert "BEGIN CERTIFICATE" in ca.read_text()

    resp = requests.get(emu.url + "/_emulator/requests", verify=str(ca), timeout=TIMEOUT)
    assert resp.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(emu.url + "/_emulator/requests", timeout=TIMEOUT)

    cfg = read_s3cfg(emu.s3cfg)
    assert cfg["use_https"] == "True"
    assert Path(cfg["ca_certs_file"]) == ca
    assert cfg["host_base"] == f"127.0.0.1:{port_of(emu)}"

    # The auth API and the gateway both work over TLS.
    assert claims(api_key(emu))["proj"] == "p11"
    token = access_token(emu)
    assert s3(emu, "GET", "/", token=token).status_code == 200
    assert_s3_refused(s3(emu, "GET", "/"), "AccessDenied")
    made = s3cmd(clean_env, emu.s3cfg, "mb", "s3://tls-bucket", token=token)
    assert made.returncode == 0, made.stderr
    assert last_s3(emu)["path"] == "/tls-bucket"

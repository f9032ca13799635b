"""The guide, step by step, against the emulator: register, upload, sync, download."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tsd_s3cmd.login import tokens

from .conftest import DEMO, Tsd


def test_register_stores_the_key_privately(tsd: Tsd) -> None:
    result = tsd.register()
    assert "registered p11 (prod) as p11-demo" in result.stderr
    creds = tsd.config_dir / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert stat.S_IMODE(tsd.config_dir.stat().st_mode) == 0o700
    assert '"prod"' in creds.read_text() and '"p11"' in creds.read_text()
    api_key = tsd.auth_calls("api_key")
    assert len(api_key) == 1 and api_key[0]["method"] == "GET" and api_key[0]["status"] == 200
    # The key itself is never shown.
    assert "eyJ" not in result.stdout + result.stderr


def test_register_menu_picks_the_environment(tsd: Tsd) -> None:
    result = tsd.ok("--register", input="3\n" + DEMO)
    assert "registered p11 (test)" in result.stderr
    assert '"test"' in (tsd.config_dir / "credentials.json").read_text()


@pytest.mark.s3cmd
def test_upload_round_trip_needs_one_login(tsd: Tsd, tmp_path: Path) -> None:
    tsd.register()
    small = tmp_path / "small file ø.txt"
    small.write_bytes(b"hello TSD\n" * 100)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024 + 3))

    tsd.ok("mb", "s3://mybucket", input=DEMO)  # the one login
    tsd.ok("put", str(small), "s3://mybucket")  # stdin closed: no prompt possible
    tsd.ok("--multipart-chunk-size-mb=5", "put", str(big), "s3://mybucket/data/")

    assert tsd.emulator.object("mybucket", small.name) == small.read_bytes()
    assert tsd.emulator.object("mybucket", "data/big.bin") == big.read_bytes()
    logins = tsd.auth_calls("token")
    assert [e["token_type"] for e in logins] == ["s3import"]

    s3 = tsd.emulator.s3_log()
    parts = [e for e in s3 if e["method"] == "PUT" and "partNumber=" in e["query"]]
    assert len(parts) == 5  # 20 MiB + 3 bytes in 5 MiB parts
    assert all(e["token_type"] == "s3import" and e["status"] < 400 for e in s3), s3


@pytest.mark.s3cmd
def test_export_needs_one_more_login_and_returns_the_same_bytes(tsd: Tsd, tmp_path: Path) -> None:
    tsd.register()
    export_dir: Path = tsd.emulator.extra["export_dir"]
    listing = tsd.ok("ls", "s3://export-bucket", input=DEMO)
    assert "s3://export-bucket/results.csv" in listing.stdout
    out = tmp_path / "downloaded.csv"
    tsd.ok("get", "s3://export-bucket/results.csv", str(out))
    assert out.read_bytes() == (export_dir / "results.csv").read_bytes()
    tsd.ok("get", "s3://export-bucket/big.bin", str(tmp_path / "big.bin"))
    assert (tmp_path / "big.bin").read_bytes() == (export_dir / "big.bin").read_bytes()

    assert [e["token_type"] for e in tsd.auth_calls("token")] == ["s3export"]
    s3 = tsd.emulator.s3_log()
    assert s3 and all(e["token_type"] == "s3export" and e["status"] < 400 for e in s3), s3


@pytest.mark.s3cmd
def test_sync_up_and_down(tsd: Tsd, tmp_path: Path) -> None:
    tsd.register()
    local = tmp_path / "project data"
    (local / "nested" / "deeper").mkdir(parents=True)
    files = {
        "a.txt": b"a" * 10,
        "nested/b \u00e6\u00f8\u00e5.txt": b"b" * 1000,
        "nested/deeper/c.bin": os.urandom(6 * 1024 * 1024),
    }
    for name, data in files.items():
        (local / name).write_bytes(data)
    tsd.ok("mb", "s3://syncbucket", input=DEMO)
    tsd.ok("--multipart-chunk-size-mb=5", "sync", f"{local}/", "s3://syncbucket/up/")
    for name, data in files.items():
        assert tsd.emulator.object("syncbucket", f"up/{name}") == data, name
    # A second sync sends nothing: only what changed goes up.
    before = len(tsd.emulator.s3_log())
    tsd.ok("sync", f"{local}/", "s3://syncbucket/up/")
    assert not [e for e in tsd.emulator.s3_log()[before:] if e["method"] == "PUT"]

    down = tmp_path / "down"
    tsd.ok("sync", "s3://export-bucket/", f"{down}/", input=DEMO)
    export_dir: Path = tsd.emulator.extra["export_dir"]
    for path in export_dir.rglob("*"):
        if path.is_file():
            relative = path.relative_to(export_dir)
            assert (down / relative).read_bytes() == path.read_bytes(), relative
    assert [e["token_type"] for e in tsd.auth_calls("token")] == ["s3import", "s3export"]
    assert all(e["status"] < 400 for e in tsd.emulator.s3_log())


@pytest.mark.s3cmd
def test_print_token_for_put_then_use_it_without_any_config(tsd: Tsd, tmp_path: Path) -> None:
    tsd.register()
    result = tsd.ok("--print-token-for", "put", input=DEMO)
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    assert tokens.claims(token)["name"] == "s3import"
    assert "TSD_S3CMD_TOKEN" in result.stderr and "--add-header" in result.stderr

    # A different home with only an s3cfg: no registration, no cache, no prompt.
    other_home = tmp_path / "other-home"
    other_home.mkdir()
    (other_home / ".s3cfg").write_bytes((tsd.home / ".s3cfg").read_bytes())
    env = {"HOME": str(other_home), "XDG_CONFIG_HOME": str(other_home / ".config")}
    tsd.ok("mb", "s3://tokenbucket", extra_env={**env, "TSD_S3CMD_TOKEN": token})
    payload = tmp_path / "payload.txt"
    payload.write_text("via TSD_S3CMD_TOKEN\n")
    tsd.ok("put", str(payload), "s3://tokenbucket", extra_env={**env, "TSD_S3CMD_TOKEN": token})
    assert tsd.emulator.object("tokenbucket", "payload.txt") == payload.read_bytes()
    assert not (other_home / ".config").exists()
    assert len(tsd.auth_calls("token")) == 1


@pytest.mark.s3cmd
def test_odd_file_names_survive(tsd: Tsd, tmp_path: Path) -> None:
    tsd.register()
    tsd.ok("mb", "s3://odd", input=DEMO)
    names = ["-leading dash.txt", "sp ace s.txt", "\u00fcnic\u00f8de \u2603.txt"]
    for name in names:
        (tmp_path / name).write_text(name)
    tsd.ok("put", "--", *names, "s3://odd/", cwd=tmp_path)
    for name in names:
        assert tsd.emulator.object("odd", name) == name.encode()
    listing = tsd.ok("ls", "s3://odd", input=DEMO)
    assert all(f"s3://odd/{n}" in listing.stdout for n in names)

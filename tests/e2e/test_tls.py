"""tsd-s3cmd over https: the CA is handed over the standard ways, and only it is trusted."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from .conftest import DEMO, Tsd
from .test_errors import one_line

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code


def test_register_put_ls_get_over_https(make_tsd: Callable[..., Tsd], tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    tsd = make_tsd(ca=ca)
    assert tsd.emulator.url.startswith("https://")
    s3cfg = (tsd.home / ".s3cfg").read_text()
    assert "use_https = True" in s3cfg and f"ca_certs_file = {ca}" in s3cfg
    tsd.env["REQUESTS_CA_BUNDLE"] = str(ca)  # for the auth API; s3cmd reads ca_certs_file
    data = tmp_path / "secret results.bin"
    data.write_bytes(os.urandom(6 * 1024 * 1024 + 5))

    tsd.register()
    tsd.ok("mb", "s3://tls", input=DEMO)
    tsd.ok("--multipart-chunk-size-mb=5", "put", str(data), "s3://tls/")
    assert "s3://tls/secret results.bin" in tsd.ok("ls", "s3://tls", input=DEMO).stdout
    back = tmp_path / "back.bin"
    tsd.ok("get", "s3://export-bucket/results.csv", str(back))
    assert back.read_bytes() == b"id,value\n1,42\n"
    assert tsd.emulator.object("tls", data.name) == data.read_bytes()
    s3 = tsd.emulator.s3_log()
    assert s3 and all(e["token_type"] in ("s3import", "s3export") for e in s3)


def test_a_wrong_ca_is_refused_on_both_sides(make_tsd: Callable[..., Tsd], tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    tsd = make_tsd(ca=ca, export=False)
    wrong = tmp_path / "wrong-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong))

    # The auth API: requests must not fall back to anything it was not told to trust.
    for bundle in ({"REQUESTS_CA_BUNDLE": str(wrong)}, {}):
        refused = tsd.run("--register", "--env", "prod", input=DEMO, extra_env=bundle)
        one_line(refused, 75, "cannot verify the TLS certificate of 127.0.0.1")
        assert not (tsd.config_dir / "credentials.json").exists()
    assert not tsd.auth_calls("api_key")  # the handshake failed before any request

    # The S3 API: s3cmd given the wrong CA refuses too, though the token is good.
    tsd.env["REQUESTS_CA_BUNDLE"] = str(ca)
    tsd.register()
    tsd.ok("mb", "s3://tls", input=DEMO)
    s3cfg = tsd.home / ".s3cfg"
    s3cfg.write_text(s3cfg.read_text().replace(str(ca), str(wrong)))
    before = len(tsd.emulator.s3_log())
    result = tsd.run("ls", "s3://tls", input=DEMO)
    assert result.returncode == 77, result.stderr  # s3cmd's status for a refused certificate
    assert len(result.lines) == 1 and "certificate verify failed" in result.lines[0]
    assert len(tsd.emulator.s3_log()) == before  # nothing was sent

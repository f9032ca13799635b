"""Per-project s3cmd configs: what is written, what is found, what is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tsd_s3cmd.environments import ENVIRONMENTS
from tsd_s3cmd.errors import ConfigError, UsageError
from tsd_s3cmd.login.s3configs import S3Configs, for_run, in_use, parse

PROD, EC = ENVIRONMENTS["prod"], ENVIRONMENTS["ec-prod"]


def test_saved_config_is_what_s3cmd_needs_for_the_environment(tmp_path: Path) -> None:
    configs = S3Configs(tmp_path / "cfg")
    path = configs.save(PROD, "p11", "AKEY", "s3cret/+=", {})
    assert path == tmp_path / "cfg" / "prod.p11.s3cfg" and oct(path.stat().st_mode)[-3:] == "600"
    settings = configs.check(PROD, "p11", {})
    assert settings == parse(path.read_text()) and settings == {
        "host_base": "api.tsd.usit.no", "host_bucket": "api.tsd.usit.no",
        "bucket_location": "us-east-1", "use_https": "True", "signature_v2": "False",
        "access_key": "AKEY", "secret_key": "s3cret/+=",
    }  # fmt: skip
    emulated = {"TSD_API_URL": "http://127.0.0.1:8123/"}
    configs.save(EC, "ec11", "A", "S", emulated)
    assert configs.check(EC, "ec11", emulated)["host_base"] == "127.0.0.1:8123"
    assert configs.check(EC, "ec11", emulated)["use_https"] == "False"
    with pytest.raises(ConfigError, match=r"sends requests to 127\.0\.0\.1:8123, but ec-prod"):
        configs.check(EC, "ec11", {})
    assert configs.stored() == [("ec-prod", "ec11"), ("prod", "p11")]


@pytest.mark.parametrize("key", ["", "two words", "tab\there", "n\u00e9e"])
def test_keys_that_cannot_be_keys_are_refused_before_anything_is_written(
    tmp_path: Path, key: str
) -> None:
    with pytest.raises(UsageError):
        S3Configs(tmp_path).save(PROD, "p11", key, "secret", {})
    assert not list(tmp_path.iterdir())


def test_only_config_names_count_as_stored(tmp_path: Path) -> None:
    names = ("prod.p11.s3cfg", "tokens.json", ".prod.p12.s3cfg.9.tmp", "x.s3cfg", "a.b.c.s3cfg")
    for name in names:
        (tmp_path / name).write_text("")
    assert S3Configs(tmp_path).stored() == [("prod", "p11")]
    assert S3Configs(tmp_path / "missing").stored() == []


def test_the_config_a_run_uses(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert for_run(tmp_path, PROD, "p11", {}) is None
    assert in_use(tmp_path, home, "prod", "p11", {}).startswith(f"{home / '.s3cfg'} (none stored")
    S3Configs(tmp_path).save(PROD, "p11", "A", "S", {})
    chosen = for_run(tmp_path, PROD, "p11", {})
    assert chosen is not None and chosen.path == tmp_path / "prod.p11.s3cfg"
    assert for_run(tmp_path, PROD, None, {}) is None  # the project is not known yet
    assert for_run(tmp_path, PROD, "p11", {"S3CMD_CONFIG": "/x"}) is None  # named by the user
    assert in_use(tmp_path, home, "prod", "p11", {"S3CMD_CONFIG": "/x"}).startswith("/x")
    os.chmod(chosen.path, 0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        chosen.check()

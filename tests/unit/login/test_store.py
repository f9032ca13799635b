"""The credential and token store: modes, atomic writes, corrupt files, the lock."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsd_s3cmd.errors import ConfigError, TsdError
from tsd_s3cmd.login.store import TOKENS, CachedToken, Registration, Store

from ..jwts import make_jwt


@pytest.fixture
def store(tmp_path: Path) -> tuple[Store, list[str]]:
    warnings: list[str] = []
    return Store(
        tmp_path / "cfg" / "tsd-s3cmd", tmp_path / "cfg" / "tacl" / "config", warnings.append
    ), warnings


def token(kind: str = "s3import", expires: float = 2000.0, issued: float = 1000.0) -> CachedToken:
    return CachedToken(
        type=kind, token=make_jwt({"exp": expires, "proj": "p11"}), expires=expires, issued=issued
    )


def test_files_0600_directory_0700_even_with_umask_000(store) -> None:
    s, _ = store
    old = os.umask(0)
    try:
        s.save_registration("prod", "p11", Registration("key", "p11-demo"))
        s.save_token("prod", "p11", token())
    finally:
        os.umask(old)
    assert stat.S_IMODE(s.directory.stat().st_mode) == 0o700
    for name in ("credentials.json", "tokens.json"):
        assert stat.S_IMODE((s.directory / name).stat().st_mode) == 0o600
    assert s.registration("prod", "p11") == Registration("key", "p11-demo")
    assert s.token("prod", "p11", "s3import") == token()


def test_readable_by_others_is_refused_until_fixed(store) -> None:
    s, _ = store
    s.save_registration("prod", "p11", Registration("key", "p11-demo"))
    path = s.directory / "credentials.json"
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"chmod 600"):
        s.registrations()
    path.chmod(0o600)
    assert s.projects("prod") == ["p11"]


def test_corrupt_token_cache_is_reported_and_ignored(store) -> None:
    s, warnings = store
    s.save_token("prod", "p11", token())
    (s.directory / TOKENS).write_bytes(b"\x00\xffnot json")
    assert s.token("prod", "p11", "s3import") is None
    assert "corrupt" in warnings[0] and str(s.directory / TOKENS) in warnings[0]
    s.save_token("prod", "p11", token())  # a login replaces it
    assert s.token("prod", "p11", "s3import") == token()


def test_a_damaged_cache_is_reported_once_however_often_it_is_read(store) -> None:
    s, warnings = store
    s.save_token("prod", "p11", token())
    (s.directory / TOKENS).write_bytes(b"{")
    for _ in range(3):
        assert s.token("prod", "p11", "s3import") is None
    assert len(warnings) == 1


def test_a_cached_token_of_another_project_or_no_token_is_ignored(store) -> None:
    s, warnings = store
    other = CachedToken("s3import", make_jwt({"exp": 2000, "proj": "p12"}), 2000.0, 1000.0)
    s.save_token("prod", "p11", other)
    assert s.token("prod", "p11", "s3import") is None
    assert "not p11's" in warnings[-1]
    s.save_token("prod", "p11", CachedToken("s3import", "garbage", 2000.0, 1000.0))
    assert s.token("prod", "p11", "s3import") is None


def test_corrupt_credentials_are_an_error_and_kept_aside_on_register(store) -> None:
    s, _ = store
    s.save_registration("prod", "p11", Registration("key", "p11-demo"))
    (s.directory / "credentials.json").write_text("{truncated")
    with pytest.raises(ConfigError, match="corrupt"):
        s.registrations()
    s.save_registration("prod", "p12", Registration("key2", "p12-demo"))
    assert (s.directory / "credentials.json.corrupt").read_text() == "{truncated"
    assert s.projects("prod") == ["p12"]


def test_failed_write_leaves_the_old_file_whole(store, monkeypatch) -> None:
    s, _ = store
    s.save_token("prod", "p11", token())
    before = (s.directory / TOKENS).read_bytes()

    def full_disk(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(TsdError, match="No space left"):
        s.save_token("prod", "p11", token(expires=3000.0))
    monkeypatch.undo()
    assert (s.directory / TOKENS).read_bytes() == before
    assert [p.name for p in s.directory.iterdir() if p.name.endswith(".tmp")] == []


def test_margin_is_a_share_of_lifetime_capped_at_five_minutes() -> None:
    short = token(expires=1004.0, issued=1000.0)
    assert short.margin() == 1.0
    assert short.fresh(1002.9) and not short.fresh(1003.0)
    hour = token(expires=4600.0, issued=1000.0)
    assert hour.margin() == 300.0


def test_tacl_registration_is_used_when_there_is_none_of_ours(store) -> None:
    s, _ = store
    s.tacl_config.parent.mkdir(parents=True)
    key = make_jwt({"exp": 9e9, "aud": "client", "user": "p11-demo"})
    s.tacl_config.write_text(f"prod:\n  p11: {key}\n")
    s.tacl_config.chmod(0o600)
    reg = s.registration("prod", "p11")
    assert reg is not None and reg.source == "tacl" and reg.user == "p11-demo"
    assert s.projects("prod") == ["p11"]
    s.save_registration("prod", "p12", Registration("own", "p12-x"))
    assert s.projects("prod") == ["p12"]  # ours win for the default project


def _hold_lock(directory: str, ready, release) -> None:  # type: ignore[no-untyped-def]
    s = Store(Path(directory), Path(directory) / "tacl", print)
    with s.lock():
        ready.set()
        release.wait(10)


def test_lock_is_exclusive_and_dies_with_its_holder(store) -> None:
    s, _ = store
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(s.directory), ready, release))
    holder.start()
    assert ready.wait(10)
    import fcntl

    fd = os.open(s.directory / ".lock", os.O_RDWR)
    with pytest.raises(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder.kill()  # a killed holder must not block the next process
    holder.join()
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    with s.lock():
        pass


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
            lambda inner: st.one_of(
                st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=12,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_any_cache_bytes_load_without_crashing(store, data: bytes) -> None:
    s, _ = store
    s.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (s.directory / TOKENS).write_bytes(data)
    (s.directory / TOKENS).chmod(0o600)
    s.token("prod", "p11", "s3import")
    list(s.all_tokens())
    s.uploads()
    (s.directory / "credentials.json").write_bytes(data)
    (s.directory / "credentials.json").chmod(0o600)
    try:
        s.registrations()
    except ConfigError as err:
        assert "corrupt" in str(err)

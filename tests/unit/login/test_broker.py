"""The broker's check of export rights before a command that lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsd_s3cmd.errors import AuthError
from tsd_s3cmd.login.broker import RENEW_BY_LOGIN, HeaderSource, check_export_rights
from tsd_s3cmd.login.store import CachedToken, Store
from tsd_s3cmd.login.token_choice import Listing

from ..jwts import make_jwt

LS = Listing("'ls' lists buckets and objects")
MEMBER = ["p11-member-group", "p11-export-group"]
NOT_MEMBER = ["p11-member-group"]


def token(groups: list[str] | None, kind: str = "s3import", exp: float = 5000.0) -> str:
    claims = {"exp": exp, "proj": "p11", "user": "p11-someone", "name": kind}
    return make_jwt(claims if groups is None else {**claims, "groups": groups})


@pytest.mark.parametrize(
    "shown", [token(MEMBER), token(None), token(["p12-export-group", "p11-export-group"]), "x"]
)
def test_a_member_or_a_token_that_shows_nothing_passes(shown: str) -> None:
    check_export_rights(LS, shown, "p11", "your s3import token", RENEW_BY_LOGIN)


@pytest.mark.parametrize("groups", [NOT_MEMBER, [], ["p12-export-group"], ["p1-export-group"]])
def test_outside_the_export_group_is_refused_with_the_user_and_the_remedy(
    groups: list[str],
) -> None:
    with pytest.raises(AuthError) as refused:
        check_export_rights(LS, token(groups), "p11", "your s3import token", RENEW_BY_LOGIN)
    message = str(refused.value)
    assert "p11-someone is not one, as your s3import token shows" in message
    assert message.endswith("then run 'tsd-s3cmd --logout' so that the next login picks them up")


class _Broker:
    """What HeaderSource reads of a broker: the store, the clock, the project, and tokens."""

    def __init__(self, store: Store, now: float, fresh: CachedToken) -> None:
        self.store = store
        self.pnum = "p11"
        self.env = type("Env", (), {"name": "prod"})()
        self.context = type("Context", (), {"clock": lambda _self: now})()
        self.fresh = fresh
        self.asked = 0

    def token(self, token_type: str, may_login: bool = True) -> CachedToken:
        self.asked += 1
        return self.fresh


def cached(groups: list[str], kind: str, issued: float, exp: float = 5000.0) -> CachedToken:
    return CachedToken(kind, token(groups, kind, exp), exp, issued)


def store_with(tmp_path: Path, *held: CachedToken) -> Store:
    store = Store(tmp_path / "config", tmp_path / "tacl", lambda message: None)
    with store.lock():
        for entry in held:
            store.save_token("prod", "p11", entry)
    return store


def test_the_newest_fresh_token_held_decides_before_any_token_is_asked_for(
    tmp_path: Path,
) -> None:
    # An s3import token of a non-member, newer than an s3export token: refused at once.
    store = store_with(
        tmp_path, cached(MEMBER, "s3export", issued=100), cached(NOT_MEMBER, "s3import", 200)
    )
    broker = _Broker(store, now=1000.0, fresh=cached(MEMBER, "s3export", 100))
    with pytest.raises(AuthError, match="as your s3import token shows"):
        HeaderSource(broker, "s3export", LS)  # type: ignore[arg-type]
    assert broker.asked == 0
    # Without a listing, nothing is checked; an expired token held shows nothing.
    HeaderSource(broker, "s3export")  # type: ignore[arg-type]
    old = store_with(tmp_path / "old", cached(NOT_MEMBER, "s3import", issued=10, exp=500.0))
    HeaderSource(_Broker(old, 1000.0, cached(MEMBER, "s3export", 900)), "s3export", LS)  # type: ignore[arg-type]


def test_where_nothing_is_held_the_first_token_decides_before_its_first_request(
    tmp_path: Path,
) -> None:
    store = store_with(tmp_path)
    broker = _Broker(store, now=1000.0, fresh=cached(NOT_MEMBER, "s3import", 999))
    source = HeaderSource(broker, "s3import", LS)  # type: ignore[arg-type]
    with pytest.raises(AuthError, match="p11-export-group"):
        source.headers()
    member = _Broker(store, now=1000.0, fresh=cached(MEMBER, "s3import", 999))
    allowed = HeaderSource(member, "s3import", LS)  # type: ignore[arg-type]
    assert allowed.headers()["x-project-select"] == "p11"
    assert allowed.token() is member.fresh

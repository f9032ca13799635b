"""Reading JWT claims without a key, and keeping tokens out of text."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsd_s3cmd.login.tokens import NotAToken, claims, expiry, redact

from ..jwts import make_jwt


def test_claims_and_expiry() -> None:
    token = make_jwt({"exp": 1700000000, "proj": "p11", "name": "s3import"})
    assert claims(token)["proj"] == "p11"
    assert expiry(token) == 1700000000.0


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "a.b", "a.b.c.d", "eyJ.!!!.x", make_jwt([1, 2]), make_jwt({"exp": "soon"})],  # type: ignore[arg-type]
)
def test_unreadable_tokens_raise_not_a_token(bad: str) -> None:
    with pytest.raises(NotAToken):
        expiry(bad)


@given(st.binary(max_size=64))
def test_arbitrary_text_never_crashes(data: bytes) -> None:
    with contextlib.suppress(NotAToken):
        assert isinstance(claims(data.decode("latin-1")), dict)


def test_redact_removes_every_token_and_keeps_a_tail() -> None:
    token = make_jwt({"exp": 1, "proj": "p11"})
    text = f"headers={{'token': '{token}'}} and again token:{token}\n"
    cleaned = redact(text)
    assert token not in cleaned
    assert cleaned.count("<redacted token …") == 2
    assert token[-6:] in cleaned
    assert redact("nothing secret here") == "nothing secret here"

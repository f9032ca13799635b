"""The emulator's auth API, driven over HTTP with ``requests``.

The helpers at the top are shared with the other modules of this package.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import jwt
import pytest
import requests

from ..conftest import Emulator

TIMEOUT = 30
OK = (200, 201)  # tsd-api.md: "Answer (200 or 201)"
DEMO = {"user_name": "p11-demo", "password": "demo-password", "otp": "123456"}
NOEXPORT = {**DEMO, "user_name": "p11-noexport"}
EDU = {"user_name": "edu-demo", "password": "demo-password", "otp": "123456"}
ALICE = {"user_name": "p12-alice", "password": "alice-pw", "otp": "654321"}
ALICE_ARG = ("--user", "p12-alice:alice-pw:654321")


def verify(emu: Emulator) -> str | bool:
    """What ``requests`` needs to trust this emulator."""
    return str(emu.ca) if emu.ca else True


def auth_url(emu: Emulator, pnum: str, *parts: str) -> str:
    return f"{emu.url}/v1/{pnum}/auth/" + "/".join(parts)


def request_api_key(
    emu: Emulator, pnum: str = "p11", method: str = "tsd", creds: dict | None = None
) -> requests.Response:
    """``GET .../auth/{method}/api_key`` with the credentials as a JSON body."""
    return requests.get(
        auth_url(emu, pnum, method, "api_key"),
        json=DEMO if creds is None else creds,
        timeout=TIMEOUT,
        verify=verify(emu),
    )


def api_key(
    emu: Emulator, pnum: str = "p11", method: str = "tsd", creds: dict | None = None
) -> str:
    resp = request_api_key(emu, pnum, method, creds)
    assert resp.status_code in OK, resp.text
    return resp.json()["api_key"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def request_token(
    emu: Emulator,
    key: str,
    token_type: str = "s3import",
    pnum: str = "p11",
    method: str = "tsd",
    creds: dict | None = None,
) -> requests.Response:
    """``POST .../auth/{method}/token?type=...`` with the API key and the credentials."""
    return requests.post(
        auth_url(emu, pnum, method, "token"),
        params={"type": token_type},
        headers=bearer(key),
        json=DEMO if creds is None else creds,
        timeout=TIMEOUT,
        verify=verify(emu),
    )


def request_basic(
    emu: Emulator, key: str, token_type: str = "s3import", pnum: str = "p11"
) -> requests.Response:
    return requests.post(
        auth_url(emu, pnum, "basic", "token"),
        params={"type": token_type},
        headers=bearer(key),
        timeout=TIMEOUT,
        verify=verify(emu),
    )


def request_refresh(
    emu: Emulator, key: str, refresh_token: str, pnum: str = "p11"
) -> requests.Response:
    return requests.post(
        auth_url(emu, pnum, "refresh", "token"),
        headers=bearer(key),
        json={"refresh_token": refresh_token},
        timeout=TIMEOUT,
        verify=verify(emu),
    )


def request_renewal(emu: Emulator, key: str, pnum: str = "p11") -> requests.Response:
    return requests.post(
        auth_url(emu, pnum, "clients", "secret"),
        json={"client_id": claims(key)["aud"], "client_secret": key},
        timeout=TIMEOUT,
        verify=verify(emu),
    )


def login(
    emu: Emulator,
    token_type: str = "s3import",
    pnum: str = "p11",
    method: str = "tsd",
    creds: dict | None = None,
) -> dict[str, str]:
    """API key plus a 2FA token: {"api_key", "token", "refresh_token"}."""
    key = api_key(emu, pnum, method, creds)
    resp = request_token(emu, key, token_type, pnum, method, creds)
    assert resp.status_code in OK, resp.text
    return {"api_key": key, **resp.json()}


def access_token(
    emu: Emulator, token_type: str = "s3import", pnum: str = "p11", creds: dict | None = None
) -> str:
    return login(emu, token_type, pnum, creds=creds)["token"]


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def lifetime(token_claims: dict[str, Any]) -> int:
    """Whole seconds from ``iat`` to ``exp`` (JWT NumericDates may carry fractions)."""
    return int(token_claims["exp"] - token_claims["iat"])


def assert_refused(resp: requests.Response, status: int) -> None:
    """A refusal with the given status and a JSON ``{"message": ...}`` body."""
    assert resp.status_code == status, f"{resp.status_code}: {resp.text}"
    message = resp.json().get("message")
    assert isinstance(message, str) and message, resp.text


def auth_log(emu: Emulator) -> list[dict]:
    return [entry for entry in emu.log() if entry["kind"] == "auth"]


# --- API key -----------------------------------------------------------------


def test_api_key_is_a_jwt_with_the_documented_claims(emulator: Emulator) -> None:
    before = time.time()
    key = api_key(emulator)
    got = claims(key)
    assert got["proj"] == "p11"
    assert got["user"] == "p11-demo"
    assert isinstance(got["aud"], str) and got["aud"]
    assert got["exp"] > before + 60
    assert jwt.get_unverified_header(key)["alg"] == "HS256"


def test_api_key_is_a_get_with_a_body_and_is_logged(emulator: Emulator) -> None:
    api_key(emulator)
    entry = auth_log(emulator)[-1]
    assert entry["method"] == "GET"
    assert entry["path"] == "/v1/p11/auth/tsd/api_key"
    assert entry["query"] == ""
    assert entry["status"] in OK


@pytest.mark.parametrize(
    "creds",
    [
        {**DEMO, "password": "wrong"},
        {**DEMO, "otp": "000000"},
        {**DEMO, "user_name": "p11-nobody"},
    ],
    ids=["wrong-password", "wrong-otp", "unknown-user"],
)
def test_api_key_refuses_bad_credentials(emulator: Emulator, creds: dict) -> None:
    assert_refused(request_api_key(emulator, creds=creds), 401)


def test_api_key_refuses_a_user_of_another_project(start_emulator: Callable[..., Emulator]) -> None:
    emu = start_emulator(*ALICE_ARG)
    assert_refused(request_api_key(emu, "p12", creds=DEMO), 401)
    assert_refused(request_api_key(emu, "p11", creds=ALICE), 401)
    # The same users are fine in their own projects.
    assert claims(api_key(emu, "p12", creds=ALICE))["proj"] == "p12"


def test_wrong_method_for_the_project_is_404(emulator: Emulator) -> None:
    assert_refused(request_api_key(emulator, "p11", "iam"), 404)
    assert_refused(request_api_key(emulator, "ec11", "tsd", EDU), 404)
    key = api_key(emulator)
    assert_refused(request_token(emulator, key, method="iam"), 404)


def test_educloud_uses_iam(emulator: Emulator) -> None:
    tokens = login(emulator, "s3import", "ec11", "iam", EDU)
    got = claims(tokens["token"])
    assert got["proj"] == "ec11"
    assert got["user"] == "edu-demo"
    assert got["name"] == "s3import"
    entry = auth_log(emulator)[-1]
    assert entry["path"] == "/v1/ec11/auth/iam/token"
    assert entry["project"] == "ec11"


# --- Access tokens with 2FA ----------------------------------------------------


@pytest.mark.parametrize("token_type", ["s3import", "s3export"])
def test_token_claims(emulator: Emulator, token_type: str) -> None:
    before = int(time.time())
    tokens = login(emulator, token_type)
    assert set(tokens) >= {"token", "refresh_token"}
    got = claims(tokens["token"])
    assert got["proj"] == "p11"
    assert got["user"] == "p11-demo"
    assert got["name"] == token_type
    assert "p11-member-group" in got["groups"]
    assert "p11-export-group" in got["groups"]
    assert before - 5 <= got["iat"] <= time.time() + 5
    assert lifetime(got) == 3600  # the default --token-lifetime
    assert jwt.get_unverified_header(tokens["token"])["alg"] == "HS256"
    assert isinstance(claims(tokens["refresh_token"])["counter"], int)


def test_token_request_is_logged_with_the_asked_type(emulator: Emulator) -> None:
    login(emulator, "s3export")
    entry = auth_log(emulator)[-1]
    assert entry["method"] == "POST"
    assert entry["path"] == "/v1/p11/auth/tsd/token"
    assert entry["query"] == "type=s3export"
    assert entry["token_type"] == "s3export"
    assert entry["project"] == "p11"
    assert entry["status"] in OK


def test_token_lifetime_option(start_emulator: Callable[..., Emulator]) -> None:
    emu = start_emulator("--token-lifetime", "77")
    got = claims(access_token(emu))
    assert lifetime(got) == 77


@pytest.mark.parametrize(
    "creds",
    [{**DEMO, "password": "wrong"}, {**DEMO, "otp": "999999"}, {**DEMO, "user_name": "p11-x"}],
    ids=["wrong-password", "wrong-otp", "unknown-user"],
)
def test_token_refuses_bad_credentials(emulator: Emulator, creds: dict) -> None:
    key = api_key(emulator)
    assert_refused(request_token(emulator, key, creds=creds), 401)


@pytest.mark.parametrize("key", ["garbage", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA", ""])
def test_token_refuses_an_unknown_api_key(emulator: Emulator, key: str) -> None:
    assert_refused(request_token(emulator, key), 401)


def test_token_refuses_a_missing_authorization(emulator: Emulator) -> None:
    resp = requests.post(
        auth_url(emulator, "p11", "tsd", "token"),
        params={"type": "s3import"},
        json=DEMO,
        timeout=TIMEOUT,
    )
    assert_refused(resp, 401)


def test_api_key_of_another_emulator_is_refused(start_emulator: Callable[..., Emulator]) -> None:
    first, second = start_emulator(), start_emulator()
    foreign = api_key(second)
    assert_refused(request_token(first, foreign), 401)


def test_export_token_refused_outside_the_export_group(emulator: Emulator) -> None:
    key = api_key(emulator, creds=NOEXPORT)
    assert_refused(request_token(emulator, key, "s3export", creds=NOEXPORT), 403)
    # An import token is fine, and its groups say why export is not.
    resp = request_token(emulator, key, "s3import", creds=NOEXPORT)
    assert resp.status_code in OK, resp.text
    groups = claims(resp.json()["token"])["groups"]
    assert "p11-member-group" in groups
    assert "p11-export-group" not in groups


def test_user_option_with_export_flag(start_emulator: Callable[..., Emulator]) -> None:
    emu = start_emulator(*ALICE_ARG, "--user", "p12-bob:bob-pw:111111:export")
    bob = {"user_name": "p12-bob", "password": "bob-pw", "otp": "111111"}
    assert "p12-export-group" in claims(access_token(emu, "s3export", "p12", bob))["groups"]
    alice_key = api_key(emu, "p12", creds=ALICE)
    assert_refused(request_token(emu, alice_key, "s3export", "p12", creds=ALICE), 403)


def test_expired_api_key_is_refused(start_emulator: Callable[..., Emulator]) -> None:
    emu = start_emulator("--api-key-lifetime", "1")
    key = api_key(emu)
    assert claims(key)["exp"] <= time.time() + 2
    time.sleep(2.2)
    assert_refused(request_token(emu, key), 401)
    assert_refused(request_basic(emu, key), 401)


# --- Basic tokens --------------------------------------------------------------


def test_basic_import_token(emulator: Emulator) -> None:
    key = api_key(emulator)
    resp = request_basic(emulator, key)
    assert resp.status_code in OK, resp.text
    body = resp.json()
    assert set(body) >= {"token", "refresh_token"}
    got = claims(body["token"])
    assert (got["name"], got["proj"], got["user"]) == ("s3import", "p11", "p11-demo")
    entry = auth_log(emulator)[-1]
    assert entry["path"] == "/v1/p11/auth/basic/token"
    assert entry["token_type"] == "s3import"


def test_basic_refuses_export_type(emulator: Emulator) -> None:
    assert_refused(request_basic(emulator, api_key(emulator), "s3export"), 403)
    assert auth_log(emulator)[-1]["token_type"] == "s3export"


def test_basic_refuses_a_garbage_key(emulator: Emulator) -> None:
    assert_refused(request_basic(emulator, "not-a-key"), 401)


def test_basic_can_be_switched_off(emulator: Emulator) -> None:
    key = api_key(emulator)
    emulator.settings(basic_allowed=False)
    assert_refused(request_basic(emulator, key), 403)
    emulator.settings(basic_allowed=True)
    assert request_basic(emulator, key).status_code in OK


# --- Refresh -------------------------------------------------------------------


def test_refresh_chain_runs_out(start_emulator: Callable[..., Emulator]) -> None:
    emu = start_emulator("--refresh-count", "3")
    tokens = login(emu)
    key, refresh = tokens["api_key"], tokens["refresh_token"]
    counters = [claims(refresh)["counter"]]
    used: list[str] = []
    answers: list[dict] = []
    while refresh is not None and len(answers) < 10:
        resp = request_refresh(emu, key, refresh)
        assert resp.status_code in OK, resp.text
        used.append(refresh)
        answers.append(resp.json())
        refresh = answers[-1].get("refresh_token")
        if refresh is not None:
            counters.append(claims(refresh)["counter"])
    # A login allows exactly --refresh-count refreshes; the last one has no refresh token.
    assert len(answers) == 3, answers
    assert all("refresh_token" in a for a in answers[:-1])
    assert "refresh_token" not in answers[-1] or answers[-1]["refresh_token"] is None
    assert [b - a for a, b in zip(counters, counters[1:])] == [-1] * (len(counters) - 1)
    for answer in answers:
        got = claims(answer["token"])
        assert (got["name"], got["proj"], got["user"]) == ("s3import", "p11", "p11-demo")
    # Each refresh token was good for exactly one use.
    for token in used:
        assert_refused(request_refresh(emu, key, token), 401)


def test_refresh_keeps_the_type_and_gives_a_fresh_token(emulator: Emulator) -> None:
    tokens = login(emulator, "s3export")
    time.sleep(1.1)  # so that iat differs
    resp = request_refresh(emulator, tokens["api_key"], tokens["refresh_token"])
    assert resp.status_code in OK, resp.text
    new = resp.json()
    assert new["token"] != tokens["token"]
    assert new["refresh_token"] != tokens["refresh_token"]
    assert claims(new["token"])["name"] == "s3export"
    assert claims(new["token"])["iat"] > claims(tokens["token"])["iat"]
    entry = auth_log(emulator)[-1]
    assert entry["path"] == "/v1/p11/auth/refresh/token" and entry["status"] in OK


def test_refresh_refuses_garbage(emulator: Emulator) -> None:
    tokens = login(emulator)
    assert_refused(request_refresh(emulator, tokens["api_key"], "garbage"), 401)
    assert_refused(request_refresh(emulator, "garbage", tokens["refresh_token"]), 401)


def test_refresh_count_setting(emulator: Emulator) -> None:
    emulator.settings(refresh_count=1)
    tokens = login(emulator)
    resp = request_refresh(emulator, tokens["api_key"], tokens["refresh_token"])
    assert resp.status_code in OK, resp.text
    assert "token" in resp.json()
    assert resp.json().get("refresh_token") is None


def test_token_lifetime_setting(emulator: Emulator) -> None:
    emulator.settings(token_lifetime=5)
    got = claims(access_token(emulator))
    assert lifetime(got) == 5


def test_api_key_lifetime_setting(emulator: Emulator) -> None:
    emulator.settings(api_key_lifetime=100)
    now = time.time()
    assert now + 90 <= claims(api_key(emulator))["exp"] <= now + 110


# --- API key renewal -------------------------------------------------------------


def test_renewal_gives_a_working_key_and_retires_the_old(emulator: Emulator) -> None:
    old = api_key(emulator)
    resp = request_renewal(emulator, old)
    assert resp.status_code in OK, resp.text
    new = resp.json()["new_client_secret"]
    assert new != old
    assert claims(new)["proj"] == "p11"
    assert request_token(emulator, new).status_code in OK
    assert_refused(request_token(emulator, old), 401)
    renewals = [e for e in auth_log(emulator) if e["path"] == "/v1/p11/auth/clients/secret"]
    assert len(renewals) == 1 and renewals[0]["status"] in OK


def test_renewal_works_for_an_expired_key(start_emulator: Callable[..., Emulator]) -> None:
    emu = start_emulator("--api-key-lifetime", "1")
    old = api_key(emu)
    time.sleep(2.2)
    assert_refused(request_token(emu, old), 401)
    emu.settings(api_key_lifetime=3600)
    resp = request_renewal(emu, old)
    assert resp.status_code in OK, resp.text
    new = resp.json()["new_client_secret"]
    assert request_token(emu, new).status_code in OK
    assert_refused(request_token(emu, old), 401)


def test_renewal_refuses_a_garbage_key(emulator: Emulator) -> None:
    resp = requests.post(
        auth_url(emulator, "p11", "clients", "secret"),
        json={"client_id": "nobody", "client_secret": "garbage"},
        timeout=TIMEOUT,
    )
    assert_refused(resp, 401)


def test_renewal_refuses_a_mismatched_client_id(emulator: Emulator) -> None:
    key = api_key(emulator)
    resp = requests.post(
        auth_url(emulator, "p11", "clients", "secret"),
        json={"client_id": "someone-else", "client_secret": key},
        timeout=TIMEOUT,
    )
    assert resp.status_code in (400, 401, 403), resp.text
    assert request_token(emulator, key).status_code in OK  # the key still works

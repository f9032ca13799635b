"""The auth API under ``/v1/``, endpoint by endpoint as docs/tsd-api.md has it."""

from __future__ import annotations

import json
import re

from .identity import Identity, Refused

ROUTE = re.compile(
    r"^/v1/(?P<pnum>[^/]+)/auth/(?P<method>[^/]+)/(?P<endpoint>api_key|token|secret)$"
)


def _body(raw: bytes) -> object:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise Refused(400, "the body is not JSON") from None


def handle(
    identity: Identity, method: str, path: str, query: dict[str, str], headers: dict, raw: bytes
) -> tuple[int, dict]:
    """Answer one auth request: (status, JSON body). Refusals raise Refused."""
    route = ROUTE.match(path)
    if route is None:
        raise Refused(404, f"no such endpoint: {path}")
    pnum, how, endpoint = route["pnum"], route["method"], route["endpoint"]
    project = identity.project(pnum)
    authorization = headers.get("authorization")
    token_type = query.get("type", "")

    if how == "clients" and endpoint == "secret":
        _only(method, "POST")
        return 200, {"new_client_secret": identity.renew(pnum, _body(raw))}
    if how == "refresh" and endpoint == "token":
        _only(method, "POST")
        identity.api_key(pnum, authorization)
        return 201, identity.refresh(pnum, _body(raw))
    if how == "basic" and endpoint == "token":
        _only(method, "POST")
        key = identity.api_key(pnum, authorization)
        if not identity.settings.basic_allowed:
            raise Refused(403, "basic auth is allowed only from registered IP addresses")
        if token_type != "s3import":
            raise Refused(403, f"basic auth gives import tokens only, not {token_type!r}")
        user = identity.users.get((pnum, key["user"]))
        if user is None:
            raise Refused(401, "the API key's user is gone")
        return 201, identity.issue_tokens(user, token_type, identity.settings.refresh_count)
    if how not in ("tsd", "iam") or endpoint == "secret":
        raise Refused(404, f"no such endpoint: {path}")
    if how != project.method:
        raise Refused(404, f"{pnum} logs in with method {project.method!r}, not {how!r}")
    if endpoint == "api_key":
        _only(method, "GET")
        return 200, {"api_key": identity.issue_api_key(identity.login(pnum, _body(raw)))}
    _only(method, "POST")
    identity.api_key(pnum, authorization)
    user = identity.login(pnum, _body(raw))
    return 201, identity.access(user, token_type)


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise Refused(405, f"use {allowed} here")

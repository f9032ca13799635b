"""Unsigned JWTs for the unit tests: the client reads claims, it never checks signatures."""

from __future__ import annotations

import base64
import json


def make_jwt(payload: dict) -> str:
    """A JWT with ``payload`` as its claims and a signature no one checks."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join(
        (b64(b'{"alg":"HS256","typ":"JWT"}'), b64(json.dumps(payload).encode()), "c2lnbmF0dXJl")
    )

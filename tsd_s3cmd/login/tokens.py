"""What tsd-s3cmd needs to know about TSD's JWTs, and how to keep them out of output.

A client has no key to verify TSD's signatures (the server does that), so it
only reads the claims: ``exp`` to know when to refresh, ``proj`` and ``name``
to check that a token handed in fits the command.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any

IMPORT = "s3import"
EXPORT = "s3export"

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")


class NotAToken(ValueError):
    """The text is not a JWT whose claims can be read."""


def claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of a JWT."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise NotAToken("not a JWT (expected three dot-separated parts)")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        value = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (UnicodeError, binascii.Error, ValueError) as err:
        raise NotAToken("its claims are not readable") from err
    if not isinstance(value, dict):
        raise NotAToken("its claims are not a JSON object")
    return value


def expiry(token: str) -> float:
    """The ``exp`` claim, as a POSIX timestamp."""
    exp = claims(token).get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise NotAToken("it has no expiry time")
    return float(exp)


def redact(text: str) -> str:
    """Replace every JWT in ``text`` with a marker that keeps only its last characters.

    The tail lets a user match two log lines to the same token without giving
    anyone a usable credential.
    """
    return _JWT.sub(lambda m: f"<redacted token …{m.group(0)[-6:]}>", text)

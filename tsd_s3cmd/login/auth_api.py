"""A client for the five endpoints of TSD's auth API that tsd-s3cmd uses.

See docs/tsd-api.md in the shared folder for the protocol. Every call is
bounded: a connect and a read timeout, and at most ``attempts`` tries with
backoff when the API is unreachable, times out or answers 5xx. ``requests``
is imported here and only here, so a run with a cached token never loads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .. import __version__
from ..errors import ApiError, AuthError, UnreachableError
from . import tokens

DEFAULT_TIMEOUT = 20.0
CONNECT_TIMEOUT = 5.0
ATTEMPTS = 3


@dataclass(frozen=True)
class Credentials:
    """What a person types to prove who they are. Never logged, never on argv."""

    user_name: str
    password: str
    otp: str

    def body(self) -> dict[str, str]:
        return {"user_name": self.user_name, "password": self.password, "otp": self.otp}

    def __repr__(self) -> str:
        return f"Credentials(user_name={self.user_name!r}, password=..., otp=...)"


@dataclass(frozen=True)
class TokenAnswer:
    token: str
    refresh_token: str | None


class AuthApi:
    """TSD's auth API for one project, at one base URL."""

    def __init__(
        self,
        base_url: str,
        pnum: str,
        method: str,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import requests

        self._requests = requests
        self._session = requests.Session()
        self._session.headers["User-Agent"] = f"tsd-s3cmd/{__version__}"
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc or self.base_url
        self.pnum = pnum
        self.method = method
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self._sleep = sleep

    # -- the endpoints ------------------------------------------------------

    def api_key(self, credentials: Credentials) -> str:
        """Register: trade user name, password and OTP for the project's API key."""
        # Yes, a GET with a JSON body: that is what TSD's API expects.
        answer = self._call(
            "GET", f"auth/{self.method}/api_key", json=credentials.body(), what="registration"
        )
        return _field(answer, "api_key", self.host)

    def login(self, api_key: str, token_type: str, credentials: Credentials) -> TokenAnswer:
        """Get an access token with two-factor credentials."""
        answer = self._call(
            "POST",
            f"auth/{self.method}/token",
            params={"type": token_type},
            bearer=api_key,
            json=credentials.body(),
            what="login",
            token_type=token_type,
        )
        return _token_answer(answer, self.host)

    def basic(self, api_key: str, token_type: str) -> TokenAnswer:
        """Get an import token with the API key alone (TSD allows it from registered IPs)."""
        answer = self._call(
            "POST",
            "auth/basic/token",
            params={"type": token_type},
            bearer=api_key,
            what="basic login",
            token_type=token_type,
        )
        return _token_answer(answer, self.host)

    def refresh(self, api_key: str, refresh_token: str) -> TokenAnswer:
        """Trade a refresh token (good for one use) for a new token pair."""
        answer = self._call(
            "POST",
            "auth/refresh/token",
            bearer=api_key,
            json={"refresh_token": refresh_token},
            what="token refresh",
        )
        return _token_answer(answer, self.host)

    def renew(self, api_key: str) -> str:
        """Trade an API key, expired or not, for a new one."""
        try:
            client_id = tokens.claims(api_key)["aud"]
        except (tokens.NotAToken, KeyError) as err:
            raise ApiError("the stored API key has no client id", 0) from err
        answer = self._call(
            "POST",
            "auth/clients/secret",
            json={"client_id": client_id, "client_secret": api_key},
            what="API key renewal",
        )
        return _field(answer, "new_client_secret", self.host)

    # -- plumbing -------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        bearer: str | None = None,
        json: Any = None,
        token_type: str | None = None,
    ) -> Any:
        url = f"{self.base_url}/v1/{self.pnum}/{path}"
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        errors = self._requests.exceptions
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    headers=headers,
                    json=json,
                    timeout=(min(CONNECT_TIMEOUT, self.timeout), self.timeout),
                )
            except errors.SSLError as err:
                raise UnreachableError(
                    f"cannot verify the TLS certificate of {self.host} ({_reason(err)}); "
                    "check REQUESTS_CA_BUNDLE"
                ) from err
            except errors.Timeout:
                problem = f"no answer within {self.timeout:g}s"
                continue
            except errors.ConnectionError as err:
                problem = _reason(err)
                continue
            if response.status_code >= 500:
                problem = f"it answered {response.status_code}"
                continue
            return self._answer(response, what, token_type)
        raise UnreachableError(
            f"cannot reach the TSD API at {self.host} for {what}: {problem} "
            f"(tried {self.attempts} times); check your network and try again later"
        )

    def _answer(self, response: Any, what: str, token_type: str | None) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        if 200 <= status < 300:
            if body is None:
                raise ApiError(f"the TSD API at {self.host} sent an unreadable answer", status)
            return body
        said = body.get("message") if isinstance(body, dict) else None
        said = tokens.redact(str(said))[:200] if said else response.reason
        prefix = f"TSD refused the {what} for {self.pnum}"
        if status == 403 and token_type == tokens.EXPORT:
            raise ApiError(
                f"{prefix}: this user may not export data from {self.pnum} (only members of "
                f"{self.pnum}-export-group may); ask the project administrator ({said})",
                status,
                AuthError.exit_code,
            )
        if status in (401, 403):
            raise ApiError(f"{prefix} ({status}: {said})", status, AuthError.exit_code)
        raise ApiError(f"{prefix} ({status}: {said})", status)


def _field(answer: Any, name: str, host: str) -> str:
    value = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(value, str) or not value:
        raise ApiError(f"the TSD API at {host} answered without '{name}'", 200)
    return value


def _token_answer(answer: Any, host: str) -> TokenAnswer:
    token = _field(answer, "token", host)
    refresh = answer.get("refresh_token")
    return TokenAnswer(token, refresh if isinstance(refresh, str) and refresh else None)


def _reason(err: Exception) -> str:
    """The innermost cause of a requests error, without the URL noise."""
    while err.__cause__ is not None or (err.args and isinstance(err.args[0], Exception)):
        err = err.__cause__ or err.args[0]
    text = str(err)
    for marker in ("Failed to establish a new connection: ", "] "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.rstrip(")'\"").strip() or type(err).__name__

"""Who may do what in the emulator: users, projects, S3 keys and the JWTs.

Every token the emulator hands out is a JWT signed (HS256) with a secret made
at start-up, so a token from another emulator, or one a test edited, is
refused as the real service would refuse a forged one. The claims follow
docs/tsd-api.md; a private ``kind`` claim keeps an API key from being used as
an access token and the other way round.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field, replace

import jwt

PNUM = re.compile(r"^(p|ec)[0-9]{1,6}$")
TOKEN_TYPES = ("s3import", "s3export")
REFRESH_LIFETIME = 24 * 3600
WRONG_CREDENTIALS = "wrong user name, password or one-time code"


class Refused(Exception):
    """A request the emulator turns down: an HTTP status and a message."""

    def __init__(self, status: int, message: str, code: str = "AccessDenied") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass
class Settings:
    """What tests may change while the emulator runs (``POST /_emulator/settings``)."""

    token_lifetime: float = 3600.0
    refresh_count: int = 10
    api_key_lifetime: float = 365 * 24 * 3600.0
    basic_allowed: bool = True
    # Bytes per second that one S3 request's body moves at, each way (0: as fast as it can):
    # the per-connection limit of a long link, for tests of what happens meanwhile.
    link_rate: float = 0.0
    # The gateway under load, what TSD's nginx does when the storage behind it is slow
    # (all off by default). Seconds the gateway waits for the store's answer to an S3
    # request before it gives the client nginx's 504 page (the store still finishes):
    read_timeout: float = 0.0
    # Seconds the store takes to answer a CompleteMultipartUpload after it has completed
    # the upload, as a huge object's complete takes at TSD:
    complete_delay: float = 0.0
    # The next N CompleteMultipartUploads are answered 200 with an InternalError body and
    # not completed, as S3 sometimes answers; one fewer is left after each.
    complete_errors: int = 0
    # The gateway's limit on requests at once: an S3 request that arrives while this
    # many are in flight is answered S3's 503 SlowDown at once (0: no limit).
    slow_down_above: int = 0
    # Keys in a page of a listing that does not ask for fewer (S3's: 1,000): tests make
    # it small to list a tree in many pages without storing thousands of objects.
    list_page_size: int = 1000

    def update(self, changes: dict) -> None:
        for name, value in changes.items():
            if name not in self.__dataclass_fields__:
                raise Refused(400, f"unknown setting {name!r}")
            kind = type(getattr(self, name))
            if kind is bool:
                if not isinstance(value, bool):
                    raise Refused(400, f"{name} takes true or false")
            elif not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise Refused(400, f"{name} takes a number >= 0")
        if changes.get("list_page_size", 1) < 1:
            raise Refused(400, "list_page_size takes a number >= 1")
        with _SETTINGS_LOCK:  # all or nothing, and not halfway through take_complete_error
            for name, value in changes.items():
                setattr(self, name, type(getattr(self, name))(value))
            # moto reads its page size from its environment at each listing.
            os.environ["MOTO_S3_DEFAULT_MAX_KEYS"] = str(self.list_page_size)

    def take_complete_error(self) -> bool:
        """Whether this CompleteMultipartUpload gets one of the ``complete_errors`` due.

        Counted down under a lock: parallel uploads complete at once, and each
        error is to be answered exactly once.
        """
        with _SETTINGS_LOCK:
            if self.complete_errors <= 0:
                return False
            self.complete_errors -= 1
            return True


# Outside the dataclass, so that the settings stay plain data (the hook answers vars()).
_SETTINGS_LOCK = threading.Lock()


@dataclass(frozen=True)
class User:
    name: str
    pnum: str
    password: str
    otp: str
    export: bool

    @property
    def groups(self) -> list[str]:
        groups = [f"{self.pnum}-member-group"]
        if self.export:
            groups.append(f"{self.pnum}-export-group")
        return groups


@dataclass(frozen=True)
class Project:
    pnum: str
    access_key: str
    secret_key: str

    @property
    def method(self) -> str:
        """TSD projects log in with ``tsd``, Educloud ones with ``iam``."""
        return "iam" if self.pnum.startswith("ec") else "tsd"

    @classmethod
    def demo(cls, pnum: str) -> Project:
        """Fixed, obviously fake S3 keys, so that a written s3cfg stays valid across runs."""
        digest = hashlib.sha256(f"tsd-emulator-{pnum}".encode()).hexdigest()
        return cls(pnum, f"TSDEMU{pnum.upper()}".ljust(20, "X")[:20], f"emulator-{digest[:32]}")


def parse_user(spec: str) -> User:
    """``pNN-name:password:otp[:export]``, or ``ecNN/name:...`` for Educloud."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "export"):
        raise ValueError(f"--user {spec!r}: expected pNN-name:password:otp[:export]")
    name, password, otp = parts[:3]
    if "/" in name:
        pnum, name = name.split("/", 1)
    else:
        pnum = name.split("-", 1)[0]
    if not PNUM.match(pnum) or not name or not password or not otp:
        raise ValueError(f"--user {spec!r}: expected pNN-name:password:otp[:export]")
    return User(name, pnum, password, otp, len(parts) == 4)


BUILT_IN_USERS = (
    User("p11-demo", "p11", "demo-password", "123456", export=True),
    User("p11-noexport", "p11", "demo-password", "123456", export=False),
    User("edu-demo", "ec11", "demo-password", "123456", export=True),
)


@dataclass
class Identity:
    """The emulator's users and projects, and the tokens it has handed out."""

    settings: Settings = field(default_factory=Settings)
    users: dict[tuple[str, str], User] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    secret: bytes = field(default_factory=lambda: os.urandom(32))
    _spent: set[str] = field(default_factory=set)  # refresh tokens used, API keys renewed
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_user(self, user: User) -> None:
        self.users[(user.pnum, user.name)] = user
        self.projects.setdefault(user.pnum, Project.demo(user.pnum))

    def set_export(self, pnum: str, name: str, member: bool) -> User:
        """Put a user into pNN-export-group or take them out, as a project's administrator does.

        Tokens already issued keep the groups they were issued with.
        """
        user = self.users.get((pnum, name))
        if user is None:
            raise Refused(404, f"no user {name!r} in {pnum}")
        self.users[(pnum, name)] = user = replace(user, export=member)
        return user

    def project(self, pnum: str) -> Project:
        try:
            return self.projects[pnum]
        except KeyError:
            raise Refused(404, f"no project {pnum} here") from None

    # -- signing -------------------------------------------------------------

    def _sign(self, claims: dict, lifetime: float) -> str:
        # Whole seconds, as real JWTs have them: exp - iat is the lifetime exactly.
        now = int(time.time())
        body = {**claims, "iat": now, "exp": now + math.ceil(lifetime), "jti": uuid.uuid4().hex}
        return jwt.encode(body, self.secret, algorithm="HS256")

    def verify(self, token: str, kind: str, *, allow_expired: bool = False) -> dict:
        """The claims of a token this emulator signed, or Refused saying what is wrong."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            raise Refused(401, f"this {kind} was not issued here", "InvalidToken") from None
        if claims.get("kind") != kind:
            raise Refused(401, f"this is not a valid {kind}", "InvalidToken")
        if not allow_expired and float(claims.get("exp", 0)) <= time.time():
            raise Refused(401, f"the {kind} has expired", "ExpiredToken")
        return claims

    # -- the auth API's operations --------------------------------------------

    def login(self, pnum: str, body: object) -> User:
        """The user whose name, password and one-time code are in ``body``."""
        if not isinstance(body, dict):
            raise Refused(400, "expected a JSON body with user_name, password and otp")
        user = self.users.get((pnum, str(body.get("user_name", ""))))
        if (
            user is None
            or body.get("password") != user.password
            or str(body.get("otp", "")) != user.otp
        ):
            raise Refused(401, WRONG_CREDENTIALS)
        return user

    def issue_api_key(self, user: User) -> str:
        claims = {"kind": "api key", "aud": uuid.uuid4().hex, "proj": user.pnum, "user": user.name}
        return self._sign(claims, self.settings.api_key_lifetime)

    def api_key(self, pnum: str, authorization: str | None) -> dict:
        """The claims of the Bearer API key, which must be valid for ``pnum``."""
        if not authorization or not authorization.startswith("Bearer "):
            raise Refused(401, "missing Authorization: Bearer <api key>")
        claims = self.verify(authorization[len("Bearer ") :].strip(), "api key")
        if claims.get("proj") != pnum or claims["jti"] in self._spent:
            raise Refused(401, "the API key is not valid for this project")
        return claims

    def issue_tokens(self, user: User, token_type: str, refreshes: int) -> dict:
        """An access token, and a refresh token while ``refreshes`` are left."""
        claims = {"proj": user.pnum, "user": user.name, "groups": user.groups}
        answer = {
            "token": self._sign(
                {**claims, "kind": "access token", "name": token_type},
                self.settings.token_lifetime,
            )
        }
        if refreshes > 0:
            answer["refresh_token"] = self._sign(
                {**claims, "kind": "refresh token", "type": token_type, "counter": refreshes},
                REFRESH_LIFETIME,
            )
        return answer

    def access(self, user: User, token_type: str) -> dict:
        if token_type not in TOKEN_TYPES:
            raise Refused(400, f"unknown token type {token_type!r}; use s3import or s3export")
        if token_type == "s3export" and not user.export:
            raise Refused(
                403, f"{user.name} is not a member of {user.pnum}-export-group: no export"
            )
        return self.issue_tokens(user, token_type, self.settings.refresh_count)

    def refresh(self, pnum: str, body: object) -> dict:
        """Spend a refresh token: each one is good once, and its counter runs down."""
        token = body.get("refresh_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise Refused(400, "expected a JSON body with refresh_token")
        claims = self.verify(token, "refresh token")
        user = self.users.get((pnum, claims.get("user", "")))
        if claims.get("proj") != pnum or user is None:
            raise Refused(401, "the refresh token is not for this project")
        with self._lock:
            if claims["jti"] in self._spent:
                raise Refused(401, "the refresh token has been used already")
            self._spent.add(claims["jti"])
        return self.issue_tokens(user, claims["type"], int(claims["counter"]) - 1)

    def renew(self, pnum: str, body: object) -> str:
        """A new API key for an old one, expired or not; the old one stops working."""
        if not isinstance(body, dict):
            raise Refused(400, "expected a JSON body with client_id and client_secret")
        claims = self.verify(str(body.get("client_secret", "")), "api key", allow_expired=True)
        if claims.get("proj") != pnum or claims.get("aud") != body.get("client_id"):
            raise Refused(401, "client_id and client_secret do not match")
        with self._lock:
            if claims["jti"] in self._spent:
                raise Refused(401, "this API key has been renewed already")
            self._spent.add(claims["jti"])
        fresh = {k: claims[k] for k in ("kind", "aud", "proj", "user")}
        return self._sign(fresh, self.settings.api_key_lifetime)

"""The credential and token store: API keys, cached tokens, unfinished uploads.

Everything lives in ``$XDG_CONFIG_HOME/tsd-s3cmd/`` (default
``~/.config/tsd-s3cmd/``), a directory of mode 0700 holding JSON files of mode
0600:

- ``credentials.json``: ``{env: {project: {"api_key", "user"}}}``, written by
  ``--register`` and by API key renewal;
- ``tokens.json``: ``{env: {project: {token type: {...}}}}``, the login cache;
- ``uploads.json``: multipart uploads started and not finished, so that
  ``--status`` can print the command that resumes one after a crash;
- ``downloads.json``: downloads that keep a hidden file to resume from
  (partials.py), so that ``--status`` can say where they are.

How the files are written and guarded (atomically, privately) is
private_files.py's concern; the lock that read-modify-write cycles run under,
so that concurrent processes (a Slurm array) never tear a file or spend one
refresh token twice, is locking.py's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import ConfigError
from . import locking, tokens
from .private_files import PrivateDir, check_private

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from typing import Any


class CorruptFileError(ConfigError):
    """A file that exists but cannot be parsed."""


CREDENTIALS = "credentials.json"
TOKENS = "tokens.json"
UPLOADS = "uploads.json"
DOWNLOADS = "downloads.json"
LOCK = ".lock"

# Refresh a token when less than this share of its lifetime is left ...
REFRESH_FRACTION = 0.25
# ... but never more than this many seconds before it expires.
REFRESH_MARGIN_MAX = 300.0


class Registration:
    """A project's API key, from ``--register`` or borrowed from tacl."""

    __slots__ = ("api_key", "source", "user")

    def __init__(self, api_key: str, user: str | None = None, source: str = "tsd-s3cmd") -> None:
        self.api_key = api_key
        self.user = user
        self.source = source

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Registration) and (
            (self.api_key, self.user, self.source) == (other.api_key, other.user, other.source)
        )

    def __repr__(self) -> str:  # never the key itself
        return f"Registration(user={self.user!r}, source={self.source!r})"

    def expires(self) -> float | None:
        try:
            return tokens.expiry(self.api_key)
        except tokens.NotAToken:
            return None


class CachedToken:
    """An access token, when it stops working, and how to get the next one."""

    FIELDS = (
        "type",
        "token",
        "expires",
        "issued",
        "refresh_token",
        "refresh_expires",
        "refreshes_left",
        "user",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        type: str,
        token: str,
        expires: float,
        issued: float,
        refresh_token: str | None = None,
        refresh_expires: float | None = None,
        refreshes_left: int | None = None,
        user: str | None = None,
    ) -> None:
        self.type = type
        self.token = token
        self.expires = expires
        self.issued = issued
        self.refresh_token = refresh_token
        self.refresh_expires = refresh_expires
        self.refreshes_left = refreshes_left
        self.user = user

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CachedToken) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:  # never the tokens themselves
        return f"CachedToken(type={self.type!r}, expires={self.expires!r}, user={self.user!r})"

    @classmethod
    def from_answer(
        cls, token_type: str, token: str, refresh_token: str | None, now: float
    ) -> CachedToken:
        """Build a cache entry from what the auth API answered."""
        refresh_expires = refreshes_left = None
        if refresh_token:
            try:
                refresh_claims = tokens.claims(refresh_token)
                refresh_expires = float(refresh_claims["exp"])
                counter = refresh_claims.get("counter")
                refreshes_left = counter if isinstance(counter, int) else None
            except (tokens.NotAToken, KeyError, TypeError, ValueError):
                pass
        user = tokens.claims(token).get("user")
        return cls(
            type=token_type,
            token=token,
            expires=tokens.expiry(token),
            issued=now,
            refresh_token=refresh_token or None,
            refresh_expires=refresh_expires,
            refreshes_left=refreshes_left,
            user=user if isinstance(user, str) else None,
        )

    @classmethod
    def from_dict(cls, entry: Any) -> CachedToken:
        """A cache entry read back from JSON; TypeError or ValueError if malformed."""
        if not isinstance(entry, dict):
            raise TypeError("not an object")
        token = cls(**entry)
        numbers = (token.expires, token.issued)
        optional = (token.refresh_expires, token.refreshes_left)
        texts = (token.type, token.token)
        if (
            not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers)
            or not all(n is None or isinstance(n, (int, float)) for n in optional)
            or not all(isinstance(t, str) and t for t in texts)
            or not isinstance(token.refresh_token, (str, type(None)))
            or not isinstance(token.user, (str, type(None)))
        ):
            raise ValueError("a field has the wrong type")
        return token

    def project(self) -> str | None:
        """The project the token is for, by its ``proj`` claim; None if unreadable."""
        try:
            project = tokens.claims(self.token).get("proj")
        except tokens.NotAToken:
            return None
        return project if isinstance(project, str) else None

    def margin(self) -> float:
        """How long before expiry to renew: a share of the lifetime, at most five minutes."""
        lifetime = max(self.expires - self.issued, 0.0)
        return min(lifetime * REFRESH_FRACTION, REFRESH_MARGIN_MAX)

    def fresh(self, now: float) -> bool:
        """Good to use without asking the auth API anything."""
        return now < self.expires - self.margin()

    def refreshable(self, now: float) -> bool:
        return bool(self.refresh_token) and (
            self.refresh_expires is None or now < self.refresh_expires
        )


class Store:
    """Reads and writes the files in the config directory."""

    def __init__(self, directory: Path, tacl_config: Path, warn: Callable[[str], None]) -> None:
        self.directory = directory
        self.files = PrivateDir(directory)
        self.tacl_config = tacl_config
        said: set[str] = set()

        def warn_once(message: str) -> None:
            # The cache is re-read under the lock and again to save: say it once.
            if message not in said:
                said.add(message)
                warn(message)

        self._warn = warn_once

    # -- files -----------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.files.path(name)

    def _read(self, name: str) -> Any:
        """The parsed JSON of a file, ``None`` if there is none; ValueError if corrupt."""
        data = self.files.read(name)
        return None if data is None else json.loads(data.decode("utf-8"))

    def _write(self, name: str, value: Any) -> None:
        """Replace a file atomically; on failure the old file is untouched."""
        self.files.write(name, (json.dumps(value, indent=1, sort_keys=True) + "\n").encode())

    def _read_cache(self, name: str) -> dict[str, Any]:
        """A cache file's contents; a corrupt cache is reported and treated as empty."""
        try:
            value = self._read(name)
        except (ValueError, UnicodeDecodeError) as err:
            self._warn(f"{self._path(name)} is corrupt ({_short(err)}); ignoring it")
            return {}
        if value is None:
            return {}
        if not isinstance(value, dict):
            self._warn(f"{self._path(name)} is corrupt (not a JSON object); ignoring it")
            return {}
        return value

    def lock(self) -> AbstractContextManager[None]:
        """Hold the store's lock; a holder that dies never blocks the others (see locking.py)."""
        self.files.ensure()
        return locking.held(self._path(LOCK), self._warn)

    # -- registrations ----------------------------------------------------

    def registrations(self) -> dict[str, dict[str, Registration]]:
        """tsd-s3cmd's own API keys. A corrupt file is an error: keys cannot be re-derived."""
        path = self._path(CREDENTIALS)
        try:
            raw = self._read(CREDENTIALS)
            if raw is None:
                return {}
            parsed = {
                env: {
                    pnum: Registration(api_key=entry["api_key"], user=entry.get("user"))
                    for pnum, entry in projects.items()
                }
                for env, projects in raw.items()
            }
            for projects in parsed.values():
                for reg in projects.values():
                    if not isinstance(reg.api_key, str) or not isinstance(
                        reg.user, (str, type(None))
                    ):
                        raise TypeError("a field has the wrong type")
            return parsed
        except (ValueError, UnicodeDecodeError, AttributeError, KeyError, TypeError) as err:
            raise CorruptFileError(
                f"{path} is corrupt ({_short(err)}); register again with "
                "'tsd-s3cmd --register' (the damaged file is kept beside it)"
            ) from err

    def _tacl_keys(self) -> dict[str, dict[str, str]]:
        """tsd-api-client's API keys, YAML shaped ``{env: {project: api_key}}``."""
        try:
            with open(self.tacl_config, "rb") as f:
                check_private(self.tacl_config, os.fstat(f.fileno()), "API keys")
                data = f.read()
        except FileNotFoundError:
            return {}
        except OSError as err:
            self._warn(f"cannot read {self.tacl_config}: {err.strerror}; ignoring it")
            return {}
        import yaml

        try:
            raw = yaml.safe_load(data)
        except yaml.YAMLError:
            self._warn(f"{self.tacl_config} is not valid YAML; ignoring it")
            return {}
        if not isinstance(raw, dict):
            return {}
        return {
            str(env): {str(p): k for p, k in projects.items() if isinstance(k, str) and k}
            for env, projects in raw.items()
            if isinstance(projects, dict)
        }

    def registration(self, env: str, pnum: str) -> Registration | None:
        """The API key to use for a project: our own, else one tacl registered."""
        own = self.registrations().get(env, {}).get(pnum)
        if own:
            return own
        key = self._tacl_keys().get(env, {}).get(pnum)
        if not key:
            return None
        try:
            user = tokens.claims(key).get("user")
        except tokens.NotAToken:
            user = None
        return Registration(
            api_key=key, user=user if isinstance(user, str) else None, source="tacl"
        )

    def projects(self, env: str) -> list[str]:
        """Projects with an API key for ``env``: ours, or if we have none, tacl's."""
        return list(self.registrations().get(env, {}) or self._tacl_keys().get(env, {}))

    def all_registrations(self) -> dict[str, dict[str, Registration]]:
        """Ours and tacl's, for ``--status``."""
        merged = self.registrations()
        for env, keys in self._tacl_keys().items():
            for pnum in keys:
                if pnum not in merged.get(env, {}):
                    reg = self.registration(env, pnum)
                    if reg:
                        merged.setdefault(env, {})[pnum] = reg
        return merged

    def save_registration(self, env: str, pnum: str, registration: Registration) -> None:
        """Store an API key (call under ``lock()``); a corrupt old file is kept aside."""
        try:
            current = self.registrations()
        except CorruptFileError:
            path = self._path(CREDENTIALS)
            aside = path.with_name(f"{path.name}.corrupt")
            os.replace(path, aside)
            self._warn(f"kept the damaged {path.name} as {aside}")
            current = {}
        current.setdefault(env, {})[pnum] = Registration(registration.api_key, registration.user)
        self._write_registrations(current)

    def forget_registration(self, env: str, pnum: str) -> bool:
        """Drop tsd-s3cmd's own API key of a project (call under ``lock()``); whether there was one.

        tacl's keys are tacl's: they stay where they are.
        """
        current = self.registrations()
        if current.get(env, {}).pop(pnum, None) is None:
            return False
        self._write_registrations(current)
        return True

    def _write_registrations(self, registrations: dict[str, dict[str, Registration]]) -> None:
        self._write(
            CREDENTIALS,
            {
                e: {p: {"api_key": r.api_key, "user": r.user} for p, r in projects.items()}
                for e, projects in registrations.items()
                if projects
            },
        )

    # -- tokens ------------------------------------------------------------

    def _tokens(self) -> dict[str, dict[str, dict[str, CachedToken]]]:
        """The token cache, with anything malformed in it reported and dropped."""
        parsed: dict[str, dict[str, dict[str, CachedToken]]] = {}
        dropped = False
        for env, projects in self._read_cache(TOKENS).items():
            for pnum, types in projects.items() if isinstance(projects, dict) else ():
                for kind, entry in types.items() if isinstance(types, dict) else ():
                    try:
                        token = CachedToken.from_dict(entry)
                    except (TypeError, ValueError):
                        dropped = True
                        continue
                    if token.type == kind:
                        parsed.setdefault(env, {}).setdefault(pnum, {})[kind] = token
            dropped = dropped or not isinstance(projects, dict)
        if dropped:
            self._warn(f"{self._path(TOKENS)} has unreadable entries; ignoring them")
        return parsed

    def token(self, env: str, pnum: str, token_type: str) -> CachedToken | None:
        """The cached token, unless it is not a token of ``pnum`` (then it is ignored)."""
        found = self._tokens().get(env, {}).get(pnum, {}).get(token_type)
        if found is None or found.project() == pnum:
            return found
        self._warn(
            f"{self._path(TOKENS)} holds a {token_type} token that is not {pnum}'s; ignoring it"
        )
        return None

    def project_tokens(self, env: str, pnum: str) -> list[CachedToken]:
        """Every cached token of a project, whatever its type (others' ignored, as by token)."""
        types = self._tokens().get(env, {}).get(pnum, {})
        return [token for token in types.values() if token.project() == pnum]

    def all_tokens(self) -> Iterator[tuple[str, str, CachedToken]]:
        for env, projects in self._tokens().items():
            for pnum, types in projects.items():
                for token in types.values():
                    yield env, pnum, token

    def _write_tokens(self, cache: dict[str, dict[str, dict[str, CachedToken]]]) -> None:
        self._write(
            TOKENS,
            {
                env: {
                    p: {k: t.to_dict() for k, t in types.items()} for p, types in projects.items()
                }
                for env, projects in cache.items()
            },
        )

    def save_token(self, env: str, pnum: str, token: CachedToken) -> None:
        """Cache a token (call under ``lock()``)."""
        current = self._tokens()
        current.setdefault(env, {}).setdefault(pnum, {})[token.type] = token
        self._write_tokens(current)

    def forget_tokens(self, env: str | None = None, pnum: str | None = None) -> int:
        """Drop cached tokens, all or those of one environment and/or project."""
        current = self._tokens()
        dropped = 0
        for e in list(current):
            if env is not None and e != env:
                continue
            for p in list(current[e]):
                if pnum is not None and p != pnum:
                    continue
                dropped += len(current[e].pop(p))
            if not current[e]:
                del current[e]
        if dropped or self._path(TOKENS).exists():
            self._write_tokens(current)
        return dropped

    # -- unfinished uploads -------------------------------------------------

    def uploads(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self._read_cache(UPLOADS).items() if isinstance(v, dict)}

    def record_upload(self, upload_id: str, details: dict[str, Any]) -> None:
        with self.lock():
            current = self.uploads()
            current[upload_id] = details
            self._write(UPLOADS, current)

    def finish_upload(self, upload_id: str) -> None:
        self._forget(UPLOADS, upload_id)

    # -- unfinished downloads ----------------------------------------------

    def downloads(self) -> dict[str, dict[str, Any]]:
        """Unfinished downloads by their hidden file."""
        return {k: v for k, v in self._read_cache(DOWNLOADS).items() if isinstance(v, dict)}

    def record_download(self, partial: str, details: dict[str, Any]) -> None:
        with self.lock():
            current = self.downloads()
            current[partial] = details
            self._write(DOWNLOADS, current)

    def finish_download(self, partial: str) -> None:
        self._forget(DOWNLOADS, partial)

    def _forget(self, name: str, key: str) -> None:
        with self.lock():
            current = {k: v for k, v in self._read_cache(name).items() if isinstance(v, dict)}
            if current.pop(key, None) is not None:
                self._write(name, current)


def _short(err: Exception) -> str:
    """An exception as a few words, safe to print (no file contents)."""
    if isinstance(err, json.JSONDecodeError):
        return f"invalid JSON at line {err.lineno}"
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8 text"
    return type(err).__name__

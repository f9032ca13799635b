"""The credential broker: registration, login, and tokens that stay valid.

As aws-vault does for AWS, the broker stands between the person and the
program that needs credentials. It registers once, logs in only when no
cached or refreshable token will do, and hands s3cmd the token in memory
(never on a command line), renewing it before each request that would go out
with a token close to expiry. Renewals run under the store's lock and re-read
the cache first, so a hundred processes started together share one login and
spend each refresh token once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from ..errors import ApiError, AuthError, ConfigError, TsdError, UsageError
from . import tokens
from .store import CachedToken, Registration, Store

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from ..context import Environment
    from ..environments import ApiEnvironment
    from .auth_api import AuthApi
    from .prompts import Prompter
    from .token_choice import Listing

# Renew an API key this close to its expiry rather than fail a run on it.
API_KEY_RENEW_AHEAD = 60.0
LOGIN_ATTEMPTS_AT_TERMINAL = 3

_TSD_PROJECT = re.compile(r"^p[0-9]+$")
_EDUCLOUD_PROJECT = re.compile(r"^ec[0-9]+$")


# How a membership of the export group granted since a token was cached reaches
# tsd-s3cmd: TSD writes the user's groups into each token it issues, and a cached
# token keeps the groups it was issued with.
RENEW_BY_LOGIN = "run 'tsd-s3cmd --logout' so that the next login picks them up"
RENEW_GIVEN = (
    "get a new token for TSD_S3CMD_TOKEN: 'tsd-s3cmd --logout', then "
    "'tsd-s3cmd --print-token-for COMMAND'"
)


class TokenUnavailable(AuthError):
    """A token ran out in the middle of a run and could not be renewed unattended."""


def check_export_rights(listing: Listing, token: str, pnum: str, evidence: str, renew: str) -> None:
    """Stop a command that lists when ``token`` shows its user outside pNN-export-group.

    TSD would refuse every listing of the run with a 403 (which s3cmd prints
    twice); this says why, once, before the first request. A token without a
    ``groups`` claim shows nothing, and TSD decides.
    """
    try:
        found = tokens.claims(token)
    except tokens.NotAToken:
        return
    groups = found.get("groups")
    if not isinstance(groups, list) or f"{pnum}-export-group" in groups:
        return
    user = found.get("user")
    raise listing.refused(pnum, user if isinstance(user, str) else "this user", evidence, renew)


def check_project(env: ApiEnvironment, pnum: str) -> str:
    pattern, example = (_EDUCLOUD_PROJECT, "ec11") if env.educloud else (_TSD_PROJECT, "p11")
    if not pattern.match(pnum):
        raise UsageError(f"'{pnum}' is not a project name of {env.name} (they look like {example})")
    return pnum


def describe(env: ApiEnvironment, pnum: str) -> str:
    return f"{pnum} ({env.name})"


def register_command(env: ApiEnvironment, pnum: str) -> str:
    return f"tsd-s3cmd --register --env {env.name} --project {pnum}"


def resolve_project(store: Store, env: ApiEnvironment, requested: str | None) -> str:
    """The project to act for: ``--project``, else the only one registered."""
    if requested:
        return check_project(env, requested)
    projects = store.projects(env.name)
    if len(projects) == 1:
        return projects[0]
    if not projects:
        raise ConfigError(
            f"no project is registered for {env.name}; register with: "
            f"tsd-s3cmd --register --env {env.name}"
        )
    raise UsageError(
        f"several projects are registered for {env.name} ({', '.join(sorted(projects))}); "
        "choose one with --project"
    )


def _auth_api(context: Environment, env: ApiEnvironment, pnum: str) -> AuthApi:
    from .auth_api import AuthApi

    timeout = context.environ.get("TSD_S3CMD_HTTP_TIMEOUT")
    try:
        seconds = float(timeout) if timeout else None
    except ValueError:
        raise UsageError(f"TSD_S3CMD_HTTP_TIMEOUT={timeout!r} is not a number of seconds") from None
    api = AuthApi(env.api_url(context.environ), pnum, env.auth_method)
    if seconds is not None:
        api.timeout = seconds
    return api


def register(
    context: Environment,
    store: Store,
    prompter: Prompter,
    env: ApiEnvironment,
    requested_project: str | None,
) -> tuple[str, Registration]:
    """Ask for credentials, get the project's API key, store it; replaces an older one."""
    if requested_project:
        check_project(env, requested_project)
    pnum = requested_project
    if env.educloud and not pnum:
        pnum = check_project(env, prompter.ask("Educloud project (like ec11)"))
    credentials = prompter.credentials(f"{pnum or 'your TSD project'} ({env.name})")
    if not env.educloud:
        owner = credentials.user_name.split("-", 1)[0]
        if not _TSD_PROJECT.match(owner) or "-" not in credentials.user_name:
            raise UsageError(
                f"'{credentials.user_name}' is not a TSD user name (they look like p11-name)"
            )
        if pnum and owner != pnum:
            raise UsageError(
                f"user {credentials.user_name} belongs to {owner}, not {pnum}; "
                f"log in with a {pnum} user name"
            )
        pnum = owner
    assert pnum is not None
    api_key = _auth_api(context, env, pnum).api_key(credentials)
    registration = Registration(api_key=api_key, user=credentials.user_name)
    with store.lock():
        store.save_registration(env.name, pnum, registration)
        store.forget_tokens(env.name, pnum)
    return pnum, registration


class Broker:
    """Tokens for one project in one environment."""

    def __init__(
        self,
        context: Environment,
        store: Store,
        env: ApiEnvironment,
        pnum: str,
        prompter: Callable[[], Prompter],
        basic: bool = False,
        login_hint: str | None = None,
    ) -> None:
        """``prompter`` is called only when someone must be asked for credentials;
        ``login_hint``, the command that logs in for this one at a terminal, is what a
        run with no one to ask (a batch job, a task of a job array) tells the user."""
        self.context = context
        self.store = store
        self.env = env
        self.pnum = pnum
        self._make_prompter = prompter
        self._prompter: Prompter | None = None
        self.basic = basic
        self.login_hint = login_hint
        self._api: AuthApi | None = None

    @property
    def prompter(self) -> Prompter:
        if self._prompter is None:
            self._prompter = self._make_prompter()
        return self._prompter

    @property
    def api(self) -> AuthApi:
        if self._api is None:
            self._api = _auth_api(self.context, self.env, self.pnum)
        return self._api

    def token(self, token_type: str, may_login: bool = True) -> CachedToken:
        """A token of ``token_type`` that is good for a while yet.

        The fast path reads the cache and nothing else. Otherwise, under the
        lock: re-read (another process may have renewed it), then refresh,
        then (``--basic``) get a new one with the API key, then log in.
        """
        if self.basic and token_type == tokens.EXPORT:
            raise AuthError(
                "--basic gets import tokens only, and this command needs an s3export token; "
                "run it without --basic to log in"
            )
        now = self.context.clock()
        cached = self.store.token(self.env.name, self.pnum, token_type)
        if cached and cached.fresh(now):
            return cached
        with self.store.lock():
            cached = self.store.token(self.env.name, self.pnum, token_type)
            now = self.context.clock()
            if cached and cached.fresh(now):
                return cached
            renewed = self._renew(token_type, cached, may_login)
            try:
                self.store.save_token(self.env.name, self.pnum, renewed)
            except TsdError as err:  # a full disk: the token still works for this run
                self.context.warn(f"{err}; the next command will need a new login")
            return renewed

    def _renew(self, token_type: str, cached: CachedToken | None, may_login: bool) -> CachedToken:
        registration = self._registration()
        why = "there is no cached login"
        if cached and cached.refreshable(self.context.clock()):
            try:
                answer = self.api.refresh(registration.api_key, cached.refresh_token or "")
                return self._cache_entry(token_type, answer.token, answer.refresh_token)
            except ApiError as err:
                if err.status not in (400, 401, 403):
                    raise
                why = "TSD refused to refresh it"
        elif cached:
            why = "it cannot be refreshed any more"
        if self.basic:
            answer = self.api.basic(registration.api_key, token_type)
            return self._cache_entry(token_type, answer.token, answer.refresh_token)
        if not may_login:
            raise TokenUnavailable(
                f"the {token_type} token for {describe(self.env, self.pnum)} ran out and {why}"
            )
        return self._login(token_type, registration, why)

    def _login(self, token_type: str, registration: Registration, why: str) -> CachedToken:
        from .prompts import NothingToRead

        attempts = LOGIN_ATTEMPTS_AT_TERMINAL if self.prompter.interactive else 1
        for attempt in range(1, attempts + 1):
            try:
                credentials = self.prompter.credentials(
                    f"{describe(self.env, self.pnum)} for an {token_type} token",
                    registration.user,
                )
            except NothingToRead:
                if self.login_hint is None:
                    raise
                raise TokenUnavailable(
                    f"this run needs an {token_type} token for {describe(self.env, self.pnum)} "
                    f"and {why}, and it has no terminal to log in at; log in once at a "
                    f"terminal (every job and job array task with this home then shares "
                    f"that login): {self.login_hint}"
                ) from None
            try:
                answer = self.api.login(registration.api_key, token_type, credentials)
            except ApiError as err:
                if err.status == 401 and attempt < attempts:
                    self.context.message(f"{err}; try again")
                    continue
                raise
            return self._cache_entry(token_type, answer.token, answer.refresh_token)
        raise AssertionError("unreachable")  # pragma: no cover

    def _cache_entry(self, token_type: str, token: str, refresh: str | None) -> CachedToken:
        try:
            return CachedToken.from_answer(token_type, token, refresh, self.context.clock())
        except tokens.NotAToken as err:
            raise AuthError(f"TSD sent a token that cannot be read ({err})") from err

    def _registration(self) -> Registration:
        """The API key, renewed first if it has expired (call under the lock)."""
        registration = self.store.registration(self.env.name, self.pnum)
        if registration is None:
            raise ConfigError(
                f"{describe(self.env, self.pnum)} is not registered; register with: "
                f"{register_command(self.env, self.pnum)}"
            )
        if registration.source == "tacl":
            self.context.message(
                f"using the API key that tsd-api-client (tacl) registered for "
                f"{describe(self.env, self.pnum)}"
            )
        expires = registration.expires()
        if expires is not None and expires < self.context.clock() + API_KEY_RENEW_AHEAD:
            try:
                new_key = self.api.renew(registration.api_key)
            except ApiError as err:
                raise AuthError(
                    f"the API key for {describe(self.env, self.pnum)} has expired and TSD "
                    f"would not renew it ({err}); register again with: "
                    f"{register_command(self.env, self.pnum)}"
                ) from err
            registration = Registration(api_key=new_key, user=registration.user)
            self.store.save_registration(self.env.name, self.pnum, registration)
            self.context.message(f"renewed the expired API key for {describe(self.env, self.pnum)}")
        return registration


class HeaderSource:
    """The two TSD headers for every request s3cmd sends, renewed as needed.

    Parallel parts ask for headers from several threads at once. The current
    token and its headers are one value, swapped whole; a renewal happens
    under a lock, and the threads that waited for it use its result, so a
    run renews once however many parts are in flight.
    """

    def __init__(self, broker: Broker, token_type: str, listing: Listing | None = None) -> None:
        """``listing``: what the command lists, if it does (token_choice.listing).

        A command that lists is stopped here already when the newest fresh
        token held for the project, of either type, shows the user outside
        pNN-export-group: before any login, request or walk of local files.
        Where none is held, the first token obtained (refreshed, or from a
        login) decides, before the first request goes out with it.
        """
        self.broker = broker
        self.token_type = token_type
        self.listing = listing
        self._current: tuple[CachedToken, dict[str, str]] | None = None
        self._renewing = threading.Lock()
        if listing is not None:
            now = broker.context.clock()
            cached = broker.store.project_tokens(broker.env.name, broker.pnum)
            held = [t for t in cached if t.fresh(now)]
            if held:
                self._check(listing, max(held, key=lambda t: t.issued))

    def headers(self) -> dict[str, str]:
        return self._fresh()[1]

    def token(self) -> CachedToken:
        return self._fresh()[0]

    def _fresh(self) -> tuple[CachedToken, dict[str, str]]:
        current = self._current
        clock = self.broker.context.clock
        if current is not None and current[0].fresh(clock()):
            return current
        with self._renewing:
            current = self._current
            if current is not None and current[0].fresh(clock()):
                return current
            # Only the first token may need a login: later, in the middle of a
            # transfer, nobody may be there to answer, so the run stops cleanly.
            token = self.broker.token(self.token_type, may_login=current is None)
            if current is None and self.listing is not None:
                self._check(self.listing, token)  # before the first request goes out with it
            current = (token, {"token": token.token, "x-project-select": self.broker.pnum})
            self._current = current
            return current

    def _check(self, listing: Listing, token: CachedToken) -> None:
        evidence = f"your {token.type} token"
        check_export_rights(listing, token.token, self.broker.pnum, evidence, RENEW_BY_LOGIN)


class StaticHeaders:
    """Headers from a token handed in through ``TSD_S3CMD_TOKEN``: no cache, no login."""

    def __init__(self, token: str, clock: Callable[[], float]) -> None:
        try:
            found = tokens.claims(token)
            self.expires = tokens.expiry(token)
        except tokens.NotAToken as err:
            raise UsageError(f"TSD_S3CMD_TOKEN is not a TSD token: {err}") from err
        project, kind = found.get("proj"), found.get("name")
        if not isinstance(project, str) or not project:
            raise UsageError("TSD_S3CMD_TOKEN has no project (proj claim)")
        self.pnum = project
        self.token_type = kind if isinstance(kind, str) else "unknown"
        self._clock = clock
        self._headers = {"token": token.strip(), "x-project-select": project}
        self.check()

    def check(self) -> None:
        if self._clock() >= self.expires:
            raise TokenUnavailable(
                "the token in TSD_S3CMD_TOKEN has expired; get a new one with: "
                "tsd-s3cmd --print-token-for COMMAND"
            )

    def headers(self) -> dict[str, str]:
        self.check()
        return self._headers

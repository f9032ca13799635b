"""``tsd-s3cmd --status``: what is registered, what is cached, what is unfinished.

Never a token or key: only who, which kind, until when, and which s3cmd
config holds the project's S3 keys.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .context import PROG, Environment
from .login.s3configs import S3Configs, in_use
from .login.store import CachedToken, Store

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import TextIO


def when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _token_line(token: CachedToken, now: float) -> str:
    state = f"valid until {when(token.expires)}" if token.expires > now else "expired"
    if token.refreshable(now):
        left = "" if token.refreshes_left is None else f", {token.refreshes_left} left"
        state += f"; refreshable{left}"
    owner = f" for {token.user}" if token.user else ""
    return f"  {token.type} token{owner}: {state}\n"


def show_status(context: Environment, store: Store) -> int:
    now = context.clock()
    out = context.stdout
    registrations = store.all_registrations()
    cached: dict[tuple[str, str], list[CachedToken]] = {}
    for env_name, pnum, token in store.all_tokens():
        cached.setdefault((env_name, pnum), []).append(token)
    stored = set(S3Configs(context.config_dir).stored())
    keys = sorted({(e, p) for e, ps in registrations.items() for p in ps} | set(cached) | stored)
    if not keys:
        out.write(f"Nothing registered yet; start with: {PROG} --setup\n")
    for env_name, pnum in keys:
        reg = registrations.get(env_name, {}).get(pnum)
        if reg is None:
            line = "not registered"
        else:
            source = " (tsd-api-client's key)" if reg.source == "tacl" else ""
            expires = reg.expires()
            key_state = ""
            if expires is not None:
                verb = "expired" if expires <= now else "valid until"
                key_state = f", API key {verb} {when(expires)}"
            line = f"registered{source} as {reg.user or 'an unknown user'}{key_state}"
        out.write(f"{env_name} {pnum}: {line}\n")
        config = in_use(context.config_dir, context.home, env_name, pnum, context.environ)
        out.write(f"  s3cmd config: {config}\n")
        for token in sorted(cached.get((env_name, pnum), []), key=lambda t: t.type):
            out.write(_token_line(token, now))
    unfinished = store.uploads()
    if unfinished:
        out.write("Unfinished uploads:\n")
        for details in unfinished.values():
            out.write(
                f"  {details.get('source')} -> {details.get('destination')}{_share(details)}\n"
                f"    resume: {details.get('command')}\n"
            )
    _downloads(out, store)
    return 0


def _downloads(out: TextIO, store: Store) -> None:
    """Downloads that keep a hidden file to resume from (those whose file is gone are over)."""
    import shlex

    from .engine.partials import describe, state_of

    shown = False
    for partial, details in sorted(store.downloads().items()):
        there = describe(partial)
        if there is None:
            continue
        if not shown:
            out.write("Unfinished downloads:\n")
            shown = True
        have, size = there
        out.write(
            f"  {details.get('source')} -> {details.get('destination')}{_share(details)}\n"
            f"    {_mib(have)} of {_mib(size)} there, in {partial}\n"
            f"    continue: {details.get('command')}\n"
            f"    give up: rm -f {shlex.join([partial, state_of(partial)])}\n"
        )


def _share(details: dict) -> str:
    """Which share of a job array (``--shard``) left it unfinished, if one did."""
    shard = details.get("shard")
    return f"  (share {shard})" if shard else ""


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"

"""The command line: TSD options anywhere, everything else to s3cmd, unchanged and in order.

``split_arguments`` takes the TSD options out of the argument list (by the
names click knows) and leaves every other argument exactly as it was: no
word splitting, no reordering, names with spaces, unicode or a leading dash
intact, and nothing after ``--`` touched. click then parses the TSD part.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NoReturn

import click

from . import __version__, broker, token_choice, tokens
from .context import PROG, Environment
from .environments import DEFAULT, ENVIRONMENTS, ApiEnvironment
from .errors import EX_BREAK, EX_USAGE, TsdError, UsageError
from .guide import GUIDE, USAGE


@dataclass
class Invocation:
    """What click does not parse: the whole command line and s3cmd's part of it."""

    context: Environment
    argv: list[str]
    s3cmd_args: list[str]


@click.command(add_help_option=False, context_settings={"max_content_width": 100})
@click.option("--env", "env_name", type=click.Choice(list(ENVIRONMENTS)), default=None)
@click.option("--usetest", is_flag=True)
@click.option("--usealt", is_flag=True)
@click.option("--project", metavar="PNUM")
@click.option("--register", is_flag=True)
@click.option("--basic", is_flag=True)
@click.option("--print-token-for", "print_token_for", metavar="COMMAND")
@click.option("--status", is_flag=True)
@click.option("--logout", is_flag=True)
@click.option("--guide", "-h", "--help", "guide", is_flag=True)
@click.option("--s3cmd-help", "s3cmd_help", is_flag=True)
@click.option("--version", is_flag=True)
@click.pass_obj
def command(
    inv: Invocation,
    env_name: str | None,
    usetest: bool,
    usealt: bool,
    project: str | None,
    register: bool,
    basic: bool,
    print_token_for: str | None,
    status: bool,
    logout: bool,
    guide: bool,
    s3cmd_help: bool,
    version: bool,
) -> int:
    context = inv.context
    if version:
        return _version(context)
    if guide:
        context.stdout.write(GUIDE)
        return 0
    if s3cmd_help:
        return _run_s3cmd(inv, ENVIRONMENTS[DEFAULT], None, False, ["--help"])
    env, env_given = _environment(env_name, usetest, usealt)
    actions = [
        name
        for name, on in (
            ("--register", register),
            ("--status", status),
            ("--logout", logout),
            ("--print-token-for", print_token_for),
        )
        if on
    ]
    if len(actions) > 1:
        raise UsageError(f"{' and '.join(actions)} cannot be used together")
    if actions and actions[0] != "--print-token-for" and inv.s3cmd_args:
        raise UsageError(f"{actions[0]} takes no s3cmd arguments (got {inv.s3cmd_args[0]!r})")
    if register:
        return _register(context, env, env_given, project)
    if status:
        return _status(context)
    if logout:
        return _logout(context, env if env_given else None, project)
    if print_token_for is not None:
        return _print_token(context, env, project, basic, print_token_for, inv.s3cmd_args)
    if not inv.s3cmd_args:
        context.stderr.write(
            f"{USAGE}\nRun '{PROG} --guide' for a walk-through of TSD's S3 API, "
            f"'{PROG} --s3cmd-help' for s3cmd's commands.\n"
        )
        return EX_USAGE
    return _run_s3cmd(inv, env, project, basic, inv.s3cmd_args)


# -- splitting the command line ------------------------------------------------


def _tsd_options() -> dict[str, bool]:
    """Every TSD option string, and whether it takes a value."""
    found: dict[str, bool] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                found[name] = not param.is_flag
    return found


def split_arguments(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(TSD options, s3cmd arguments), each in its original order.

    An option is ours only when spelled exactly (s3cmd's abbreviations of its
    own long options stay s3cmd's); ``--name=value`` and ``--name value`` both
    work. From ``--`` on, everything is s3cmd's, ``--`` included, so that
    ``tsd-s3cmd put -- -odd-name s3://b`` reaches s3cmd as typed.
    """
    ours = _tsd_options()
    tsd: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name, has_value, _ = arg.partition("=")
        if arg in ours:
            tsd.append(arg)
            if ours[arg] and i + 1 < len(argv):
                tsd.append(argv[i + 1])
                i += 1
        elif has_value and ours.get(name):
            tsd.append(arg)
        else:
            rest.append(arg)
        i += 1
    return tsd, rest


# -- actions ---------------------------------------------------------------------


def _environment(env_name: str | None, usetest: bool, usealt: bool) -> tuple[ApiEnvironment, bool]:
    chosen = {
        name for name, on in ((env_name, bool(env_name)), ("test", usetest), ("alt", usealt)) if on
    }
    if len(chosen) > 1:
        raise UsageError(f"choose one environment, not {' and '.join(sorted(chosen))}")
    name = chosen.pop() if chosen else DEFAULT
    return ENVIRONMENTS[name], bool(env_name or usetest or usealt)


def _store(context: Environment):  # type: ignore[no-untyped-def]
    from .store import Store

    return Store(context.config_dir, context.tacl_config, context.warn)


def _version(context: Environment) -> int:
    from . import s3cmd_shim

    context.stdout.write(
        f"tsd-s3cmd {__version__}\n"
        f"s3cmd {s3cmd_shim.version()}\n"
        f"Python {platform.python_version()} ({sys.executable})\n"
        f"{platform.platform()}\n"
    )
    return 0


def _register(
    context: Environment, env: ApiEnvironment, env_given: bool, project: str | None
) -> int:
    from .prompts import Prompter

    prompter = Prompter(context, "your TSD credentials")
    if not env_given:
        choices = [(e.name, e.description) for e in ENVIRONMENTS.values()]
        env = ENVIRONMENTS[prompter.choose("Which TSD environment?", choices, DEFAULT)]
    store = _store(context)
    pnum, registration = broker.register(context, store, prompter, env, project)
    context.message(
        f"registered {broker.describe(env, pnum)} as {registration.user}; "
        f"the API key is in {store.directory}"
    )
    return 0


def _print_token(
    context: Environment,
    env: ApiEnvironment,
    project: str | None,
    basic: bool,
    for_command: str,
    args: Sequence[str],
) -> int:
    from .prompts import Prompter

    if for_command in (tokens.IMPORT, tokens.EXPORT):
        token_type = for_command
    else:
        token_type = token_choice.token_type_for(for_command, args[1:] if args else ())
    store = _store(context)
    pnum = broker.resolve_project(store, env, project)
    prompter = Prompter(context, "your TSD credentials")
    token = broker.Broker(context, store, env, pnum, prompter, basic=basic).token(token_type)
    context.stdout.write(token.token + "\n")
    context.stdout.flush()
    until = _when(token.expires)
    context.stderr.write(
        f"{PROG}: that is an {token_type} token for {pnum}, valid until {until}.\n"
        f'  With tsd-s3cmd: TSD_S3CMD_TOKEN="$T" {PROG} {for_command} ...  '
        "(no login, no cache; the token stays out of the process list)\n"
        f"  With plain s3cmd: put 'add_headers = token:TOKEN,x-project-select:{pnum}' into "
        "a private copy of your s3cfg (chmod 600) and pass it with -c; or "
        f'--add-header="token:$T" --add-header=x-project-select:{pnum}, which shows the '
        "token to every user of the machine in the process list.\n"
        "  Either way stock s3cmd sends these headers only with PUT (single-part uploads), "
        "copy and bucket-create requests, not with listings, downloads, deletes or the parts "
        "of multipart uploads, so TSD refuses those: use tsd-s3cmd for them.\n"
    )
    return 0


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _status(context: Environment) -> int:
    store = _store(context)
    now = context.clock()
    out = context.stdout
    registrations = store.all_registrations()
    cached: dict[tuple[str, str], list] = {}
    for env_name, pnum, token in store.all_tokens():
        cached.setdefault((env_name, pnum), []).append(token)
    keys = sorted({(e, p) for e, ps in registrations.items() for p in ps} | set(cached))
    if not keys:
        out.write(f"Nothing registered yet; start with: {PROG} --register\n")
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
                key_state = f", API key {verb} {_when(expires)}"
            line = f"registered{source} as {reg.user or 'unknown user'}{key_state}"
        out.write(f"{env_name} {pnum}: {line}\n")
        for token in sorted(cached.get((env_name, pnum), []), key=lambda t: t.type):
            state = f"valid until {_when(token.expires)}" if token.expires > now else "expired"
            if token.refreshable(now):
                left = "" if token.refreshes_left is None else f", {token.refreshes_left} left"
                state += f"; refreshable{left}"
            out.write(
                f"  {token.type} token{f' for {token.user}' if token.user else ''}: {state}\n"
            )
    unfinished = store.uploads()
    if unfinished:
        out.write("Unfinished uploads:\n")
        for details in unfinished.values():
            out.write(
                f"  {details.get('source')} -> {details.get('destination')}\n"
                f"    resume: {details.get('command')}\n"
            )
    return 0


def _logout(context: Environment, env: ApiEnvironment | None, project: str | None) -> int:
    store = _store(context)
    with store.lock():
        dropped = store.forget_tokens(env.name if env else None, project)
    scope = " of ".join(x for x in (project, env.name if env else None) if x) or "all projects"
    context.message(f"forgot {dropped} cached token{'s' if dropped != 1 else ''} ({scope})")
    return 0


def _run_s3cmd(
    inv: Invocation,
    env: ApiEnvironment,
    project: str | None,
    basic: bool,
    s3cmd_args: Sequence[str],
) -> int:
    from .runner import S3cmdRun

    context = inv.context
    given_token = context.environ.get("TSD_S3CMD_TOKEN", "").strip()
    if given_token:
        store = None
        static = broker.StaticHeaders(given_token, context.clock)
        if project and project != static.pnum:
            raise UsageError(f"TSD_S3CMD_TOKEN is for {static.pnum}, not {project}")

        def header_source(token_type: str, args: Sequence[str]) -> broker.StaticHeaders:
            if static.token_type != token_type:
                context.warn(
                    f"TSD_S3CMD_TOKEN is an {static.token_type} token; "
                    f"'{args[0]}' normally needs {token_type}"
                )
            return static

    else:
        store = _store(context)

        def header_source(token_type: str, args: Sequence[str]) -> broker.HeaderSource:
            from .prompts import Prompter

            pnum = broker.resolve_project(store, env, project)
            reads_stdin = args[:1] == ["put"] and "-" in args[1:-1]
            prompter = Prompter(context, "your TSD credentials", stdin_is_data=reads_stdin)
            return broker.HeaderSource(
                broker.Broker(context, store, env, pnum, prompter, basic=basic), token_type
            )

    run = S3cmdRun(
        context,
        store,
        env,
        inv.argv,
        header_source,
        check_host="TSD_API_URL" not in context.environ,
    )
    return run.run(s3cmd_args)


# -- entry point -------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, context: Environment | None = None) -> NoReturn:
    argv = list(sys.argv[1:] if argv is None else argv)
    context = context or Environment.from_process()
    tsd_args, s3cmd_args = split_arguments(argv)
    try:
        status = command.main(
            args=tsd_args,
            prog_name=PROG,
            standalone_mode=False,
            obj=Invocation(context, argv, s3cmd_args),
        )
    except click.UsageError as err:
        context.message(err.format_message().replace("\n", " "))
        status = EX_USAGE
    except TsdError as err:
        context.message(str(err))
        status = err.exit_code
    except KeyboardInterrupt:
        context.stderr.write("\n")
        context.message("interrupted")
        status = EX_BREAK
    sys.exit(status)

"""The command line: TSD options anywhere, everything else to s3cmd, unchanged and in order.

tsd_options.split_arguments takes the TSD options out of the argument list
and leaves every other argument exactly as it was; click parses the TSD part
(the click command below declares the options of tsd_options.TSD_OPTIONS; a
unit test keeps the two in step).

Start-up matters: ``tsd-s3cmd ls`` should cost what ``s3cmd ls`` costs. So a
command line with no TSD options (the everyday case, with a cached token)
goes straight to s3cmd without building the click command, and the modules
on that path import neither click, typing nor requests: each of those costs a
noticeable share of an ``ls`` on a small machine (see benchmarks/); a unit
test keeps it so. (dataclasses and threading come with s3cmd anyway.)
Everything else is imported where it is used.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from . import __version__
from .context import PROG, Environment
from .environments import DEFAULT, ENVIRONMENTS
from .errors import EX_BREAK, EX_IOERR, EX_SOFTWARE, EX_USAGE, TsdError, UsageError
from .login import broker
from .tsd_options import s3cmd_positions, split_arguments

TYPE_CHECKING = False  # typing is not loaded at run time (see above)
if TYPE_CHECKING:
    from typing import NoReturn

    import click

    from .environments import ApiEnvironment
    from .login.store import Store
    from .login.token_choice import Listing


class Invocation:
    """One run: the outside world, the whole command line, and s3cmd's part of it."""

    def __init__(self, context: Environment, argv: list[str], s3cmd_args: list[str]) -> None:
        self.context = context
        self.argv = argv
        self.s3cmd_args = s3cmd_args


def _click_command() -> click.Command:
    """The TSD options as a click command, built only when there are some to parse."""
    import click

    @click.command(add_help_option=False)
    @click.option("--env", "env_name", type=click.Choice(list(ENVIRONMENTS)), default=None)
    @click.option("--usetest", is_flag=True)
    @click.option("--usealt", is_flag=True)
    @click.option("--project", metavar="PNUM")
    @click.option("--register", is_flag=True)
    @click.option("--setup", is_flag=True)
    @click.option("--forget", is_flag=True)
    @click.option("--basic", is_flag=True)
    @click.option("--parallel", metavar="N")
    @click.option("--shard", metavar="K/N")
    @click.option("--print-token-for", "print_token_for", metavar="COMMAND")
    @click.option("--login", is_flag=True)
    @click.option("--status", is_flag=True)
    @click.option("--logout", is_flag=True)
    @click.option("--completion", metavar="SHELL")
    @click.option("--guide", "-h", "--help", "guide", is_flag=True)
    @click.option("--s3cmd-help", "s3cmd_help", is_flag=True)
    @click.option("--version", is_flag=True)
    @click.pass_obj
    def command(inv: Invocation, **options: object) -> int:
        return dispatch(inv, **options)  # type: ignore[arg-type]

    return command


def dispatch(
    inv: Invocation,
    env_name: str | None = None,
    usetest: bool = False,
    usealt: bool = False,
    project: str | None = None,
    register: bool = False,
    setup: bool = False,
    forget: bool = False,
    basic: bool = False,
    parallel: str | None = None,
    shard: str | None = None,
    print_token_for: str | None = None,
    login: bool = False,
    status: bool = False,
    logout: bool = False,
    completion: str | None = None,
    guide: bool = False,
    s3cmd_help: bool = False,
    version: bool = False,
) -> int:
    """Do what the options ask; with none, run s3cmd."""
    context = inv.context
    if version:
        return _version(context)
    if guide:
        from .guide import GUIDE

        context.stdout.write(GUIDE)
        return 0
    if s3cmd_help:
        return _run_s3cmd(inv, ENVIRONMENTS[DEFAULT], None, False, None, ["--help"])
    env, env_given = _environment(env_name, usetest, usealt)
    actions = [
        name
        for name, on in (
            ("--register", register),
            ("--setup", setup),
            ("--forget", forget),
            ("--status", status),
            ("--logout", logout),
            ("--print-token-for", print_token_for is not None),
            ("--login", login),
            ("--completion", completion is not None),
        )
        if on
    ]
    if len(actions) > 1:
        raise UsageError(f"{' and '.join(actions)} cannot be used together")
    if actions and actions[0] not in ("--print-token-for", "--login") and inv.s3cmd_args:
        raise UsageError(f"{actions[0]} takes no s3cmd arguments (got {inv.s3cmd_args[0]!r})")
    if actions and actions[0] != "--login" and shard is not None:
        raise UsageError(f"--shard is for a command that moves files, not for {actions[0]}")
    if register:
        return _register(context, env, env_given, project)
    if setup or forget:
        from . import project_setup

        return (project_setup.setup if setup else project_setup.forget)(
            context, _store(context), env, project
        )
    if completion is not None:
        from .completion import completion_for

        return completion_for(context, completion, env)
    if status:
        from .status import show_status

        return show_status(context, _store(context))
    if logout:
        return _logout(context, env if env_given else None, project)
    if print_token_for is not None:
        return _print_token(context, env, project, basic, print_token_for, inv.s3cmd_args)
    if login:
        return _login(context, env, project, basic, inv.s3cmd_args)
    if not inv.s3cmd_args:
        from .guide import USAGE

        context.stderr.write(
            f"{USAGE}\nRun '{PROG} --guide' for a walk-through of TSD's S3 API, "
            f"'{PROG} --s3cmd-help' for s3cmd's commands.\n"
        )
        return EX_USAGE
    return _run_s3cmd(inv, env, project, basic, parallel, inv.s3cmd_args, shard)


# -- actions ---------------------------------------------------------------------


def _environment(env_name: str | None, usetest: bool, usealt: bool) -> tuple[ApiEnvironment, bool]:
    """The environment asked for, and whether it was asked for at all."""
    chosen = {
        name
        for name, on in ((env_name, env_name is not None), ("test", usetest), ("alt", usealt))
        if on and name
    }
    if len(chosen) > 1:
        raise UsageError(f"choose one environment, not {' and '.join(sorted(chosen))}")
    return ENVIRONMENTS[chosen.pop() if chosen else DEFAULT], bool(env_name or usetest or usealt)


def _store(context: Environment) -> Store:
    from .login.store import Store

    return Store(context.config_dir, context.tacl_config, context.warn)


def _prompter(context: Environment, stdin_is_data: bool = False):  # type: ignore[no-untyped-def]
    """A factory for the credential prompter, so that prompts.py loads only when needed."""

    def make():  # type: ignore[no-untyped-def]
        from .login.prompts import Prompter

        return Prompter(context, "your TSD credentials", stdin_is_data=stdin_is_data)

    return make


def _version(context: Environment) -> int:
    import platform

    from .bridge import shim

    context.stdout.write(
        f"tsd-s3cmd {__version__}\n"
        f"s3cmd {shim.version()}\n"
        f"Python {platform.python_version()} ({sys.executable})\n"
        f"{platform.platform()}\n"
    )
    return 0


def _register(
    context: Environment, env: ApiEnvironment, env_given: bool, project: str | None
) -> int:
    prompter = _prompter(context)()
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
    from .status import when

    found = _token_for(context, env, project, basic, [for_command, *args])
    if found is None:
        return EX_USAGE  # s3cmd has said what is wrong with the command line
    token, token_type, pnum = found
    context.stdout.write(token.token + "\n")
    context.stdout.flush()
    context.stderr.write(
        f"{PROG}: that is an {token_type} token for {pnum}, valid until {when(token.expires)}.\n"
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


def _login(
    context: Environment,
    env: ApiEnvironment,
    project: str | None,
    basic: bool,
    args: Sequence[str],
) -> int:
    """Log in now for the token a command needs (an import token without one), so that
    batch jobs and job array tasks that run it later need no one to type anything."""
    from .login import tokens
    from .status import when

    found = _token_for(context, env, project, basic, list(args) or [tokens.IMPORT])
    if found is None:
        return EX_USAGE  # s3cmd has said what is wrong with the command line
    token, token_type, pnum = found
    renewable = (
        f", renewed without a login until {when(token.refresh_expires)}"
        if token.refresh_token and token.refresh_expires
        else ""
    )
    context.message(
        f"logged in: an {token_type} token for {broker.describe(env, pnum)}, valid until "
        f"{when(token.expires)}{renewable}; every tsd-s3cmd run with this home uses it, "
        "batch jobs and job array tasks too"
    )
    return 0


def _token_for(
    context: Environment,
    env: ApiEnvironment,
    project: str | None,
    basic: bool,
    line: Sequence[str],
):  # type: ignore[no-untyped-def]
    """The token the command ``line`` needs (the one a run of it would use), its type
    and project; ``line`` may be a token type alone. A command that a run would stop for
    listing without export rights is refused alike; None when s3cmd cannot read ``line``
    (it has said why)."""
    from .bridge import shim
    from .login import token_choice, tokens

    store = _store(context)
    listing = None
    if list(line) in ([tokens.IMPORT], [tokens.EXPORT]):
        token_type = line[0]
    else:
        parsed = shim.parse(line, cache_dir=context.cache_home / "tsd-s3cmd")
        if parsed is None:
            return None
        options, positional = parsed
        token_type = token_choice.token_for(positional, getattr(options, "run_configure", False))
        if token_type is None:
            raise UsageError(f"'{line[0]}' sends no request to TSD, so it needs no token")
        _check_export_only(positional, store, env, project)
        listing = token_choice.listing(positional, options)
    pnum = broker.resolve_project(store, env, project)
    token = broker.HeaderSource(
        broker.Broker(context, store, env, pnum, _prompter(context), basic=basic),
        token_type,
        listing,
    ).token()
    return token, token_type, pnum


def _check_export_only(
    args: Sequence[str], store: Store, env: ApiEnvironment, project: str | None
) -> None:
    """Refuse a download TSD would refuse, naming the project's export folder if known."""
    from .login import token_choice

    if all(b == token_choice.EXPORT_BUCKET for b in token_choice.download_buckets(args)):
        return
    try:
        pnum: str | None = broker.resolve_project(store, env, project)
    except TsdError:  # not registered yet, or several projects: the folder says pNN
        pnum = None
    token_choice.check_export_only(args, pnum)


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
    parallel: str | None,
    s3cmd_args: Sequence[str],
    shard_value: str | None = None,
) -> int:
    from .bridge import batches, md5_cache
    from .bridge.runner import S3cmdRun
    from .engine.scheduler import workers_from
    from .keyspace import shards
    from .login import token_choice
    from .login.s3configs import for_run

    context = inv.context
    try:
        workers = (
            workers_from(parallel, "--parallel")
            if parallel is not None
            else workers_from(context.environ.get("TSD_S3CMD_PARALLEL"), "TSD_S3CMD_PARALLEL")
        )
        shard = shards.parse(shard_value, context.environ) if shard_value is not None else None
    except ValueError as err:  # shards.ShardError too
        raise UsageError(str(err)) from None
    # Unless told how many, as many at once as the link rewards (engine/limits.py).
    grows = parallel is None and not context.environ.get("TSD_S3CMD_PARALLEL", "").strip()
    given_token = context.environ.get("TSD_S3CMD_TOKEN", "").strip()
    store = None if given_token else _store(context)
    if given_token:
        static = broker.StaticHeaders(given_token, context.clock)
        if project and project != static.pnum:
            raise UsageError(f"TSD_S3CMD_TOKEN is for {static.pnum}, not {project}")
    known = static.pnum if given_token else _project_if_known(store, env, project)

    def header_source(  # type: ignore[no-untyped-def]
        token_type: str, args: Sequence[str], listing: Listing | None
    ):
        if given_token:
            token_choice.check_export_only(args, static.pnum)
            if listing is not None:
                broker.check_export_rights(
                    listing, given_token, static.pnum, "TSD_S3CMD_TOKEN", broker.RENEW_GIVEN
                )
            if static.token_type != token_type:
                context.warn(
                    f"TSD_S3CMD_TOKEN is an {static.token_type} token; "
                    f"'{args[0] if args else 's3cmd'}' normally needs {token_type}"
                )
            return static
        assert store is not None
        _check_export_only(args, store, env, project)
        pnum = known or broker.resolve_project(store, env, project)  # or says what is missing
        reads_stdin = args[:1] == ["put"] and "-" in args[1:-1]
        prompter = _prompter(context, stdin_is_data=reads_stdin)
        import shlex

        hint = shlex.join([
            PROG, "--login", *(["--env", env.name] if env.name != DEFAULT else []),
            "--project", pnum, *s3cmd_args,
        ])  # fmt: skip
        return broker.HeaderSource(
            broker.Broker(context, store, env, pnum, prompter, basic=basic, login_hint=hint),
            token_type,
            listing,
        )

    run = S3cmdRun(
        context,
        store,
        env,
        inv.argv,
        s3cmd_positions(inv.argv),
        header_source,
        check_host="TSD_API_URL" not in context.environ,
        stored_config=for_run(context.config_dir, env, known, context.environ),
        parallel=workers,
        grows=grows,
        md5_caches=md5_cache.directory(context.cache_home, context.environ),
        batch_size=batches.size_from(context.environ),
        shard=shard,
    )
    return run.run(s3cmd_args)


def _project_if_known(store: Store | None, env: ApiEnvironment, project: str | None) -> str | None:
    """The project of a run before s3cmd starts, for its stored config: named, or the only one.

    When it is not known yet (none or several registered) the run goes on
    with s3cmd's default config, and says what is missing when it needs a token.
    """
    if project:
        return broker.check_project(env, project)
    try:
        return broker.resolve_project(store, env, None) if store else None
    except TsdError:
        return None


# -- entry point -------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, context: Environment | None = None) -> NoReturn:
    argv = list(sys.argv[1:] if argv is None else argv)
    context = context or Environment.from_process()
    tsd_args, s3cmd_args = split_arguments(argv)
    inv = Invocation(context, argv, s3cmd_args)
    try:
        status = _parse_and_dispatch(inv, tsd_args) if tsd_args else dispatch(inv)
    except TsdError as err:
        context.message(str(err))
        status = err.exit_code
    except KeyboardInterrupt:
        context.stderr.write("\n")
        context.message("interrupted")
        status = EX_BREAK
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        context.message(f"{err.strerror or err}{where}")
        status = EX_IOERR
    except Exception as err:  # a bug of ours: one line, and the traceback only on request
        if context.environ.get("TSD_S3CMD_DEBUG"):
            raise
        from .login.tokens import redact

        context.message(
            f"internal error: {redact(f'{type(err).__name__}: {err}')}; please report it "
            "(set TSD_S3CMD_DEBUG=1 to see where it happened)"
        )
        status = EX_SOFTWARE
    sys.exit(status)


def _parse_and_dispatch(inv: Invocation, tsd_args: list[str]) -> int:
    import click

    try:
        return _click_command().main(args=tsd_args, prog_name=PROG, standalone_mode=False, obj=inv)
    except click.UsageError as err:
        raise UsageError(err.format_message().replace("\n", " ")) from None

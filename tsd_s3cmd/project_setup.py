"""``--setup`` and ``--forget``: everything a project needs, added or removed in one command.

Without ``--setup`` a new user writes ``~/.s3cfg`` by hand before anything
works, and that one file holds one project's S3 keys. ``--setup`` asks for the
project's S3 keys (the secret one without echo), stores an s3cmd config for
the environment and project (s3configs.py), and registers the project unless
it is registered already. Without a terminal the answers are stdin lines, in
the order of the questions: access key, secret key, then user name, password
and one-time code if it registers. ``--forget`` removes what ``--setup`` and
``--register`` stored for a project: its s3cmd config, its API key, its cached
tokens.
"""

from __future__ import annotations

from .context import PROG, Environment
from .environments import DEFAULT
from .errors import UsageError
from .login import broker
from .login.prompts import Prompter
from .login.s3configs import S3Configs, check_key
from .login.store import CorruptFileError, Store

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from .environments import ApiEnvironment

_ANSWERS = (
    "the S3 access key and secret key (then user name, password and one-time code, "
    "to register)"
)


def _project(store: Store, prompter: Prompter, env: ApiEnvironment, requested: str | None) -> str:
    """``--project``; else asked at a terminal; else the only one registered."""
    if requested:
        return broker.check_project(env, requested)
    known = store.projects(env.name)
    only = known[0] if len(known) == 1 else None
    if prompter.interactive:
        example = "ec11" if env.educloud else "p11"
        return broker.check_project(env, prompter.ask(f"Project (like {example})", only))
    if only is None:
        raise UsageError("--setup needs --project PNUM here: there is no terminal to ask which")
    return only


def setup(context: Environment, store: Store, env: ApiEnvironment, requested: str | None) -> int:
    prompter = Prompter(context, "the project's S3 keys", lines=_ANSWERS)
    pnum = _project(store, prompter, env, requested)
    try:
        registered = store.registration(env.name, pnum)
    except CorruptFileError:
        registered = None  # registering keeps the damaged file aside
    if prompter.interactive:
        context.stderr.write(
            f"The S3 keys of {pnum} are in /tsd/{pnum}/data/durable/s3-api-access-keys "
            "inside TSD.\n"
        )
    access_key = check_key("access key", prompter.ask("S3 access key"))
    secret_key = check_key("secret key", prompter.ask_secret("S3 secret key"))
    path = S3Configs(context.config_dir).save(env, pnum, access_key, secret_key, context.environ)
    what = broker.describe(env, pnum)
    context.message(f"stored the S3 keys of {what} in {path}")
    if registered is None:
        _, registration = broker.register(context, store, prompter, env, pnum)
        context.message(f"registered {what} as {registration.user}")
    else:
        context.message(f"{what} is registered already (as {registered.user or 'unknown'})")
    env_option = "" if env.name == DEFAULT else f" --env {env.name}"
    context.message(f"done; try: {PROG}{env_option} --project {pnum} ls")
    return 0


def forget(context: Environment, store: Store, env: ApiEnvironment, requested: str | None) -> int:
    if not requested:
        raise UsageError(
            "--forget needs --project PNUM: the project whose S3 keys and registration to remove"
        )
    pnum = broker.check_project(env, requested)
    with store.lock():
        api_key = store.forget_registration(env.name, pnum)
        config = S3Configs(context.config_dir).remove(env.name, pnum)
        tokens = store.forget_tokens(env.name, pnum)
    removed = [
        name
        for name, done in (
            ("its s3cmd config", config),
            ("its API key", api_key),
            (f"{tokens} cached token{'s' if tokens != 1 else ''}", tokens),
        )
        if done
    ]
    what = broker.describe(env, pnum)
    context.message(
        f"forgot {what}: {', '.join(removed)}; set it up again with: "
        f"{PROG} --setup --env {env.name} --project {pnum}"
        if removed
        else f"nothing was stored for {what}"
    )
    if store.registration(env.name, pnum) is not None:
        context.message(
            f"tsd-api-client's API key of {what} stays in {store.tacl_config}; "
            "tsd-s3cmd still uses it"
        )
    return 0

"""Per-project s3cmd configs: each project's S3 keys, kept beside its API key.

TSD gives every project its own S3 keys, as it gives every project its own
API key. ``--setup`` stores an s3cmd config per environment and project in the
config directory (``prod.p11.s3cfg``), 0600 and written atomically (the
mechanism is private_files.py's). A run for that project uses it, so
``--project p22`` alone switches S3 keys, API key and tokens, and the user's
``~/.s3cfg``, which may well serve another S3 service, is never written.

Which config a run uses: the one s3cmd is told to use (``-c FILE``, or
s3cmd's own ``S3CMD_CONFIG``); else the project's stored one; else
``~/.s3cfg``, as before ``--setup`` existed. A stored config is ours, so it is
held to the config directory's rules: refused, with the command that fixes
it, when others can read it, when it is damaged, or when it sends requests
to another host than its environment's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from ..context import PROG
from ..errors import ConfigError, UsageError
from .private_files import PrivateDir

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from ..environments import ApiEnvironment

SUFFIX = ".s3cfg"
BUCKET_LOCATION = "us-east-1"  # TSD ignores it; s3cmd's signature v4 needs one

_SETTING = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*=\s*(.*?)\s*$")


def parse(text: str) -> dict[str, str]:
    """The ``name = value`` settings of an s3cmd config (sections are not told apart)."""
    settings = {}
    for line in text.splitlines():
        match = _SETTING.match(line)
        if match:
            settings[match.group(1)] = match.group(2)
    return settings


def setup_command(env_name: str, pnum: str) -> str:
    return f"{PROG} --setup --env {env_name} --project {pnum}"


def check_key(what: str, value: str) -> str:
    """A key as typed, refused if it cannot be one (empty, blanks, not ASCII).

    Printable ASCII without blanks is what fits on a line of an s3cmd config as is.
    """
    if not (value and value.isascii() and value.isprintable() and not any(map(str.isspace, value))):
        raise UsageError(
            f"that {what} cannot be right: S3 keys are printable ASCII without spaces"
            if value
            else f"no {what} given"
        )
    return value


class S3Configs:
    """The stored s3cmd configs in the config directory, one per environment and project."""

    def __init__(self, directory: Path) -> None:
        self.files = PrivateDir(directory)

    @staticmethod
    def name(env_name: str, pnum: str) -> str:
        return f"{env_name}.{pnum}{SUFFIX}"

    def path(self, env_name: str, pnum: str) -> Path:
        return self.files.path(self.name(env_name, pnum))

    def exists(self, env_name: str, pnum: str) -> bool:
        """Whether there is one (a symbolic link counts, so that its use is refused)."""
        return os.path.lexists(self.path(env_name, pnum))

    def stored(self) -> list[tuple[str, str]]:
        """(environment, project) of every stored config."""
        try:
            names = os.listdir(self.files.directory)
        except OSError:
            return []
        found = []
        for name in names:
            env_name, dot, rest = name.partition(".")
            pnum = rest[: -len(SUFFIX)] if rest.endswith(SUFFIX) else ""
            if dot and env_name and pnum and "." not in pnum:
                found.append((env_name, pnum))
        return sorted(found)

    def save(
        self,
        env: ApiEnvironment,
        pnum: str,
        access_key: str,
        secret_key: str,
        environ: Mapping[str, str],
    ) -> Path:
        """Store (or replace) the project's config, atomically and 0600."""
        host, https = env.s3_endpoint(environ)
        text = "\n".join(
            (
                f"# s3cmd config of {pnum} ({env.name}); replace it with: "
                f"{setup_command(env.name, pnum)}",
                "[default]",
                f"host_base = {host}",
                f"host_bucket = {host}",
                f"bucket_location = {BUCKET_LOCATION}",
                f"use_https = {https}",
                "signature_v2 = False",
                f"access_key = {check_key('access key', access_key)}",
                f"secret_key = {check_key('secret key', secret_key)}",
                "",
            )
        )
        self.files.write(self.name(env.name, pnum), text.encode())
        return self.path(env.name, pnum)

    def remove(self, env_name: str, pnum: str) -> bool:
        return self.files.remove(self.name(env_name, pnum))

    def check(self, env: ApiEnvironment, pnum: str, environ: Mapping[str, str]) -> dict[str, str]:
        """The settings of the stored config, or one line saying what is wrong and how to fix it.

        Others able to read it: ``chmod 600``. Damaged, or sending requests to
        another host than the environment's: store it again with ``--setup``.
        """
        path = self.path(env.name, pnum)
        again = f"store it again with: {setup_command(env.name, pnum)}"
        data = self.files.read(self.name(env.name, pnum), "S3 keys")
        if data is None:
            raise ConfigError(f"{path} is gone; {again}")
        try:
            settings = parse(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is damaged (not text); {again}") from None
        missing = [k for k in ("host_base", "access_key", "secret_key") if not settings.get(k)]
        if missing:
            raise ConfigError(f"{path} is damaged (no {', '.join(missing)}); {again}")
        host, _ = env.s3_endpoint(environ)
        if settings["host_base"] != host:
            raise ConfigError(
                f"{path} sends requests to {settings['host_base']}, but {env.name} is served "
                f"by {host}; {again}"
            )
        return settings


class StoredConfig:
    """The stored config a run of one project uses, unless s3cmd is told another."""

    def __init__(
        self, configs: S3Configs, env: ApiEnvironment, pnum: str, environ: Mapping[str, str]
    ) -> None:
        self.configs = configs
        self.env = env
        self.pnum = pnum
        self.environ = environ
        self.path = configs.path(env.name, pnum)

    def check(self) -> dict[str, str]:
        return self.configs.check(self.env, self.pnum, self.environ)


def for_run(
    directory: Path, env: ApiEnvironment, pnum: str | None, environ: Mapping[str, str]
) -> StoredConfig | None:
    """The project's stored config, if it has one and ``S3CMD_CONFIG`` names none."""
    if pnum is None or environ.get("S3CMD_CONFIG"):
        return None
    configs = S3Configs(directory)
    return StoredConfig(configs, env, pnum, environ) if configs.exists(env.name, pnum) else None


def in_use(
    directory: Path, home: Path, env_name: str, pnum: str, environ: Mapping[str, str]
) -> str:
    """Which config a run of the project uses without ``-c``, in words, for ``--status``."""
    named = environ.get("S3CMD_CONFIG")
    if named:
        return f"{named} (named by S3CMD_CONFIG)"
    configs = S3Configs(directory)
    if configs.exists(env_name, pnum):
        return f"{configs.path(env_name, pnum)} (stored by --setup)"
    return f"{home / '.s3cfg'} (none stored; '{setup_command(env_name, pnum)}' stores one)"

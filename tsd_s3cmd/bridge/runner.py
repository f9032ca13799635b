"""Running s3cmd for the user: config checks, the token, and the way back after a failure.

The runner is the s3cmd side of a run. When s3cmd has parsed its command
line it checks the s3cmd config and picks the token type; it hands each
request the TSD headers; it remembers multipart uploads in flight and, when a
run ends badly, prints the ``tsd-s3cmd --upload-id ...`` command that
resumes them (resume.py makes it work from any directory).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..context import PROG
from ..errors import ConfigError, TsdError
from ..login import s3configs, token_choice
from . import md5_cache, resume, shim

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    import optparse
    from typing import Protocol

    from ..context import Environment
    from ..environments import ApiEnvironment
    from ..keyspace.shards import Shard
    from ..login.s3configs import StoredConfig
    from ..login.store import Store
    from ..login.token_choice import Listing

    class HeaderSource(Protocol):
        token_type: str

        def headers(self) -> dict[str, str]: ...


def s3cfg_template(env: ApiEnvironment, environ: Mapping[str, str]) -> str:
    """What an s3cmd config for ``env`` must contain."""
    host, https = env.s3_endpoint(environ)
    return "\n".join(
        (
            f"    host_base = {host}",
            f"    host_bucket = {host}",
            "    bucket_location = us-east-1",
            f"    use_https = {https}",
            "    access_key = <from /tsd/pNN/data/durable/s3-api-access-keys>",
            "    secret_key = <from the same file>",
            "    signature_v2 = False",
        )
    )


def read_s3cfg(path: Path, env: ApiEnvironment, environ: Mapping[str, str]) -> dict[str, str]:
    """The settings of an s3cmd config, or a clear error about what is wrong with it."""
    template = s3cfg_template(env, environ)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no s3cmd config at {path}; store your project's S3 keys with "
            f"'{PROG} --setup --env {env.name} --project pNN', or write {path} like this:\n"
            f"{template}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not an s3cmd config file") from None
    except PermissionError:
        raise ConfigError(f"cannot read the s3cmd config {path}: permission denied") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file; it must look like:\n{template}") from None
    except OSError as err:
        raise ConfigError(f"cannot read the s3cmd config {path}: {err.strerror}") from None
    settings = s3configs.parse(text)
    missing = [k for k in ("host_base", "access_key", "secret_key") if not settings.get(k)]
    if missing:
        raise ConfigError(
            f"the s3cmd config {path} has no {', '.join(missing)}; it must look like:\n{template}"
        )
    return settings


class S3cmdRun:
    """One run of s3cmd: implements the shim's hooks."""

    def __init__(
        self,
        context: Environment,
        store: Store | None,
        env: ApiEnvironment,
        argv: Sequence[str],
        positions: Sequence[int],
        header_source: Callable[[str, Sequence[str], Listing | None], HeaderSource],
        check_host: bool,
        stored_config: StoredConfig | None = None,
        parallel: int = 1,
        md5_caches: Path | None = None,
        grows: bool = False,
        batch_size: int = 1000,
        shard: Shard | None = None,
    ) -> None:
        """``argv`` is the whole command line, ``positions`` where s3cmd's words
        stand in it (the resume command keeps the rest, tsd-s3cmd's own options).
        ``header_source(token_type, args, listing)`` is called once s3cmd has parsed its
        arguments, before any request; ``listing`` says what the command lists, if it does.

        ``stored_config``: the project's config from ``--setup``, which s3cmd
        uses unless its command line names another (``-c FILE``). ``parallel``:
        how many requests go at once to begin with, and parts of one file at
        once; ``grows``: whether more requests may go at once while the link
        rewards it (no ``--parallel`` given). ``md5_caches``: the directory
        of sync's MD5 caches and of the MD5s of large files, None for none.
        ``batch_size``: entries of a tree a command works on at a time;
        ``shard``: the share of a job array's keys to move (``--shard``).
        """
        self.context = context
        self.store = store
        self.env = env
        self.argv = list(argv)
        self.positions = list(positions)
        self._make_source = header_source
        self._check_host = check_host
        self.stored_config = stored_config
        self.parallel = parallel
        self.grows = grows
        self.batch_size = batch_size
        self.shard = shard
        self._md5_caches = md5_caches
        self.md5_cache: Path | None = None
        self.large_md5s = md5_caches / "large-files.json" if md5_caches is not None else None
        self._source: HeaderSource | None = None
        self._parser: optparse.OptionParser | None = None
        self._command: resume.Command | None = None
        self.unfinished: dict[str, tuple[str, str]] = {}
        self.unfinished_downloads: dict[str, tuple[str, str]] = {}

    # -- hooks -----------------------------------------------------------------

    def parsed(
        self, options: optparse.Values, args: Sequence[str], parser: optparse.OptionParser
    ) -> None:
        self._parser = parser
        if getattr(options, "show_version", False) or getattr(options, "dump_config", False):
            return
        token_type = token_choice.token_for(args, getattr(options, "run_configure", False))
        config = Path(options.config or "")
        if self.stored_config is not None and config == self.stored_config.path:
            self.stored_config.check()  # refused rather than warned about: it is ours
        else:
            settings = read_s3cfg(config, self.env, self.context.environ)
            host = settings["host_base"].split(":", 1)[0]
            if self._check_host and host != self.env.host:
                self.context.warn(
                    f"{options.config} sends requests to {host}, but the {self.env.name} "
                    f"environment is {self.env.host}; choose another with --env or fix host_base"
                )
        if self._md5_caches is not None:
            self.md5_cache = md5_cache.file_for(
                self._md5_caches, args, str(self.shard) if self.shard else ""
            )
        if token_type is not None:
            listing = token_choice.listing(args, options)
            self._source = self._make_source(token_type, args, listing)

    def headers(self) -> Mapping[str, str]:
        if self._source is None:
            raise TsdError("s3cmd sent a request that tsd-s3cmd did not expect; please report it")
        return self._source.headers()

    def report(self, line: str) -> None:
        self.context.message(line)

    def upload_started(self, upload_id: str, destination: str, source: str) -> None:
        self.unfinished[upload_id] = (source, destination)
        if self.store is not None:
            self.store.record_upload(
                upload_id,
                {
                    "source": source,
                    "destination": destination,
                    "command": self._resume_command(upload_id, source, destination),
                    "started": self.context.clock(),
                    "shard": str(self.shard) if self.shard else None,
                },
            )

    def upload_finished(self, upload_id: str) -> None:
        self.unfinished.pop(upload_id, None)
        if self.store is not None:
            self.store.finish_upload(upload_id)

    def download_kept(self, partial: str, source: str, destination: str, size: int) -> None:
        destination = os.path.abspath(destination)
        self.unfinished_downloads[partial] = (source, destination)
        if self.store is not None:
            self.store.record_download(
                partial,
                {
                    "source": source,
                    "destination": destination,
                    "size": size,
                    "command": self._read_command().again(),
                    "started": self.context.clock(),
                    "shard": str(self.shard) if self.shard else None,
                },
            )

    def download_done(self, partial: str) -> None:
        self.unfinished_downloads.pop(partial, None)
        if self.store is not None:
            self.store.finish_download(partial)

    # -- the run -----------------------------------------------------------------

    def run(self, s3cmd_args: Sequence[str]) -> int:
        try:
            status = shim.run(
                s3cmd_args,
                self,
                cache_dir=self.context.cache_home / "tsd-s3cmd",
                default_config=self.stored_config.path if self.stored_config else None,
            )
        except TsdError as err:
            self.context.message(str(err))
            self._print_resume()
            return err.exit_code
        if status != 0:
            self._print_resume()
        return status

    def _read_command(self) -> resume.Command:
        """The command line with its local paths absolute (read once, the first time needed)."""
        if self._command is None:
            assert self._parser is not None  # a transfer starts after s3cmd has parsed
            argv = self.argv
            if self.shard is not None:
                argv = resume.with_shard(argv, self.positions, str(self.shard))
            self._command = resume.read(argv, self.positions, self._parser, _cwd())
        return self._command

    def _resume_command(self, upload_id: str, source: str, destination: str) -> str:
        return self._read_command().resume(
            upload_id, os.path.join(_cwd(), source), destination
        )

    def _print_resume(self) -> None:
        for partial, (source, destination) in self.unfinished_downloads.items():
            self.context.message(
                f"the download of {source} to '{destination}' is unfinished; what has arrived "
                f"is kept in {partial}, and the same command run again continues it:\n"
                f"  {self._read_command().again()}"
            )
        for upload_id, (source, destination) in self.unfinished.items():
            self.context.message(
                f"the upload of '{source}' to {destination} is unfinished; resume it with:\n"
                f"  {self._resume_command(upload_id, source, destination)}\n"
                f"or abandon it with:\n  {shlex.join([PROG, 'abortmp', destination, upload_id])}"
            )


def _cwd() -> str:
    """Where relative paths start; empty if the directory is gone (they cannot be resolved)."""
    try:
        return os.getcwd()
    except OSError:
        return ""

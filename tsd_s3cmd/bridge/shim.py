"""Where tsd-s3cmd reaches into s3cmd: the hooks, and the check that they still fit.

s3cmd from PyPI has no way to put headers on every request: ``--add-header``
reaches only PUT, copy and bucket-create. TSD refuses any request without
``token`` and ``x-project-select``, so tsd-s3cmd runs s3cmd's own ``s3cmd``
script in this interpreter (no second process, no token on any command line;
script.py finds, compiles and caches it) with these hooks and fixes:

1. ``S3.S3.S3Request.get_triplet``: every request, retries included, passes
   through it just before it is signed and sent. The hook adds the two headers
   there, so they are covered by the AWS signature and a token renewed during
   a long transfer is used from the next request on.
2. ``optparse.OptionParser``: s3cmd parses its own command line; a subclass
   hands the result (command, arguments, config path) and the parser to
   tsd-s3cmd, so the token type follows s3cmd's reading of the arguments,
   not a copy of it, and so does the resume command's reading of the paths.
   It also replaces s3cmd's default config (``~/.s3cfg``) with the project's
   stored one when there is one, so that ``-c FILE`` still wins; and, for
   shell completion, it hands over the parser itself (``vocabulary``).
3. ``S3.MultiPart.MultiPartUpload``: starting and finishing a multipart upload
   are reported, so an interrupted upload can be resumed with ``--upload-id``;
   the part size is made to fit S3's 10,000 parts, a stream's parts grow, and
   a complete whose answer is lost is looked into (multipart.py).
4. A logging filter that removes tokens and the S3 access key (in the
   ``Authorization`` header) from s3cmd's ``--debug`` output.
5. ``S3.S3Uri.S3UriFile``: s3cmd's pattern for a local path stops at the first
   newline, so ``put $'a\\nb'`` says "Nothing to upload" and ``get s3://b/k
   $'a\\nb'`` writes to ``a``. The same pattern with ``re.DOTALL`` keeps the
   whole name (s3cmd then stores the newline as ``^J``, as it does when it
   walks a directory).
6. Many files and parts at once, unless ``--parallel 1``: s3cmd sends one
   request at a time (its multipart code says "TODO use num_processes to
   thread it"). transfers.py holds those hook points (its docstring
   lists them); the engine behind them lives in modules of its own.
7. ``S3.FileLists.fetch_local_list``: a ``sync`` without ``--cache-file``
   keeps s3cmd's MD5 cache in the file the runner chose, with a HashCache
   whose entries are in SQLite, private, one at a time (md5_cache.py).
8. ``hash_file_md5`` as s3cmd's listing calls it (``S3.FileDict``; ``S3.Utils``
   in 2.3): a large file's read for its MD5 is shown and remembered, and a
   file over S3's 5 TiB is refused before it is read (md5_reads.py).
9. SIGTERM and SIGHUP (a batch system's time limit, a closed terminal) stop a
   run as Ctrl-C does: what is running stops, the resume command is printed,
   and the exit status is 128 + the signal.
10. ``main``'s call of the command, s3cmd's local walks and ``S3.bucket_list``:
   a command over a tree runs a range of keys at a time, and a share of a job
   array (``--shard``) sees only its own keys (batches.py).
11. ``S3.S3.pprint``: s3cmd formats every answer for its debug log
   (``debug("Response:\n" + pprint.pformat(response))``), a listing page's
   300 KB of XML included, whether or not anything is logged; a stand-in
   formats only when debug logging is on (about 0.3 s of CPU in a sync of
   10,000 unchanged files).
12. ``S3.FileLists.dateS3toUnix``: each listed object's ``LastModified`` is
   read with dateutil's general parser (about a quarter of the CPU of a sync
   of 10,000 unchanged files); S3's own form (``2026-12-06T21:00:00.000Z``)
   is read directly, to the same second, and any other with s3cmd's own.

``check_compatible`` runs before every s3cmd run. It verifies that the hooks
still hold for the installed s3cmd, in particular that every method of
``S3.S3.S3`` that talks HTTP goes through ``get_triplet``. A future s3cmd that
sent a request another way would otherwise go out without the headers; this
way it gives a clear error instead.
"""

from __future__ import annotations

import logging
import optparse
import pprint
import re
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import EX_BREAK, ConfigError, TsdError
from ..login import tokens
from . import md5_cache, md5_reads, multipart, script
from .script import patched

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any, Protocol

    from ..keyspace.shards import Shard
    from . import transfers

    class Hooks(Protocol):
        """What the runner supplies to a run of s3cmd."""

        parallel: int  # requests at once (to begin with); 1 is s3cmd's own way
        grows: bool  # whether more may go at once than ``parallel`` when the link rewards it
        md5_cache: Path | None  # sync's MD5 cache when --cache-file is not given
        large_md5s: Path | None  # where the MD5s of large files are remembered
        batch_size: int  # entries of a tree's listings a command works on at a time
        shard: Shard | None  # the share of a job array's keys this run moves

        def parsed(
            self, options: optparse.Values, args: Sequence[str], parser: optparse.OptionParser
        ) -> None:
            """s3cmd's ``parser`` has parsed its command line (``args[0]`` is the command)."""

        def headers(self) -> Mapping[str, str]:
            """Extra headers for the request about to be signed."""

        def upload_started(self, upload_id: str, destination: str, source: str) -> None: ...

        def report(self, line: str) -> None:
            """Say something of the run as a whole (a share's closing line)."""

        def upload_finished(self, upload_id: str) -> None: ...

        def download_kept(self, partial: str, source: str, destination: str, size: int) -> None:
            """A download keeps a state a later run can resume from."""

        def download_done(self, partial: str) -> None: ...


TESTED_VERSIONS = "2.3 and 2.4"
# Parts of a bucket's tree listed at once, a page ahead of a ranged run (listings.py),
# when requests go several at once: a page of 1,000 keys takes longer to compare than
# to list even over a long link, and each part holds up to three pages.
LISTED_AHEAD = 2
_HTTP_CALLS = frozenset({"request", "putrequest", "endheaders", "getresponse"})
_STOPPING_SIGNALS = ("SIGTERM", "SIGHUP")


class _Abort(BaseException):
    """Carries an error of a hook out of s3cmd.

    s3cmd catches ``Exception`` broadly (to retry, or to print a bug report
    with a traceback); an error of ours, or an OSError from our own files,
    must pass through all of that untouched, as a KeyboardInterrupt does.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _guarded(call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except Exception as err:
        raise _Abort(err) from err


# s3cmd's advice after a failed part ends in "<argv0> --upload-id ID put ...", a
# command that cannot be run as printed; the runner prints the complete one.
_HALF_ADVICE = re.compile(r"\. Use\n.*?\nto continue the upload\.", re.S)


# The access key in a signature v4 Authorization header (compiled at the first
# log record: most runs have none).
_CREDENTIAL = r"(Credential=)[^/\s'\",]+"


class _Redact(logging.Filter):
    """Clean s3cmd's log records: tokens and the access key redacted
    (``--debug`` prints every header), and its incomplete resume advice cut."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = re.sub(_CREDENTIAL, r"\1<access key>", tokens.redact(message))
        cleaned = _HALF_ADVICE.sub(".", cleaned).lstrip("\n")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class _DebugOnlyPprint:
    """``pprint`` as ``S3.S3`` sees it (hook 11): ``pformat`` is the real one when
    debug logging is on and an empty string otherwise, when the record it goes
    into is dropped unread; the rest of the module is the real one."""

    def pformat(self, obj: object, *args: Any, **kwargs: Any) -> str:
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            return ""
        return pprint.pformat(obj, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(pprint, name)


# S3's form of a listed object's LastModified: UTC, milliseconds that s3cmd drops.
_S3_DATE = r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?Z"


def _s3_date_reader(general: Callable[[str], int]) -> Callable[[str], int]:
    """``dateS3toUnix`` (hook 12): a date in S3's form read to the second as s3cmd
    reads it (UTC, milliseconds dropped), any other by ``general``, s3cmd's own."""
    import calendar
    import datetime

    s3_form = re.compile(_S3_DATE).fullmatch

    def date_to_unix(date: str) -> int:
        found = s3_form(date)
        if found is None:
            return general(date)
        # A datetime, so that a date that is none (a 13th month) fails as s3cmd's does.
        read = datetime.datetime(*map(int, found.groups()))
        return calendar.timegm(read.timetuple())

    return date_to_unix


def version() -> str:
    try:
        from S3 import PkgInfo
    except ImportError:
        return "not installed"
    return str(PkgInfo.version)


def check_compatible(s3cmd: script.Script | None = None, parallel: bool = False) -> None:
    """Fail clearly, before any request, if the hooks do not fit this s3cmd.

    With ``parallel``, the hooks of many files at once must fit too, and the
    transfer loops of ``s3cmd`` be where script.py expects them.
    """
    problem = _incompatibility() or (s3cmd.command_problem if s3cmd else None)
    if problem is None and parallel:
        from . import plans, transfers

        problem = transfers.incompatibility() or (s3cmd.problem if s3cmd else None)
        if problem is None and s3cmd is not None:
            problem = plans.incompatibility(s3cmd.code)
    if problem:
        raise ConfigError(
            f"the installed s3cmd {version()} does not work with tsd-s3cmd ({problem}); "
            f"install a tested release ({TESTED_VERSIONS}): pip install 's3cmd>=2.3,<2.5'"
        )


def _incompatibility() -> str | None:
    try:
        from S3 import S3 as s3_module
        from S3 import BaseUtils, FileLists, MultiPart, S3Uri
    except ImportError as err:
        return f"cannot import it: {err}"
    request = getattr(s3_module, "S3Request", None)
    client = getattr(s3_module, "S3", None)
    if request is None or client is None:
        return "S3.S3 has no S3Request or S3 class"
    triplet = getattr(request, "get_triplet", None)
    if triplet is None or "sign" not in triplet.__code__.co_names:
        return "S3Request.get_triplet no longer signs the request"
    for name, value in vars(client).items():
        names = getattr(getattr(value, "__code__", None), "co_names", ())
        if _HTTP_CALLS & set(names) and "get_triplet" not in names:
            return f"S3.{name} sends requests without S3Request.get_triplet"
    if not isinstance(getattr(S3Uri.S3UriFile, "_re", None), re.Pattern):
        return "S3Uri.S3UriFile has no _re pattern"
    if getattr(s3_module, "pprint", None) is not pprint:
        return "S3.S3 no longer formats its answers with pprint"
    if getattr(FileLists, "dateS3toUnix", None) is not getattr(BaseUtils, "dateS3toUnix", 0):
        return "S3.FileLists no longer reads a listed date with BaseUtils.dateS3toUnix"
    upload = getattr(MultiPart, "MultiPartUpload", None)
    for method in ("initiate_multipart_upload", "complete_multipart_upload", "abort_upload"):
        if not callable(getattr(upload, method, None)):
            return f"MultiPartUpload.{method} is missing"
    from . import batches

    return (
        multipart.incompatibility()
        or _md5_cache_incompatibility()
        or _md5_reads_incompatibility()
        or batches.incompatibility()
    )


@contextmanager
def _hooks_installed(
    hooks: Hooks, default_config: Path | None, namespace: dict[str, Any], stop: _Stop
) -> Iterator[None]:
    from S3 import S3 as s3_module
    from S3 import FileLists, MultiPart, S3Uri

    file_pattern = S3Uri.S3UriFile._re
    whole_names = re.compile(file_pattern.pattern, file_pattern.flags | re.DOTALL)
    original_triplet = s3_module.S3Request.get_triplet

    def get_triplet(self: Any) -> Any:
        self.headers.update(_guarded(hooks.headers))
        return original_triplet(self)

    class OptionParser(optparse.OptionParser):
        def parse_args(self, args: Any = None, values: Any = None) -> Any:
            if default_config is not None:
                if self.defaults.get("config") is None:
                    raise _Abort(ConfigError(_NO_DEFAULT_CONFIG))
                self.defaults["config"] = str(default_config)
            options, positional = super().parse_args(args, values)
            _guarded(hooks.parsed, options, list(positional), self)
            return options, positional

    upload_class = MultiPart.MultiPartUpload
    original_initiate = upload_class.initiate_multipart_upload
    original_complete = upload_class.complete_multipart_upload
    original_abort = upload_class.abort_upload

    def initiate(self: Any) -> Any:
        multipart.before_initiate(self)
        upload_id = original_initiate(self)
        multipart.after_initiate(self)
        stream = getattr(self, "file_stream", None)
        source = getattr(stream, "stream_name", None)
        # A copy between buckets, or an upload from stdin, cannot be resumed.
        if upload_id and source and source != "<stdin>":
            _guarded(hooks.upload_started, upload_id, self.dst_uri.uri(), source)
        return upload_id

    def complete(self: Any) -> Any:
        response = multipart.complete(self, original_complete)
        _guarded(hooks.upload_finished, self.upload_id)
        return response

    def abort(self: Any) -> Any:
        response = original_abort(self)
        _guarded(hooks.upload_finished, self.upload_id)
        return response

    redact = _Redact()
    logging.getLogger().addFilter(redact)
    try:
        with (
            patched(s3_module.S3Request, "get_triplet", get_triplet),
            patched(optparse, "OptionParser", OptionParser),
            patched(upload_class, "initiate_multipart_upload", initiate),
            patched(upload_class, "complete_multipart_upload", complete),
            patched(upload_class, "abort_upload", abort),
            patched(S3Uri.S3UriFile, "_re", whole_names),
            patched(s3_module, "pprint", _DebugOnlyPprint()),
            patched(FileLists, "dateS3toUnix", _s3_date_reader(FileLists.dateS3toUnix)),
            multipart.installed(),
            _md5_cache_installed(hooks) as store,
            _md5_reads_installed(hooks),
            _engine_installed(hooks, namespace, stop) as engine,
            _batches_installed(hooks, namespace, store, engine),
        ):
            yield
    finally:
        logging.getLogger().removeFilter(redact)


# -- the MD5 cache -------------------------------------------------------------------


def _md5_cache_incompatibility() -> str | None:
    """Whether s3cmd still reads its MD5 cache the way hook 7 supplies it."""
    from S3 import Config, FileLists, HashCache

    names = FileLists.fetch_local_list.__code__.co_names
    if not {"HashCache", "cache_file"} <= set(names):
        return "FileLists.fetch_local_list no longer keeps its MD5s in a HashCache at cache_file"
    if not hasattr(Config.Config, "cache_file"):
        return "Config has no cache_file"
    for method in ("load", "md5", "add", "mark_all_for_purge", "unmark_for_purge", "purge", "save"):
        if not callable(getattr(HashCache.HashCache, method, None)):
            return f"HashCache has no {method}"
    return None


@contextmanager
def _md5_cache_installed(hooks: Hooks) -> Iterator[md5_cache.Store]:
    """Hook 7: s3cmd's MD5 cache in ``hooks.md5_cache`` unless ``--cache-file`` names one.

    s3cmd reads ``cache_file`` only while it lists local files
    (``fetch_local_list``); for that while it is set to our file, and the
    HashCache made there keeps its entries in the run's ``md5_cache.Store``
    (SQLite, one entry at a time, private, replaced whole at the end of the
    run), which is yielded for the listing to say whether it saw every file.
    A ``--cache-file`` the user gives is s3cmd's alone, as it always was
    (``--cache-file=/dev/null`` is no cache).
    """
    from S3 import Config, FileLists, HashCache

    store = md5_cache.Store(lambda: hooks.md5_cache)  # known once s3cmd has parsed

    class StoredCache(HashCache.HashCache):
        """s3cmd's cache as ``_fetch_local_list_info`` and ``_maintain_cache`` use it,
        kept in the store (what a run did not use is dropped when the store is
        finished, not here)."""

        def load(self, f: str) -> None:
            pass

        def md5(self, dev: int, inode: int, mtime: float, size: int) -> str | None:
            return store.md5(dev, inode, mtime, size)

        def add(self, dev: int, inode: int, mtime: float, size: int, md5: str) -> None:
            store.add(dev, inode, mtime, size, md5)

        def mark_all_for_purge(self) -> None:
            pass

        def unmark_for_purge(self, dev: int, inode: int, mtime: float, size: int) -> None:
            pass

        def purge(self) -> None:
            pass

        def save(self, f: str) -> None:
            pass

    original_fetch = FileLists.fetch_local_list

    def fetch_local_list(*args: Any, **kwargs: Any) -> Any:
        config = Config.Config()
        if config.cache_file or hooks.md5_cache is None:
            return original_fetch(*args, **kwargs)
        with (
            patched(config, "cache_file", str(hooks.md5_cache)),
            patched(FileLists, "HashCache", StoredCache),
        ):
            return original_fetch(*args, **kwargs)

    try:
        with patched(FileLists, "fetch_local_list", fetch_local_list):
            yield store
    finally:
        store.finish()


# -- the read of a large file for its MD5 ------------------------------------------------


def _md5_reader() -> Any:
    """The module whose ``hash_file_md5`` s3cmd's ``FileDict.get_md5`` calls."""
    from S3 import FileDict, Utils

    return FileDict if "hash_file_md5" in vars(FileDict) else Utils


def _md5_reads_incompatibility() -> str | None:
    from S3 import FileDict

    if "hash_file_md5" not in FileDict.FileDict.get_md5.__code__.co_names:
        return "FileDict.get_md5 no longer reads files with hash_file_md5"
    if not callable(getattr(_md5_reader(), "hash_file_md5", None)):
        return "hash_file_md5 is not where FileDict.get_md5 finds it"
    return None


@contextmanager
def _md5_reads_installed(hooks: Hooks) -> Iterator[None]:
    """Hook 8: a large file's MD5 read shown where s3cmd shows progress, and remembered."""
    import sys

    from S3.Config import Config

    reader = _md5_reader()
    original = reader.hash_file_md5

    def shown_on() -> Any:
        return sys.stdout if Config().progress_meter else None

    reads = md5_reads.Reads(hooks.large_md5s, shown_on)

    def hash_file_md5(filename: Any) -> str:
        return reads.md5_of(filename, original)

    with patched(reader, "hash_file_md5", hash_file_md5):
        yield


@contextmanager
def _engine_installed(
    hooks: Hooks, namespace: dict[str, Any], stop: _Stop
) -> Iterator[transfers.Engine | None]:
    """Hook 6: the engine's hook points, unless ``--parallel 1`` (then nothing changes)."""
    if hooks.parallel <= 1:
        yield None
        return
    from . import transfers

    engine = transfers.Engine(_GuardedHooks(hooks), namespace)
    stop.also(engine.stop)
    with engine.installed():
        yield engine


@contextmanager
def _batches_installed(
    hooks: Hooks,
    namespace: dict[str, Any],
    store: md5_cache.Store,
    engine: transfers.Engine | None,
) -> Iterator[None]:
    """Hook 10: a command over a tree runs a range of keys at a time, and a share of a
    job array sees only its keys (batches.py). Installed last, so that its listing hooks
    are the ones s3cmd's script imports, wrapping the others."""
    from .batches import Batches

    on_range = engine.next_range if engine is not None else None
    batches = Batches(
        namespace, hooks.batch_size, hooks.shard, store, on_range, hooks.report,
        ahead=LISTED_AHEAD if engine is not None else 0,
    )  # fmt: skip

    def command(function: Callable[[list[str]], int], args: list[str]) -> int:
        try:
            return batches.command(function, args)
        except TsdError as err:  # past s3cmd's main, which would print a bug report
            raise _Abort(err) from err

    with batches.installed():
        namespace[script.COMMAND_HOOK] = command
        yield


class _GuardedHooks:
    """The runner's hooks as the engine calls them: an error of ours passes s3cmd untouched."""

    def __init__(self, hooks: Hooks) -> None:
        self._hooks = hooks
        self.parallel = hooks.parallel
        self.grows = hooks.grows

    def download_kept(self, partial: str, source: str, destination: str, size: int) -> None:
        _guarded(self._hooks.download_kept, partial, source, destination, size)

    def download_done(self, partial: str) -> None:
        _guarded(self._hooks.download_done, partial)


class _Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in s3cmd as Ctrl-C is, so that it stops the same way."""


class _Stop:
    """Hook 9: SIGINT, SIGTERM and SIGHUP stop the engine, then interrupt s3cmd."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._stoppers: list[Callable[[], None]] = []

    def also(self, stopper: Callable[[], None]) -> None:
        self._stoppers.append(stopper)

    @contextmanager
    def installed(self) -> Iterator[None]:
        saved = {}
        numbers = [signal.SIGINT, *(getattr(signal, n) for n in _STOPPING_SIGNALS)]
        try:
            for number in numbers:
                saved[number] = signal.signal(number, self._received)
        except ValueError:  # not the main thread (unit tests): s3cmd's own handling
            pass
        try:
            yield
        finally:
            for number, handler in saved.items():
                signal.signal(number, handler)

    def _received(self, number: int, frame: object) -> None:
        for stopper in self._stoppers:
            stopper()
        self.signal = self.signal or number
        raise KeyboardInterrupt if number == signal.SIGINT else _Signalled

    def status(self, status: int) -> int:
        """The exit status of a run: 128 + the signal that stopped it, if one did.

        s3cmd says 130 for Ctrl-C, except where it catches the interrupt
        itself and carries on to some other status.
        """
        return 128 + self.signal if self.signal else status


_NO_DEFAULT_CONFIG = (
    "this s3cmd has no default config file that tsd-s3cmd can replace with the project's "
    f"stored one; pass the config with -c, or install a tested s3cmd ({TESTED_VERSIONS})"
)


def run(
    args: Sequence[str],
    hooks: Hooks,
    cache_dir: Path | None = None,
    prog: str = "tsd-s3cmd",
    default_config: Path | None = None,
) -> int:
    """Run s3cmd with ``args`` in this interpreter; its exit status.

    ``default_config`` replaces s3cmd's default config (``~/.s3cfg``): it is
    used unless ``args`` name another. A TsdError raised by a hook is
    re-raised here, after s3cmd has unwound, as is any other exception of a
    hook.
    """
    from ..engine.limits import Stopped

    s3cmd = script.load(cache_dir)
    check_compatible(s3cmd, parallel=hooks.parallel > 1)
    stop = _Stop()
    try:
        with (
            stop.installed(),
            script.namespace(s3cmd, args, prog) as namespace,
            _hooks_installed(hooks, default_config, namespace, stop),
        ):
            exec(s3cmd.code, namespace)
        return stop.status(0)
    except SystemExit as exit_:
        return stop.status(_exit_status(exit_.code))
    except _Abort as abort:
        raise abort.error from None
    except (KeyboardInterrupt, Stopped):
        return stop.status(EX_BREAK)


class _Parsed(BaseException):
    """Carries s3cmd's parser and its reading of the command line out of its ``main``."""

    def __init__(
        self, parser: optparse.OptionParser, options: optparse.Values, positional: list[str]
    ) -> None:
        super().__init__("s3cmd's command line")
        self.parser, self.options, self.positional = parser, options, positional


def _parse_only(
    args: Sequence[str], cache_dir: Path | None, prog: str
) -> tuple[_Parsed | None, dict[str, Any]]:
    """Run s3cmd's script until it has parsed ``args``, and stop it there.

    Nothing is read, sent or printed, unless ``args`` are bad: then s3cmd says
    why on stderr, and there is no parse (None). The script's namespace comes
    back too (``get_commands_list`` is in it).
    """

    class OptionParser(optparse.OptionParser):
        def parse_args(self, args: Any = None, values: Any = None) -> Any:
            options, positional = super().parse_args(args, values)
            raise _Parsed(self, options, list(positional))

    s3cmd = script.load(cache_dir)
    stop_at_parse = patched(optparse, "OptionParser", OptionParser)
    with script.namespace(s3cmd, args, prog) as namespace, stop_at_parse:
        try:
            exec(s3cmd.code, namespace)
        except _Parsed as parsed:
            return parsed, namespace
        except SystemExit:
            pass
    return None, namespace


def vocabulary(cache_dir: Path | None = None) -> tuple[list[str], list[tuple[str, bool]]]:
    """s3cmd's commands, and its options with whether each takes a value.

    Read from the installed s3cmd, for shell completion: its
    ``get_commands_list()``, and the parser its ``main`` builds.
    """
    try:
        parsed, namespace = _parse_only([], cache_dir, "s3cmd")
    except Exception:
        parsed, namespace = None, {}
    listing = namespace.get("get_commands_list")
    if parsed is None or not callable(listing):
        raise ConfigError(f"cannot read the commands and options of s3cmd {version()}")
    commands = [entry["cmd"] for entry in listing() if "cmd" in entry]
    options = [
        (name, option.takes_value())
        for option in parsed.parser.option_list
        for name in (*option._long_opts, *option._short_opts)
    ]
    return commands, options


def parse(
    args: Sequence[str], cache_dir: Path | None = None, prog: str = "tsd-s3cmd"
) -> tuple[optparse.Values, list[str]] | None:
    """s3cmd's own reading of ``args``: its options and positional arguments.

    ``--print-token-for`` reads its command line with this, so that options,
    their values and abbreviations count exactly as in a run. None when s3cmd
    stopped before (a bad option: it has said why on stderr).
    """
    check_compatible()
    parsed, _ = _parse_only(args, cache_dir, prog)
    return None if parsed is None else (parsed.options, parsed.positional)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1

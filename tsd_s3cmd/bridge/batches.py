"""A command over a tree, run a range of keys at a time: memory bounded by the range.

s3cmd lists both sides of a ``sync`` whole (2.7 KB of memory a file with
everything it keeps, so a million files need gigabytes; its maintainers say
so in s3cmd issue 732), then compares the lists and moves files. tsd-s3cmd
runs the same command once per range of keys instead (script.py hooks
``main``'s call of the command): both sides are listed in S3 key order as
the run goes (keyspace/: a local tree walked in that order, a bucket as S3
lists it), cut into ranges of about ``size`` entries, and s3cmd's command
runs on each range with its listings restricted to it. Everything it
decides stays its own (excludes and includes, ``--skip-existing``,
``--delete-removed``, sizes and MD5s, what it prints), because its own
``fetch_local_list``/``fetch_remote_list`` build each range's lists from
what their walk and ``bucket_list`` return: the hook points are those two
(``FileLists._fswalk_no_symlinks``, ``_fswalk_follow_symlinks``,
``S3.bucket_list``) and the keys the entries are given, which must be the
keys s3cmd gives them (listings.py).

The first pass of a sync only learns its two listings (the first returns
nothing, the second stops it), so that every range is cut from both. What
a range cannot see is handled so that the ranges together do what one run
does:

- **Deletes when a range has no source file.** s3cmd refuses to delete
  anything when the source side holds no file at all ("cowardly refusing");
  a range without source files in a run that has some must delete as usual,
  so such a range runs with ``--force`` for that check (the only thing a
  sync's ``force`` decides).
- **Local directories a sync down would delete** (``--delete-removed``) go
  with the range where their contents have gone, since s3cmd removes a
  directory after what is in it; a directory that has objects under it on
  the remote side is left out, as s3cmd keeps it.
- **One closing line**: s3cmd's "Done." line (and ``--stats``), and the
  summary of a copy between buckets, once for the whole run with its totals
  (report.py); the exit status the first that is not 0.

A ``[3 of 1000]`` label counts within a range. Run unranged, as s3cmd runs
them: ``--files-from``, ``--cache-file`` (s3cmd's own cache would be loaded
and purged once a range), ``--max-delete`` (a limit on the whole run), a
single file, stdin and stdout, several ``--add-destination``.

A share of a job array (``--shard K/N``) is the same listings with only
the keys of the share; a command run unranged keeps only the share's
entries of s3cmd's lists. Either way it ends with a line that says what
the share did (report.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext

from ..errors import ConfigError, UsageError
from ..keyspace import order
from . import listings
from .report import Report
from .script import COMMAND_HOOK, patched

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any

    from ..keyspace.shards import Shard
    from .listings import Entry, Listing
    from .md5_cache import Store

VARIABLE = "TSD_S3CMD_BATCH"
# Entries of both sides in one range: s3cmd keeps about 3 KB a file, so a range
# holds a few MB; at 64 requests at once, a range's last wave is a small share of it.
DEFAULT_SIZE = 1000
# The commands that list a tree, by the name of s3cmd's function, and how many
# listings each makes before it compares (both sides of a sync, one otherwise).
LISTINGS = {
    "cmd_sync": 2,
    "cmd_object_put": 1,
    "cmd_object_get": 1,
    "cmd_cp": 1,
    "cmd_mv": 1,
    "cmd_object_del": 1,
}
SHARDED = "sync, and put, get, cp, mv and del with --recursive"


def size_from(environ: dict[str, str] | Any) -> int:
    """Entries a range holds (``TSD_S3CMD_BATCH``; tests make it small); UsageError if bad."""
    value = environ.get(VARIABLE, "").strip()
    if not value:
        return DEFAULT_SIZE
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"{VARIABLE} takes a number of entries (1 or more), not {value!r}")
    return int(value)


class _Discovered(BaseException):
    """Every listing of a sync is known: the first pass, which only learns them, ends."""


class _Run:
    """One ranged run of a command: its listings, and the range being worked on."""

    def __init__(self, expected: int, size: int) -> None:
        self.expected = expected
        self.size = size
        self.listings: list[Listing] = []
        self.discovering = expected > 1  # the first pass of a sync only learns its listings
        self.position = 0  # the next listing call of this pass
        self.batch: list[list[Entry]] | None = None
        self.end: str | None = None
        self.last = False
        self.pending: list[Entry] = []  # a sync down's directories waiting for their contents
        self.ranges = 0
        self.has_source: bool | None = None

    def next_pass(self) -> None:
        self.position = 0
        self.batch = None

    def cut(self) -> list[list[Entry]]:
        batch = order.cut([listing.stream for listing in self.listings], self.size)
        self.batch, self.end = batch.entries, batch.end
        self.last = batch.end is None
        self.ranges += 1
        logging.debug("tsd-s3cmd: range %d, %d entries, up to %r", self.ranges, len(batch),
                      self.end)  # fmt: skip
        for index, listing in enumerate(self.listings):
            if listing.keeps_directories:
                others = [
                    (entries, other.stream.head)
                    for entries, other in zip(self.batch, self.listings)
                    if other is not listing
                ]
                self.batch[index] = listings.arrange_directories(
                    self.batch[index], others, self.end, self.pending
                )
        return self.batch


class Batches:
    """The command hook and the listing hooks of one run (see the module docstring)."""

    def __init__(
        self,
        namespace: dict[str, Any],
        size: int,
        shard: Shard | None = None,
        md5_store: Store | None = None,
        on_range: Callable[[bool], None] | None = None,
        say: Callable[[str], None] = print,
        ahead: int = 0,
    ) -> None:
        """``on_range(last)`` is told when a range has been cut (the engine forgets the
        sizes the last range's listing gave, and says whether more files may follow);
        ``say`` prints a share's closing line; ``ahead``: subdirectories of a bucket
        listed at once, ahead of the run (0: s3cmd's own requests, a page at a time)."""
        self.namespace = namespace
        self.size = size
        self.shard = shard
        self.md5_store = md5_store
        self.on_range = on_range
        self.say = say
        self.ahead = ahead
        self.originals: dict[str, Any] = {}
        self._run: _Run | None = None
        self._report: Report | None = None
        self._calls = 0  # listing calls of an unranged command
        self._serving: tuple[Listing, list[Entry]] | None = None

    @contextmanager
    def installed(self) -> Iterator[None]:
        from S3 import S3 as s3_module
        from S3 import FileLists

        walks = ("_fswalk_no_symlinks", "_fswalk_follow_symlinks")
        self.originals = {name: getattr(FileLists, name) for name in walks}
        self.originals["bucket_list"] = s3_module.S3.bucket_list
        self.originals["fetch_local_list"] = FileLists.fetch_local_list
        self.originals["fetch_remote_list"] = FileLists.fetch_remote_list
        self.namespace[COMMAND_HOOK] = self.command
        with ExitStack() as stack:
            for name in walks:
                stack.enter_context(patched(FileLists, name, self._walk(name)))
            stack.enter_context(patched(s3_module.S3, "bucket_list", self._bucket_list()))
            for name in ("fetch_local_list", "fetch_remote_list"):
                stack.enter_context(patched(FileLists, name, self._fetch(name)))
            yield

    # -- the command ----------------------------------------------------------------

    def command(self, function: Callable[[list[str]], int], args: list[str]) -> int:
        """Run s3cmd's command ``function`` on ``args``: in ranges where it lists a tree."""
        from S3.Config import Config

        config = Config()
        name = getattr(function, "__name__", "")
        expected = LISTINGS.get(name)
        if self.shard is not None and (
            expected is None or (name != "cmd_sync" and not config.recursive)
        ):
            raise UsageError(f"--shard applies to {SHARDED}, not to '{_command_word(name)}'")
        ranged = expected is not None and not self._unranged(name, args, config)
        if ranged or self.shard is not None:
            self._report = Report(self.namespace, ranged, self.shard, self.say)
        try:
            with self._report.watching() if self._report is not None else nullcontext():
                if not ranged:
                    self._complete_listing(False)  # until its local listing has returned
                    return function(args)
                assert expected is not None
                return self._ranged(function, args, expected, config)
        finally:
            self._report = None

    def _unranged(self, name: str, args: list[str], config: Any) -> bool:
        """Whether the command runs as s3cmd runs it, its lists whole (module docstring)."""
        from S3.S3Uri import S3Uri

        if name != "cmd_sync" and not config.recursive:
            return True
        if "-" in args or config.files_from or config.cache_file or config.max_delete > 0:
            return True
        if name == "cmd_sync" and config.additional_destinations:
            return True
        if name == "cmd_object_del" and len(args) != 1:
            return True
        uris = [S3Uri(arg) for arg in args]
        if name == "cmd_object_put" or (name == "cmd_sync" and uris and uris[0].type == "file"):
            return not all(uri.isdir() for uri in uris if uri.type == "file")  # the sources
        return False

    def _ranged(
        self, function: Callable[[list[str]], int], args: list[str], expected: int, config: Any
    ) -> int:
        run = _Run(expected, self.size)
        forced = config.force
        nothing = self.namespace["ParameterError"]
        status = None
        self._run = run
        self._complete_listing(False)
        try:
            while True:
                run.next_pass()
                if self._deletes_without_source(function, config, forced):
                    config.force = True
                try:
                    result = function(list(args))
                except _Discovered:
                    run.discovering = False
                    continue
                except nothing as err:
                    # put: a range whose files are all excluded (its dry run's "exclude:"
                    # lines are not printed); the run as a whole has files, or more
                    # ranges to look at.
                    if str(err) != "Nothing to upload." or (run.last and status is None):
                        raise
                    result = 0
                finally:
                    config.force = forced
                if run.discovering:
                    raise ConfigError(
                        "the installed s3cmd's sync lists otherwise than tsd-s3cmd expects; "
                        "install a tested release"
                    )
                code = 1 if result is None else int(result)  # as s3cmd's main says
                if run.batch is None:
                    return code  # it listed no tree (del without excludes streams)
                status = status or code
                if run.last or (status and config.stop_on_error):
                    break
            self._complete_listing(run.last)
            return status or 0
        finally:
            self._run = None

    def _deletes_without_source(
        self, function: Callable[..., Any], config: Any, forced: bool
    ) -> bool:
        """Whether this range of a sync must delete although it may hold no source file
        (see the module docstring): the run as a whole has one."""
        run = self._run
        if (
            run is None
            or run.discovering
            or not run.listings
            or getattr(function, "__name__", "") != "cmd_sync"
            or not config.delete_removed
            or forced
        ):
            return False
        if run.has_source is None:
            run.has_source = listings.has_source(run.listings[0])
        return run.has_source

    def _complete_listing(self, complete: bool) -> None:
        if self.md5_store is not None:
            self.md5_store.complete = complete

    # -- the listings ----------------------------------------------------------------

    def _fetch(self, name: str) -> Callable[..., Any]:
        original = self.originals[name]
        kind = "local" if name == "fetch_local_list" else "remote"

        def fetch(*args: Any, **kwargs: Any) -> Any:
            run = self._run
            if run is None:
                listed = self._only_the_share(original(*args, **kwargs))
                if kind == "local":
                    self._complete_listing(True)  # it has seen every file
                self._calls += 1
                self._count_source(self._calls == 1, listed)
                return listed
            index = run.position
            run.position += 1
            listing = self._listing(run, index, kind, args, kwargs)
            if run.discovering:
                if len(run.listings) == run.expected:
                    raise _Discovered
                entries: list[Entry] = []
            else:
                if run.batch is None:
                    run.cut()
                    if self.on_range is not None:
                        self.on_range(run.last)
                assert run.batch is not None
                entries = run.batch[index]
            self._serving = (listing, entries)
            try:
                listed = original(*args, **kwargs)
            finally:
                self._serving = None
            self._count_source(index == 0 and not run.discovering, listed)
            return listed

        return fetch

    def _count_source(self, source: bool, listed: Any) -> None:
        """The source side's files, for a share's tally (the first listing of a command)."""
        if source and self._report is not None:
            self._report.files += len(listed[0])

    def _listing(
        self, run: _Run, index: int, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Listing:
        """The listing of this call: made at its first call, the same at every pass."""
        call = (kind, repr(args), repr(sorted(kwargs.items())))
        if index < len(run.listings):
            listing = run.listings[index]
            if listing.call != call:
                raise ConfigError(
                    "the installed s3cmd lists a tree otherwise at each range; "
                    "install a tested release"
                )
            return listing
        if index >= run.expected:
            raise ConfigError("the installed s3cmd lists a tree more often than expected")
        if kind == "local":
            made = listings.local(call, self.shard, *args, **kwargs)
        else:
            made = listings.remote(call, self.shard, *args, ahead=self.ahead, **kwargs)
        run.listings.append(made)
        return made

    def _walk(self, name: str) -> Callable[[str], Iterator[tuple[str, list[str], list[str]]]]:
        original = self.originals[name]

        def walk(path: str) -> Iterator[tuple[str, list[str], list[str]]]:
            serving = self._serving
            if serving is None or serving[0].kind != "local" or path not in serving[0].tops:
                return original(path)
            listing, entries = serving
            which = listing.tops.index(path)
            return listings.grouped(found for _, (top, found) in entries if top == which)

        return walk

    def _bucket_list(self) -> Callable[..., Any]:
        original = self.originals["bucket_list"]

        def bucket_list(
            s3: Any, bucket: str, prefix: Any = None, recursive: Any = None,
            uri_params: Any = None, limit: int = -1,
        ) -> Any:  # fmt: skip
            serving = self._serving
            top = (bucket, prefix or "")
            if serving is None or serving[0].kind != "remote" or top not in serving[0].tops:
                return original(s3, bucket, prefix, recursive, uri_params, limit)
            listing, entries = serving
            which = listing.tops.index(top)
            found = [item for _, (t, item) in entries if t == which]
            return {"list": found, "common_prefixes": [], "truncated": False}

        return bucket_list

    def _only_the_share(self, listed: Any) -> Any:
        """s3cmd's lists of an unranged run, with only the share's entries."""
        if self.shard is None:
            return listed
        contains = self.shard.contains
        listed = list(listed)
        total = len(listed) - 1  # the total size is last
        for position in range(total):
            found = listed[position]
            if not isinstance(found, dict):
                continue  # fetch_local_list's single_file flag
            for key in [k for k in found if not contains(k)]:
                if position == 0:
                    listed[total] -= found[key].get("size", 0) or 0
                del found[key]
            found.by_md5 = {md5: key for md5, key in found.by_md5.items() if contains(key)}
        return tuple(listed)


def _command_word(function_name: str) -> str:
    return function_name.replace("cmd_object_", "").replace("cmd_", "")


def incompatibility() -> str | None:
    """Whether s3cmd still lists a tree through the hook points used here."""
    import inspect

    from S3 import S3 as s3_module
    from S3 import BaseUtils, FileLists

    def names(function: Any) -> set[str]:
        found: set[str] = set()
        todo = [function.__code__]
        while todo:
            code = todo.pop()
            found.update(code.co_names)
            todo.extend(c for c in code.co_consts if inspect.iscode(c))
        return found

    walks = {"_fswalk_no_symlinks", "_fswalk_follow_symlinks"}
    for name in (*walks, "handle_exclude_include_walk_dir", "filter_exclude_include"):
        if not callable(getattr(FileLists, name, None)):
            return f"S3.FileLists has no {name}"
    if not walks <= names(FileLists.fetch_local_list):
        return "FileLists.fetch_local_list no longer walks a tree with _fswalk_*"
    if "bucket_list" not in names(FileLists.fetch_remote_list):
        return "FileLists.fetch_remote_list no longer lists with S3.bucket_list"
    for name in ("bucket_list", "bucket_list_streaming"):
        if not callable(getattr(s3_module.S3, name, None)):
            return f"S3.S3 has no {name}"
    replace = getattr(BaseUtils, "base_replace_nonprintables", None)
    if replace is None or replace("a\nb", False) != "a^Jb":
        return "BaseUtils.base_replace_nonprintables no longer writes a newline as ^J"
    return None

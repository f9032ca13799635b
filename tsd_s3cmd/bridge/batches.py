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
``S3.bucket_list``) and the keys this module gives the entries, which must
be the keys s3cmd gives them (``local_key`` and ``remote_key`` follow its
code; a test holds them to it).

What a range cannot see is handled here, so that the ranges together do
what one run does:

- **Deletes when a range has no source file.** s3cmd refuses to delete
  anything when the source side holds no file at all ("cowardly refusing");
  a range without source files in a run that has some must delete as usual,
  so such a range runs with ``--force`` for that check (the only thing a
  sync's ``force`` decides).
- **Local directories a sync down would delete** (``--delete-removed``) go
  with the range where their contents have gone, since s3cmd removes a
  directory after what is in it; a directory that has objects under it on
  the remote side is left out, as s3cmd keeps it (``arrange_directories``).
- **One closing line**: s3cmd's "Done." line (and ``--stats``), and the
  summary of a copy between buckets, once for the whole run with its totals;
  the exit status the first that is not 0.

A ``[3 of 1000]`` label counts within a range. Run unranged, as s3cmd runs
them: ``--files-from``, ``--cache-file`` (s3cmd's own cache would be loaded
and purged once a range), ``--max-delete`` (a limit on the whole run), a
single file, stdin and stdout, several ``--add-destination``.

A share of a job array (``--shard K/N``) is the same listings with only
the keys of the share; a command run unranged keeps only the share's
entries of s3cmd's lists.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

from ..errors import ConfigError, UsageError
from ..keyspace import order
from ..keyspace.walk import Walk
from .script import COMMAND_HOOK, patched

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any

    from ..keyspace.shards import Shard
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
_DONE = re.compile(r"Done\. (Uploaded|Downloaded) \d+ bytes|Done\. Copied \d+ files")
_SUMMARY = re.compile(
    r"Summary: (\d+) source files to copy, (\d+) files at destination to delete"
)
_DRY_RUN = "Exiting now because of --dry-run"
_NONPRINTABLE = re.compile("[\x00-\x1f\x7f]")  # what s3cmd writes as ^@ to ^_ and ^?


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


class _Listing:
    """One of s3cmd's listing calls in a ranged run, and its entries in key order.

    ``tops`` are the walked directories (local) or ``(bucket, prefix)`` pairs
    (remote), one per source of the call; an entry's item is ``(which top,
    what s3cmd's walk or bucket_list gives for it)``.
    """

    def __init__(
        self,
        kind: str,
        call: tuple[Any, ...],
        tops: list[Any],
        listings: Callable[[], list[Iterable[tuple[str, Any]]]],
        shard: Shard | None,
        keeps_directories: bool = False,
    ) -> None:
        self.kind = kind
        self.call = call
        self.tops = tops
        self._listings = listings
        self.shard = shard
        self.keeps_directories = keeps_directories  # a sync down's destination (see module doc)
        self.stream = order.Stream(self.pairs(), f"the listing of {', '.join(map(str, tops))}")

    def pairs(self, shard: bool = True) -> Iterator[tuple[str, Any]]:
        """All entries, in key order (only the share's, unless ``shard`` is False)."""
        pairs = order.merged(self._listings())
        if shard and self.shard is not None:
            contains = self.shard.contains
            return (pair for pair in pairs if contains(pair[0]))
        return pairs


class _Run:
    """One ranged run of a command: its listings, and the range being worked on."""

    def __init__(self, expected: int, size: int) -> None:
        self.expected = expected
        self.size = size
        self.listings: list[_Listing] = []
        self.discovering = expected > 1  # the first pass of a sync only learns its listings
        self.position = 0  # the next listing call of this pass
        self.batch: list[list[tuple[str, Any]]] | None = None
        self.end: str | None = None
        self.last = False
        self.pending: list[tuple[str, Any]] = []  # local directories waiting for their contents

    def next_pass(self) -> None:
        self.position = 0
        self.batch = None

    def cut(self) -> list[list[tuple[str, Any]]]:
        batch = order.cut([listing.stream for listing in self.listings], self.size)
        self.batch, self.end = batch.entries, batch.end
        self.last = batch.end is None
        for index, listing in enumerate(self.listings):
            if listing.keeps_directories:
                others = [
                    (entries, other.stream.head)
                    for entries, other in zip(self.batch, self.listings)
                    if other is not listing
                ]
                self.batch[index] = arrange_directories(
                    self.batch[index], others, self.end, self.pending
                )
        return self.batch


def arrange_directories(
    entries: list[tuple[str, Any]],
    others: Sequence[tuple[list[tuple[str, Any]], str | None]],
    end: str | None,
    pending: list[tuple[str, Any]],
) -> list[tuple[str, Any]]:
    """A sync down's local directory entries, placed where s3cmd's decision about them
    is the decision of a whole run.

    ``others``: the other side's entries in this range, and its first key
    beyond it. A directory ``d/`` whose key the other side has too stays (the
    two are compared); one under which the other side has keys is left out
    (s3cmd keeps it, and it may be in another range than its objects); one
    the other side has nothing of waits in ``pending`` for the range in which
    its own contents end, so that a delete removes it after them.
    """
    kept = []
    for key, item in entries:
        if not key.endswith("/"):
            kept.append((key, item))
            continue
        beyond = [_first_at_or_after(side, head, key) for side, head in others]
        if key in beyond:
            kept.append((key, item))
        elif not any(k is not None and k.startswith(key) for k in beyond):
            pending.append((key, item))
    ended = [(key, item) for key, item in pending if end is None or not end.startswith(key)]
    pending[:] = [entry for entry in pending if entry not in ended]
    return kept + ended


def _first_at_or_after(entries: list[tuple[str, Any]], head: str | None, key: str) -> str | None:
    """The first key at or after ``key`` on a side: in this range, else its next range's."""
    keys = [k for k, _ in entries]
    at = bisect.bisect_left(keys, key)
    return keys[at] if at < len(keys) else head


class _Totals:
    """What the ranges of a sync did, for its one closing line."""

    def __init__(self) -> None:
        self.done: str | None = None  # "Uploaded", "Downloaded" or "Copied"
        self.stats: list[Any] = []  # s3cmd's StatsInfo of each range
        self.summary = [0, 0]  # a copy between buckets: files to copy, files to delete
        self.summaries = 0
        self.dry_run = False


class Batches:
    """The command hook and the listing hooks of one run (see the module docstring)."""

    def __init__(
        self,
        namespace: dict[str, Any],
        size: int,
        shard: Shard | None = None,
        md5_store: Store | None = None,
        on_range: Callable[[], None] | None = None,
    ) -> None:
        """``on_range`` is told when a range begins (the engine forgets the sizes
        the last range's listing gave)."""
        self.namespace = namespace
        self.size = size
        self.shard = shard
        self.md5_store = md5_store
        self.on_range = on_range
        self.originals: dict[str, Any] = {}
        self._run: _Run | None = None
        self._serving: tuple[_Listing, list[tuple[str, Any]]] | None = None

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
        if expected is None or self._unranged(name, args, config):
            return self._whole(function, args)
        return self._ranged(function, args, expected, config)

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

    def _whole(self, function: Callable[[list[str]], int], args: list[str]) -> int:
        self._complete_listing(True)
        return function(args)

    def _ranged(
        self, function: Callable[[list[str]], int], args: list[str], expected: int, config: Any
    ) -> int:
        run = _Run(expected, self.size)
        totals = _Totals()
        forced = config.force
        nothing = self.namespace["ParameterError"]
        status = None
        self._run = run
        self._complete_listing(False)
        try:
            with self._closing_lines(totals):
                while True:
                    run.next_pass()
                    if not run.discovering and self.on_range is not None:
                        self.on_range()
                    if self._source_side_counts(function, config, forced):
                        config.force = True
                    try:
                        result = function(list(args))
                    except _Discovered:
                        run.discovering = False
                        continue
                    except nothing as err:
                        # put: a range whose files are all excluded (its dry run's
                        # "exclude:" lines are not printed); the run as a whole has files,
                        # or more ranges to look at.
                        if str(err) != "Nothing to upload." or (run.last and status is None):
                            raise
                        result = 0
                    finally:
                        config.force = forced
                    if run.discovering:
                        raise ConfigError(
                            "the installed s3cmd's sync lists otherwise than tsd-s3cmd "
                            "expects; install a tested release"
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

    def _source_side_counts(
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
        if not hasattr(run, "has_source"):
            run.has_source = self._has_source(run.listings[0])  # type: ignore[attr-defined]
        return bool(run.has_source)  # type: ignore[attr-defined]

    def _has_source(self, listing: _Listing) -> bool:
        """Whether a sync's source side has a file s3cmd would count, in the whole run
        (every share's: a share without one still deletes when the run has one)."""
        from S3 import FileLists
        from S3.FileDict import FileDict

        for key, (_, found) in listing.pairs(shard=False):
            one = FileDict(ignore_case=False)
            one[key] = {}
            kept, _ = FileLists.filter_exclude_include(one)
            if not kept:
                continue
            if listing.kind == "remote":
                return True
            root, name, is_dir = found
            if not is_dir and _counted_file(os.path.join(root, name)):
                return True
        return False

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
                return self._only_the_share(kind, original(*args, **kwargs))
            index = run.position
            run.position += 1
            listing = self._listing(run, index, kind, args, kwargs)
            if run.discovering:
                if len(run.listings) == run.expected:
                    raise _Discovered
                entries: list[tuple[str, Any]] = []
            else:
                entries = (run.batch if run.batch is not None else run.cut())[index]
            self._serving = (listing, entries)
            try:
                return original(*args, **kwargs)
            finally:
                self._serving = None

        return fetch

    def _listing(
        self, run: _Run, index: int, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _Listing:
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
        make = self._local if kind == "local" else self._remote
        made = make(call, *args, **kwargs)
        run.listings.append(made)
        return made

    def _local(
        self,
        call: tuple[Any, ...],
        args: Any,
        is_src: bool = False,
        recursive: Any = None,
        with_dirs: bool = False,
        **_: Any,
    ) -> _Listing:
        from S3 import FileLists
        from S3.Config import Config
        from S3.S3Uri import S3Uri
        from S3.Utils import deunicodise, unicodise

        config = Config()
        sources = [S3Uri(arg) for arg in _as_list(args)]
        tops = [uri.path() for uri in sources]
        walks = [
            Walk(
                key_of=_local_key(uri.path(), uri.basename(), config.urlencoding_mode),
                decode=unicodise,
                encode=deunicodise,
                prune=FileLists.handle_exclude_include_walk_dir,
                follow_symlinks=bool(config.follow_symlinks),
                with_dirs=bool(with_dirs),
                warn=logging.warning,
            )
            for uri in sources
        ]
        return _Listing(
            "local",
            call,
            tops,
            lambda: [walk(top) for walk, top in zip(walks, tops)],
            self.shard,
            keeps_directories=bool(with_dirs) and not is_src,
        )

    def _remote(self, call: tuple[Any, ...], args: Any, **_: Any) -> _Listing:
        from S3.Config import Config
        from S3.S3 import S3
        from S3.S3Uri import S3Uri

        uris = [S3Uri(arg) for arg in _as_list(args)]
        tops = [(uri.bucket(), uri.object()) for uri in uris]

        def listings() -> list[Iterable[tuple[str, Any]]]:
            s3 = S3(Config())
            return [_remote_pairs(s3, bucket, prefix) for bucket, prefix in tops]

        return _Listing("remote", call, tops, listings, self.shard)

    def _walk(self, name: str) -> Callable[[str], Iterator[tuple[str, list[str], list[str]]]]:
        original = self.originals[name]

        def walk(path: str) -> Iterator[tuple[str, list[str], list[str]]]:
            serving = self._serving
            if serving is None or serving[0].kind != "local" or path not in serving[0].tops:
                return original(path)
            listing, entries = serving
            which = listing.tops.index(path)
            return _grouped(found for _, (top, found) in entries if top == which)

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

    def _only_the_share(self, kind: str, listed: Any) -> Any:
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

    # -- what s3cmd prints once a run ------------------------------------------------

    @contextmanager
    def _closing_lines(self, totals: _Totals) -> Iterator[None]:
        """s3cmd's closing lines of each range held back, and printed once at the end."""
        import time

        namespace = self.namespace
        output, stats_class = namespace["output"], namespace["StatsInfo"]
        show = print  # s3cmd's print is the built-in one; it is shadowed in its namespace
        started = time.time()

        def held_output(message: str) -> None:
            found = _DONE.match(message)
            if found is None:
                output(message)
            else:
                totals.done = found.group(1) or "Copied"

        def held_print(*values: Any, **kwargs: Any) -> None:
            found = _SUMMARY.match(str(values[0])) if len(values) == 1 else None
            if found is None:
                show(*values, **kwargs)
                return
            totals.summary[0] += int(found.group(1))
            totals.summary[1] += int(found.group(2))
            totals.summaries += 1

        class Stats(stats_class):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                super().__init__()
                totals.stats.append(self)

        class HoldBack(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                message = record.getMessage()
                if message == _DRY_RUN:
                    totals.dry_run = True
                    return False
                if record.levelno == logging.INFO and _DONE.match(message):
                    totals.done = totals.done or _DONE.match(message).group(1) or "Copied"  # type: ignore[union-attr]
                    return False
                return True

        hold_back = HoldBack()
        root = logging.getLogger()
        root.addFilter(hold_back)
        namespace["output"], namespace["print"], namespace["StatsInfo"] = (
            held_output, held_print, Stats,
        )  # fmt: skip
        try:
            yield
        finally:
            namespace["output"], namespace["StatsInfo"] = output, stats_class
            del namespace["print"]
            root.removeFilter(hold_back)
        if totals.summaries:
            copy, delete = totals.summary
            show(f"Summary: {copy} source files to copy, {delete} files at destination to delete")
        if totals.done is not None:
            self._done_line(totals, time.time() - started, stats_class, output)
        if totals.dry_run:
            logging.warning(_DRY_RUN)

    def _done_line(
        self, totals: _Totals, elapsed: float, stats_class: Any, output: Callable[[str], None]
    ) -> None:
        """s3cmd's "Done." line of a sync (and its --stats), with the whole run's totals."""
        from S3.Config import Config

        whole = stats_class()
        for name in vars(whole):
            values = [getattr(s, name) for s in totals.stats if getattr(s, name) is not None]
            setattr(whole, name, sum(values) if values else None)
        elapsed = max(1.0, elapsed)
        moved = whole.size_transferred or 0
        if totals.done == "Copied":
            files = whole.files_copied or 0
            rate = files / elapsed
            line = f"Done. Copied {files} files in {elapsed:0.1f} seconds, {rate:0.2f} files/s."
            worth = files > 0
        else:
            speed = self.namespace["formatSize"](
                moved / elapsed, human_readable=True, floating_point=True
            )
            line = (
                f"Done. {totals.done} {moved} bytes in {elapsed:0.1f} seconds, "
                f"{speed[0]:0.2f} {speed[1]}B/s."
            )
            copied = (whole.size_copied or 0) if totals.done == "Uploaded" else 0
            worth = moved + copied > 0
        if Config().stats:
            output(line + whole.format_output())
        elif worth:
            output(line)
        else:
            logging.info(line)


def _as_list(args: Any) -> list[str]:
    return list(args) if isinstance(args, (list, tuple, set)) else [args]


def _command_word(function_name: str) -> str:
    return function_name.replace("cmd_object_", "").replace("cmd_", "")


def _counted_file(path: str) -> bool:
    """Whether s3cmd's local listing keeps ``path`` as a file (a regular file; a
    symbolic link only with --follow-symlinks)."""
    from S3.Config import Config
    from S3.Utils import deunicodise

    raw = deunicodise(path)
    return os.path.isfile(raw) and (bool(Config().follow_symlinks) or not os.path.islink(raw))


def _local_key(
    local_path: str, local_base: str, urlencoding_mode: str
) -> Callable[[str, str], str]:
    """The key s3cmd's ``_get_filelist_local`` gives the file ``name`` in directory ``root``
    of a source whose path is ``local_path`` (what it walks) and name ``local_base``."""
    from S3 import BaseUtils

    replace = urlencoding_mode == "normal"

    def key_of(root: str, name: str) -> str:
        relative = os.path.join(root.replace(local_path, local_base, 1), name)
        if os.path.sep != "/":
            relative = "/".join(relative.split(os.path.sep))
        if replace and _NONPRINTABLE.search(relative):
            relative = BaseUtils.base_replace_nonprintables(relative, False)
        if relative.startswith("./"):
            relative = relative[2:]
        return relative

    return key_of


def remote_key(prefix: str, object_key: str) -> str:
    """The key s3cmd's ``_get_filelist_remote`` gives an object listed under ``prefix``:
    relative to the prefix up to its last ``/``."""
    base = prefix if not prefix or prefix.endswith("/") else prefix[: prefix.rfind("/") + 1]
    return object_key[len(base) :]


def _remote_pairs(s3: Any, bucket: str, prefix: str) -> Iterator[tuple[str, Any]]:
    """A bucket's objects under ``prefix``, in key order, a page at a time; s3cmd's rule
    that an object named exactly as the prefix is the only one is kept."""
    for _, _, objects in s3.bucket_list_streaming(bucket, prefix=prefix, recursive=True):
        for item in objects:
            key = item["Key"]
            yield remote_key(prefix, key), item
            if key == prefix and prefix and not prefix.endswith("/"):
                return


def _grouped(found: Iterable[tuple[str, str, bool]]) -> Iterator[tuple[str, list[str], list[str]]]:
    """Entries as s3cmd's walk gives them: ``(directory, subdirectories, files)``."""
    root: str | None = None
    dirs: list[str] = []
    files: list[str] = []
    for where, name, is_dir in found:
        if where != root:
            if root is not None:
                yield root, dirs, files
            root, dirs, files = where, [], []
        (dirs if is_dir else files).append(name)
    if root is not None:
        yield root, dirs, files


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

"""s3cmd's listings of a tree, as keyspace streams: the keys s3cmd gives, in S3 key order.

A ranged run (batches.py) hands s3cmd's ``fetch_local_list`` and
``fetch_remote_list`` one range of entries at a time. For that it lists
what they would list, in key order, giving each entry the key s3cmd will
give it: ``local_key`` and ``remote_key`` follow s3cmd's
``_get_filelist_local`` and ``_get_filelist_remote`` line for line (a test
compares them on a tree of odd names), and the local walk prunes and follows
links as s3cmd's does (keyspace/walk.py). ``grouped`` turns a range's local
entries back into what s3cmd's walk yields.

Also here, what one range cannot see of a sync that the whole run would:
whether the source side holds any file at all (``has_source``), and where a
sync down's local directories belong (``arrange_directories``).
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from ..keyspace import order
from ..keyspace.walk import Walk

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any

    from ..keyspace.shards import Shard

    Entry = tuple[str, Any]

_NONPRINTABLE = re.compile("[\x00-\x1f\x7f]")  # what s3cmd writes as ^@ to ^_ and ^?


class Listing:
    """One of s3cmd's listing calls, and its entries in key order.

    ``tops`` are the walked directories (local) or ``(bucket, prefix)`` pairs
    (remote), one per source of the call; an entry's item is ``(which top,
    what s3cmd's walk or bucket_list gives for it)``. ``stream`` is read as
    the run goes; ``pairs()`` lists it all again from the start.
    """

    def __init__(
        self,
        kind: str,
        call: tuple[Any, ...],
        tops: list[Any],
        listings: Callable[[], list[Iterable[Entry]]],
        shard: Shard | None,
        keeps_directories: bool = False,
    ) -> None:
        self.kind = kind
        self.call = call
        self.tops = tops
        self._listings = listings
        self.shard = shard
        self.keeps_directories = keeps_directories  # a sync down's destination
        self.stream = order.Stream(self.pairs(), f"the listing of {', '.join(map(str, tops))}")

    def pairs(self, shard: bool = True) -> Iterator[Entry]:
        """All entries, in key order (only the share's, unless ``shard`` is False)."""
        pairs = order.merged(self._listings())
        if shard and self.shard is not None:
            contains = self.shard.contains
            return (pair for pair in pairs if contains(pair[0]))
        return pairs


def local(
    call: tuple[Any, ...],
    shard: Shard | None,
    args: Any,
    is_src: bool = False,
    recursive: Any = None,
    with_dirs: bool = False,
    **_: Any,
) -> Listing:
    """What ``fetch_local_list(args, ...)`` lists: each source directory walked."""
    from S3 import FileLists
    from S3.Config import Config
    from S3.S3Uri import S3Uri
    from S3.Utils import deunicodise, unicodise

    config = Config()
    sources = [S3Uri(arg) for arg in _as_list(args)]
    tops = [uri.path() for uri in sources]
    walks = [
        Walk(
            key_of=local_key(uri.path(), uri.basename(), config.urlencoding_mode),
            decode=unicodise,
            encode=deunicodise,
            prune=FileLists.handle_exclude_include_walk_dir,
            follow_symlinks=bool(config.follow_symlinks),
            with_dirs=bool(with_dirs),
            warn=logging.warning,
        )
        for uri in sources
    ]
    return Listing(
        "local",
        call,
        tops,
        lambda: [walk(top) for walk, top in zip(walks, tops)],
        shard,
        keeps_directories=bool(with_dirs) and not is_src,
    )


def remote(
    call: tuple[Any, ...], shard: Shard | None, args: Any, ahead: int = 0, **_: Any
) -> Listing:
    """What ``fetch_remote_list(args, recursive=True, ...)`` lists: each prefix, paged.

    ``ahead``: how many parts of a prefix's key space are listed at once, ahead of
    the run (0: one page after the other, s3cmd's own requests).
    """
    from S3.Config import Config
    from S3.S3 import S3
    from S3.S3Uri import S3Uri

    uris = [S3Uri(arg) for arg in _as_list(args)]
    tops = [(uri.bucket(), uri.object()) for uri in uris]

    def listings() -> list[Iterable[Entry]]:
        if ahead:
            return [_split_pairs(lambda: S3(Config()), bucket, prefix, ahead)
                    for bucket, prefix in tops]  # fmt: skip
        s3 = S3(Config())
        return [_remote_pairs(s3, bucket, prefix) for bucket, prefix in tops]

    return Listing("remote", call, tops, listings, shard)


def local_key(local_path: str, local_base: str, urlencoding_mode: str) -> Callable[[str, str], str]:
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


def _remote_pairs(s3: Any, bucket: str, prefix: str) -> Iterator[Entry]:
    """A bucket's objects under ``prefix``, in key order, a page at a time; s3cmd's rule
    that an object named exactly as the prefix is the only one is kept."""
    for _, _, objects in s3.bucket_list_streaming(bucket, prefix=prefix, recursive=True):
        for item in objects:
            key = item["Key"]
            yield remote_key(prefix, key), _slim(item)
            if key == prefix and prefix and not prefix.endswith("/"):
                return


def _split_pairs(
    make_s3: Callable[[], Any], bucket: str, prefix: str, ahead: int
) -> Iterator[Entry]:
    """What ``_remote_pairs`` gives, listed in parts of the key space ``ahead`` at once.

    The first page is s3cmd's (a small tree needs no more). Past it, one
    delimiter page names the prefix's subdirectories; some of them start the
    parts of the rest (``part_starts``), and each part is listed as s3cmd
    lists (pages of 1,000 keys, from a marker) until it reaches the next, in
    a thread of its own, a page ahead of the run. So the requests are
    s3cmd's, but about one more a part and the delimiter page, and over a
    long link the run does not wait for them one after the other; every one
    holds a place in the command's budget.
    """
    from collections import deque

    pages = make_s3().bucket_list_streaming(bucket, prefix=prefix, recursive=True)
    truncated, _, first = next(pages, (False, [], []))
    pages.close()
    for item in first:
        yield remote_key(prefix, item["Key"]), _slim(item)
        if item["Key"] == prefix and prefix and not prefix.endswith("/"):
            return  # as _remote_pairs: the only one
    if not truncated or not first:
        return
    last = first[-1]["Key"]
    params = {"delimiter": "/"}
    top = make_s3().bucket_list_streaming(bucket, prefix=prefix, recursive=True,
                                          uri_params=params)  # fmt: skip
    _, dirs, _ = next(top, (False, [], []))
    top.close()
    # A part holds the keys after its marker, up to and with the next part's: a
    # subdirectory "d/" starts after "d", which every key of it and of "d.txt" passes.
    starts = [d["Prefix"][:-1] for d in dirs if d["Prefix"][:-1] > last]
    picked = part_starts([o["Key"] for o in first], prefix, starts)
    markers = [last, *picked]
    parts: list[tuple[str, str | None]] = list(zip(markers, [*picked, None]))

    def part(after: str, until: str | None) -> Iterator[list[Entry]]:
        for _, _, found in make_s3().bucket_list_streaming(
            bucket, prefix=prefix, recursive=True, uri_params={"marker": after}
        ):
            page = [(remote_key(prefix, o["Key"]), _slim(o)) for o in found
                    if until is None or o["Key"] <= until]  # fmt: skip
            yield page
            if len(page) < len(found):
                return  # the next part's keys

    running: deque[_Ahead] = deque()
    waiting = deque(parts)
    try:
        while running or waiting:
            while waiting and len(running) < ahead:
                after, until = waiting.popleft()
                running.append(_Ahead(lambda after=after, until=until: part(after, until)))
            with contextlib.closing(running.popleft()) as listed:
                yield from listed
    finally:
        for listed in running:
            listed.close()


def _slim(item: dict[str, Any]) -> dict[str, Any]:
    """What s3cmd's ``_get_filelist_remote`` reads of a listed object, and no more (its
    owner and storage class would double the memory of the pages read ahead)."""
    return {name: item[name] for name in _LISTED if name in item}


_LISTED = ("Key", "Size", "LastModified", "ETag")
# Parts of a bucket's key space at most (the first page of a delimiter listing says
# where they may start).
PARTS = 16
# Pages a part is meant to hold, about: a part's last page is mostly the next
# part's keys, listed again by it, so parts of a page or two would list the tree
# up to twice (a scan of the whole bucket a page, for moto and servers like it).
PART_PAGES = 4


def part_starts(first: list[str], prefix: str, starts: list[str]) -> list[str]:
    """Where the parts after a tree's first page begin, of the subdirectory ``starts``
    that come after it.

    The first page (the keys ``first``, a full page: the server's page size)
    says how many keys a subdirectory holds, about; the rest is cut into as
    many parts as hold ``PART_PAGES`` pages each at that rate (at most
    ``PARTS``), at evenly spaced subdirectories. The first part goes on from
    the first page's last key, so it takes in the subdirectories up to the
    second part's start rather than only the rest of the one the page ended in.
    """
    if not first or not starts:
        return []
    touched = len({key[len(prefix):].split("/", 1)[0] for key in first})
    keys_ahead = len(starts) * len(first) / touched
    parts = min(PARTS, len(starts), max(1, round(keys_ahead / (PART_PAGES * len(first)))))
    return [starts[i * len(starts) // parts] for i in range(1, parts)]


class _Ahead:
    """The items of the pages ``pages()`` yields, read in a thread of its own, a page
    ahead of whoever iterates (and one more on its way); an error there is raised here."""

    def __init__(self, pages: Callable[[], Iterator[list[Any]]]) -> None:
        import queue
        import threading

        self._pages: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(pages,), daemon=True,
                                        name="tsd-s3cmd-listing")  # fmt: skip
        self._thread.start()

    def _read(self, pages: Callable[[], Iterator[list[Any]]]) -> None:
        try:
            for page in pages():
                if not self._hand_over(page):
                    return
            outcome: Any = _END
        except BaseException as err:  # raised where the items are wanted
            outcome = err
        self._hand_over(outcome)

    def _hand_over(self, item: Any) -> bool:
        """Queue ``item`` once there is room; False if the reader went away first."""
        import queue

        while not self._closed.is_set():
            try:
                self._pages.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Any]:
        import queue

        while True:
            try:
                page = self._pages.get(timeout=0.2)
            except queue.Empty:
                continue
            if page is _END:
                return
            if isinstance(page, BaseException):
                raise page
            yield from page

    def close(self) -> None:
        self._closed.set()


_END = object()


def grouped(found: Iterable[tuple[str, str, bool]]) -> Iterator[tuple[str, list[str], list[str]]]:
    """A range's local entries as s3cmd's walk gives them: ``(directory, subdirectories,
    files)``."""
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


def has_source(listing: Listing) -> bool:
    """Whether a sync's source side has a file s3cmd would count, in the whole run: not
    excluded, and locally a file it keeps (a regular file; a link only with
    --follow-symlinks). Every share's: a share without one still deletes when the run
    has one."""
    from S3 import FileLists
    from S3.Config import Config
    from S3.FileDict import FileDict
    from S3.Utils import deunicodise

    follow = bool(Config().follow_symlinks)
    for key, (_, found) in listing.pairs(shard=False):
        one = FileDict(ignore_case=False)
        one[key] = {}
        kept, _ = FileLists.filter_exclude_include(one)
        if not kept:
            continue
        if listing.kind == "remote":
            return True
        root, name, is_dir = found
        path = deunicodise(os.path.join(root, name))
        if not is_dir and os.path.isfile(path) and (follow or not os.path.islink(path)):
            return True
    return False


def arrange_directories(
    entries: list[Entry],
    others: Sequence[tuple[list[Entry], str | None]],
    end: str | None,
    pending: list[Entry],
) -> list[Entry]:
    """A sync down's local directory entries, placed where s3cmd's decision about them
    is the decision of a whole run.

    ``others``: the other side's entries in this range, and its first key
    beyond it. A directory ``d/`` whose key the other side has too stays (the
    two are compared); one under which the other side has keys is left out
    (s3cmd keeps it, and it may be in another range than its objects); one
    the other side has nothing of waits in ``pending`` for the range in which
    its own contents end, so that ``--delete-removed`` removes it after them.
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


def _first_at_or_after(entries: list[Entry], head: str | None, key: str) -> str | None:
    """The first key at or after ``key`` on a side: in this range, else its next range's."""
    keys = [k for k, _ in entries]
    at = bisect.bisect_left(keys, key)
    return keys[at] if at < len(keys) else head


def _as_list(args: Any) -> list[str]:
    return list(args) if isinstance(args, (list, tuple, set)) else [args]

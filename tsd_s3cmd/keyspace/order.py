"""Listings in S3 key order, and the ranges of keys a command works through one at a time.

S3 lists a bucket in the order of its keys' UTF-8 bytes, which is Python's
order of ``str`` (code point order is UTF-8 byte order). A local tree walked
in that order too (walk.py) can be merged with a bucket's listing as both
go: ``cut`` takes the next ``size`` entries of all listings together, the
smallest keys first, and says where the range ends. Every entry whose key
lies in the range is in the batch, on every side, and none beyond: so the
comparison of one range (what to send, what to skip, what to delete) is the
comparison of the whole tree restricted to it. As aws cli's file generator
and comparator do, but in ranges, so that the command's own comparison
(s3cmd's) runs on each range unchanged.

A listing out of order would make a range miss entries, and a sync with
``--delete-removed`` delete what it did not see: ``Stream`` checks the order
and stops the command (``OutOfOrder``) rather than go on.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence

from ..errors import EX_SOFTWARE, TsdError

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any

_END = object()


class OutOfOrder(TsdError):
    """A listing gave a key before one it had given already."""

    exit_code = EX_SOFTWARE


class Stream:
    """A listing as ``(key, item)`` pairs in key order, read one pair ahead.

    ``head`` is the next key (None at the end). Equal keys may follow each
    other (two sources that hold the same name); a smaller one may not.
    """

    def __init__(self, pairs: Iterable[tuple[str, Any]], name: str = "a listing") -> None:
        self.name = name
        self._pairs = iter(pairs)
        self._next: Any = _END
        self._last: str | None = None
        self.head: str | None = None
        self._advance()

    def _advance(self) -> None:
        pair = next(self._pairs, _END)
        self._next = pair
        if pair is _END:
            self.head = None
            return
        key = pair[0]
        if self._last is not None and key < self._last:
            raise OutOfOrder(
                f"{self.name} gave {key!r} after {self._last!r}, out of S3's order; stopped "
                "rather than compare it with what it did not see (please report it)"
            )
        self._last = self.head = key

    def take(self) -> tuple[str, Any]:
        pair = self._next
        if pair is _END:
            raise IndexError("take from an ended listing")
        self._advance()
        return pair  # type: ignore[no-any-return]


def merged(listings: Sequence[Iterable[tuple[str, Any]]]) -> Iterator[tuple[str, tuple[int, Any]]]:
    """Several listings in key order as one: ``(key, (which listing, item))``.

    At equal keys the earlier listing comes first, as when s3cmd adds the
    sources of one command to one list in the order given.
    """
    tagged = [_tagged(which, pairs) for which, pairs in enumerate(listings)]
    return heapq.merge(*tagged, key=lambda pair: (pair[0], pair[1][0]))


def _tagged(which: int, pairs: Iterable[tuple[str, Any]]) -> Iterator[tuple[str, tuple[int, Any]]]:
    for key, item in pairs:
        yield key, (which, item)


class Batch:
    """The entries of each listing whose keys lie in one range, and where the range ends.

    ``end`` is the first key of the next range, None for the last range.
    """

    def __init__(self, entries: list[list[tuple[str, Any]]], end: str | None) -> None:
        self.entries = entries
        self.end = end

    def __len__(self) -> int:
        return sum(len(side) for side in self.entries)


def cut(streams: Sequence[Stream], size: int) -> Batch:
    """The next range of the key space: at least ``size`` entries (unless fewer are
    left), in all ``streams`` together, and every entry that shares a key with them."""
    entries: list[list[tuple[str, Any]]] = [[] for _ in streams]
    count = 0
    while True:
        heads = [s.head for s in streams if s.head is not None]
        if not heads:
            return Batch(entries, None)
        key = min(heads)
        if count >= size:
            return Batch(entries, key)
        for stream, taken in zip(streams, entries):
            while stream.head == key:  # a key is never split between two ranges
                taken.append(stream.take())
                count += 1

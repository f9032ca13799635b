"""Listings in key order cut into ranges: every key in exactly one range, on every side."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsd_s3cmd.keyspace.order import OutOfOrder, Stream, cut, merged


def stream(keys: list[str], tag: str = "") -> Stream:
    return Stream(((k, tag + k) for k in keys), "test")


def ranges(sides: list[list[str]], size: int) -> list[tuple[list[list[str]], str | None]]:
    streams = [stream(keys) for keys in sides]
    found = []
    while True:
        batch = cut(streams, size)
        found.append(([[k for k, _ in side] for side in batch.entries], batch.end))
        if batch.end is None:
            return found


def test_a_range_holds_size_entries_of_both_sides_and_says_where_it_ends() -> None:
    local = ["a", "b/x", "c", "e"]
    remote = ["a", "b/y", "d", "e", "f"]
    assert ranges([local, remote], 3) == [
        ([["a", "b/x"], ["a"]], "b/y"),
        ([["c"], ["b/y", "d"]], "e"),
        ([["e"], ["e", "f"]], None),
    ]


def test_a_key_on_both_sides_is_never_split_between_ranges() -> None:
    found = ranges([["a", "b", "c"], ["a", "b", "c"]], 1)
    assert found == [([["a"], ["a"]], "b"), ([["b"], ["b"]], "c"), ([["c"], ["c"]], None)]


def test_empty_listings_make_one_empty_last_range() -> None:
    assert ranges([[], []], 10) == [([[], []], None)]


keys = st.lists(st.text(alphabet="ab/.-0é", min_size=1, max_size=6), unique=True).map(sorted)


@given(local=keys, remote=keys, size=st.integers(min_value=1, max_value=7))
def test_the_ranges_together_are_the_listings_each_key_in_one_range(
    local: list[str], remote: list[str], size: int
) -> None:
    found = ranges([local, remote], size)
    assert [k for side, _ in found for k in side[0]] == local
    assert [k for side, _ in found for k in side[1]] == remote
    start = None
    for (sides, end), _ in zip(found, range(len(found))):
        within = [k for side in sides for k in side]
        assert all(start is None or k >= start for k in within)
        assert all(end is None or k < end for k in within)
        if end is not None:  # full, unless it is the last
            assert len(within) >= size
        start = end


def test_a_listing_out_of_order_stops_the_command() -> None:
    with pytest.raises(OutOfOrder, match="'a' after 'b'"):
        ranges([["b", "a"]], 10)


def test_several_sources_merge_in_key_order_the_first_source_first_at_equal_keys() -> None:
    first = [("a", 1), ("c", 1)]
    second = [("a", 2), ("b", 2)]
    assert list(merged([first, second])) == [
        ("a", (0, 1)), ("a", (1, 2)), ("b", (1, 2)), ("c", (0, 1)),
    ]  # fmt: skip

"""Where the parts of a bucket's tree begin: parts of several pages each, by the first page."""

from __future__ import annotations

from tsd_s3cmd.bridge.listings import PART_PAGES, PARTS, part_starts


def page(dirs: range, per_dir: int, prefix: str = "t/") -> list[str]:
    return [f"{prefix}d{d:03d}/f{i:03d}" for d in dirs for i in range(per_dir)]


def subdirs(dirs: range, prefix: str = "t/") -> list[str]:
    return [f"{prefix}d{d:03d}" for d in dirs]


def test_parts_hold_several_pages_at_the_first_pages_rate() -> None:
    # 100 keys a subdirectory, 10 in the first page of 1,000: 90 left, 9,000 keys.
    starts = subdirs(range(10, 100))
    picked = part_starts(page(range(10), 100), "t/", starts)
    assert len(picked) + 1 == round(9_000 / (PART_PAGES * 1_000))
    # Evenly spaced, and the first part takes in subdirectories past the one the
    # page ended in, not only its rest.
    assert picked[0] > starts[0]
    assert picked == sorted(set(picked))


def test_a_tree_of_a_few_pages_more_goes_on_as_one_part() -> None:
    assert part_starts(page(range(10), 100), "t/", subdirs(range(10, 25))) == []


def test_a_large_tree_has_at_most_parts_parts() -> None:
    picked = part_starts(page(range(10), 100), "t/", subdirs(range(10, 1_000)))
    assert len(picked) == PARTS - 1


def test_a_page_within_one_subdirectory_counts_it_as_one() -> None:
    # The first page saw 1,000 keys of d000 alone: each of the 20 subdirectories
    # after it may hold as many, 20,000 keys in parts of 4,000.
    picked = part_starts(page(range(1), 1_000), "t/", subdirs(range(1, 21)))
    assert len(picked) + 1 == 20_000 // (PART_PAGES * 1_000)


def test_no_subdirectories_after_the_page_no_parts() -> None:
    assert part_starts(page(range(10), 100), "t/", []) == []
    assert part_starts([], "t/", subdirs(range(3))) == []

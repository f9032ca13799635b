"""The part-size rule at its edges, and a stream's parts reaching S3's 5 TiB."""

from __future__ import annotations

import hashlib

import pytest

from tsd_s3cmd.engine.part_sizes import (
    MAX_OBJECT,
    MAX_PART,
    MAX_PARTS,
    MIN_PART,
    MiB,
    TooLarge,
    fitted,
    multipart_etag,
    stream_part,
)


def parts(size: int, chunk: int) -> int:
    return -(-size // chunk)


def test_exactly_10000_parts_keeps_the_configured_size() -> None:
    assert fitted(MAX_PARTS * 15 * MiB, 15 * MiB) == 15 * MiB


def test_one_byte_more_takes_the_next_whole_mib() -> None:
    size = MAX_PARTS * 15 * MiB + 1
    chunk = fitted(size, 15 * MiB)
    assert chunk == 16 * MiB
    assert parts(size, chunk) <= MAX_PARTS


def test_the_fitted_size_is_the_smallest_whole_mib_that_fits() -> None:
    for size in (50 * 1024**3 + 1, 160 * 1024**3, 1024**4 - 7, 3 * 1024**4 + 12345):
        chunk = fitted(size, 5 * MiB)
        assert chunk % MiB == 0
        assert parts(size, chunk) <= MAX_PARTS
        assert parts(size, chunk - MiB) > MAX_PARTS


def test_5_tib_fits_and_one_byte_more_is_refused() -> None:
    chunk = fitted(MAX_OBJECT, 15 * MiB)
    assert chunk == 525 * MiB
    assert parts(MAX_OBJECT, chunk) <= MAX_PARTS
    with pytest.raises(TooLarge):
        fitted(MAX_OBJECT + 1, 15 * MiB)


def test_a_size_given_by_the_user_that_fits_is_kept() -> None:
    assert fitted(100 * 1024**3, 1024 * MiB) == 1024 * MiB
    assert fitted(1, 15 * MiB) == 15 * MiB
    assert fitted(0, 15 * MiB) == 15 * MiB


@pytest.mark.parametrize("configured_mib", [5, 15, 100, 5 * 1024])
def test_a_streams_parts_reach_5_tib_within_10000_parts_each_in_bounds(
    configured_mib: int,
) -> None:
    configured = configured_mib * MiB
    sent, count = 0, 0
    while sent < MAX_OBJECT:
        part = stream_part(sent, configured)
        assert MIN_PART <= part <= MAX_PART
        assert part % MiB == 0
        sent += part
        count += 1
    assert count <= MAX_PARTS


def test_a_small_stream_keeps_the_configured_part_size() -> None:
    # The first 1,000 parts: a stream of up to 15 GiB at s3cmd's default goes as it did.
    assert {stream_part(n * 15 * MiB, 15 * MiB) for n in range(1000)} == {15 * MiB}
    assert stream_part(1000 * 15 * MiB + 1, 15 * MiB) == 16 * MiB


def test_the_multipart_etag_is_the_md5_of_the_parts_md5s() -> None:
    a, b = hashlib.md5(b"a"), hashlib.md5(b"b")
    expected = hashlib.md5(a.digest() + b.digest()).hexdigest() + "-2"
    assert multipart_etag([a.hexdigest(), f'"{b.hexdigest()}"']) == expected

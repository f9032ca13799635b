"""How big the parts of a multipart upload are, so that any file S3 can hold fits.

S3 takes at most 10,000 parts per upload, each of 5 MiB to 5 GiB (the last
may be smaller), and objects of at most 5 TiB. s3cmd cuts every file into
parts of ``--multipart-chunk-size-mb`` (15 MiB by default) and refuses a file
that would need more than 10,000 of them, after reading it whole for its
MD5; from a pipe it has no size to check and fails at part 10,001.

A file's size is known before the first byte is read: ``fitted`` keeps the
configured part size where it fits and otherwise takes the smallest whole
number of MiB that does (as rclone's ``fs/chunksize`` does; s3transfer's
``ChunksizeAdjuster`` doubles instead, which sends larger parts than needed).

A stream's size is not known: ``stream_part`` keeps the configured size for
the first 1,000 parts, then makes each part a thousandth of what has been
sent so far, so that 10,000 parts reach 5 TiB from any configured size,
while a stream of a few GiB keeps the parts it would have had.
"""

from __future__ import annotations

MiB = 1024 * 1024
MIN_PART = 5 * MiB
MAX_PART = 5 * 1024 * MiB
MAX_PARTS = 10_000
MAX_OBJECT = 5 * 1024 * 1024 * MiB
# A stream's part is at least this fraction of what it has sent (see the docstring).
_STREAM_GROWTH = 1000


class TooLarge(ValueError):
    """A file larger than S3 keeps as one object."""


def _whole_mib(size: int) -> int:
    """``size`` rounded up to a whole MiB."""
    return -(-size // MiB) * MiB


def fitted(size: int, configured: int) -> int:
    """The part size for ``size`` bytes: ``configured`` if it fits in 10,000 parts, else
    the smallest whole MiB that does. Raises TooLarge above 5 TiB."""
    if size > MAX_OBJECT:
        raise TooLarge(f"{size} bytes is more than S3's limit of 5 TiB for one object")
    if -(-size // configured) <= MAX_PARTS:
        return configured
    return min(max(_whole_mib(-(-size // MAX_PARTS)), MIN_PART), MAX_PART)


def stream_part(sent: int, configured: int) -> int:
    """The size of a stream's next part, after ``sent`` bytes went in earlier parts."""
    grown = _whole_mib(-(-sent // _STREAM_GROWTH))
    return min(max(configured, grown), MAX_PART)


def multipart_etag(part_etags: list[str]) -> str:
    """S3's ETag of an object completed from parts with these ETags, in part order:
    the MD5 of the parts' binary MD5s, ``-`` and the number of parts."""
    import hashlib

    digests = b"".join(bytes.fromhex(etag.strip("\"'")) for etag in part_etags)
    return f"{hashlib.md5(digests).hexdigest()}-{len(part_etags)}"

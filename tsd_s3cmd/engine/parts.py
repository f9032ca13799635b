"""The parts of one multipart upload (or copy) sent at once, earliest first.

s3cmd's ``upload_all_parts`` sends part after part. The shim replaces it with
``send_all``, which hands the same per-part calls (s3cmd's ``upload_part`` or
``copy_part``, with its retries and its resume by ``--upload-id``) to the
scheduler's part workers. Each worker reads its part through a
``PositionalReader``, its own position in the one open file, so that memory
does not grow with the part size and no worker moves another's position.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from .scheduler import Scheduler


def cut(size: int, chunk: int) -> list[tuple[int, int, int]]:
    """s3cmd's parts of ``size`` bytes: (number, offset, length), numbered from 1."""
    return [
        (seq, offset, min(chunk, size - offset))
        for seq, offset in enumerate(range(0, size, chunk), start=1)
    ]


def send_all(
    scheduler: Scheduler,
    parts: list[tuple[int, int, int]],
    send: Callable[[int, int, int], object],
    source: str,
) -> None:
    """Send every part with ``send(number, offset, length)``; the first failure is raised.

    When a part fails for good no new part starts; those on their way
    finish, so that a resume sends only what is missing.
    """
    try:
        scheduler.run_parts(scheduler.place(), parts, lambda part: send(*part))
    except Exception as err:
        failed = getattr(err, "failed_part", None)
        if failed is not None:
            logging.error(f"Upload of '{source}' part {failed[0]} failed.")
        raise


class PositionalReader:
    """A file that each worker thread reads at its own position, with ``pread``.

    It stands in for s3cmd's source stream during a parallel upload: s3cmd
    seeks to a part's offset and reads the part; with this, every worker
    does so without moving anyone else's position. Each read first asks the
    scheduler whether to go on, which is how Ctrl-C reaches a running part.
    """

    def __init__(self, fd: int, stream_name: str, scheduler: Scheduler) -> None:
        self._fd = fd
        self.stream_name = stream_name
        self._scheduler = scheduler
        self._local = threading.local()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET:
            raise ValueError("only absolute positions in a parallel upload")
        self._local.position = offset
        return offset

    def tell(self) -> int:
        return getattr(self._local, "position", 0)

    def read(self, size: int = -1) -> bytes:
        self._scheduler.check()
        position = self.tell()
        if size < 0:
            size = max(os.fstat(self._fd).st_size - position, 0)
        data = os.pread(self._fd, size, position)
        self._local.position = position + len(data)
        return data

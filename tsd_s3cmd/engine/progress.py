"""What a command has moved so far: one live line at a terminal, none in a batch log.

When files and parts move at once, s3cmd's own meters (one per file, each
redrawing its line with a carriage return) would overwrite each other. So
while the engine runs, s3cmd prints its plain per-file lines (as it does in a
batch log), and at a terminal this module draws one line for the whole
command below them: files done of total, bytes, rate. Every other write to
the terminal (s3cmd's lines, warnings, errors) goes through ``LineSafe``,
which takes the live line away, writes, and draws it again, so that no line
is ever cut into. Without a terminal nothing here writes a byte: a batch log
gets s3cmd's lines and no carriage return.

Workers report bytes from many threads; the counts and the drawing share one
lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import BinaryIO

# The live line is drawn again at most this often (seconds).
REDRAW = 0.2
# The rate shown is taken over about this many seconds.
RATE_SPAN = 3.0
_CLEAR = b"\r\x1b[K"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


class FileCount:
    """One file of the command, as the live line counts it."""

    __slots__ = ("done", "moved", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.moved = 0
        self.done = False


class Progress:
    """The command's counts, and the live line when there is a terminal to draw it on."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._terminal: BinaryIO | None = None
        self._shown = False
        self._drawn_at = 0.0
        self.files = 0
        self.files_done = 0
        self.total = 0
        self.moved = 0
        self.more = False  # files not yet known may follow (a tree listed a range at a time)
        self._samples: list[tuple[float, int]] = []

    # -- counting ---------------------------------------------------------------

    def expect(self, files: int, size: int) -> None:
        """A loop of s3cmd's is about to move ``files`` files of ``size`` bytes in all."""
        with self._lock:
            self.files += files
            self.total += size

    def started(self, size: int) -> FileCount:
        return FileCount(size)

    def add(self, file: FileCount | None, size: int) -> None:
        """``size`` bytes of ``file`` went over the wire (negative: taken back after a retry)."""
        with self._lock:
            if file is not None:
                # A retried request sends its bytes again: count a file's bytes once.
                before = min(file.moved, file.size) if file.size else file.moved
                file.moved = max(file.moved + size, 0)
                after = min(file.moved, file.size) if file.size else file.moved
                size = after - before
            self.moved += size
            self._draw(force=False)

    def finished(self, file: FileCount) -> None:
        with self._lock:
            if not file.done:
                file.done = True
                self.files_done += 1
                self.moved += max(file.size - file.moved, 0)
                file.moved = max(file.moved, file.size)
            self._draw(force=True)

    # -- the live line ----------------------------------------------------------

    def show_on(self, terminal: BinaryIO | None) -> None:
        """Draw the live line on ``terminal`` from now on (None: stop drawing it)."""
        with self._lock:
            if terminal is None:
                self._erase()
            self._terminal = terminal
            self._draw(force=True)

    def line(self) -> str:
        now = self._clock()
        self._samples = [(t, n) for t, n in self._samples if t > now - RATE_SPAN]
        self._samples.append((now, self.moved))
        first_time, first_moved = self._samples[0]
        elapsed = now - first_time
        rate = (self.moved - first_moved) / elapsed if elapsed > 0 else 0.0
        more = "+" if self.more else ""  # "300 of 1000+ files": known so far, and more to come
        return (
            f"{self.files_done} of {self.files}{more} files, "
            f"{_size(self.moved)} of {_size(self.total)}{more}, {_size(rate)}/s"
        )

    def _draw(self, force: bool) -> None:
        if self._terminal is None or not self.files:
            return
        now = self._clock()
        if not force and now - self._drawn_at < REDRAW:
            return
        self._drawn_at = now
        self._terminal.write(_CLEAR + self.line().encode())
        self._terminal.flush()
        self._shown = True

    def _erase(self) -> None:
        if self._shown and self._terminal is not None:
            self._terminal.write(_CLEAR)
            self._terminal.flush()
            self._shown = False

    def write_around(self, write: Callable[[bytes], object], data: bytes) -> None:
        """Write ``data`` where the live line is, then draw the line again under it."""
        with self._lock:
            self._erase()
            write(data)
            if data.endswith(b"\n"):
                self._draw(force=True)


class LineSafe:
    """A binary stream whose writes never cut into the live line (see module docstring)."""

    def __init__(self, raw: BinaryIO, progress: Progress) -> None:
        self._raw = raw
        self._progress = progress

    def write(self, data: bytes) -> int:
        def write(chunk: bytes) -> None:
            self._raw.write(chunk)
            self._raw.flush()

        self._progress.write_around(write, bytes(data))
        return len(data)

    def close(self) -> None:
        """Never the terminal's: the text wrapper around this closes it when dropped."""
        self._raw.flush()

    def __getattr__(self, name: str) -> object:  # flush, fileno, isatty, writable, ...
        return getattr(self._raw, name)

"""What s3cmd says at the end of a command, once for a ranged run, and a share's tally.

A ranged run (batches.py) runs s3cmd's command once per range, and each run
would end with s3cmd's closing lines: the "Done." line of a sync (and its
``--stats``), the summary of a copy between buckets, the dry run's last
warning. ``Report`` holds them back and says them once, with the whole run's
totals, in s3cmd's words (``done_line`` follows its three formats).

A share of a job array (``--shard``) ends with one line of its own, so that
a researcher can tell from the array's logs whether every share finished:
its share, how many of its files were moved, skipped (already there, or
excluded) and failed. Moved files are counted from s3cmd's own line per
file, failed ones from its error per file.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any

    from ..keyspace.shards import Shard

_DONE = re.compile(r"Done\. (Uploaded|Downloaded) \d+ bytes|Done\. Copied \d+ files")
_SUMMARY = re.compile(
    r"Summary: (\d+) source files to copy, (\d+) files at destination to delete"
)
_DRY_RUN = "Exiting now because of --dry-run"
# s3cmd's line for each file it moved or deleted (dry runs say the same), and its error
# for each file that failed.
_MOVED = re.compile(r"(upload|download|remote copy|move): '")
_DELETED = re.compile(r"delete: '")
_FAILED = re.compile(
    r"(Upload|Download) of '|Copy failed for: |File '.*' could not be copied|"
    r"Creation of (file|directory) '"
)


class Report:
    """s3cmd's closing lines (held back when ``ranged``) and a share's tally."""

    def __init__(
        self,
        namespace: dict[str, Any],
        ranged: bool,
        shard: Shard | None,
        say: Callable[[str], None],
    ) -> None:
        self.namespace = namespace
        self.ranged = ranged
        self.shard = shard
        self.say = say
        self.done: str | None = None  # "Uploaded", "Downloaded" or "Copied"
        self.stats: list[Any] = []  # s3cmd's StatsInfo of each range
        self.summary = [0, 0]  # a copy between buckets: files to copy, files to delete
        self.summaries = 0
        self.dry_run = False
        self.files = self.moved = self.deleted = self.failed = 0

    @contextmanager
    def watching(self) -> Iterator[None]:
        """s3cmd's ``output``, ``print`` and log as they go by; the closing lines after."""
        namespace = self.namespace
        output, stats_class = namespace["output"], namespace["StatsInfo"]
        started = time.time()
        report = self

        def watched_output(message: str) -> None:
            report.count(message)
            found = _DONE.match(message)
            if found is None or not report.ranged:
                output(message)
            else:
                report.done = found.group(1) or "Copied"

        def watched_print(*values: Any, **kwargs: Any) -> None:
            found = _SUMMARY.match(str(values[0])) if len(values) == 1 else None
            if found is None or not report.ranged:
                print(*values, **kwargs)
                return
            report.summary[0] += int(found.group(1))
            report.summary[1] += int(found.group(2))
            report.summaries += 1

        class Stats(stats_class):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                super().__init__()
                report.stats.append(self)

        class Watch(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                message = record.getMessage()
                if record.levelno >= logging.ERROR and _FAILED.match(message):
                    report.failed += 1
                if not report.ranged:
                    return True
                if message == _DRY_RUN:
                    report.dry_run = True
                    return False
                done = _DONE.match(message)
                if record.levelno == logging.INFO and done is not None:
                    report.done = report.done or done.group(1) or "Copied"
                    return False
                return True

        watch = Watch()
        root = logging.getLogger()
        root.addFilter(watch)
        namespace["output"], namespace["print"], namespace["StatsInfo"] = (
            watched_output, watched_print, Stats,
        )  # fmt: skip
        try:
            yield
        finally:
            namespace["output"], namespace["StatsInfo"] = output, stats_class
            del namespace["print"]  # s3cmd's print is the built-in one again
            root.removeFilter(watch)
        if self.ranged:
            self._closing_lines(time.time() - started, stats_class, output)
        if self.shard is not None:
            self.say(self.tally())

    def count(self, message: str) -> None:
        for line in message.split("\n"):  # s3cmd deletes 1,000 at a time, in one message
            if _MOVED.match(line):
                self.moved += 1
            elif _DELETED.match(line):
                self.deleted += 1

    def tally(self) -> str:
        """A share's one line: what it moved, skipped and failed of its files."""
        skipped = max(0, self.files - self.moved - self.failed)
        deleted = f", {self.deleted} deleted" if self.deleted else ""
        from S3.Config import Config

        dry = " (a dry run: nothing was changed)" if Config().dry_run else ""
        return (
            f"share {self.shard}: {self.files} files, {self.moved} moved, {skipped} skipped, "
            f"{self.failed} failed{deleted}{dry}"
        )

    def _closing_lines(
        self, elapsed: float, stats_class: Any, output: Callable[[str], None]
    ) -> None:
        if self.summaries:
            copy, delete = self.summary
            print(f"Summary: {copy} source files to copy, {delete} files at destination to delete")
        if self.done is not None:
            output_or_info(*done_line(self, elapsed, stats_class, self.namespace), output)
        if self.dry_run:
            logging.warning(_DRY_RUN)


def done_line(
    report: Report, elapsed: float, stats_class: Any, namespace: dict[str, Any]
) -> tuple[str, bool]:
    """s3cmd's "Done." line of a sync (with its --stats) for the whole run's totals, and
    whether s3cmd would print it (else it logs it as info)."""
    from S3.Config import Config

    whole = stats_class()
    for name in vars(whole):
        values = [getattr(s, name) for s in report.stats if getattr(s, name) is not None]
        setattr(whole, name, sum(values) if values else None)
    elapsed = max(1.0, elapsed)
    moved = whole.size_transferred or 0
    if report.done == "Copied":
        files = whole.files_copied or 0
        rate = files / elapsed
        line = f"Done. Copied {files} files in {elapsed:0.1f} seconds, {rate:0.2f} files/s."
        worth = files > 0
    else:
        speed = namespace["formatSize"](moved / elapsed, human_readable=True, floating_point=True)
        line = (
            f"Done. {report.done} {moved} bytes in {elapsed:0.1f} seconds, "
            f"{speed[0]:0.2f} {speed[1]}B/s."
        )
        copied = (whole.size_copied or 0) if report.done == "Uploaded" else 0
        worth = moved + copied > 0
    if Config().stats:
        return line + whole.format_output(), True
    return line, worth


def output_or_info(line: str, shown: bool, output: Callable[[str], None]) -> None:
    if shown:
        output(line)
    else:
        logging.info(line)

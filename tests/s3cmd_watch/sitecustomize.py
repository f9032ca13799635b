"""Notes which processes run s3cmd's code, for the suite's ``s3cmd`` marker.

tests/conftest.py puts this folder on ``PYTHONPATH``, so every Python process a
test starts (tsd-s3cmd, plain s3cmd, the benchmark) loads this module first.
When such a process imports s3cmd's ``S3`` package, it leaves an empty file
named by its pid (and a random tail) in the folder ``TESTS_S3CMD_TRACE`` names: that is
how the suite knows, test by test, which tests run s3cmd's code and so must be
marked ``s3cmd`` (the s3cmd 2.3.0 pass runs those again). An empty file, not a
line appended, so that a test's file size limit (a full disk) does not stop
it. The variable is read when ``S3`` is imported, not here: a pytest-xdist
worker sets its own after it started. Nothing here may fail the process.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


class _WatchS3:
    """A finder that finds nothing: it only notes that ``S3`` is being imported."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "S3":
            sys.meta_path.remove(_WatchS3)  # type: ignore[arg-type]
            trace = os.environ.get("TESTS_S3CMD_TRACE")
            if trace:
                note = os.path.join(trace, f"{os.getpid()}-{os.urandom(4).hex()}")
                with contextlib.suppress(OSError):
                    os.close(os.open(note, os.O_CREAT, 0o600))


sys.meta_path.insert(0, _WatchS3)  # type: ignore[arg-type]

# The sitecustomize this one hides, if the interpreter has one (Debian's has): run it too.
_hidden = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
)
if _hidden is not None and _hidden.loader is not None:
    _hidden.loader.exec_module(importlib.util.module_from_spec(_hidden))

"""Errors that end a tsd-s3cmd run with one clear line and an exit status.

The exit statuses are s3cmd's own (S3/ExitCodes.py), so that a shell script
sees one scheme whether tsd-s3cmd or s3cmd gave up.
"""

from __future__ import annotations

EX_GENERAL = 1
EX_USAGE = 64
EX_SOFTWARE = 70
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_ACCESSDENIED = 77
EX_CONFIG = 78
EX_BREAK = 130


class TsdError(Exception):
    """A problem the user can act on; ``str()`` is the whole message, one line."""

    exit_code = EX_GENERAL

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(TsdError):
    exit_code = EX_USAGE


class ConfigError(TsdError):
    """A missing, unreadable, unsafe or corrupt file."""

    exit_code = EX_CONFIG


class AuthError(TsdError):
    """TSD said no: credentials, API key, export group, token type."""

    exit_code = EX_ACCESSDENIED


class UnreachableError(TsdError):
    exit_code = EX_TEMPFAIL


class ApiError(TsdError):
    """TSD's auth API answered, and said no. ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int, exit_code: int | None = None) -> None:
        super().__init__(message, exit_code)
        self.status = status

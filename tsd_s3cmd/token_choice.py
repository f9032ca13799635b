"""Which token a command needs: decided by what the command does.

TSD hands out two kinds of S3 token. ``s3import`` writes into the project;
``s3export`` reads, and downloads only from the project's ``export-bucket``.
The original tool guessed from the letters in the arguments (any argument
containing "ls" or "get" meant export, so ``put results.tsv`` asked for the
wrong token); here the s3cmd command and the direction of a sync decide.

``token_for`` is the one reading of a command line into a token type. A run
calls it with s3cmd's own parse of its arguments, and so does
``--print-token-for`` (through ``s3cmd_shim.parse``), so that the token
printed for a command line is always the one a run of it sends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .errors import AuthError, UsageError
from .tokens import EXPORT, IMPORT

EXPORT_BUCKET = "export-bucket"
# Commands that only look at or fetch what is in TSD.
READ_COMMANDS = frozenset({"ls", "la", "du", "get", "info"})
# Commands that make no S3 request at all: no token, no login.
OFFLINE_COMMANDS = frozenset({"sign"})
_CLOUDFRONT = (
    "CloudFront is an Amazon service, not part of TSD (the command would send "
    "your project's S3 key to Amazon)"
)
# Commands that cannot work with TSD, and why; refused before any login or request.
UNUSABLE_COMMANDS = {
    "signurl": (
        "a signed URL cannot carry TSD's token header, so TSD refuses every request "
        f"made with it; data leaves TSD through {EXPORT_BUCKET} and 'tsd-s3cmd get'"
    ),
    **{
        name: _CLOUDFRONT
        for name in (
            "cflist", "cfinfo", "cfcreate", "cfdelete", "cfmodify", "cfinval", "cfinvalinfo"
        )
    },
}
# s3cmd's reading of a remote path: the scheme in any case, extra slashes ignored.
_S3_URI = re.compile(r"^s3:///*([^/]*)", re.IGNORECASE)


def is_remote(arg: str) -> bool:
    return arg.lower().startswith("s3://")


def token_for(args: Sequence[str], configure: bool = False) -> str | None:
    """The token a run of s3cmd needs, from its positional ``args`` (the command first).

    None when the command sends no request to TSD. A command that cannot
    work with TSD is refused here with the reason. ``configure``: s3cmd's
    ``--configure``, which ends with a test listing of all buckets.
    """
    if configure:
        return IMPORT
    if not args:
        return None
    command = args[0].lower()
    why = UNUSABLE_COMMANDS.get(command)
    if why:
        raise UsageError(f"'{args[0]}' cannot work with TSD: {why}")
    if command in OFFLINE_COMMANDS:
        return None
    return token_type_for(command, args[1:])


def token_type_for(command: str, args: Sequence[str] = ()) -> str:
    """The token type for s3cmd ``command`` with positional ``args``.

    ``sync`` reads when it copies from ``s3://`` to a local path and writes in
    every other case (local to ``s3://``, and ``s3://`` to ``s3://``). A sync
    given no arguments is taken as an upload, the common case at TSD.
    """
    command = command.lower()
    if command in READ_COMMANDS:
        return EXPORT
    if command == "sync" and len(args) >= 2:
        *sources, destination = args
        if not is_remote(destination) and all(is_remote(s) for s in sources):
            return EXPORT
    return IMPORT


def download_buckets(args: Sequence[str]) -> list[str]:
    """The buckets a command (positional ``args``, the command first) downloads from.

    ``get`` downloads from each ``s3://`` argument (a last local one is where
    to); a ``sync`` from ``s3://`` to a local path, from each source.
    """
    if not args:
        return []
    command, rest = args[0].lower(), list(args[1:])
    if command == "get":
        sources = [a for a in rest if is_remote(a)]
    elif command == "sync" and token_type_for(command, rest) == EXPORT:
        sources = rest[:-1]
    else:
        return []
    found = []
    for source in sources:
        match = _S3_URI.match(source)
        if match and match.group(1) and match.group(1) not in found:  # s3cmd refuses s3://
            found.append(match.group(1))
    return found


def export_folder(pnum: str | None) -> str:
    """Where export-bucket is inside TSD."""
    return f"/tsd/{pnum or 'pNN'}/data/durable/s3-api/{EXPORT_BUCKET}"


def check_export_only(args: Sequence[str], pnum: str | None) -> None:
    """Refuse a download from any bucket but export-bucket, as TSD would.

    Said at once, before a login or a request: TSD would only answer 403
    (which s3cmd prints twice), after asking for a password for nothing.
    """
    others = [b for b in download_buckets(args) if b != EXPORT_BUCKET]
    if not others:
        return
    named = ", ".join(f"'{b}'" for b in others)
    hint = (
        f" (bucket names are case-sensitive: it is s3://{EXPORT_BUCKET})"
        if any(b.lower() == EXPORT_BUCKET for b in others)
        else ""
    )
    raise AuthError(
        f"TSD lets data out only through {EXPORT_BUCKET}, not {named}{hint}; inside TSD, "
        f"put what should leave the project in {export_folder(pnum)}, "
        f"then download it from s3://{EXPORT_BUCKET}/"
    )

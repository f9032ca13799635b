"""Which token a command needs: decided by what the command does.

TSD hands out two kinds of S3 token. ``s3import`` writes into the project;
``s3export`` reads, and downloads only from the project's ``export-bucket``.
The original tool guessed from the letters in the arguments (any argument
containing "ls" or "get" meant export, so ``put results.tsv`` asked for the
wrong token); here the s3cmd command and the direction of a sync decide.

``token_for`` is the one reading of a command line into a token type. A run
calls it with s3cmd's own parse of its arguments, and so does
``--print-token-for`` (through ``shim.parse``), so that the token
printed for a command line is always the one a run of it sends.

``listing`` is the other reading: whether a command lists what is in TSD,
which TSD allows only to members of pNN-export-group (listing is exporting,
TSD's documentation says). A run and ``--print-token-for`` both ask it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import AuthError, UsageError
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
# s3cmd's reading of a remote path (S3Uri.S3UriS3): the scheme in any case, extra
# slashes ignored; the bucket, then the object.
_S3_URI = re.compile(r"^s3:///*([^/]*)/?(.*)", re.IGNORECASE)

# What lists, to TSD: any GET on a bucket or on all buckets but the multipart
# bookkeeping (?uploads), so reading a bucket's own settings too. Found in s3cmd
# 2.3's and 2.4's code (the script's cmd_* functions, S3/FileLists.py's
# fetch_remote_list, S3/S3.py's bucket requests) and checked, command by command,
# against the emulator's request log (tests/e2e/test_listing.py).
#
# Commands that list whatever their arguments, and what they list.
LISTING_COMMANDS = {
    "ls": "lists buckets and objects",
    "la": "lists every bucket and object",
    "du": "lists the objects to add up their sizes",
    "sync": "lists the objects in TSD first, to compare them",
    "fixbucket": "lists the bucket",
    "info": "reads the bucket's settings (a listing, to TSD)",
    "ws-info": "reads the bucket's website settings (a listing, to TSD)",
    "getlifecycle": "reads the bucket's lifecycle policy (a listing, to TSD)",
    "getnotification": "reads the bucket's notification policy (a listing, to TSD)",
}
# Commands that list the objects they act on with --recursive, or when a remote
# path holds a wildcard (* or ?); and the remote paths that are sources.
_SOURCES_ALL = frozenset({"get", "del", "rm", "restore", "modify", "setacl"})
_SOURCES_BUT_LAST = frozenset({"cp", "mv"})
_UPLOAD_INSTEAD = (
    "to upload without listing, 'put --recursive' with the same arguments stores the "
    "same files (all of them, each time)"
)


class Listing:
    """What a command lists, and what does the same work without listing (or "")."""

    __slots__ = ("instead", "what")

    def __init__(self, what: str, instead: str = "") -> None:
        self.what = what
        self.instead = instead

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Listing) and (self.what, self.instead) == (
            other.what,
            other.instead,
        )

    def __repr__(self) -> str:
        return f"Listing({self.what!r}, {self.instead!r})"

    def refused(self, pnum: str, user: str, evidence: str, renew: str) -> AuthError:
        """The one line that stops the command: what lists, the group, what to do.

        ``evidence``: what shows ``user`` outside the group (a token);
        ``renew``: how a membership granted since then reaches tsd-s3cmd.
        """
        group = f"{pnum}-export-group"
        instead = f"; {self.instead}" if self.instead else ""
        return AuthError(
            f"{self.what}, and TSD lets only members of {group} list (listing is exporting); "
            f"{user} is not one, as {evidence} shows: ask {pnum}'s administrator for export "
            f"rights, then {renew}{instead}"
        )


def listing(args: Sequence[str], options: object = None) -> Listing | None:
    """What a run of s3cmd lists in TSD, or None when it sends no listing.

    ``args``: s3cmd's positional arguments, the command first; ``options``:
    s3cmd's parse of the rest (``recursive``, ``run_configure``,
    ``log_target_prefix``), or None. Commands s3cmd makes list only after an
    error answer (``accesslog`` with a target prefix, when the target refuses
    logs) or only for a bucket that is not empty (``rb --recursive``, which is
    counted) are taken as they most often run.
    """
    if getattr(options, "run_configure", False):
        return Listing("'--configure' tests the keys by listing")
    if not args:
        return None
    name, rest = args[0], list(args[1:])
    command = name.lower()
    what = LISTING_COMMANDS.get(command)
    if command == "sync":
        if len(rest) < 2 or not any(is_remote(a) for a in rest):
            return None  # s3cmd refuses it before any request
        if is_remote(rest[-1]) and not any(is_remote(s) for s in rest[:-1]):
            return Listing(f"'{name}' lists what is in the bucket first", _UPLOAD_INSTEAD)
    if what:
        return Listing(f"'{name}' {what}")
    recursive = bool(getattr(options, "recursive", False))
    remote = [a for a in rest if is_remote(a)]
    if command in _SOURCES_ALL or command in _SOURCES_BUT_LAST:
        sources = remote[:-1] if command in _SOURCES_BUT_LAST else remote
        if recursive:
            return Listing(f"'{name} --recursive' lists the objects it acts on")
        if any("*" in s or "?" in s for s in sources):
            return Listing(f"'{name}' with a wildcard lists the objects that match")
    if command == "setacl" and any(_bucket_alone(a) for a in remote):
        return Listing(f"'{name}' of a bucket reads the bucket's ACL (a listing, to TSD)")
    if command == "gettagging" and remote[:1] and _bucket_alone(remote[0]):
        return Listing(f"'{name}' of a bucket reads the bucket's tags (a listing, to TSD)")
    if command == "accesslog" and getattr(options, "log_target_prefix", None) is None:
        return Listing(f"'{name}' reads the bucket's logging setting (a listing, to TSD)")
    if command == "rb" and recursive:
        return Listing(f"'{name} --recursive' lists the objects to delete")
    return None


def _bucket_alone(arg: str) -> bool:
    """``s3://bucket`` or ``s3://bucket/``: no object named, as s3cmd reads it."""
    match = _S3_URI.match(arg)
    return match is not None and not match.group(2)


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

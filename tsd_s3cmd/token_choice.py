"""Which token a command needs: decided by what the command does.

TSD hands out two kinds of S3 token. ``s3import`` writes into the project;
``s3export`` reads, and downloads only from the project's ``export-bucket``.
The original tool guessed from the letters in the arguments (any argument
containing "ls" or "get" meant export, so ``put results.tsv`` asked for the
wrong token); here the s3cmd command and the direction of a sync decide.
"""

from __future__ import annotations

from collections.abc import Sequence

from .tokens import EXPORT, IMPORT

# Commands that only look at or fetch what is in TSD.
READ_COMMANDS = frozenset({"ls", "la", "du", "get", "info"})
# Commands that make no S3 request at all: no token, no login.
OFFLINE_COMMANDS = frozenset({"sign", "signurl"})


def _is_remote(arg: str) -> bool:
    return arg.lower().startswith("s3://")


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
        if not _is_remote(destination) and all(_is_remote(s) for s in sources):
            return EXPORT
    return IMPORT


def needs_token(command: str) -> bool:
    return command.lower() not in OFFLINE_COMMANDS

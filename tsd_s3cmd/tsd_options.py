"""TSD's own options: which they are, and how they are told apart from s3cmd's.

The table is the one list of TSD options. cli.py parses them (its click
command declares the same options; a unit test keeps the two in step),
completion.py offers them, and ``split_arguments`` takes them out of a
command line and leaves every other argument exactly as it was: no word
splitting, no reordering, names with spaces, unicode or a leading dash
intact, and nothing after ``--`` touched. ``s3cmd_positions`` says where
s3cmd's arguments stand, for a resume command that rewrites some of them in
place.
"""

from __future__ import annotations

from collections.abc import Sequence

# Every TSD option, and whether it takes a value.
TSD_OPTIONS = {
    "--env": True,
    "--usetest": False,
    "--usealt": False,
    "--project": True,
    "--register": False,
    "--setup": False,
    "--forget": False,
    "--basic": False,
    "--parallel": True,
    "--shard": True,
    "--print-token-for": True,
    "--login": False,
    "--status": False,
    "--logout": False,
    "--completion": True,
    "--guide": False,
    "-h": False,
    "--help": False,
    "--s3cmd-help": False,
    "--version": False,
}


def split_arguments(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(TSD options, s3cmd arguments), each in its original order.

    An option is ours only when spelled exactly (s3cmd's abbreviations of its
    own long options stay s3cmd's); ``--name=value`` and ``--name value`` both
    work. From ``--`` on, everything is s3cmd's, ``--`` included, so that
    ``tsd-s3cmd put -- -odd-name s3://b`` reaches s3cmd as typed.
    """
    theirs = s3cmd_positions(argv)
    taken = set(theirs)
    return [a for i, a in enumerate(argv) if i not in taken], [argv[i] for i in theirs]


def s3cmd_positions(argv: Sequence[str]) -> list[int]:
    """Where s3cmd's arguments stand in ``argv``: everywhere but the TSD options and values."""
    positions: list[int] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            positions.extend(range(i, len(argv)))
            break
        name, has_value, _ = arg.partition("=")
        if arg in TSD_OPTIONS:
            if TSD_OPTIONS[arg]:
                i += 1  # its value
        elif not (has_value and TSD_OPTIONS.get(name)):
            positions.append(i)
        i += 1
    return positions

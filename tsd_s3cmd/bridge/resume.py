"""The command that resumes an unfinished transfer, and works from any directory.

When a multipart upload stops, tsd-s3cmd prints the command that resumes it
with ``--upload-id ID``, and keeps it for ``--status``; a download that stops
continues when its command runs again. These commands are often run from
somewhere else: another shell, a job script, the next day. So the local paths
in them are absolute, and the whole is quoted for the shell: the files that
``put``, ``get`` and ``sync`` move, and the values of s3cmd's options that
name local files. Which word is which is s3cmd's own parser's reading (abbreviated
options, ``-cFILE``, ``--name=value``, a value that looks like an option);
every other word stays as it was typed, in its place.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator, Sequence

from ..context import PROG

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    import optparse

# s3cmd's options, by the name (dest) its parser stores them under, whose value names a local file.
LOCAL_FILE_OPTIONS = frozenset(
    {
        "config",
        "cache_file",
        "exclude_from",
        "include_from",
        "rexclude_from",
        "rinclude_from",
        "files_from",
        "ca_certs_file",
        "ssl_client_cert_file",
        "ssl_client_key_file",
    }
)
# tsd-s3cmd's option that names a share of a job array.
SHARD = "--shard"
# A URI's scheme as s3cmd's S3Uri reads it; of them only file:// is a local path.
_SCHEME = re.compile(r"\w+://")


class Command:
    """A command line read with s3cmd's parser: its words with local paths absolute,
    and which of them are s3cmd's positional arguments (the command, files, URIs)."""

    def __init__(self, words: list[str], positional: list[int]) -> None:
        self.words = words
        self.positional = positional

    def again(self) -> str:
        """The same command (a download continues when it runs again), quoted for the shell."""
        return shlex.join([PROG, *self.words])

    def resume(self, upload_id: str, source: str, destination: str) -> str:
        """The command that resumes the upload ``upload_id`` of ``source`` to ``destination``.

        For a ``put`` of one file it is that command with ``--upload-id``.
        A command that moves several files (``sync``, ``put --recursive``)
        cannot resume one of them by its id: s3cmd would take it for every
        large file of the command. So for those it is a ``put`` of that one
        file, with the command's options.
        """
        named = [self.words[i] for i in self.positional]
        if named[:1] == ["put"] and len(named) == 3 and _same(named[1], source):
            return shlex.join([PROG, "--upload-id", upload_id, *self.words])
        options = _without_shard(
            [w for i, w in enumerate(self.words) if i not in set(self.positional)]
        )
        return shlex.join([PROG, *options, "--upload-id", upload_id, "put", source, destination])


def _without_shard(options: list[str]) -> list[str]:
    """The options but ``--shard``: a share is a share of a tree, and one file's put has
    none (tsd-s3cmd refuses --shard for it)."""
    kept: list[str] = []
    skip = False
    for word in options:
        if skip:
            skip = False
        elif word == SHARD:
            skip = True
        elif not word.startswith(SHARD + "="):
            kept.append(word)
    return kept


def with_shard(argv: Sequence[str], positions: Sequence[int], shard: str) -> list[str]:
    """``argv`` with its ``--shard`` given as ``shard`` (K/N): ``--shard slurm`` means
    nothing at a terminal, where a printed command is run again."""
    words = list(argv)
    ours = [i for i in range(len(words)) if i not in set(positions)]
    for i in ours:
        if words[i] == SHARD and i + 1 < len(words):
            words[i + 1] = shard
        elif words[i].startswith(SHARD + "="):
            words[i] = f"{SHARD}={shard}"
    return words


def _same(named: str, source: str) -> bool:
    return os.path.normpath(named.removeprefix("file://")) == os.path.normpath(source)


def read(
    argv: Sequence[str], positions: Sequence[int], parser: optparse.OptionParser, cwd: str
) -> Command:
    """``argv`` with its local paths absolute and without its own ``--upload-id``.

    ``argv`` is the whole tsd-s3cmd command line, ``positions`` where s3cmd's
    words stand in it (the rest are tsd-s3cmd's own options, kept as typed);
    ``parser`` is s3cmd's, which has read s3cmd's part of it. A relative path
    is joined to ``cwd`` and otherwise kept as typed (``dir/`` and ``dir`` mean different things to
    ``sync``); ``-`` is stdin.
    """
    words = list(argv)
    dropped: set[int] = set()
    positional: list[int] = []
    command_seen = False
    for first, last, dest, prefix, value in _values(parser, [argv[i] for i in positions]):
        if dest == "upload_id":
            dropped.update(positions[first : last + 1])
            continue
        if dest is None:  # a positional argument: the command, then files and URIs
            positional.append(positions[last])
            if not command_seen:
                command_seen = True
                continue
            scheme = _SCHEME.match(value)
            if scheme and scheme.group() != "file://":
                continue
            if scheme:
                prefix, value = prefix + scheme.group(), value[scheme.end() :]
        elif dest not in LOCAL_FILE_OPTIONS:
            continue
        if value not in ("", "-"):
            words[positions[last]] = prefix + os.path.join(cwd, value)
    kept = [i for i in range(len(words)) if i not in dropped]
    renumber = {old: new for new, old in enumerate(kept)}
    return Command([words[i] for i in kept], [renumber[i] for i in positional])


def _values(
    parser: optparse.OptionParser, args: Sequence[str]
) -> Iterator[tuple[int, int, str | None, str, str]]:
    """Each value in ``args`` as ``parser`` reads them: (first, last, dest, prefix, value).

    ``first`` to ``last`` are the words that the option and its value take;
    the value is the end of word ``last``, after ``prefix`` (``--name=``,
    ``-c``, or nothing). A positional argument has no dest. Options without
    a value are passed over. The steps are optparse's own
    (``OptionParser._process_args``), on arguments it has already accepted.
    """
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            for j in range(i + 1, len(args)):
                yield j, j, None, "", args[j]
            return
        if arg.startswith("--"):
            name, attached, value = arg.partition("=")
            option = parser._long_opt[parser._match_long_opt(name)]
            if option.takes_value():
                if attached:
                    yield i, i, option.dest, name + attached, value
                else:
                    yield i, i + 1, option.dest, "", args[i + 1]
                    i += 1
        elif arg.startswith("-") and arg != "-":
            for end in range(2, len(arg) + 1):  # -vc FILE, -vcFILE
                option = parser._short_opt["-" + arg[end - 1]]
                if option.takes_value():
                    if end < len(arg):
                        yield i, i, option.dest, arg[:end], arg[end:]
                    else:
                        yield i, i + 1, option.dest, "", args[i + 1]
                        i += 1
                    break
        else:
            yield i, i, None, "", arg
        i += 1

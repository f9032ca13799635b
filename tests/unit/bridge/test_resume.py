"""The resume command: the user's command again, runnable from any directory."""

from __future__ import annotations

import optparse
import shlex
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsd_s3cmd.bridge import shim
from tsd_s3cmd.bridge.resume import LOCAL_FILE_OPTIONS, Command, _values, read
from tsd_s3cmd.tsd_options import s3cmd_positions

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code

CWD = "/home/u/work"


@pytest.fixture(scope="module")
def parser() -> optparse.OptionParser:
    """s3cmd's own parser, as its main builds it."""
    parsed, _ = shim._parse_only([], None, "s3cmd")
    assert parsed is not None
    return parsed.parser


def read_in_cwd(argv: Sequence[str], parser: optparse.OptionParser) -> Command:
    """The command read as the runner reads it, from ``CWD``."""
    return read(argv, s3cmd_positions(argv), parser, CWD)


def resumed(parser: optparse.OptionParser, *argv: str) -> list[str]:
    """The words of the command as read for a resume: its paths absolute, no --upload-id."""
    command = shlex.split(read_in_cwd(argv, parser).again())
    assert command[0] == "tsd-s3cmd"
    return command[1:]


def test_a_put_of_one_file_resumes_with_the_same_command_and_the_id(
    parser: optparse.OptionParser,
) -> None:
    command = read_in_cwd(["-v", "put", "big.bin", "s3://b/"], parser)
    resumed = command.resume("NEW", f"{CWD}/big.bin", "s3://b/big.bin")
    assert shlex.split(resumed) == [
        "tsd-s3cmd", "--upload-id", "NEW", "-v", "put", f"{CWD}/big.bin", "s3://b/",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [
        ["--project", "p11", "--exclude", "*.tmp", "sync", "dir/", "s3://b/d/"],
        ["--project", "p11", "--exclude", "*.tmp", "put", "--recursive", "dir/", "s3://b/d/"],
        ["--project", "p11", "--exclude", "*.tmp", "put", "dir/a.bin", "dir/big.bin", "s3://b/d/"],
    ],
)
def test_a_command_of_several_files_resumes_one_by_a_put_of_it(
    parser: optparse.OptionParser, argv: list[str]
) -> None:
    """--upload-id is for one file: s3cmd would use it for every large file of a sync."""
    command = read_in_cwd(argv, parser)
    resumed = command.resume("NEW", f"{CWD}/dir/big.bin", "s3://b/d/big.bin")
    options = [a for a in argv if a not in ("sync", "put", "dir/", "s3://b/d/", "dir/a.bin",
                                            "dir/big.bin")]  # fmt: skip
    assert shlex.split(resumed) == [
        "tsd-s3cmd", *options, "--upload-id", "NEW", "put", f"{CWD}/dir/big.bin",
        "s3://b/d/big.bin",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["put", "/abs/big file", "s3://b/"], ["put", "/abs/big file", "s3://b/"]),
        (["--upload-id", "OLD", "put", "/f", "s3://b"], ["put", "/f", "s3://b"]),
        (["--upload-id=OLD", "-v", "put", "/f", "s3://b"], ["-v", "put", "/f", "s3://b"]),
        (["--upload-i", "OLD", "put", "/f", "s3://b"], ["put", "/f", "s3://b"]),  # abbreviated
        (["put", "--", "--upload-id", "s3://b"], ["put", "--", f"{CWD}/--upload-id", "s3://b"]),
    ],
)
def test_only_the_upload_id_is_replaced(
    parser: optparse.OptionParser, argv: list[str], expected: list[str]
) -> None:
    assert resumed(parser, *argv) == expected


def test_local_files_become_absolute_and_keep_their_spelling(
    parser: optparse.OptionParser,
) -> None:
    assert resumed(parser, "put", "big.bin", "../up/other.bin", "s3://b/") == [
        "put", f"{CWD}/big.bin", f"{CWD}/../up/other.bin", "s3://b/",
    ]  # fmt: skip
    # sync's "dir/" (the contents) and "dir" (the directory itself) stay apart
    assert resumed(parser, "sync", "d/", "e", ".", "S3://b/x/") == [
        "sync", f"{CWD}/d/", f"{CWD}/e", f"{CWD}/.", "S3://b/x/",
    ]  # fmt: skip
    assert resumed(parser, "put", "file://rel/f", "-", "s3://b/") == [
        "put", f"file://{CWD}/rel/f", "-", "s3://b/",
    ]  # fmt: skip


def test_options_that_name_local_files_become_absolute(parser: optparse.OptionParser) -> None:
    argv = [
        "-c", "my.cfg", "--exclude-from=ex.txt", "--include-from", "in.txt",
        "--rexclude-fr=rx.txt", "-vcother.cfg", "--files-from", "-", "--cache-file=",
        "--ca-certs", "ca.pem", "--exclude", "*.tmp", "--add-destination", "s3://c/",
        "put", "--multipart-chunk-size-mb", "5", "f", "s3://b/",
    ]  # fmt: skip
    assert resumed(parser, *argv) == [
        "-c", f"{CWD}/my.cfg", f"--exclude-from={CWD}/ex.txt", "--include-from", f"{CWD}/in.txt",
        f"--rexclude-fr={CWD}/rx.txt", f"-vc{CWD}/other.cfg", "--files-from", "-",
        "--cache-file=", "--ca-certs", f"{CWD}/ca.pem", "--exclude", "*.tmp",
        "--add-destination", "s3://c/", "put", "--multipart-chunk-size-mb", "5", f"{CWD}/f",
        "s3://b/",
    ]  # fmt: skip


def test_tsd_options_stay_as_they_are_where_they_are(parser: optparse.OptionParser) -> None:
    argv = ["--project", "p11", "put", "--parallel", "4", "f", "--env=test", "s3://b/"]
    assert resumed(parser, *argv) == [
        "--project", "p11", "put", "--parallel", "4", f"{CWD}/f", "--env=test", "s3://b/",
    ]  # fmt: skip


def test_every_s3cmd_option_that_takes_a_file_is_known(parser: optparse.OptionParser) -> None:
    """A new s3cmd option that takes a file (metavar FILE) would be left relative."""
    named_file = {
        o.dest for o in parser.option_list if o.takes_value() and "FILE" in (o.metavar or "")
    }
    assert named_file <= LOCAL_FILE_OPTIONS, named_file - LOCAL_FILE_OPTIONS


# Command lines s3cmd accepts: options in every spelling, values, positional words.
_word = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=8)


@st.composite
def _command_lines(draw: st.DrawFn, parser: optparse.OptionParser) -> list[str]:
    longs = sorted(parser._long_opt)
    shorts = sorted(parser._short_opt)
    words: list[str] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["long", "short", "positional"]))
        if kind == "positional":
            words.append(draw(_word.filter(lambda w: not w.startswith("-") or w == "-")))
            continue
        name = draw(st.sampled_from(longs if kind == "long" else shorts))
        option = (parser._long_opt if kind == "long" else parser._short_opt)[name]
        if option.type == "int":
            value = str(draw(st.integers(0, 99)))
        elif option.choices:
            value = draw(st.sampled_from(option.choices))
        elif option.type in ("string", None):
            value = draw(_word)
        else:
            continue  # s3cmd's own types check their values
        if kind == "long":
            name = name[: draw(st.integers(min(len(name), 3), len(name)))]
            if len([n for n in longs if n.startswith(name)]) > 1 and name not in longs:
                name = option._long_opts[0]
        if not option.takes_value():
            words.append(name)
        elif kind == "long" and draw(st.booleans()):
            words.append(f"{name}={value}")
        elif kind == "short" and value and draw(st.booleans()):
            words.append(name + value)
        else:
            words += [name, value]
    if draw(st.booleans()):
        words += ["--", *draw(st.lists(_word, max_size=3))]
    return words


def test_values_read_a_command_line_as_optparse_does(parser: optparse.OptionParser) -> None:
    flag_dests = {o.dest for o in parser.option_list if not o.takes_value()}

    @given(_command_lines(parser))
    def check(args: list[str]) -> None:
        try:  # optparse's own parse (the parser the shim hands over stops s3cmd after it)
            options, positional = optparse.OptionParser.parse_args(
                parser, args, parser.get_default_values()
            )
        except SystemExit:  # a combination s3cmd refuses
            return
        seen: dict[str, list[str]] = {}
        read_positional = []
        for _first, last, dest, prefix, value in _values(parser, args):
            assert args[last] == prefix + value
            if dest is None:
                read_positional.append(value)
            else:
                seen.setdefault(dest, []).append(value)
        assert read_positional == positional
        for dest, values in seen.items():
            if dest in flag_dests:  # a flag may write it after the value (--no-access-logging)
                continue
            stored = getattr(options, dest)
            stored = [str(v) for v in (stored if isinstance(stored, list) else [stored])]
            assert stored[-len(values) :] == values[-len(stored) :]

    check()

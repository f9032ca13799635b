"""Splitting TSD options from s3cmd's arguments: nothing of s3cmd's is lost or moved."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tsd_s3cmd.cli import _click_command
from tsd_s3cmd.tsd_options import TSD_OPTIONS, split_arguments

FLAGS = sorted(name for name, takes_value in TSD_OPTIONS.items() if not takes_value)
VALUED = sorted(name for name, takes_value in TSD_OPTIONS.items() if takes_value)


def test_options_anywhere_and_s3cmd_arguments_untouched() -> None:
    argv = ["put", "--project", "p11", "my file.txt", "--usetest", "s3://b/ø", "-v"]
    assert split_arguments(argv) == (
        ["--project", "p11", "--usetest"],
        ["put", "my file.txt", "s3://b/ø", "-v"],
    )


def test_equals_form_and_s3cmd_options_with_values() -> None:
    argv = [
        "--env=test",
        "--multipart-chunk-size-mb=200",
        "--upload-id",
        "abc",
        "sync",
        "d",
        "s3://b",
    ]
    assert split_arguments(argv) == (
        ["--env=test"],
        ["--multipart-chunk-size-mb=200", "--upload-id", "abc", "sync", "d", "s3://b"],
    )


def test_everything_after_double_dash_is_s3cmds() -> None:
    argv = ["put", "--", "--register", "-leading-dash", "s3://b"]
    assert split_arguments(argv) == ([], ["put", "--", "--register", "-leading-dash", "s3://b"])


def test_abbreviations_are_not_ours() -> None:
    assert split_arguments(["--proj", "p11", "ls"]) == ([], ["--proj", "p11", "ls"])


# Arguments that are not TSD options: anything, including odd file names.
plain = st.text(min_size=0, max_size=12).filter(
    lambda s: s != "--" and s.split("=", 1)[0] not in TSD_OPTIONS
)
tsd_option = st.one_of(
    st.sampled_from(FLAGS).map(lambda f: [f]),
    st.tuples(st.sampled_from(VALUED), plain).map(list),
    st.tuples(st.sampled_from(VALUED), plain).map(lambda t: [f"{t[0]}={t[1]}"]),
)


@given(
    st.lists(st.one_of(plain.map(lambda a: ("s3cmd", [a])), tsd_option.map(lambda o: ("tsd", o)))),
    st.lists(st.text(max_size=12)),
)
def test_split_is_an_exact_partition(pieces: list, after_dashes: list[str]) -> None:
    argv: list[str] = []
    expected_tsd: list[str] = []
    expected_rest: list[str] = []
    for kind, args in pieces:
        argv += args
        (expected_tsd if kind == "tsd" else expected_rest).extend(args)
    argv += ["--", *after_dashes]
    expected_rest += ["--", *after_dashes]
    assert split_arguments(argv) == (expected_tsd, expected_rest)


def test_the_option_table_matches_the_click_command() -> None:
    declared = {}
    for param in _click_command().params:
        for name in param.opts:
            declared[name] = not param.is_flag  # type: ignore[attr-defined]
    assert declared == TSD_OPTIONS


def test_the_everyday_path_loads_neither_click_typing_nor_requests() -> None:
    import subprocess
    import sys

    everyday = (
        "cli", "bridge.runner", "login.broker", "bridge.shim", "bridge.script", "bridge.transfers",
        "bridge.plans", "engine.scheduler", "engine.limits", "engine.files", "engine.parts",
        "engine.downloads", "engine.partials", "engine.progress",
    )  # fmt: skip
    code = (
        f"import sys, {', '.join('tsd_s3cmd.' + m for m in everyday)}; "
        "print(' '.join(m for m in ('click', 'typing', 'requests') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []

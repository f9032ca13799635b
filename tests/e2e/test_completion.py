"""Shell completion: what the generated scripts offer, read from the installed s3cmd, offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import BIN
from .conftest import Tsd


def script(tsd: Tsd, shell: str) -> Path:
    path = tsd.home / f"completion.{shell}"
    path.write_text(tsd.ok("--completion", shell).stdout)
    return path


def bash_offers(tsd: Tsd, completion: Path, *words: str) -> list[str]:
    """COMPREPLY for the command line ``tsd-s3cmd WORDS``, the cursor on the last word."""
    line = ["tsd-s3cmd", *words]
    program = (
        'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); '
        '_tsd_s3cmd; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        ["bash", "-c", program, "bash", str(completion), *line],
        capture_output=True, text=True, env=tsd.env, cwd=tsd.home, timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0 and not done.stderr, done.stderr
    return [word for word in done.stdout.splitlines() if word]


@pytest.mark.s3cmd
def test_bash_completes_options_commands_environments_projects_and_paths(tsd: Tsd) -> None:
    completion = script(tsd, "bash")
    # Options: TSD's and s3cmd's own (--region is s3cmd's).
    assert bash_offers(tsd, completion, "--reg") == ["--register", "--region"]
    assert "--multipart-chunk-size-mb" in bash_offers(tsd, completion, "--multi")
    assert bash_offers(tsd, completion, "sy") == ["sync"]
    after_options = bash_offers(tsd, completion, "--project", "p11", "--env", "prod", "set")
    assert {"setacl", "setpolicy"} <= set(after_options)
    assert all(word.startswith("set") for word in after_options)
    environments = ["prod", "alt", "test", "ec-prod", "ec-test"]
    assert bash_offers(tsd, completion, "--env", "") == environments
    assert bash_offers(tsd, completion, "--env", "=", "te") == ["test"]  # --env=te
    assert bash_offers(tsd, completion, "--print-token-for", "pu") == ["put"]

    (tsd.home / "results one.tsv").write_text("x\n")
    assert bash_offers(tsd, completion, "put", "res") == ["results one.tsv"]
    assert bash_offers(tsd, completion, "-c", "res") == ["results one.tsv"]  # s3cmd's -c FILE
    assert bash_offers(tsd, completion, "res") == ["restore"]  # no command yet: commands only

    # Projects come from the config directory, at completion time, offline.
    assert bash_offers(tsd, completion, "--project", "") == []
    tsd.register()
    tsd.ok("--usetest", "--register", input="p11-noexport\ndemo-password\n123456\n")
    requests = len(tsd.emulator.log())
    assert bash_offers(tsd, completion, "--project", "") == ["p11"]
    assert bash_offers(tsd, completion, "--usetest", "--project", "p") == ["p11"]
    assert bash_offers(tsd, completion, "--env", "ec-prod", "--project", "") == []
    assert len(tsd.emulator.log()) == requests


@pytest.mark.s3cmd
def test_the_script_holds_what_the_installed_s3cmd_offers(tsd: Tsd) -> None:
    completion = script(tsd, "bash").read_text()
    helped = subprocess.run(
        [str(BIN / "s3cmd"), "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    options = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*\w)", helped))  # not a wrapped "--host-"
    commands = set(re.findall(r"^ {6}s3cmd ([a-z][\w-]*)", helped, re.M))
    assert len(options) > 50 and {"sync", "put", "mb", "signurl"} <= commands
    offered = set(re.sub(r"['()]", " ", completion).split())
    assert options - offered == set() and commands - offered == set()


def test_projects_question_is_quiet_when_the_store_is_damaged(tsd: Tsd) -> None:
    tsd.register()
    (tsd.config_dir / "credentials.json").write_text("{not json")
    quiet = tsd.run("--completion", "projects")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    wrong = tsd.run("--completion", "tcsh")
    assert wrong.returncode == 64 and wrong.lines == [
        "tsd-s3cmd: --completion takes bash, zsh or fish, not 'tcsh'"
    ]


@pytest.mark.s3cmd
@pytest.mark.skipif(not shutil.which("fish"), reason="fish is not installed")
def test_fish_completes_the_same_words(tsd: Tsd) -> None:
    completion = script(tsd, "fish")
    tsd.register()

    def offers(line: str) -> list[str]:
        done = subprocess.run(
            ["fish", "--no-config", "-c", f"source {completion}; complete -C '{line}'"],
            capture_output=True, text=True, env=tsd.env, cwd=tsd.home, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return [w.split("\t")[0] for w in done.stdout.splitlines()]

    assert offers("tsd-s3cmd --reg") == ["--region", "--register"]
    assert offers("tsd-s3cmd sy") == ["sync"]
    assert offers("tsd-s3cmd --env ") == ["alt", "ec-prod", "ec-test", "prod", "test"]
    assert offers("tsd-s3cmd --project ") == ["p11"]


@pytest.mark.s3cmd
@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed")
def test_zsh_script_loads_and_registers_itself(tsd: Tsd) -> None:
    completion = script(tsd, "zsh")
    done = subprocess.run(
        ["zsh", "-f", "-c", f"autoload -U compinit && compinit -u && source {completion} "
         "&& print -r -- $_comps[tsd-s3cmd]"],
        capture_output=True, text=True, env=tsd.env, cwd=tsd.home, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "_tsd_s3cmd", done.stderr

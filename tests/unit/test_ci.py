"""CI runs what the README tells a user to run, and that covers both tested s3cmd releases."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.*?)\n```", readme, re.S)


def test_ci_runs_exactly_the_readme_test_command_as_one_line() -> None:
    test_command = readme_commands()[1]
    assert "\n" not in test_command
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert script[-1] == test_command


def test_the_test_command_runs_all_then_what_runs_s3cmd_with_s3cmd_2_3_too() -> None:
    """Each pass: the tests at once with pytest-xdist, then those marked apart, alone."""
    test_command = readme_commands()[1]
    assert ".venv-s3cmd23/bin/pip install -q -e '.[test]' 's3cmd==2.3.0'" in test_command
    runs = [step for step in test_command.split(" && ") if " -m pytest " in step]
    assert len(runs) == 4, runs
    everything, everything_apart, again, again_apart = runs
    assert everything.startswith(".venv/bin/python -m pytest -q -n ")
    assert everything.endswith(" -m 'not apart'")
    assert everything_apart == ".venv/bin/python -m pytest -q -m apart"
    assert again.startswith(".venv-s3cmd23/bin/python -m pytest -q -n ")
    assert again.endswith(" -m 's3cmd and not apart'")
    assert again_apart == ".venv-s3cmd23/bin/python -m pytest -q -m 's3cmd and apart'"


def test_the_second_install_overlaps_the_first_pass_and_ends_before_any_apart_test() -> None:
    """The s3cmd 2.3.0 install uses one core while the first pass runs; the tests marked
    apart must have the machine to themselves, so it has ended before them."""
    steps = readme_commands()[1].split(" && ")
    install = next(i for i, step in enumerate(steps) if "s3cmd==2.3.0" in step)
    assert steps[install - 1] == "{ { python3 -m venv .venv-s3cmd23"
    assert steps[install].endswith("; } & }")
    first_pass = steps.index(".venv/bin/python -m pytest -q -n 6 --dist worksteal -m 'not apart'")
    assert install < first_pass < steps.index("wait $!")
    assert steps.index("wait $!") < steps.index(".venv/bin/python -m pytest -q -m apart")

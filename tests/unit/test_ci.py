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


def test_the_test_command_runs_the_end_to_end_suite_with_s3cmd_2_3_too() -> None:
    test_command = readme_commands()[1]
    assert "'s3cmd==2.3.0'" in test_command
    assert test_command.endswith("-m pytest -q tests/e2e")

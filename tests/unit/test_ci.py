"""CI runs what the README tells a user to run, and that covers both tested s3cmd releases."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.*?)\n```", readme, re.S)


def steps() -> list[str]:
    """tests/run's commands, without comments and blank lines."""
    text = (ROOT / "tests" / "run").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_exactly_the_readme_test_command_a_short_line() -> None:
    test_command = readme_commands()[1]
    assert "\n" not in test_command and len(test_command) <= 160
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert script[-1] == test_command == "bash tests/run"


def test_the_script_stops_at_the_first_failure() -> None:
    assert "set -euo pipefail" in steps()


def test_all_tests_run_then_what_differs_between_releases_with_s3cmd_2_3() -> None:
    """Each pass: the tests at once with pytest-xdist, and those marked apart alone."""
    runs = [step for step in steps() if " -m pytest " in step]
    assert runs == [
        """.venv/bin/python -m pytest -q "${side_by_side[@]}" -m 'not apart'""",
        ".venv/bin/python -m pytest -q -m apart",
        """.venv-s3cmd23/bin/python -m pytest -q "${side_by_side[@]}" -m versions""",
    ]
    assert "side_by_side=(-n 6 --dist worksteal)" in " ".join(steps())
    assert any(
        step.startswith("{ python3 -m venv .venv-s3cmd23 && ")
        and step.endswith(".venv-s3cmd23/bin/pip install -q -e '.[test]' 's3cmd==2.3.0'; } &")
        for step in steps()
    )


def test_the_second_install_overlaps_the_first_pass_and_ends_before_any_apart_test() -> None:
    """The s3cmd 2.3.0 install uses one core while the first pass runs; the tests marked
    apart must have the machine to themselves, so it has ended before them."""
    lines = steps()

    def at(fragment: str) -> int:
        return next(i for i, line in enumerate(lines) if fragment in line)

    install, first_pass = at("s3cmd==2.3.0"), at("-m 'not apart'")
    assert lines[install + 1] == "older=$!"
    assert at(".venv/bin/pip install -q -e '.[test]'") < install < first_pass
    assert first_pass < lines.index('wait "$older"') < at("-m apart")


def test_ci_starts_slurm_before_the_tests_and_goes_on_without_it() -> None:
    """The Slurm tests need the cluster up before they start; without one they skip (they say
    why), which is no reason for CI to stop."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert script.index("bash .ci/slurm || true") < script.index("bash tests/run")

"""Real Slurm job arrays on the local cluster that .ci/slurm starts (tests/slurm.py).

What the sharding tests will stand on: the tasks of an array run side by
side, each sees the test's environment exactly, ``tsd-s3cmd`` of the test's
venv runs in them, each task's exit status is its own, and Slurm's
``SLURM_ARRAY_TASK_MIN``, ``MAX`` and ``STEP`` give a task its shard. Without
a cluster these tests skip and say how to start one.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ..slurm import PARTITION, ArrayTimeout, Slurm, array_spec

pytestmark = pytest.mark.slow

# Variables the shell sets in every process, whatever it was given.
_SHELL_OWN = {"PWD", "OLDPWD", "SHLVL", "_"}


def _fields(stdout: str) -> dict[str, str]:
    """``key=value`` words of a task's output."""
    return dict(re.findall(r"(\w+)=(\S*)", stdout))


@pytest.mark.s3cmd  # tsd-s3cmd --version imports s3cmd's S3 to print its version
def test_four_tasks_run_at_once_with_the_tests_environment(
    slurm: Slurm, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """Four tasks, all running at the same moment, each with the test's HOME and variables.

    Each task waits (at most a minute) until all four have started: that they
    all get past it shows the node runs them side by side, on however few cores.
    """
    started = tmp_path / "started"
    started.mkdir()
    env = {**clean_env, "TSD_TEST_ODD": "two  spaces, $dollar, 'quotes', \"more\", é\nnewline"}
    script = f"""
        set -u
        touch {started}/$SLURM_ARRAY_TASK_ID
        for _ in $(seq 600); do [ "$(ls {started} | wc -l)" -ge 4 ] && break; sleep 0.1; done
        echo "seen=$(ls {started} | wc -l)"
        echo "id=$SLURM_ARRAY_TASK_ID min=$SLURM_ARRAY_TASK_MIN max=$SLURM_ARRAY_TASK_MAX" \\
             "step=$SLURM_ARRAY_TASK_STEP home=$HOME"
        env -0 > {tmp_path}/env-$SLURM_ARRAY_TASK_ID
        tsd-s3cmd --version
    """
    result = slurm.run_array(script, tasks=range(4), env=env, cwd=Path(env["HOME"]), timeout=180)

    result.check()
    assert [task.task_id for task in result.tasks] == [0, 1, 2, 3]
    for task in result.tasks:
        fields = _fields(task.stdout)
        assert fields["seen"] == "4", f"task {task.task_id} ran while fewer than 4 had started"
        assert fields["id"] == str(task.task_id)
        assert (fields["min"], fields["max"], fields["step"]) == ("0", "3", "1")
        assert fields["home"] == env["HOME"]
        assert re.search(r"^tsd-s3cmd \S+\ns3cmd 2\.\d", task.stdout, re.MULTILINE), task.stdout
        seen = dict(
            item.split("=", 1)
            for item in (tmp_path / f"env-{task.task_id}").read_text().split("\0")
            if item
        )
        changed = {k for k, v in env.items() if seen.get(k) != v} - _SHELL_OWN
        assert not changed, f"task {task.task_id} saw these variables otherwise: {changed}"
        added = {k for k in seen.keys() - env.keys() if not k.startswith("SLURM")} - _SHELL_OWN
        assert added <= {"ENVIRONMENT", "HOSTNAME", "TMPDIR"}, added
    assert result.most_at_once() == 4


def test_a_stepped_array_gives_each_task_its_shard(slurm: Slurm) -> None:
    """``--array=5-11:3``: ids 5, 8 and 11, with MIN, MAX and STEP as Slurm sets them.

    The shard of a task is (ID - MIN) / STEP of (MAX - MIN) / STEP + 1: here 0, 1
    and 2 of 3; SLURM_ARRAY_TASK_COUNT agrees.
    """
    assert array_spec(range(5, 12, 3)) == "5-11:3"
    script = (
        'echo "id=$SLURM_ARRAY_TASK_ID min=$SLURM_ARRAY_TASK_MIN max=$SLURM_ARRAY_TASK_MAX'
        ' step=$SLURM_ARRAY_TASK_STEP count=$SLURM_ARRAY_TASK_COUNT"'
    )
    result = slurm.run_array(script, tasks=range(5, 12, 3), timeout=120).check()

    assert [task.task_id for task in result.tasks] == [5, 8, 11]
    shards = []
    for task in result.tasks:
        fields = {key: int(value) for key, value in _fields(task.stdout).items()}
        assert fields == {"id": task.task_id, "min": 5, "max": 11, "step": 3, "count": 3}
        low, step = fields["min"], fields["step"]
        shards.append(((fields["id"] - low) // step, (fields["max"] - low) // step + 1))
    assert shards == [(0, 3), (1, 3), (2, 3)]


def test_each_task_has_its_own_exit_status(slurm: Slurm) -> None:
    """sbatch --wait returns only the highest status; the helper has every task's."""
    result = slurm.run_array(
        'echo "to stderr $SLURM_ARRAY_TASK_ID" >&2; exit "$SLURM_ARRAY_TASK_ID"',
        tasks=[0, 2, 3],
        timeout=120,
    )

    assert [(t.task_id, t.returncode) for t in result.tasks] == [(0, 0), (2, 2), (3, 3)]
    assert [t.stderr for t in result.tasks] == [f"to stderr {i}\n" for i in (0, 2, 3)]
    assert [t.task_id for t in result.failed()] == [2, 3]
    with pytest.raises(AssertionError, match=r"task 2: exit 2[\s\S]*to stderr 3"):
        result.check()


def test_an_array_past_its_timeout_is_cancelled(slurm: Slurm) -> None:
    """A test that gives up leaves no task running or waiting: the helper cancels the job."""
    with pytest.raises(ArrayTimeout) as raised:
        slurm.run_array("exec sleep 600", tasks=range(2), timeout=5)

    assert raised.value.job_id is not None
    alive = subprocess.run(
        ["squeue", "--noheader", f"--partition={PARTITION}", f"--jobs={raised.value.job_id}",
         "--states=PENDING,RUNNING,SUSPENDED"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert alive.stdout.strip() == ""
    assert "did not end within 5 s" in str(raised.value)

"""A local Slurm cluster, for tests that run tsd-s3cmd in real job arrays as its batch users do.

The cluster is started by ``.ci/slurm`` (``.ci/run`` calls it): one node,
``localhost``, in the partition ``tsd-s3cmd``, on this machine, so that its
tasks reach the test's emulator on 127.0.0.1. Tests never start daemons; the
``slurm`` fixture (tests/e2e/conftest.py) skips, saying what is missing and
how to start it, where :func:`slurm_missing` finds no such cluster.

:meth:`Slurm.run_array` submits a script as a job array, waits for it, and
returns each task's exit status, output and when it ran::

    result = slurm.run_array(
        'tsd-s3cmd put "part-$SLURM_ARRAY_TASK_ID" s3://bucket/',
        tasks=range(4), env=tsd.env, cwd=tsd.home,
    )
    result.check()                      # every task exited 0, or fail with their stderr
    assert [t.task_id for t in result.tasks] == [0, 1, 2, 3]

The environment is handed to the tasks as it is (``sbatch --export=ALL``
from a process with exactly that environment), so a test's HOME, config dir,
``TSD_API_URL`` and the suite's s3cmd watch (tests/s3cmd_watch: a test whose
tasks run s3cmd's code must be marked ``s3cmd``, as any other) reach every
task; Slurm adds its ``SLURM_*`` variables.

Each task's exit status comes from a file the batch script writes when the
test's script ends: without accounting storage (slurmdbd), ``sacct`` knows
nothing, and ``sbatch --wait`` returns only the highest status of all tasks.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PARTITION = "tsd-s3cmd"  # the partition .ci/slurm makes; jobs go there and nowhere else
START = "bash .ci/slurm"  # as root, or where sudo -n works
COMMANDS = ("sbatch", "scontrol", "sinfo", "scancel", "squeue")
USABLE = ("idle", "mix", "alloc", "comp")  # sinfo's %t of a node that takes jobs (no '*')
_ASK_TIMEOUT = 20.0  # seconds for one question to slurmctld or slurmd

# The batch script of every array: it runs the test's script (a child, so that an
# `exit` there still lets this one note the status) and notes, in a file of this
# task's own, the status and when the script started and ended (wall clock, the
# same on the single node as in the test). `command -p`: whatever PATH the test gave.
_BATCH = """\
#!/bin/bash
# One task of a job array that tests/slurm.py submitted.
started=$(command -p date +%s.%N)
{task}
status=$?
ended=$(command -p date +%s.%N)
record={directory}/$SLURM_ARRAY_TASK_ID.status
echo "$status $started $ended" > "$record.part" && command -p mv -f "$record.part" "$record"
exit "$status"
"""


@dataclass(frozen=True)
class TaskResult:
    """One task of an array as it ended.

    ``returncode`` is None when the test's script did not end on its own: the
    task never started, or was killed (time limit, ``scancel``); ``state``
    then says which, while slurmctld still remembers the job (a few seconds:
    MinJobAge in .ci/slurm), and is "" after.
    """

    task_id: int
    returncode: int | None
    stdout: str
    stderr: str
    started: float | None  # epoch seconds, when the test's script started
    ended: float | None
    state: str  # Slurm's JobState: COMPLETED, FAILED, TIMEOUT, CANCELLED, ...

    def describe(self) -> str:
        """One paragraph for a failure message: status, state, the end of stderr."""
        tail = "\n".join(self.stderr.splitlines()[-15:])
        state = self.state or "state unknown"
        return f"task {self.task_id}: exit {self.returncode}, {state}\n{tail}"


@dataclass(frozen=True)
class ArrayResult:
    """An array job that has ended: one result per task asked for, in task-id order."""

    job_id: int
    directory: Path  # the scripts, each task's .out, .err and .status
    tasks: tuple[TaskResult, ...]
    sbatch_output: str  # what sbatch printed, stdout and stderr together

    def task(self, task_id: int) -> TaskResult:
        return next(task for task in self.tasks if task.task_id == task_id)

    def failed(self) -> list[TaskResult]:
        """The tasks whose script did not exit 0 (or did not end on its own)."""
        return [task for task in self.tasks if task.returncode != 0]

    def check(self) -> ArrayResult:
        """Self, when every task exited 0; else an AssertionError with each failed task."""
        failed = self.failed()
        assert not failed, f"job {self.job_id} ({self.directory}): " + "\n\n".join(
            task.describe() for task in failed
        )
        return self

    def most_at_once(self) -> int:
        """The most tasks whose scripts were running at the same moment."""
        spans = [(t.started, t.ended) for t in self.tasks if t.started and t.ended]
        return max(
            (sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans),
            default=0,
        )


class ArrayTimeout(TimeoutError):
    """The array did not end in time; it has been cancelled (``scancel``)."""

    def __init__(self, message: str, job_id: int | None) -> None:
        super().__init__(message)
        self.job_id = job_id


def slurm_missing() -> str | None:
    """Why no local cluster can run the tests' jobs, and how to start one; None when one can.

    Asks only: the client commands, slurmctld (``scontrol ping``), this
    machine's slurmd (slurmctld sees a dead one only after SlurmdTimeout,
    minutes), and the partition ``tsd-s3cmd`` with its node ready. Another
    cluster (a site's, from a login node) has no such partition: its jobs would
    run elsewhere, where the test's emulator on 127.0.0.1 cannot be reached.
    """
    start = f"start a local cluster with `{START}` (as root, or with sudo)"
    missing = [name for name in COMMANDS if shutil.which(name) is None]
    if missing:
        return f"Slurm's client commands are not on PATH ({', '.join(missing)}); {start}"
    _, ping = _ask("scontrol", "ping")
    if "is UP" not in ping:
        return f"slurmctld does not answer (scontrol ping: {_first(ping)}); {start}"
    code, slurmd = _ask("scontrol", "show", "slurmd")
    if code != 0:
        return f"no slurmd answers here (scontrol show slurmd: {_first(slurmd)}); {start}"
    _, nodes = _ask("sinfo", "--noheader", f"--partition={PARTITION}", "--format=%t %N")
    if not nodes.strip():
        return (
            f"Slurm answers, but has no partition {PARTITION}, the one on this machine "
            f"that .ci/slurm makes (jobs elsewhere cannot reach the test's emulator); {start}"
        )
    states = {line.split()[0] for line in nodes.splitlines() if line.strip()}
    if not states & set(USABLE):
        return f"the node of partition {PARTITION} takes no jobs (sinfo: {_first(nodes)}); {start}"
    return None


def _ask(*argv: str) -> tuple[int, str]:
    """A Slurm command's exit status and output (stdout and stderr); -1 and why when none."""
    try:
        proc = subprocess.run(
            [shutil.which(argv[0]) or argv[0], *argv[1:]],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=_ASK_TIMEOUT,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return -1, f"no answer within {_ASK_TIMEOUT:.0f} s"
    return proc.returncode, proc.stdout + proc.stderr


def _first(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "nothing")


def array_spec(tasks: range | Sequence[int], at_once: int | None = None) -> str:
    """sbatch's ``--array`` value: ``range(5, 12, 3)`` is "5-11:3", [0, 2] is "0,2".

    A range keeps its form so that Slurm sets SLURM_ARRAY_TASK_STEP as a job
    script would see it; ``at_once`` adds "%N" (at most N tasks running).
    """
    ids = list(tasks)
    if not ids or min(ids) < 0:
        raise ValueError(f"task ids must be non-negative, and at least one: {tasks!r}")
    if isinstance(tasks, range) and tasks.step > 0 and len(tasks) > 1:
        spec = f"{tasks.start}-{tasks[-1]}" + (f":{tasks.step}" if tasks.step != 1 else "")
    else:
        spec = ",".join(str(task) for task in ids)
    return spec + (f"%{at_once}" if at_once else "")


@dataclass(frozen=True)
class Slurm:
    """The local cluster; ``base`` holds one directory per submitted array."""

    base: Path

    def run_array(
        self,
        script: str | Sequence[str],
        *,
        tasks: range | Sequence[int] = range(4),
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 300,
        at_once: int | None = None,
        sbatch_args: Sequence[str] = (),
    ) -> ArrayResult:
        """Run ``script`` as each task of an array, wait for all of them, and say how each ended.

        ``script``: bash source (a ``#!`` line of its own picks another
        interpreter), or a command as an argv list. ``env``: the tasks'
        environment exactly (a ``Tsd``'s ``env``; default this process's),
        Slurm's ``SLURM_*`` added. ``cwd``: where the tasks start (default the
        array's own directory). ``timeout``: seconds for the whole array; past
        it the job is cancelled and :class:`ArrayTimeout` raised (Slurm's
        ``--time`` is set a minute beyond, in case this process dies first).
        ``sbatch_args``: more sbatch options, e.g. ``["--cpus-per-task=2"]``.
        """
        directory = Path(tempfile.mkdtemp(prefix="array-", dir=self.base))
        body = script if isinstance(script, str) else shlex.join(script)
        task_script = directory / "task.sh"
        task_script.write_text(body if body.startswith("#!") else f"#!/bin/bash\n{body}\n")
        task_script.chmod(0o755)
        batch = directory / "batch.sh"
        batch.write_text(
            _BATCH.format(task=shlex.quote(str(task_script)), directory=shlex.quote(str(directory)))
        )
        name = f"tsd-s3cmd-test-{directory.name}"
        argv = [
            shutil.which("sbatch") or "sbatch", "--wait", "--parsable",
            f"--array={array_spec(tasks, at_once)}",
            f"--partition={PARTITION}", f"--job-name={name}", "--ntasks=1",
            f"--output={directory}/%a.out", f"--error={directory}/%a.err",
            "--export=ALL", f"--chdir={cwd or directory}",
            f"--time={math.ceil(timeout / 60) + 1}", *sbatch_args, str(batch),
        ]  # fmt: skip
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=dict(os.environ if env is None else env), text=True,
        )  # fmt: skip
        try:
            output, _ = proc.communicate(timeout=timeout)
        except BaseException as error:  # a timeout, or Ctrl-C: the job must not outlive the test
            proc.kill()
            output, _ = proc.communicate()
            _ask("scancel", f"--name={name}")
            if isinstance(error, subprocess.TimeoutExpired):
                job_id = _job_id(output)
                partial = self._collect(job_id or 0, directory, tasks, output)
                raise ArrayTimeout(
                    f"job array {job_id} did not end within {timeout} s and was cancelled; "
                    + "\n\n".join(task.describe() for task in partial.tasks),
                    job_id,
                ) from None
            raise
        job_id = _job_id(output)
        if job_id is None:
            raise RuntimeError(f"sbatch submitted no array (exit {proc.returncode}): {output}")
        return self._collect(job_id, directory, tasks, output)

    def _collect(
        self, job_id: int, directory: Path, tasks: range | Sequence[int], output: str
    ) -> ArrayResult:
        states = _task_states(job_id) if job_id else {}
        results = []
        for task_id in sorted(set(tasks)):
            status = _read(directory / f"{task_id}.status").split()
            results.append(
                TaskResult(
                    task_id=task_id,
                    returncode=int(status[0]) if status else None,
                    stdout=_read(directory / f"{task_id}.out"),
                    stderr=_read(directory / f"{task_id}.err"),
                    started=float(status[1]) if status else None,
                    ended=float(status[2]) if status else None,
                    state=states.get(task_id, ""),
                )
            )
        return ArrayResult(job_id, directory, tuple(results), output)


def _job_id(sbatch_output: str) -> int | None:
    """The job id ``sbatch --parsable`` printed ("123", or "123;cluster") when it submitted."""
    match = re.search(r"^(\d+)(;\S*)?$", sbatch_output, re.MULTILINE)
    return int(match.group(1)) if match else None


def _task_states(job_id: int) -> dict[int, str]:
    """Each task's JobState, as long as slurmctld remembers the job."""
    states = {}
    for line in _ask("scontrol", "--oneliner", "show", "job", str(job_id))[1].splitlines():
        task = re.search(r"\bArrayTaskId=(\d+)\b", line)
        state = re.search(r"\bJobState=(\S+)", line)
        if task and state:
            states[int(task.group(1))] = state.group(1)
    return states


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""

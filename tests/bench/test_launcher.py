"""The benchmark's launcher, run as bench.py runs it: what it reports is the child's own.

The benchmark's peak memory figures rest on this: a child started by a large
process would report that process's memory as its own (Python starts children
with vfork), so the launcher must report a small child as small however large
the process that feeds it has grown. No test here times anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parents[2] / "benchmarks" / "launcher.py"
MiB = 1024 * 1024


def ask(launcher: subprocess.Popen, argv: list[str], stdin: str = "") -> dict:
    assert launcher.stdin is not None and launcher.stdout is not None
    job = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd(), "stdin": stdin}
    launcher.stdin.write(json.dumps(job) + "\n")
    launcher.stdin.flush()
    return json.loads(launcher.stdout.readline())


def start() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(LAUNCHER)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def test_a_small_child_of_a_grown_parent_is_reported_small() -> None:
    launcher = start()
    try:
        big = bytearray(os.urandom(256 * MiB))  # this process is now far larger than the child
        child = [sys.executable, "-c", "pass"]
        direct = subprocess.Popen(child)
        _, _, usage = os.wait4(direct.pid, 0)
        assert usage.ru_maxrss * 1024 > 200 * MiB, "a child started from here shows our size"
        done = ask(launcher, child)
        assert done["returncode"] == 0
        assert 0 < done["peak_rss_kib"] * 1024 < 64 * MiB
        del big
    finally:
        launcher.stdin.close()
        assert launcher.wait(30) == 0  # and it ends at the end of its input


def test_memory_cpu_status_and_errors_are_the_childs() -> None:
    launcher = start()
    try:
        grow = ("import sys; data = bytearray(96 * 1024 * 1024); sys.stdin.read(); "
                "sys.stderr.write('went wrong\\n'); sys.exit(3)")
        done = ask(launcher, [sys.executable, "-c", grow], stdin="some input")
        assert done["returncode"] == 3
        assert done["stderr"] == "went wrong\n"
        assert done["peak_rss_kib"] * 1024 > 96 * MiB
        assert done["wall_s"] > 0 and done["cpu_s"] > 0
        missing = ask(launcher, ["/nonexistent/tool"])
        assert missing["returncode"] == 127
        assert "cannot run /nonexistent/tool" in missing["stderr"]
        assert ask(launcher, [sys.executable, "-c", "pass"])["returncode"] == 0  # still serving
    finally:
        launcher.stdin.close()
        launcher.wait(30)

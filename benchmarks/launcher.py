"""Runs the commands bench.py measures, from a process that stays small.

A child's peak memory as wait4 reports it (``ru_maxrss``) is never less than
the memory of the process that started it: Python starts children with vfork,
so until exec the child runs in its parent's memory and inherits its peak.
bench.py grows as it runs (it reads the emulator's request log, tens of
thousands of entries after the syncs of many files), and every tool it
started itself would show at least bench.py's size. This launcher is started
while bench.py is small, imports little and holds one command's error output
at most, so the floor it puts under every figure stays at about 10 MiB.

Reads one JSON object a line on stdin, ``{"argv": [...], "env": {...},
"cwd": "...", "stdin": "..."}``; runs it with its output to /dev/null and
answers one JSON line, ``{"wall_s", "peak_rss_kib", "cpu_s", "returncode",
"stderr"}``; ends at the end of its input.

    python benchmarks/launcher.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def run(job: dict) -> dict:
    """Wall seconds, peak RSS (KiB), CPU seconds (user + system), status and stderr of one run."""
    began = time.perf_counter()
    try:
        proc = subprocess.Popen(job["argv"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=job["env"], cwd=job["cwd"])
    except OSError as err:
        return {"wall_s": 0.0, "peak_rss_kib": 0, "cpu_s": 0.0, "returncode": 127,
                "stderr": f"cannot run {job['argv'][0]}: {err.strerror}\n"}
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(job["stdin"].encode())
    proc.stdin.close()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    return {"wall_s": wall, "peak_rss_kib": usage.ru_maxrss,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "returncode": os.waitstatus_to_exitcode(status),
            "stderr": err.decode(errors="replace")}


def main() -> None:
    for line in sys.stdin:
        print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()

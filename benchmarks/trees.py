"""bench.py's cases that each run on an emulator of their own: trees, and a gateway that says
slow down (issue 25).

- trees: trees of files of 100 bytes, 100 a directory (the shape issue 25
  measured), every tool straight to the emulator: the first sync up into an
  empty bucket, the same command again with nothing changed (the unchanged
  re-sync, whose first run of the same command, untimed in the direct-all
  table, is here the sync up before it, timed as a case of its own), and a
  sync down from export-bucket into an empty directory. What counts is how
  each tool's memory and time grow with the tree.
- slow-down: tsd-s3cmd's sync up of 2,000 files of 1 KiB to an emulator that
  answers S3's 503 SlowDown to a request arriving while 8 are in flight, as
  an overloaded gateway does: every file must be stored, with few SlowDowns.

Every tool's every round on a tree gets an emulator of its own, started for
it (untimed) with the tree in its export-bucket: ``--export-dir`` loads it
in-process at start-up, seconds for 200,000 files where an upload through S3
would take many minutes. So every timed run finds the same server, and the
request log that checks it holds that round alone: one emulator for a whole
table would keep millions of log entries at 200,000 files, gigabytes, and
hand them all over at every check. A tree's files are made once per size and
kept for all its runs, so that whatever a tool keeps between runs (tsd-s3cmd's
MD5 cache) is there from its second round on, as in a user's home.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from common import (
    TOOL_NAMES,
    Launcher,
    Sample,
    Target,
    medians,
    round_order,
    sync_commands,
    tool_figures,
)

TREE_SIZES = (10_000, 60_000, 200_000)
QUICK_TREE_SIZES = (40, 120)  # the first two stand for 10,000 and 60,000 in the targets
FILE_SIZE = 100
PER_DIRECTORY = 100
CASES = {"sync-up": "first sync up", "resync": "unchanged re-sync", "sync-down": "sync down"}
SLOW_DOWN_ABOVE = 8
SLOW_DOWN_BUCKET = "slow-down"
SLOW_DOWN_LINK_RATE = 20_000  # bytes a second on each connection, each way


def tree_targets(quick: bool) -> list[Target]:
    """Issue 25's targets for the tree of 60,000 files (in --quick, its stand-in)."""
    small, large = (QUICK_TREE_SIZES if quick else TREE_SIZES)[:2]
    return [
        Target("trees", f"sync-up-{large}", "tsd/aws", 1.00, 25),
        Target("trees", f"resync-{large}", f"tsd_memory_vs_{small}", 1.25, 25,
               label=f"peak memory tsd, {large:,} / {small:,} files"),
        Target("trees", f"resync-{large}", "tsd/aws_memory", 1.00, 25),
        Target("trees", f"sync-down-{large}", "tsd/aws", 1.00, 25),
        Target("trees", f"sync-down-{large}", "tsd/aws_memory", 1.00, 25),
    ]


def slow_down_targets(files: int) -> list[Target]:
    """Issue 25's: exit 0, every file stored, at most one SlowDown in 10 files (200 of 2,000)."""
    return [
        Target("slow-down", "sync-up", "returncode", 0, 25, label="exit status", digits=0),
        Target("slow-down", "sync-up", "missing", 0, 25, label="files not stored", digits=0),
        Target("slow-down", "sync-up", "slow_downs", files // 10, 25, label="SlowDowns met",
               digits=0),
    ]


def make_tree(root: Path, files: int) -> Path:
    """``files`` files of 100 random bytes under ``root``, 100 a directory: d0000/f00.txt, ..."""
    for first in range(0, files, PER_DIRECTORY):
        directory = root / f"d{first // PER_DIRECTORY:04d}"
        directory.mkdir(parents=True)
        for i in range(first, min(first + PER_DIRECTORY, files)):
            (directory / f"f{i % PER_DIRECTORY:02d}.txt").write_bytes(os.urandom(FILE_SIZE))
    return root


def uploads(log: list[dict], bucket: str, since: float = 0.0,
            before: float = float("inf")) -> list[dict]:
    """The requests that the log shows writing an object into ``bucket`` between two times.
    Every file here is far below any tool's threshold for parts, so a PUT is one file."""
    return [e for e in log
            if e["kind"] == "s3" and since <= e["time"] < before
            and e["method"] in ("PUT", "POST")
            and e["path"].startswith(f"/{bucket}/") and e["path"] != f"/{bucket}/"]


def stored(log: list[dict], bucket: str, before: float = float("inf")) -> int:
    """How many objects the log shows stored into ``bucket`` (a key sent again counts once)."""
    return len({e["path"] for e in uploads(log, bucket, before=before)
                if e["method"] == "PUT" and e["status"] == 200})


class Trees:
    """Runs the trees and the slow-down case through ``bench``'s launcher and emulators."""

    def __init__(self, bench: Launcher, tools: Sequence[str]) -> None:
        self.bench = bench
        self.tools = tools

    def measure(self, sizes: Sequence[int],
                rounds: Callable[[int], int]) -> dict[str, dict[str, list[Sample]]]:
        """Every size, ``rounds(size)`` rounds, every tool in turn; by case (``resync-60000``)."""
        results: dict[str, dict[str, list[Sample]]] = {}
        for files in sizes:
            tree = make_tree(self.bench.root / f"tree-{files}", files)
            by_case: dict[str, dict[str, list[Sample]]] = {
                kind: {tool: [] for tool in self.tools} for kind in CASES}
            for round_ in range(1, rounds(files) + 1):
                for tool in round_order(self.tools, round_):
                    for kind, sample in self.run(tool, tree, files, round_).items():
                        by_case[kind][tool].append(sample)
                    print(f"  trees {files:,} files, round {round_}, {TOOL_NAMES[tool]}: done",
                          file=sys.stderr)
            shutil.rmtree(tree)
            results.update((f"{kind}-{files}", by_case[kind]) for kind in CASES)
        return results

    def run(self, tool: str, tree: Path, files: int, round_: int) -> dict[str, Sample]:
        """One tool's sync up, re-sync and sync down of a tree, each checked to have moved
        every file (the re-sync: none), on an emulator of their own."""
        bench = self.bench
        run_id = f"tree-{files}-{tool}-{round_}"
        down = bench.root / f"down-{run_id}"
        down.mkdir()
        proc, via = bench.start_emulator("tree", "--export-dir", str(tree))
        try:
            bench.admin("mb", f"s3://{run_id}", via=via)
            up = sync_commands(tree, run_id, True, via.remote)[tool]
            # What the last turn left to write (a tree made, a download deleted) is
            # flushed now, not left to slow this one.
            os.sync()
            samples = {"sync-up": bench.run(tool, *up, via=via)}
            began = time.time()
            samples["resync"] = bench.run(tool, *up, via=via)
            log = bench.requests_log(via)
            counts = [(stored(log, run_id, before=began), files, "files stored by the sync up"),
                      (len(uploads(log, run_id, since=began)), 0,
                       "uploads on a second sync with nothing changed")]
            del log  # up to 200,000 entries: not kept through the sync down
            samples["sync-down"] = bench.run(
                tool, *sync_commands(down, "export-bucket", False, via.remote)[tool], via=via)
        finally:
            bench.stop_process(proc)
        counts.append((sum(1 for path in down.rglob("*") if path.is_file()), files,
                       "files synced down"))
        shutil.rmtree(down)
        for got, wanted, what in counts:
            if got != wanted:
                raise SystemExit(f"bench.py: {TOOL_NAMES[tool]}: {got:,} {what}, not "
                                 f"{wanted:,} (run {run_id})")
        return samples

    def slow_down(self, files_dir: Path, files: int) -> dict:
        """tsd-s3cmd's sync up of ``files_dir`` to a gateway that says slow down over 8
        requests at once: its exit status, the files stored and the SlowDowns it met."""
        bench = self.bench
        proc, via = bench.start_emulator("slowdown", "--slow-down-above", str(SLOW_DOWN_ABOVE))
        try:
            bench.admin("mb", f"s3://{SLOW_DOWN_BUCKET}", via=via)
            # Each 1 KiB body takes 50 ms to arrive, as over a link with some distance:
            # served at once, as on an idle loopback, requests end before the ninth begins
            # and the gateway never has to say slow down, which would measure nothing.
            bench.change(via, link_rate=SLOW_DOWN_LINK_RATE)
            args = sync_commands(files_dir, SLOW_DOWN_BUCKET, True, via.remote)["tsd"]
            (wall, rss, cpu), returncode, stderr = bench.run_status("tsd", *args, via=via)
            log = bench.requests_log(via)
        finally:
            bench.stop_process(proc)
        print("  slow-down: done", file=sys.stderr)
        kept = stored(log, SLOW_DOWN_BUCKET)
        return {
            "files": files, "returncode": returncode, "stored": kept, "missing": files - kept,
            "slow_downs": sum(1 for e in log if e["kind"] == "s3" and e["status"] == 503),
            "wall_s": round(wall, 4), "peak_rss_mib": round(rss / 1024, 1),
            "cpu_s": round(cpu, 4),
            # Why it failed, where it did: the end of what it said.
            "stderr_tail": stderr.splitlines()[-20:] if returncode else [],
        }


def report_trees(results: dict[str, dict[str, list[Sample]]]) -> dict:
    """Each tool's wall time and peak memory in every case, as issue 25 shows them; the JSON
    adds tsd-s3cmd's ratios to each other tool and the growth of its re-sync's memory."""
    cases: dict = {}
    sizes = sorted({int(name.rsplit("-", 1)[1]) for name in results})
    for name, by_tool in results.items():
        case: dict = {"files": int(name.rsplit("-", 1)[1]), "runs": len(by_tool["tsd"])}
        for tool, samples in by_tool.items():
            case[tool] = tool_figures(samples)
        for tool in by_tool:
            if tool != "tsd":
                case[f"tsd/{tool}"] = round(case["tsd"]["wall_s"] / case[tool]["wall_s"], 3)
                case[f"tsd/{tool}_memory"] = round(
                    case["tsd"]["peak_rss_mib"] / case[tool]["peak_rss_mib"], 3)
        cases[name] = case
    base = f"resync-{sizes[0]}"
    for files in sizes[1:]:
        growth = medians(results[f"resync-{files}"]["tsd"])[1] / medians(results[base]["tsd"])[1]
        cases[f"resync-{files}"][f"tsd_memory_vs_{sizes[0]}"] = round(growth, 3)
    tools = list(next(iter(results.values())))
    runs = ", ".join(f"{files:,} files: {cases[f'resync-{files}']['runs']}" for files in sizes)
    print(f"\nTrees of files of {FILE_SIZE} bytes, {PER_DIRECTORY} a directory, every tool "
          f"straight to an emulator of its own: medians of rounds ({runs}), the order rotating; "
          "wall time, peak memory\n")
    print("| tree | " + " | ".join(TOOL_NAMES[tool] for tool in tools) + " |")
    print("|---" * (len(tools) + 1) + "|")
    for name, case in cases.items():
        kind = name.rsplit("-", 1)[0]
        print(f"| {case['files']:,}: {CASES[kind]} | "
              + " | ".join(f"{case[tool]['wall_s']:.2f} s, {case[tool]['peak_rss_mib']:.0f} MiB"
                           for tool in tools) + " |")
    return cases


def report_slow_down(case: dict) -> dict:
    """The slow-down case in one row (and, if tsd-s3cmd failed, the end of what it said)."""
    print(f"\nGateway that says slow down (--slow-down-above {SLOW_DOWN_ABOVE}): tsd-s3cmd's "
          f"sync up of {case['files']:,} files of 1 KiB, straight to the emulator, its "
          f"connections {SLOW_DOWN_LINK_RATE // 1000} kB/s each\n")
    print("| case | exit status | files stored | SlowDowns met | wall time | peak memory |")
    print("|---|---|---|---|---|---|")
    print(f"| sync-up | {case['returncode']} | {case['stored']:,} of {case['files']:,} | "
          f"{case['slow_downs']:,} | {case['wall_s']:.2f} s | {case['peak_rss_mib']:.0f} MiB |")
    if case["stderr_tail"]:
        print("\ntsd-s3cmd said, at the end:\n\n" + "\n".join(
            f"    {line}" for line in case["stderr_tail"]))
    return {"sync-up": case}

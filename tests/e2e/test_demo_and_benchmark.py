"""The README's first command and the benchmark's quick mode, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.slow
def test_benchmark_quick_mode_reports_every_case(clean_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--rounds", "1",
         "--json", str(out)],
        capture_output=True, text=True, env=clean_env, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(out.read_text())
    assert set(summary["cases"]) == {"ls", "put", "get", "sync"}
    for case in summary["cases"].values():
        assert case["wall_ratio"] > 0 and case["memory_ratio"] > 0
    assert summary["auth_api_calls_in_20_commands"] == 0
    assert "| ls |" in result.stdout

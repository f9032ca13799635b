"""tsd-s3cmd against plain s3cmd, side by side, in one run.

Starts a local emulator with ``--no-token-check`` so that plain s3cmd (which
cannot send TSD's headers on every request) is served too, logs tsd-s3cmd in
once, then runs each case with both tools against the same server,
alternating A B B A after a warm-up, and prints medians and ratios
(tsd-s3cmd / s3cmd). The two differ only by the wrapper: same Python, same
s3cmd, same server, same files.

    python benchmarks/bench.py            # the full run (256 MiB files, 10 rounds)
    python benchmarks/bench.py --quick    # a CI-sized check, under a minute

Results also go to benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
MiB = 1024 * 1024
CREDENTIALS = "p11-demo\ndemo-password\n123456\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


class Bench:
    def __init__(self, root: Path, quick: bool) -> None:
        self.root = root
        self.quick = quick
        self.home = root / "home"
        self.home.mkdir()
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "AWS_CA_BUNDLE", "TSD_S3CMD_TOKEN")
        }
        self.env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"))
        self.env["XDG_CACHE_HOME"] = str(self.home / ".cache")
        self.size = (32 if quick else 256) * MiB
        self.files = 100 if quick else 500
        self.emulator: subprocess.Popen | None = None

    # -- set-up ----------------------------------------------------------------

    def start(self) -> None:
        export = self.root / "export"
        export.mkdir()
        with open(export / "big.bin", "wb") as f:
            for _ in range(self.size // MiB):
                f.write(os.urandom(MiB))
        shutil.copy(export / "big.bin", self.root / "big.bin")
        small = self.root / "small"
        small.mkdir()
        for i in range(self.files):
            (small / f"file-{i:04d}.txt").write_bytes(os.urandom(1024 + i))
        self.emulator = subprocess.Popen(
            [
                str(BIN / "tsd-s3cmd-emulator"),
                "--port",
                "0",
                "--no-token-check",
                "--write-s3cfg",
                str(self.home / ".s3cfg"),
                "--export-dir",
                str(export),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )
        assert self.emulator.stdout is not None
        ready, _, _ = select.select([self.emulator.stdout], [], [], 120)
        if not ready:
            raise SystemExit("the emulator did not start")
        line = self.emulator.stdout.readline().decode().strip()
        self.url = line.rsplit(" ", 1)[1]
        self.env["TSD_API_URL"] = self.url
        self.run("tsd", "--register", "--env", "prod", stdin=CREDENTIALS)
        self.run("tsd", "mb", "s3://bench", stdin=CREDENTIALS)  # logs in for import
        self.run("tsd", "ls", "s3://export-bucket", stdin=CREDENTIALS)  # and for export
        self.run("s3cmd", "put", str(small / "file-0000.txt"), "s3://bench/listed/")

    def stop(self) -> None:
        if self.emulator and self.emulator.poll() is None:
            self.emulator.send_signal(signal.SIGTERM)
            self.emulator.wait(30)

    def auth_calls(self) -> int:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/_emulator/requests", timeout=30) as r:
            return sum(1 for e in json.load(r) if e["kind"] == "auth")

    # -- measuring ---------------------------------------------------------------

    def run(self, tool: str, *args: str, stdin: str = "") -> tuple[float, int, float]:
        """Wall seconds, peak RSS (KiB) and CPU seconds of one run; fails loudly on error."""
        program = str(BIN / ("tsd-s3cmd" if tool == "tsd" else "s3cmd"))
        began = time.perf_counter()
        proc = subprocess.Popen(
            [program, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.root,
        )
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write(stdin.encode())
        proc.stdin.close()
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{tool} {' '.join(args)} failed:\n{err.decode()}")
        return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime

    def cases(self) -> dict[str, tuple[list[str], list[str]]]:
        """Each case: an untimed preparation (run with s3cmd) and the timed command."""
        chunk = "--multipart-chunk-size-mb=16"
        return {
            "ls": ([], ["ls", "s3://bench/listed/"]),
            "put": ([], [chunk, "put", str(self.root / "big.bin"), "s3://bench/big.bin"]),
            "get": ([], ["get", "--force", "s3://export-bucket/big.bin", str(self.root / "got")]),
            # A fresh bucket per run: moto lists a prefix by walking the whole bucket,
            # so syncing into one bucket again and again would slow every later run.
            "sync": (["mb", "s3://sync-{run}"], ["sync", f"{self.root / 'small'}/", "s3://sync-{run}/"]),
        }

    def measure(self, rounds: int) -> dict[str, dict[str, list[tuple[float, int, float]]]]:
        """Run each case A B B A A B ... after a warm-up pair, so drift hits both tools alike."""
        results: dict[str, dict[str, list[tuple[float, int, float]]]] = {}
        for name, (prepare, args) in self.cases().items():
            results[name] = {"tsd": [], "s3cmd": []}
            for round_ in range(rounds + 1):  # round 0 is the warm-up
                for tool in ("tsd", "s3cmd") if (round_ - 1) % 4 in (0, 3) else ("s3cmd", "tsd"):
                    run_id = f"{tool}-{round_}"
                    if prepare:
                        self.run("s3cmd", *(a.replace("{run}", run_id) for a in prepare))
                    sample = self.run(tool, *(a.replace("{run}", run_id) for a in args))
                    if round_:
                        results[name][tool].append(sample)
            print(f"  {name}: done", file=sys.stderr)
        return results

    def session_auth_calls(self) -> int:
        """Auth API calls during 20 mixed commands with a cached login (the original: 20)."""
        before = self.auth_calls()
        small = self.root / "small"
        commands = [
            ["ls", "s3://bench/listed/"],
            ["put", str(small / "file-0001.txt"), "s3://bench/session/"],
            ["get", "--force", "s3://export-bucket/big.bin", str(self.root / "s.bin")],
            ["info", "s3://bench/listed/file-0000.txt"],
            ["del", "s3://bench/session/file-0001.txt"],
        ] * 4
        for args in commands:
            self.run("tsd", *args)
        return self.auth_calls() - before


def report(results: dict, auth_calls: int, quick: bool) -> dict:
    size_mib = (32 if quick else 256)
    rows = []
    summary: dict = {"machine": machine(), "quick": quick, "cases": {}}
    for name, by_tool in results.items():
        tsd_wall = statistics.median(t for t, _, _ in by_tool["tsd"])
        s3_wall = statistics.median(t for t, _, _ in by_tool["s3cmd"])
        tsd_rss = statistics.median(m for _, m, _ in by_tool["tsd"]) / 1024
        s3_rss = statistics.median(m for _, m, _ in by_tool["s3cmd"]) / 1024
        tsd_cpu = statistics.median(c for _, _, c in by_tool["tsd"])
        s3_cpu = statistics.median(c for _, _, c in by_tool["s3cmd"])
        case = {
            "runs": len(by_tool["tsd"]),
            "tsd_wall_s": round(tsd_wall, 4),
            "s3cmd_wall_s": round(s3_wall, 4),
            "wall_ratio": round(tsd_wall / s3_wall, 3),
            "tsd_peak_rss_mib": round(tsd_rss, 1),
            "s3cmd_peak_rss_mib": round(s3_rss, 1),
            "memory_ratio": round(tsd_rss / s3_rss, 3),
            "tsd_cpu_s": round(tsd_cpu, 4),
            "s3cmd_cpu_s": round(s3_cpu, 4),
            "cpu_ratio": round(tsd_cpu / s3_cpu, 3),
            # Every run in order, so the spread behind each median can be seen.
            "tsd_wall_samples": [round(t, 4) for t, _, _ in by_tool["tsd"]],
            "s3cmd_wall_samples": [round(t, 4) for t, _, _ in by_tool["s3cmd"]],
        }
        if name in ("put", "get"):
            case["tsd_mib_per_s"] = round(size_mib / tsd_wall, 1)
            case["s3cmd_mib_per_s"] = round(size_mib / s3_wall, 1)
            case["throughput_ratio"] = round(s3_wall / tsd_wall, 3)
        summary["cases"][name] = case
        measure = (
            f"throughput {case['tsd_mib_per_s']} vs {case['s3cmd_mib_per_s']} MiB/s, "
            f"ratio {case['throughput_ratio']}"
            if "throughput_ratio" in case
            else f"wall ratio {case['wall_ratio']}"
        )
        rows.append(
            f"| {name} | {tsd_wall:.3f} s | {s3_wall:.3f} s | {measure} | "
            f"{tsd_rss:.1f} / {s3_rss:.1f} MiB ({case['memory_ratio']}) | "
            f"{tsd_cpu:.3f} / {s3_cpu:.3f} s ({case['cpu_ratio']}) |"
        )
    summary["auth_api_calls_in_20_commands"] = auth_calls
    print(f"\nMachine: {summary['machine']}")
    rounds = len(results["ls"]["tsd"])
    print(f"Medians of {rounds} alternating rounds after a warm-up ({size_mib} MiB files); "
          "ratio = tsd-s3cmd / s3cmd\n")
    print("| case | tsd-s3cmd | s3cmd | ratio | peak memory tsd / s3cmd | client CPU tsd / s3cmd |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nAuth API calls over 20 mixed commands with a cached login: {auth_calls} "
          "(the original tsd-s3cmd: 20 logins)")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small files, few rounds")
    parser.add_argument("--rounds", type=int, default=None, help="measured rounds per case")
    default_json = Path(__file__).parent / "results" / "latest.json"
    parser.add_argument("--json", type=Path, default=default_json, help="where the JSON goes")
    options = parser.parse_args()
    rounds = options.rounds or (4 if options.quick else 10)
    with tempfile.TemporaryDirectory(prefix="tsd-bench-") as tmp:
        bench = Bench(Path(tmp), options.quick)
        try:
            bench.start()
            results = bench.measure(rounds)
            auth_calls = bench.session_auth_calls()
        finally:
            bench.stop()
    summary = report(results, auth_calls, options.quick)
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nWritten to {options.json}")


if __name__ == "__main__":
    main()

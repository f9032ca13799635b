"""Fixtures shared by the whole suite, and the marks every test must get right.

Every test that touches the outside world gets it from here: a private HOME
and config directory, a clean environment (this machine exports CA bundle
variables that the tests must not depend on), and a ``tsd-s3cmd-emulator``
listening on a free port (forked from a helper that has it imported already:
tests/forked_emulators.py says why and how).

Marks (registered in pyproject.toml):

``@pytest.mark.s3cmd``: the test runs s3cmd's code: a process it starts
(tsd-s3cmd, plain s3cmd, the benchmark) imports s3cmd's ``S3`` package, or its
module imports ``S3`` or ``tsd_s3cmd.bridge.shim`` itself. Nobody has to
guess: every process the tests start notes when it imports ``S3``
(s3cmd_watch/), and a passing test fails at teardown when it is marked and
ran no s3cmd code, or ran some and is not marked. Mark a module whose tests
all run s3cmd with ``pytestmark = pytest.mark.s3cmd``, a test or a
parametrized case otherwise.

``@pytest.mark.versions``: the test covers what differs between s3cmd
releases: the shim's start-up check of every hook point, each of s3cmd's
transfer loops that tsd-s3cmd rewrites, every s3cmd command once, and
interrupts and resume. The test command runs these a second time with s3cmd
2.3.0 (``-m versions``), side by side. Such a test must be marked ``s3cmd``
too (so the check above proves it runs s3cmd's code) and not ``apart``;
collection stops and says so otherwise.

``@pytest.mark.apart``: the test cannot share the machine with other tests:
it bounds a time from above, starts many processes that must contend, or has
failed when the machine was busy for reasons not yet understood. The test
command runs the suite with pytest-xdist, several tests at once, but without
these (``-m "not apart"``); then these alone, one after another, without
xdist (``-m apart``). Each costs its whole run time in wall time, so first
try to make a test independent of load (wait for a condition, not a time);
most tests need nothing, as each has its own HOME, config dir and emulator.
Slow tests (``@pytest.mark.slow``) are started first, so that their waiting
overlaps the short tests.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

import pytest
from hypothesis import settings

from .forked_emulators import EmulatorForks, ForkedEmulator

Process = Union[subprocess.Popen, ForkedEmulator]

# Hypothesis fails an example that takes longer than 200 ms by default: on a
# busy machine (six tests at once, another job on the core) a correct example
# can, and the test then fails for the clock's sake. No deadline: what the
# properties assert is what a command line means, not how fast it is read.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")
BIN = Path(sys.executable).parent
S3CMD_WATCH = Path(__file__).parent / "s3cmd_watch"  # its sitecustomize.py notes S3 imports
S3CMD_TRACE = "TESTS_S3CMD_TRACE"

# Variables that would let a test pass only on a machine that happens to set them.
_SCRUBBED = (
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "AWS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "S3CMD_CONFIG",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "TSD_API_URL",
    "TSD_S3CMD_TOKEN",
    "TSD_S3CMD_MD5_CACHE",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
)


@dataclass
class Emulator:
    """A running emulator process and the ways tests look inside it."""

    url: str
    process: Process
    s3cfg: Path
    ca: Path | None = None
    extra: dict = field(default_factory=dict)

    def _get(self, path: str) -> bytes:
        ctx = None
        if self.url.startswith("https"):
            import ssl

            ctx = ssl.create_default_context(cafile=str(self.ca))
        with urllib.request.urlopen(self.url + path, timeout=30, context=ctx) as resp:
            return resp.read()

    def _post(self, path: str, body: dict) -> dict:
        ctx = None
        if self.url.startswith("https"):
            import ssl

            ctx = ssl.create_default_context(cafile=str(self.ca))
        req = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
            return json.loads(resp.read() or b"{}")

    def log(self) -> list[dict]:
        """Every request the emulator has served, in order."""
        return json.loads(self._get("/_emulator/requests"))

    def s3_log(self) -> list[dict]:
        return [entry for entry in self.log() if entry["kind"] == "s3"]

    def in_flight(self) -> int:
        """The S3 requests the emulator is serving now."""
        return json.loads(self._get("/_emulator/in-flight"))["s3"]

    def object(self, bucket: str, key: str, project: str = "p11") -> bytes | None:
        """The stored bytes of a project's object, or None if there is none."""
        from urllib.error import HTTPError
        from urllib.parse import quote

        try:
            return self._get(f"/_emulator/objects/{quote(bucket)}/{quote(key)}?project={project}")
        except HTTPError as err:
            if err.code == 404:
                return None
            raise

    def place(self, project: str, bucket: str, key: str, data: bytes) -> None:
        """Put a file into a project's bucket as from inside TSD (export-bucket's folder)."""
        from urllib.parse import quote

        url = f"{self.url}/_emulator/objects/{quote(bucket)}/{quote(key)}?project={project}"
        request = urllib.request.Request(url, data=data, method="PUT")
        urllib.request.urlopen(request, timeout=30).close()

    def keys(self, pnum: str) -> dict:
        """A project's S3 access and secret key."""
        return json.loads(self._get(f"/_emulator/projects/{pnum}"))

    def s3cfg_for(self, pnum: str, path: Path) -> Path:
        """A copy of the written s3cfg with ``pnum``'s keys, as that project's users have."""
        keys = self.keys(pnum)
        lines = [
            f"access_key = {keys['access_key']}" if line.startswith("access_key") else
            f"secret_key = {keys['secret_key']}" if line.startswith("secret_key") else line
            for line in self.s3cfg.read_text().splitlines()
        ]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path

    def faults(self, **body) -> dict:
        return self._post("/_emulator/faults", body)

    def settings(self, **body) -> dict:
        return self._post("/_emulator/settings", body)

    def export_group(self, user: str, member: bool = True, project: str = "p11") -> dict:
        """Put ``user`` into the project's export group, or take them out, as its admin does."""
        body = {"user": user, "member": member}
        return self._post(f"/_emulator/export-group?project={project}", body)


def _read_line(proc: Process, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([proc.stdout], [], [], remaining)[0]:
            raise RuntimeError(f"emulator did not start in {timeout}s")
        chunk = os.read(proc.stdout.fileno(), 1)
        if not chunk:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"emulator exited: {err}")
        line += chunk
    return line.decode().strip()


def closed_port() -> int:
    """A local port that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_COMPILED: list[Path] = []


def compiled_script() -> Path:
    """s3cmd's script as tsd-s3cmd compiles and caches it, made once per test process.

    Every test has a new HOME, so every test's first tsd-s3cmd run would
    compile s3cmd's 3,700 lines (and rewrite its transfer loops) again: a
    tenth of a second of CPU, hundreds of times a pass. ``private_env`` puts
    this copy where that run looks for it. tests/e2e/test_cli.py runs with
    none, and checks what the first run makes.
    """
    if not _COMPILED:
        from tsd_s3cmd.bridge import script

        made = Path(tempfile.mkdtemp(prefix="tsd-s3cmd-code-"))
        script.load(made)
        _COMPILED.extend(made.glob("s3cmd-*.code"))
    return _COMPILED[0]


@pytest.fixture
def code_cache() -> Path:
    """A cache directory with s3cmd's script compiled, for code that reads command lines
    in the test's own process: each parse need not compile the script again."""
    return compiled_script().parent


def private_env(root: Path, compiled: bool = True) -> dict[str, str]:
    """An environment with a HOME under ``root``, its own config dir, and no CA variables.

    ``compiled``: s3cmd's script is in HOME's cache already (see ``compiled_script``).
    """
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    home = root / "home"
    home.mkdir()
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env["LANG"] = env["LC_ALL"] = "C.UTF-8"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    if compiled:
        cache = home / ".cache" / "tsd-s3cmd"
        cache.mkdir(mode=0o700, parents=True)
        code = compiled_script()
        shutil.copyfile(code, cache / code.name)
        (cache / code.name).chmod(0o600)
    return env


FORKS = EmulatorForks()
_STOPPING: list[Process] = []  # emulators told to stop, not yet seen to have stopped


def launch_emulator(
    env: dict[str, str], s3cfg: Path, *args: str, ca: Path | None = None, forked: bool = True
) -> Emulator:
    """Start ``tsd-s3cmd-emulator --port 0`` and wait for its listening line.

    ``forked``: from this process's helper, which has the emulator imported
    already (tests/forked_emulators.py); otherwise the console script itself.
    """
    argv = ["--port", "0", "--write-s3cfg", str(s3cfg)]
    if ca is not None:
        argv += ["--tls", "--ca-out", str(ca)]
    argv += args
    proc: Process
    if forked:
        proc = FORKS.launch(argv, env, os.getcwd())
    else:
        proc = subprocess.Popen(
            [str(BIN / "tsd-s3cmd-emulator"), *argv],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
    try:
        line = _read_line(proc, timeout=60)
    except BaseException:
        stop_emulator(proc)
        raise
    prefix = "TSD emulator listening on "
    assert line.startswith(prefix), line
    return Emulator(url=line[len(prefix) :], process=proc, s3cfg=s3cfg, ca=ca)


def stop_emulator(proc: Process) -> None:
    """Tell an emulator to stop; see it stopped later (:func:`reap_emulators`).

    It takes a few tenths of a second to stop, and no test needs to wait for that.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _STOPPING.append(proc)
    reap_emulators(wait=False)


def reap_emulators(wait: bool) -> None:
    """Forget the emulators that have stopped; with ``wait``, all of them (killed after 10 s)."""
    for proc in list(_STOPPING):
        if wait or proc.poll() is not None:
            stop_process(proc)
            _STOPPING.remove(proc)


def stop_process(proc: Process) -> None:
    """SIGTERM, and wait for the process to end (SIGKILL after 10 s); close its pipes."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    reap_emulators(wait=True)
    FORKS.close()


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """An environment with a private HOME and config dir and no CA variables."""
    return private_env(tmp_path)


def _emulators(
    tmp_path: Path, env: dict[str, str], forked: bool
) -> Iterator[Callable[..., Emulator]]:
    running: list[Process] = []

    def start(*args: str, s3cfg: Path | None = None, ca: Path | None = None) -> Emulator:
        s3cfg = s3cfg or tmp_path / f"emulator-{len(running)}.s3cfg"
        emulator = launch_emulator(env, s3cfg, *args, ca=ca, forked=forked)
        running.append(emulator.process)
        return emulator

    yield start
    for proc in running:
        stop_emulator(proc)


@pytest.fixture
def start_emulator(tmp_path: Path, clean_env: dict[str, str]) -> Iterator[Callable[..., Emulator]]:
    """Start ``tsd-s3cmd-emulator --port 0`` with extra arguments; stopped at teardown."""
    yield from _emulators(tmp_path, clean_env, forked=True)


@pytest.fixture
def start_emulator_process(
    tmp_path: Path, clean_env: dict[str, str]
) -> Iterator[Callable[..., Emulator]]:
    """As ``start_emulator``, but each a process of the console script (not forked)."""
    yield from _emulators(tmp_path, clean_env, forked=False)


@pytest.fixture
def emulator(start_emulator: Callable[..., Emulator], tmp_path: Path) -> Emulator:
    """An emulator with a few files in p11's export-bucket."""
    export = tmp_path / "export"
    (export / "sub dir").mkdir(parents=True)
    (export / "results.csv").write_bytes(b"id,value\n1,42\n")
    (export / "sub dir" / "r\u00e9sum\u00e9 notes.txt").write_text("export me\n", encoding="utf-8")
    emu = start_emulator("--export-dir", str(export))
    emu.extra["export_dir"] = export
    return emu


# --- Order, and which tests run apart --------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow tests first: under pytest-xdist they then wait while the short ones run.

    And a ``versions`` test is an ``s3cmd`` test that can run side by side.
    """
    wrong = [
        item.nodeid
        for item in items
        if item.get_closest_marker("versions")
        and (not item.get_closest_marker("s3cmd") or item.get_closest_marker("apart"))
    ]
    if wrong:
        raise pytest.UsageError(
            "marked versions but not s3cmd, or also apart (the s3cmd 2.3.0 pass runs "
            f"its tests side by side, and only tests that run s3cmd's code): {', '.join(wrong)}"
        )
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# --- Which tests run s3cmd's code -------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Every process the tests start notes, in this process's own folder, when it imports S3.

    And each keeps what it compiles, as Python does by default: where the
    environment sets PYTHONDONTWRITEBYTECODE (this machine's does), each of the
    thousand tsd-s3cmd runs would compile tsd-s3cmd's modules again.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ[S3CMD_TRACE] = tempfile.mkdtemp(prefix="tsd-s3cmd-tests-s3cmd-trace-")
    path = os.environ.get("PYTHONPATH", "")
    if str(S3CMD_WATCH) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(S3CMD_WATCH), path)))


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.pop(S3CMD_TRACE), ignore_errors=True)


_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


def _imports_s3cmd(module: object) -> bool:
    """The test module itself uses s3cmd's code: S3, or the shim that runs it in-process."""
    return any(
        (getattr(value, "__name__", None) if isinstance(value, type(sys)) else
         getattr(value, "__module__", None) or "").split(".")[0] == "S3"
        or getattr(value, "__name__", None) == "tsd_s3cmd.bridge.shim"
        for value in vars(module).values()
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _s3cmd_mark_is_right(request: pytest.FixtureRequest) -> Iterator[None]:
    """A passing test is marked ``s3cmd`` exactly when it ran s3cmd's code."""
    trace = Path(os.environ[S3CMD_TRACE])
    before = set(trace.iterdir())
    yield
    report = request.node.stash.get(_CALL_REPORT, None)
    if report is None or not report.passed:
        return
    ran = set(trace.iterdir()) != before or _imports_s3cmd(request.module)
    marked = request.node.get_closest_marker("s3cmd") is not None
    if ran and not marked:
        pytest.fail(
            "this test runs s3cmd's code (a process it started imported s3cmd's S3 package, "
            "or its module imports S3 or tsd_s3cmd.bridge.shim) but is not marked s3cmd: "
            "add @pytest.mark.s3cmd (or pytestmark = pytest.mark.s3cmd for the whole module) "
            "so that the s3cmd 2.3.0 pass runs it too",
            pytrace=False,
        )
    if marked and not ran:
        pytest.fail(
            "this test is marked s3cmd but runs none of s3cmd's code: take the mark off "
            "(the s3cmd 2.3.0 pass need not run it again)",
            pytrace=False,
        )

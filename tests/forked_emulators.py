"""Emulators forked from one process that has already imported the emulator.

A ``tsd-s3cmd-emulator`` process spends about 0.7 s of CPU on starting (moto,
flask and boto import for half a second) and on stopping (tearing all of that
down), and the suite starts hundreds of them on a machine of two cores. So each
pytest process keeps one helper process (this file run as a script) that has
imported all of it once; for every emulator a test asks for, the helper forks
a child that runs the emulator's own ``main`` with the test's arguments,
environment, working directory and standard streams, just as the console
script would, and that exits without the teardown. What the tests talk to is
the same code over the same HTTP; only the start-up is shared. The emulator's
life as a command of its own (its console script, first line, signals) is
tested with real processes in tests/emulator/test_process.py.

The helper is single-threaded when it forks, reaps its children, and writes
each one's exit code to a pipe that the test's :class:`ForkedEmulator` reads:
the handle behaves as much like ``subprocess.Popen`` as the fixtures and tests
use it. It ends when the pytest process that started it closes its stdin.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

# What the emulator imports on its way up, lazily or not: imported here once.
PRELOAD = (
    "tsd_s3cmd.emulator.cli",
    "tsd_s3cmd.emulator.app",
    "tsd_s3cmd.emulator.gateway",
    "werkzeug.serving",
    "moto.moto_server.werkzeug_app",
    "moto.s3.models",
    "moto.s3.responses",
    "trustme",
)
_MAX_MESSAGE = 1 << 20


class ForkedEmulator:
    """One forked emulator: the part of ``subprocess.Popen`` that the tests use."""

    def __init__(self, pid: int, args: list[str], stdout: int, stderr: int, status: int) -> None:
        self.pid = pid
        self.args = args
        self.stdout = open(stdout, "rb", buffering=0)  # noqa: SIM115 (closed by the fixtures)
        self.stderr = open(stderr, "rb", buffering=0)  # noqa: SIM115
        self.returncode: int | None = None
        self._status = status

    def poll(self) -> int | None:
        return self.wait(0) if self._exited(0) else self.returncode

    def _exited(self, timeout: float | None) -> bool:
        if self.returncode is not None:
            return True
        return bool(select.select([self._status], [], [], timeout)[0])

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not self._exited(timeout):
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self.returncode = int(os.read(self._status, 64).decode() or -signal.SIGKILL)
            os.close(self._status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[bytes, bytes]:
        """Everything the emulator writes until it exits, as ``Popen.communicate``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        output = {self.stdout: b"", self.stderr: b""}
        open_streams = [s for s in output if not s.closed]
        while open_streams:
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            ready = select.select(open_streams, [], [], left)[0]
            if not ready:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            for stream in ready:
                chunk = stream.read(65536)
                output[stream] += chunk or b""
                if not chunk:
                    open_streams.remove(stream)
        self.wait(None if deadline is None else max(deadline - time.monotonic(), 0))
        return output[self.stdout], output[self.stderr]


class EmulatorForks:
    """The helper process of this pytest process, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._helper: subprocess.Popen | None = None
        self._socket: socket.socket | None = None

    def launch(self, args: list[str], env: dict[str, str], cwd: str) -> ForkedEmulator:
        """Fork an emulator that runs ``tsd-s3cmd-emulator ARGS`` in ``env`` and ``cwd``."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        stdin = os.open(os.devnull, os.O_RDONLY)
        try:
            request = json.dumps({"args": args, "env": env, "cwd": cwd}).encode()
            with self._lock:
                sock = self._connected()
                socket.send_fds(sock, [request], [stdin, out_w, err_w, status_w])
                pid = int(sock.recv(64))
        except BaseException:
            for fd in (out_r, err_r, status_r):
                os.close(fd)
            raise
        finally:
            for fd in (stdin, out_w, err_w, status_w):
                os.close(fd)
        return ForkedEmulator(pid, ["tsd-s3cmd-emulator", *args], out_r, err_r, status_r)

    def _connected(self) -> socket.socket:
        if self._socket is None:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._helper = subprocess.Popen(
                [sys.executable, __file__, str(theirs.fileno())],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, pass_fds=[theirs.fileno()],
                env={**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
            )  # fmt: skip
            theirs.close()
            ours.settimeout(120)  # a helper that died says nothing: fail, do not hang
            self._socket = ours
        return self._socket

    def close(self) -> None:
        """Stop the helper (its stdin closes); emulators still running keep running."""
        if self._helper is not None:
            assert self._helper.stdin is not None and self._socket is not None
            self._helper.stdin.close()
            self._helper.wait(timeout=30)
            self._socket.close()
            self._helper = self._socket = None


# --- The helper process ----------------------------------------------------------------


def _serve(sock: socket.socket) -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    statuses: dict[int, int] = {}  # pid -> the pipe its exit code goes to
    while True:
        ready = select.select([sys.stdin, sock, wake_r], [], [])[0]
        if wake_r in ready:
            os.read(wake_r, 4096)
        _reap(statuses)
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
            return
        if sock in ready:
            message, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE, 4)
            assert threading.active_count() == 1, "a helper with threads cannot fork safely"
            pid = os.fork()
            if pid == 0:
                _child(json.loads(message), fds)
            statuses[pid] = fds[3]
            for fd in fds[:3]:
                os.close(fd)
            sock.send(str(pid).encode())


def _reap(statuses: dict[int, int]) -> None:
    while statuses:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = statuses.pop(pid)
        os.write(fd, str(os.waitstatus_to_exitcode(status)).encode())
        os.close(fd)


def _child(request: dict, fds: list[int]) -> None:
    """In the forked child: become ``tsd-s3cmd-emulator ARGS``, then exit without teardown."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = ["tsd-s3cmd-emulator", *request["args"]]
        from tsd_s3cmd.emulator.cli import main

        try:
            main()
            code = 0
        except SystemExit as end:
            if end.code is None or isinstance(end.code, int):
                code = end.code or 0
            else:
                print(end.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    # The console script's first path entry is its own folder, not tests/.
    sys.path[0] = str(Path(sys.executable).parent)
    _serve(socket.socket(fileno=int(sys.argv[1])))

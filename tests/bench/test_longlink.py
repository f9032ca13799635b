"""The benchmark's long-link proxy, run as bench.py runs it, between real sockets.

What the benchmark's figures rest on: every byte arrives intact in both
directions over many connections at once, an end that closes closes the
other, and a sender that outruns the link is held back rather than buffered.
No test here times anything; the stall check only waits for the sender to
block, which a proxy that buffers everything would never make it do.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ..conftest import closed_port, stop_process

LONGLINK = Path(__file__).resolve().parents[2] / "benchmarks" / "longlink.py"
MiB = 1024 * 1024


class Target:
    """A TCP server on a free port; ``behaviour(conn)`` runs for each connection."""

    def __init__(self, behaviour) -> None:
        self.behaviour = behaviour
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.errors: list[BaseException] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.behaviour(conn)
            except BaseException as err:
                self.errors.append(err)


def echo(conn: socket.socket) -> None:
    """Send back everything, then close once the client has finished sending."""
    while data := conn.recv(MiB):
        conn.sendall(data)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while data := sock.recv(MiB):
        chunks.append(data)
    return b"".join(chunks)


def start_proxy(port: int, log: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    """The proxy in front of ``port``, what it says on stderr going to ``log``."""
    with log.open("ab") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(LONGLINK), "--listen", "127.0.0.1:0",
             "--target", f"127.0.0.1:{port}", *extra],
            stdout=subprocess.PIPE, stderr=stderr,
        )
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], 60)[0]:
        stop_process(proc)
        raise RuntimeError("the proxy did not start")
    line = proc.stdout.readline().decode().strip()
    assert line.startswith("longlink listening on 127.0.0.1:"), line
    return proc, int(line.rsplit(":", 1)[1])


@pytest.fixture
def proxy_to(tmp_path: Path) -> Iterator:
    """``proxy_to(port, *options)`` starts the proxy in front of ``port``; stopped at teardown."""
    running: list[subprocess.Popen] = []
    log = tmp_path / "longlink.log"

    def start(port: int, *extra: str) -> int:
        proc, listen = start_proxy(port, log, *extra)
        running.append(proc)
        return listen

    yield start
    for proc in running:
        stop_process(proc)
        assert proc.returncode == 0
    if log.exists():
        print(log.read_text(errors="replace"))  # shown with a test that failed


def round_trip(port: int, payload: bytes) -> bytes:
    """Send ``payload`` while reading the echo, then half-close and read the rest."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        def send() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        echoed = read_all(sock)
        sender.join()
    return echoed


def echo_many(port: int) -> tuple[list[bytes], list[bytes]]:
    """24 payloads of 256 to 350 KiB round-tripped at once: (what came back, what went)."""
    payloads = [os.urandom(256 * 1024 + 4099 * i) for i in range(24)]
    with ThreadPoolExecutor(len(payloads)) as pool:
        return list(pool.map(lambda p: round_trip(port, p), payloads)), payloads


# Three times an echo came back short with no error, in loaded runs: the event loop
# had garbage-collected connections mid-stream (test_connections_outlive_the_garbage_
# collector shows it, and that the proxy now holds its tasks). A connection that fails
# otherwise is reset and named on the proxy's stderr, which the fixture prints.
@pytest.mark.apart
def test_bytes_pass_intact_both_ways_over_many_connections(proxy_to) -> None:
    target = Target(echo)
    port = proxy_to(target.port, "--delay-ms", "5", "--rate-mbps", "40")
    echoed, payloads = echo_many(port)
    assert not target.errors, target.errors  # what the echo met, if it met anything
    assert [len(e) for e in echoed] == [len(p) for p in payloads]
    assert echoed == payloads


def test_a_target_that_closes_closes_the_client_after_all_it_sent(proxy_to) -> None:
    payload = os.urandom(3 * MiB + 17)
    target = Target(lambda conn: conn.sendall(payload))  # then closes, without reading
    port = proxy_to(target.port, "--delay-ms", "2", "--rate-mbps", "0")
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        assert read_all(sock) == payload  # read_all ends only at the end of the stream


def test_a_client_that_closes_closes_the_target(proxy_to) -> None:
    seen: list[bytes] = []
    closed = threading.Event()

    def record(conn: socket.socket) -> None:
        seen.append(read_all(conn))
        closed.set()

    target = Target(record)
    port = proxy_to(target.port, "--delay-ms", "2")
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"last words")
    assert closed.wait(30), "the target never saw the client's end of the stream"
    assert seen == [b"last words"]


def test_a_fast_sender_is_held_back_not_buffered(proxy_to) -> None:
    """A target that does not read: the sender must block long before the proxy holds it all."""
    reading = threading.Event()
    received: list[bytes] = []
    target = Target(lambda conn: (reading.wait(120), received.append(read_all(conn))))
    port = proxy_to(target.port, "--delay-ms", "0", "--rate-mbps", "0")
    payload = os.urandom(192 * MiB)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.setblocking(False)
        sent = 0
        # Until the socket stays unwritable for 3 s: with nothing reading at the far end,
        # only the kernel's buffers and the proxy's few chunks can take bytes in.
        while sent < len(payload) and select.select([], [sock], [], 3)[1]:
            with contextlib.suppress(BlockingIOError):
                sent += sock.send(payload[sent : sent + MiB])
        assert sent < len(payload) // 2, f"{sent // MiB} MiB went in with nothing reading"
        reading.set()
        sock.setblocking(True)
        sock.sendall(payload[sent:])
    for _ in range(60):
        if received:
            break
        threading.Event().wait(1)
    assert received == [payload]  # and nothing was lost while the sender was held


def test_no_target_listening_resets_the_client(proxy_to) -> None:
    """A reset, not a clean end: a client must not take a missing link for an empty answer."""
    port = proxy_to(closed_port())
    with (socket.create_connection(("127.0.0.1", port), timeout=60) as sock,
          pytest.raises(ConnectionResetError)):
        sock.recv(1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "localhost"], "'localhost' is not HOST:PORT"),
        (["--target", "127.0.0.1:1", "--delay-ms", "-5"], "'-5' is not a number >= 0"),
        (["--target", "127.0.0.1:1", "--rate-mbps", "fast"], "'fast' is not a number >= 0"),
    ],
)
def test_bad_options_are_named(args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, str(LONGLINK), *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_connections_outlive_the_garbage_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy's own code, in this process, while another thread collects garbage
    without pause: every echo intact. The event loop holds tasks only weakly, and a
    connection whose tasks all waited on one another was collected mid-stream (its
    sockets closed with a plain FIN: an empty echo, no error), as CI runs saw."""
    import asyncio
    import gc
    import importlib.util

    spec = importlib.util.spec_from_file_location("longlink", LONGLINK)
    assert spec is not None and spec.loader is not None
    longlink = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "longlink", longlink)  # its dataclasses look it up
    spec.loader.exec_module(longlink)
    target = Target(echo)
    proxy = longlink.Proxy(("127.0.0.1", target.port), longlink.Link(0.005, 40e6))
    listening: list[int] = []
    ready, done = threading.Event(), threading.Event()

    async def serve() -> None:
        server = await proxy.listen("127.0.0.1", 0)
        listening.append(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            while not done.is_set():
                await asyncio.sleep(0.05)

    def collect() -> None:
        while not done.is_set():
            gc.collect()

    loop_thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    loop_thread.start()
    assert ready.wait(30)
    threading.Thread(target=collect, daemon=True).start()
    try:
        for _ in range(2):
            echoed, payloads = echo_many(listening[0])
            assert [len(e) for e in echoed] == [len(p) for p in payloads]
            assert echoed == payloads
    finally:
        done.set()
        loop_thread.join(30)
    assert not target.errors, target.errors

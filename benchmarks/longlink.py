"""A long network link in a box: a TCP proxy that delays and rate-caps each connection.

On localhost a round trip costs nothing and one TCP stream fills the pipe, so
a tool that moves one part at a time looks as fast as one that moves eight.
Across a real network to TSD each connection carries only so much, and each
request waits a round trip; that is where moving several parts at once pays.
This proxy puts such a link between the clients and the emulator so that the
benchmark can show it. For each connection, in each direction:

- every chunk is forwarded ``--delay-ms`` after it entered the link: a
  pipeline delay, so a stream is held back by the rate, not by the delay;
- the rate is capped at ``--rate-mbps`` megabytes (10^6 bytes) per second by
  a token bucket, the way one TCP stream across a long path is held down;
- a new connection's first bytes wait one extra round trip, as they would
  behind TCP's handshake;
- at most about twice what the link has in flight is held, so a fast sender
  is slowed by TCP backpressure instead of being buffered whole.

    python benchmarks/longlink.py --listen 127.0.0.1:0 --target 127.0.0.1:8123 \\
        --delay-ms 20 --rate-mbps 8

prints ``longlink listening on HOST:PORT`` on one line once it accepts
connections, and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import socket
import struct
import sys
from dataclasses import dataclass

CHUNK = 64 * 1024  # read size; at 8 MB/s one chunk is 8 ms of link time
UNCAPPED_QUEUE = 64  # chunks one direction may hold when the rate is not capped


@dataclass(frozen=True)
class Link:
    """What one direction of one connection goes through."""

    delay: float  # seconds from entering the link to leaving it
    rate: float  # bytes per second; 0: no cap

    @property
    def queue_chunks(self) -> int:
        """Chunks one direction may hold: twice the bandwidth-delay product, at least 4."""
        if not self.rate:
            return UNCAPPED_QUEUE
        return max(4, 2 * math.ceil(self.rate * self.delay / CHUNK))


class TokenBucket:
    """Lets ``rate`` bytes per second through, in bursts of at most one chunk."""

    def __init__(self, rate: float, loop: asyncio.AbstractEventLoop) -> None:
        self.rate = rate
        self.loop = loop
        self.tokens = float(CHUNK)
        self.stamp = loop.time()

    async def take(self, size: int) -> None:
        """Wait until ``size`` bytes may pass (a debt is paid off by waiting)."""
        if not self.rate:
            return
        now = self.loop.time()
        self.tokens = min(float(CHUNK), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= size
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)


async def receive(
    reader: asyncio.StreamReader, queue: asyncio.Queue, link: Link, loop: asyncio.AbstractEventLoop
) -> None:
    """Read what one end sends, at the link's rate, stamped with when it may leave."""
    bucket = TokenBucket(link.rate, loop)
    while True:
        data = await reader.read(CHUNK)
        if data:
            await bucket.take(len(data))
        await queue.put((loop.time() + link.delay, data))  # b"" is the end of the stream
        if not data:
            return


async def send(
    writer: asyncio.StreamWriter, queue: asyncio.Queue, loop: asyncio.AbstractEventLoop
) -> None:
    """Hand each chunk to the other end when its delay is up; pass an end-of-stream on."""
    while True:
        due, data = await queue.get()
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if not data:
            if writer.can_write_eof():
                writer.write_eof()  # a half close: the other direction goes on
            return
        writer.write(data)
        await writer.drain()


class Proxy:
    """Accepts connections and joins each to a fresh connection to the target."""

    def __init__(self, target: tuple[str, int], link: Link) -> None:
        self.target = target
        self.link = link
        # The event loop holds its tasks only weakly. A connection whose tasks all wait
        # on one another (queues full or empty, reads paused) is otherwise garbage, and
        # the collector destroyed it mid-stream: its sockets closed with a plain FIN, so
        # a client read an empty answer with no error (seen in loaded CI runs).
        self.running: set[asyncio.Task] = set()

    def _keep(self, task: asyncio.Task) -> asyncio.Task:
        """Hold ``task`` until it is done (see ``running``)."""
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        return task

    async def handle(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        this = asyncio.current_task()
        if this is not None:
            self._keep(this)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError as err:
            # The target is not there: neither is the link. A reset, not a clean end, so
            # that the client does not take it for an empty answer; and said, so that a
            # run that meets it can tell (a test once saw an echo come back empty).
            print(f"longlink: cannot reach {self.target[0]}:{self.target[1]}: {err}",
                  file=sys.stderr, flush=True)
            reset(client_writer)
            return
        # TCP's handshake costs a round trip before the first byte can follow it.
        await asyncio.sleep(max(0.0, accepted + 2 * self.link.delay - loop.time()))
        up: asyncio.Queue = asyncio.Queue(self.link.queue_chunks)
        down: asyncio.Queue = asyncio.Queue(self.link.queue_chunks)
        tasks = [
            self._keep(asyncio.ensure_future(receive(client_reader, up, self.link, loop))),
            self._keep(asyncio.ensure_future(send(server_writer, up, loop))),
            self._keep(asyncio.ensure_future(receive(server_reader, down, self.link, loop))),
            self._keep(asyncio.ensure_future(send(client_writer, down, loop))),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            errors = [t.exception() for t in done if not t.cancelled() and t.exception()]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if errors:  # said, so that a run that meets it can tell
            print(f"longlink: a connection failed: {errors[0]!r}", file=sys.stderr, flush=True)
        for writer in (client_writer, server_writer):
            if errors:  # a reset or a broken pipe on one side resets the other
                reset(writer)
            else:
                writer.close()

    async def listen(self, host: str, port: int) -> asyncio.Server:
        """Accept connections at ``host:port`` (port 0: a free one)."""
        # A queue for the connections a client opens at once (s5cmd: 256), as the
        # emulator's: asyncio's default of 100 would turn the rest away.
        return await asyncio.start_server(self.handle, host, port, backlog=1024)

    async def serve(self, host: str, port: int) -> None:
        server = await self.listen(host, port)
        address = server.sockets[0].getsockname()
        print(f"longlink listening on {address[0]}:{address[1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with server:
            await stop.wait()


def reset(writer: asyncio.StreamWriter) -> None:
    """End a connection with a reset (RST), never a clean end: asyncio's ``abort()`` alone
    closes the socket, which sends a plain FIN when nothing is left unread, and a client
    would take a failed link for an empty answer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as a pair; an error that argparse shows in one line otherwise."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8123)")
    return host, int(port)


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=address, default=("127.0.0.1", 0), metavar="HOST:PORT",
                        help="where to accept connections; port 0 picks a free one "
                             "(default 127.0.0.1:0)")
    parser.add_argument("--target", type=address, required=True, metavar="HOST:PORT",
                        help="where to forward them")
    parser.add_argument("--delay-ms", type=non_negative, default=20.0,
                        help="one-way delay in milliseconds, each direction (default 20)")
    parser.add_argument("--rate-mbps", type=non_negative, default=8.0,
                        help="megabytes (10^6 bytes, not bits) per second, per connection "
                             "and direction; 0: no cap (default 8)")
    options = parser.parse_args(argv)
    link = Link(options.delay_ms / 1000, options.rate_mbps * 1e6)
    try:
        asyncio.run(Proxy(options.target, link).serve(*options.listen))
    except OSError as err:
        sys.exit(f"longlink: cannot listen on {options.listen[0]}:{options.listen[1]}: "
                 f"{err.strerror}")


if __name__ == "__main__":
    main()

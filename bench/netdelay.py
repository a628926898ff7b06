"""A delaying TCP proxy: a network a given round trip away, for the mail benchmarks.

    python -m bench.netdelay --upstream-port 2525 --rtt-ms 20   # prints "ready <port>", then proxies

A line "cpu" on its standard input prints the CPU seconds it has used so far (the benchmark counts
the proxy's share of the machine, since it shares the machine's cores with the step); the end of
its standard input stops it.

Every chunk read from either side is forwarded to the other side half the round-trip time after
it arrived, in the order it arrived, so one SMTP command and its reply cost one round trip and a
TLS handshake its real round trips. Latency, not bandwidth: a chunk is never slowed by its size or
by the chunks before it beyond their own due time (each chunk is stamped as it arrives and written
when due, by one timer a direction; the two directions are independent, as on a real link).

TCP's own handshake happens on loopback here, instantly; a real connect costs one round trip
before the server's banner is even sent, so the proxy opens the upstream connection one round trip
after accepting the client's. A client then sees the banner 1.5 round trips after connecting, as
it would a network away.

It runs in its own process (the relay and the client each have theirs) so its forwarding never
waits behind the client's work; at 0 ms the benchmark connects directly instead.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import deque


class _Direction:
    """One direction of one connection: each chunk written to `peer` `one_way` seconds after it
    arrived, in order; an end (b"") closes the peer when due. One timer a direction, not a task,
    a queue and a sleep a chunk: the proxy stands in for a network, which costs the machine's cores
    nothing, so it should cost them as little as it can (the benchmark counts its CPU)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, one_way: float) -> None:
        self.loop, self.one_way = loop, one_way
        self.peer: asyncio.Transport | None = None  # set once the upstream connection is open
        self.due: deque[tuple[float, bytes]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def push(self, data: bytes) -> None:
        # Before the upstream connection is open nothing has left yet: such chunks are stamped
        # when it opens, as a real client could send nothing before TCP's handshake completed.
        self.due.append((self.loop.time() + self.one_way if self.peer is not None else 0.0, data))
        self._schedule()

    def _schedule(self) -> None:
        if self.timer is None and self.due and self.peer is not None:
            self.timer = self.loop.call_at(self.due[0][0], self._send)

    def _send(self) -> None:
        self.timer = None
        now, ready = self.loop.time(), []
        while self.due and self.due[0][0] <= now:
            data = self.due.popleft()[1]
            if not data:  # the other side ended: so does this one, when due
                if ready:
                    self.peer.write(b"".join(ready))
                self.peer.close()
                self.due.clear()
                return
            ready.append(data)
        if ready and not self.peer.is_closing():
            self.peer.write(b"".join(ready))
        self._schedule()

    def attach(self, peer: asyncio.Transport) -> None:
        self.peer = peer
        when = self.loop.time() + self.one_way
        self.due = deque((when, data) for _, data in self.due)
        self._schedule()


class _Side(asyncio.Protocol):
    """One end of a proxied connection: what it receives goes out through `outgoing`; when its own
    transport cannot take more, the other end stops reading (flow control, as TCP's window)."""

    def __init__(self, outgoing: _Direction) -> None:
        self.outgoing = outgoing
        self.transport: asyncio.Transport | None = None
        self.other: _Side | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.outgoing.push(data)

    def eof_received(self) -> bool:
        self.outgoing.push(b"")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.outgoing.push(b"")

    def pause_writing(self) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.other is not None and self.other.transport is not None and not self.other.transport.is_closing():
            self.other.transport.resume_reading()


async def serve(upstream_host: str, upstream_port: int, rtt: float, *, host: str = "127.0.0.1",
                port: int = 0) -> asyncio.Server:
    """Listen on (host, port) and relay each connection to the upstream, `rtt` seconds round trip."""
    loop = asyncio.get_running_loop()
    one_way = rtt / 2
    opening: set[asyncio.Task[None]] = set()

    def accepted() -> _Side:
        to_server, to_client = _Direction(loop, one_way), _Direction(loop, one_way)
        client = _Side(to_server)

        async def open_upstream() -> None:
            await asyncio.sleep(rtt)  # TCP's handshake, a network away: SYN there, SYN-ACK back
            try:
                transport, server = await loop.create_connection(lambda: _Side(to_client), upstream_host, upstream_port)
            except OSError:
                if client.transport is not None:
                    client.transport.close()
                return
            client.other, server.other = server, client
            to_server.attach(transport)
            to_client.attach(client.transport)

        task = loop.create_task(open_upstream())
        opening.add(task)
        task.add_done_callback(opening.discard)
        return client

    return await loop.create_server(accepted, host, port, backlog=256)


async def _main(upstream_host: str, upstream_port: int, rtt_ms: float) -> None:
    server = await serve(upstream_host, upstream_port, rtt_ms / 1000)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    # Stop when the parent closes our stdin (it ended, or crashed: never left running).
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip() == "cpu":
            print(time.process_time(), flush=True)
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream-host", default="127.0.0.1")
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--rtt-ms", type=float, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_main(args.upstream_host, args.upstream_port, args.rtt_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

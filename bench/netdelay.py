"""A delaying TCP proxy: a network a given round trip away, for the mail benchmarks.

    python -m bench.netdelay --upstream-port 2525 --rtt-ms 20   # prints "ready <port>", then proxies

Every chunk read from either side is forwarded to the other side half the round-trip time after
it arrived, in the order it arrived, so one SMTP command and its reply cost one round trip and a
TLS handshake its real round trips. Latency, not bandwidth: a chunk is never slowed by its size or
by the chunks before it beyond their own due time (a reader task stamps each chunk, a writer task
sends it when due; the two directions are independent, as on a real link).

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
import contextlib
import sys

CHUNK = 256 * 1024


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, one_way: float) -> None:
    """Copy `reader` to `writer`, each chunk `one_way` seconds after it was read, order kept; an end
    of stream is forwarded (as a close) when it is due too."""
    loop = asyncio.get_running_loop()
    due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        try:
            while data := await reader.read(CHUNK):
                due.put_nowait((loop.time() + one_way, data))
        except (ConnectionError, OSError):
            pass
        due.put_nowait((loop.time() + one_way, b""))

    reading = asyncio.create_task(read())
    try:
        while True:
            when, data = await due.get()
            wait = when - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        reading.cancel()
        with contextlib.suppress(Exception):
            writer.close()


async def serve(upstream_host: str, upstream_port: int, rtt: float, *, host: str = "127.0.0.1",
                port: int = 0) -> asyncio.Server:
    """Listen on (host, port) and relay each connection to the upstream, `rtt` seconds round trip."""
    one_way = rtt / 2

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.sleep(rtt)  # TCP's handshake, a network away: SYN there, SYN-ACK back
            try:
                server_reader, server_writer = await asyncio.open_connection(upstream_host, upstream_port)
            except OSError:
                client_writer.close()
                return
            await asyncio.gather(
                _forward(client_reader, server_writer, one_way),
                _forward(server_reader, client_writer, one_way),
            )
        except asyncio.CancelledError:
            client_writer.close()  # the proxy is stopping: a connection still open just ends

    return await asyncio.start_server(relay, host, port, backlog=256)


async def _main(upstream_host: str, upstream_port: int, rtt_ms: float) -> None:
    server = await serve(upstream_host, upstream_port, rtt_ms / 1000)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    # Stop when the parent closes our stdin (it ended, or crashed: never left running).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
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

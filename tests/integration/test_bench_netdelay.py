"""The mail benchmark's network (bench/netdelay.py): a delaying TCP proxy in front of a real echo
server, on loopback. The digests benchmark's figures at 5 and 20 ms are only as good as this
proxy: every byte through, in order, each direction at least half the round trip late, and an
end of stream passed on. Delays are checked as lower bounds only (a slow machine only adds to
them), never as speed."""

from __future__ import annotations

import asyncio
import os
import time

from bench.netdelay import serve

RTT = 0.06


async def echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()  # the client ended: so does the echo

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def through_proxy(payloads: list[bytes]) -> tuple[bytes, float, float, bytes]:
    """Send `payloads` one write each through the proxy to the echo server and read the echo back:
    (what came back, seconds to the first byte after connecting, seconds from the last write to
    the last byte, what a read gives after the client's end of stream)."""
    upstream = await echo_server()
    proxy = await serve("127.0.0.1", upstream.sockets[0].getsockname()[1], RTT)
    try:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.sockets[0].getsockname()[1])
        expected = sum(len(p) for p in payloads)

        async def write_all() -> float:
            for payload in payloads:
                writer.write(payload)
                await writer.drain()
            return time.perf_counter()

        writing = asyncio.create_task(write_all())
        received = bytearray(await reader.read(65536))
        first = time.perf_counter() - started
        while len(received) < expected:
            chunk = await asyncio.wait_for(reader.read(1 << 20), timeout=30)
            assert chunk, "the proxy ended the stream early"
            received += chunk
        last = time.perf_counter() - await writing
        writer.write_eof()
        after_end = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        return bytes(received), first, last, after_end
    finally:
        proxy.close()
        upstream.close()


def test_small_writes_come_back_in_order_a_round_trip_late_and_the_end_is_passed_on():
    payloads = [b"EHLO one\r\n", b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<b@example.org>\r\n", b"DATA\r\n"]
    received, first, last, after_end = asyncio.run(through_proxy(payloads))
    assert received == b"".join(payloads)
    # TCP's handshake (one round trip before the upstream connection opens), then there and back.
    assert first >= 2 * RTT * 0.95
    assert last >= RTT * 0.95  # the last write's echo: one round trip at least
    assert after_end == b""  # the client's end reached the server, and the server's end came back


def test_four_megabytes_each_way_arrive_whole_and_in_order():
    """More than the sockets' buffers hold, in both directions at once: nothing lost, nothing out of
    order, whether the proxy buffers it or pauses reading a side whose peer cannot take more."""
    payloads = [os.urandom(256 * 1024) for _ in range(16)]
    received, _, _, after_end = asyncio.run(through_proxy(payloads))
    assert len(received) == 16 * 256 * 1024
    assert received == b"".join(payloads)
    assert after_end == b""
